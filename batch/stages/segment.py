"""The ``segment`` stage: SAM2 video object tracking to masks.parquet; frames pass on unchanged.

SAM2 holds every frame of a clip in memory at once, so the stream is cut into
windows of at most ``window`` frames. The first window holds ``window`` new
frames. While objects are being tracked, every later window starts with the
previous window's last frame, seeded with each object's last mask
(``add_new_mask``), and holds ``window - 1`` new frames: SAM2 never holds more
than ``window`` frames, and tracking carries across windows. A window in which
no object is tracked yet and none is prompted skips SAM2. Prompts (points,
labels, box) apply in the window holding their frame; tracking runs forward
from there, so an object has no mask on the frames before its prompt frame.
An object whose prompt frame lies beyond the input's end is never tracked and
is named in the report's notes.

Rungs, tried in the order of the config's ladder (see batch.stages.ladder):
``cuda`` (bf16 autocast where the GPU supports it), ``cuda-offload`` (video
frames and SAM2's state in CPU memory), ``smaller`` (``smaller_model``, with
offload), ``cpu`` (fp32). A rung that cannot start (no CUDA, weights missing or
with a wrong checksum, not a SAM2 file) or runs out of memory is recorded with
its reason and the same window runs again on the next rung.

masks.parquet (the schema is in docs/manifest.md): one row per frame and object,
masks as COCO compressed RLE; zstd, row groups of ROW_GROUP_ROWS rows,
DATA_PAGE_BYTES data pages, written as the windows finish (bounded memory) to a
hidden partial file renamed when the stream ends. Optional overlay.mp4: the
frames with the masks drawn, libx264 through an ffmpeg pipe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import numpy as np

from batch.config import SAM2_CPU, SAM2_OFFLOAD, SAM2_SMALLER, SegmentObject, SegmentStage
from batch.media.layout import to_8bit
from batch.stages.base import Caps, Stage, StageFile, StageInput
from batch.stages.frames import as_numpy
from batch.stages.ladder import Ladder, unavailable_if_oom
from batch.stages.segment_files import (
    MASKS_FILE,
    OVERLAY_FILE,
    SCORE_DOC,
    MasksFile,
    Overlay,
    Result,
    encode,
)


class Segment(Stage[SegmentStage]):
    name = "segment"
    # SAM2 takes RGB (frames arrive as numpy uint8 (H, W, 3)); tracking spans the whole input
    caps = Caps(
        spans_input=True,
        needs_rgb=True,
        model_kind="sam2",
        files=(
            StageFile("masks", MASKS_FILE, "application/vnd.apache.parquet"),
            StageFile("overlay", OVERLAY_FILE, "video/mp4"),
        ),
    )

    def __init__(self, spec: SegmentStage, context: StageInput) -> None:
        super().__init__(spec, context)
        self.width = context.width
        self.height = context.height
        self.fps = context.fps
        self.artifacts = context.artifacts
        self.objects = sorted(spec.objects, key=lambda o: o.id)
        self.ladder: Ladder[Any] = Ladder(
            "segment",
            [(rung, _factory(spec, rung)) for rung in spec.ladder],
            total=context.total_frames,  # for the ladder's runtime estimate (0: unknown)
            deadline=context.deadline,
        )
        self.frames_in = 0
        self.frames_out = 0
        self.windows = 0  # windows SAM2 ran on
        self.seeded_windows = 0  # of them, those seeded with the previous window's masks
        self.max_frames_held = 0  # most frames SAM2 held at once
        self.model_used: str | None = None
        self.rows = 0
        self.notes: list[str] = []
        self.written: list[str] = []
        self._tracked = {o.id: 0 for o in self.objects}
        self._with_mask = {o.id: 0 for o in self.objects}
        self._carry: dict[int, np.ndarray] = {}  # object id -> its mask on the last frame done
        self._last_frame: np.ndarray | None = None
        self._masks: MasksFile | None = None
        self._overlay: Overlay | None = None

    # --- the stream -------------------------------------------------------------------

    def run(self, frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        self._open()
        done = False
        try:
            buffer: list[np.ndarray] = []
            start = 0
            for frame in frames:
                self.frames_in += 1
                buffer.append(frame)
                if len(buffer) >= self._new_frames_per_window():
                    yield from self._window(buffer, start)
                    start += len(buffer)
                    buffer = []
            if buffer:
                yield from self._window(buffer, start)
                start += len(buffer)
            self._finish(start)
            done = True
        finally:
            if not done:
                self._abort()

    def _rgb8(self, frame: Any) -> np.ndarray:
        """What SAM2 and the overlay take: 8-bit RGB (16-bit scaled; the source's signal, not linear)."""
        arr = as_numpy(frame, self.dtype)
        return to_8bit(arr[..., :3], int(np.iinfo(arr.dtype).max))

    def _new_frames_per_window(self) -> int:
        # while objects are carried, one of the window's frames is the seed frame
        return self.config.window - 1 if self._carry else self.config.window

    def _window(self, buffer: list[np.ndarray], start: int) -> Iterator[np.ndarray]:
        """Track one window, record its rows and overlay frames, then pass its frames on."""
        n = len(buffer)
        seeds = dict(self._carry)
        seed_frames = [self._last_frame] if seeds and self._last_frame is not None else []
        clip = [*seed_frames, *(self._rgb8(f) for f in buffer)]
        offset = start - len(seed_frames)  # source index of the clip's first frame
        prompts = [_prompt(o, o.frame - offset) for o in self.objects if start <= o.frame < start + n]
        results: list[dict[int, Result]] = [{} for _ in range(n)]
        if seeds or prompts:
            results, self._carry = self.ladder.run(
                lambda rung: self._track(rung, clip, offset - start, seeds, prompts), weight=n
            )
            self.windows += 1
            self.seeded_windows += bool(seeds)
            self.max_frames_held = max(self.max_frames_held, len(clip))
        self._last_frame = clip[-1]
        for k in range(n):
            self._record(start + k, results[k], clip[len(seed_frames) + k])
        self.frames_out += n
        yield from buffer

    def _track(
        self, rung: Any, clip: list[np.ndarray], shift: int, seeds: dict[int, np.ndarray], prompts: list[Any]
    ) -> tuple[list[dict[int, Result]], dict[int, np.ndarray]]:
        """One attempt on one rung; nothing is kept unless the whole window succeeds."""
        n = len(clip) + shift  # new frames: clip frames from index -shift on
        got: list[dict[int, Result]] = [{} for _ in range(n)]
        last: dict[int, np.ndarray] = {}

        def emit(idx: int, obj_ids: list[int], masks: np.ndarray, scores: np.ndarray) -> None:
            k = idx + shift
            if k < 0:  # the seed frame: the previous window's result stands
                return
            for j, obj_id in enumerate(obj_ids):
                got[k][obj_id] = encode(masks[j], float(scores[j]))
                if k == n - 1:
                    last[obj_id] = masks[j].copy()

        rung.track(clip, seeds, prompts, emit)
        self.model_used = rung.weights
        return got, last

    def _record(self, frame: int, results: dict[int, Result], rgb: np.ndarray) -> None:
        time_s = float(Fraction(frame) / self.fps)
        drawn: list[tuple[int, str]] = []
        for index, obj in enumerate(self.objects):
            result = results.get(obj.id)
            if result is not None:
                self._tracked[obj.id] += 1
                self._with_mask[obj.id] += result[1] > 0
                if result[1] > 0:
                    drawn.append((index, result[0]))
            if self._masks is not None:
                self._masks.add(frame, time_s, obj.id, result)
            self.rows += 1
        if self._overlay is not None:
            self._overlay.write(rgb, drawn)

    # --- files --------------------------------------------------------------------------

    def _open(self) -> None:
        if self.artifacts is None:
            return
        self.artifacts.mkdir(parents=True, exist_ok=True)
        meta = {
            "fps": str(self.fps),
            "width": self.width,
            "height": self.height,
            "objects": [o.to_data() for o in self.objects],
            "rle": "COCO compressed RLE (pycocotools), column-major, size [height, width]",
            "score": SCORE_DOC,
        }
        self._masks = MasksFile(self.artifacts / MASKS_FILE, self.height, self.width, meta)
        if self.config.overlay:
            try:
                self._overlay = Overlay(
                    self.artifacts / OVERLAY_FILE, self.width, self.height, self.fps, self.context.sar
                )
            except OSError as e:
                self.notes.append(f"overlay not written: ffmpeg could not start ({e})")

    def _finish(self, total: int) -> None:
        for o in self.objects:
            if o.frame >= total:
                last = f"last frame {total - 1}" if total else "no frames"
                self.notes.append(
                    f"object {o.id}: prompt frame {o.frame} lies beyond the input's end ({last}); "
                    "not tracked, its rows have empty masks and null scores"
                )
        if self._masks is not None:
            self._masks.close()
            self.written.append(MASKS_FILE)
        if self._overlay is not None:
            error = self._overlay.close()
            if error:
                self.notes.append(f"overlay not written: {error}")
            else:
                self.written.append(OVERLAY_FILE)

    def _abort(self) -> None:
        for f in (self._masks, self._overlay):
            if f is not None:
                f.abort()

    # --- the manifest ---------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "requested": self.config.to_data(exclude={"stage"}),
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "objects": [
                {
                    "id": o.id,
                    "prompt_frame": o.frame,
                    "frames_tracked": self._tracked[o.id],
                    "frames_with_mask": self._with_mask[o.id],
                }
                for o in self.objects
            ],
            "model": self.model_used,
            "window": self.config.window,
            "windows": self.windows,
            "seeded_windows": self.seeded_windows,
            "max_frames_held": self.max_frames_held,
            "rows": self.rows,
            "artifacts": list(self.written),
            "notes": list(self.notes),
            **self.ladder.report(),
        }


def _factory(stage: SegmentStage, rung: str) -> Callable[[], Any]:
    """The rung's builder; imports torch and sam2 only when the ladder reaches it."""

    def make() -> Any:
        from batch.models.sam2_predictor import make_tracker

        try:
            if rung == SAM2_CPU:
                return make_tracker(stage.model, "cpu")
            if rung == SAM2_SMALLER:
                assert stage.smaller_model is not None  # the config drops the rung without one
                return make_tracker(stage.smaller_model, "cuda", offload=True)
            return make_tracker(stage.model, "cuda", offload=rung == SAM2_OFFLOAD)
        except RuntimeError as e:
            raise unavailable_if_oom(e) from None

    return make


def _prompt(obj: SegmentObject, frame: int) -> Any:
    from batch.models.sam2_predictor import Prompt

    return Prompt(
        frame=frame,
        obj_id=obj.id,
        points=tuple(tuple(p) for p in obj.points),  # type: ignore[misc]
        labels=tuple(obj.labels),
        box=obj.box,
    )
