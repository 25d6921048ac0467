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

masks.parquet (the schema is in docs/segment.md): one row per frame and object,
masks as COCO compressed RLE; zstd, row groups of ROW_GROUP_ROWS rows,
DATA_PAGE_BYTES data pages, written as the windows finish (bounded memory) to a
hidden partial file renamed when the stream ends. Optional overlay.mp4: the
frames with the masks drawn, libx264 through an ffmpeg pipe.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from batch.config import SegmentObject, SegmentStage
from batch.stages.frames import as_numpy
from batch.stages.ladder import Ladder

ROW_GROUP_ROWS = 10_000  # rows per Parquet row group (frames x objects); ~1-10 MB of RLE text
DATA_PAGE_BYTES = 1 << 20  # 1 MiB data pages
MASKS_FILE = "masks.parquet"
OVERLAY_FILE = "overlay.mp4"
OVERLAY_CRF = 20
OVERLAY_ALPHA = 0.5
# distinct colours (RGB) for object 0, 1, 2 ... in id order
PALETTE = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
)
SCORE_DOC = (
    "mean sigmoid of SAM2's mask logits over the mask's pixels; 0 for an empty mask; "
    "null where the object is not tracked (before its prompt frame)"
)

# One object's result on one frame: (rle counts, area, bbox [x, y, w, h], score)
Result = tuple[str, int, list[float], float]


class Segment:
    name = "segment"
    needs_rgb = True  # SAM2 takes RGB; frames arrive as numpy uint8 (H, W, 3)

    def __init__(
        self,
        stage: SegmentStage,
        width: int,
        height: int,
        fps: Fraction,
        artifacts: Path | None,
        *,
        total_frames: int = 0,  # frames expected, for the ladder's runtime estimate (0: unknown)
    ) -> None:
        self.config = stage
        self.width = width
        self.height = height
        self.fps = fps
        self.artifacts = artifacts
        self.objects = sorted(stage.objects, key=lambda o: o.id)
        self.ladder: Ladder[Any] = Ladder(
            "segment", [(rung, _factory(stage, rung)) for rung in stage.ladder], total=total_frames
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
        self._masks: _MasksFile | None = None
        self._overlay: _Overlay | None = None

    def expected_frames(self, frames_in: int) -> int:
        return frames_in

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

    def _new_frames_per_window(self) -> int:
        # while objects are carried, one of the window's frames is the seed frame
        return self.config.window - 1 if self._carry else self.config.window

    def _window(self, buffer: list[np.ndarray], start: int) -> Iterator[np.ndarray]:
        """Track one window, record its rows and overlay frames, then pass its frames on."""
        n = len(buffer)
        seeds = dict(self._carry)
        seed_frames = [self._last_frame] if seeds and self._last_frame is not None else []
        clip = [*seed_frames, *(as_numpy(f) for f in buffer)]
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
                got[k][obj_id] = _encode(masks[j], float(scores[j]))
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
            "objects": [o.model_dump(mode="json") for o in self.objects],
            "rle": "COCO compressed RLE (pycocotools), column-major, size [height, width]",
            "score": SCORE_DOC,
        }
        self._masks = _MasksFile(self.artifacts / MASKS_FILE, self.height, self.width, meta)
        if self.config.overlay:
            try:
                self._overlay = _Overlay(self.artifacts / OVERLAY_FILE, self.width, self.height, self.fps)
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
            "requested": self.config.model_dump(mode="json", exclude={"stage"}),
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

        if rung == "cpu":
            return make_tracker(stage.model, "cpu")
        if rung == "smaller":
            assert stage.smaller_model is not None  # the config drops the rung without one
            return make_tracker(stage.smaller_model, "cuda", offload=True)
        return make_tracker(stage.model, "cuda", offload=rung == "cuda-offload")

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


def _encode(mask: np.ndarray, score: float) -> Result:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    area = int(mask_utils.area(rle))
    bbox = [float(v) for v in mask_utils.toBbox(rle)]
    return rle["counts"].decode("ascii"), area, bbox, score


class _MasksFile:
    """masks.parquet, written a row group at a time to a hidden partial file, renamed at the end."""

    def __init__(self, path: Path, height: int, width: int, meta: dict[str, Any]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq
        from pycocotools import mask as mask_utils

        self.path = path
        self.partial = path.with_name(f".{path.name}.partial")
        self.size = [height, width]
        empty = mask_utils.encode(np.zeros((height, width), dtype=np.uint8, order="F"))
        self.empty: Result = (empty["counts"].decode("ascii"), 0, [0.0, 0.0, 0.0, 0.0], 0.0)
        self.schema = pa.schema(
            [
                ("frame", pa.int32()),
                ("time_s", pa.float64()),
                ("object_id", pa.int32()),
                ("rle_counts", pa.string()),
                ("rle_size", pa.list_(pa.int32())),
                ("bbox", pa.list_(pa.float32())),
                ("area", pa.int64()),
                ("score", pa.float32()),
            ],
            metadata={"batch.segment": json.dumps(meta)},
        )
        self.writer = pq.ParquetWriter(
            self.partial, self.schema, compression="zstd", data_page_size=DATA_PAGE_BYTES
        )
        self.columns: dict[str, list[Any]] = {name: [] for name in self.schema.names}

    def add(self, frame: int, time_s: float, obj_id: int, result: Result | None) -> None:
        counts, area, bbox, score = result if result is not None else self.empty
        c = self.columns
        c["frame"].append(frame)
        c["time_s"].append(time_s)
        c["object_id"].append(obj_id)
        c["rle_counts"].append(counts)
        c["rle_size"].append(self.size)
        c["bbox"].append(bbox)
        c["area"].append(area)
        c["score"].append(None if result is None else score)
        if len(c["frame"]) >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if not self.columns["frame"]:
            return
        table = pa.table(self.columns, schema=self.schema)
        self.writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.columns = {name: [] for name in self.schema.names}

    def close(self) -> None:
        self._flush()
        self.writer.close()
        os.replace(self.partial, self.path)

    def abort(self) -> None:
        try:
            self.writer.close()
        finally:
            self.partial.unlink(missing_ok=True)


class _Overlay:
    """overlay.mp4: the frames with each object's mask blended in its colour, libx264 via a pipe."""

    def __init__(self, path: Path, width: int, height: int, fps: Fraction) -> None:
        self.path = path
        self.partial = path.with_name(f".{path.name}.partial")
        self.size = [height, width]
        self.error: str | None = None
        self.log = tempfile.TemporaryFile()
        cmd = [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "-",
            # 4:2:0 needs even sizes; BT.709 matrix and tags so players show the colours drawn
            "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2,scale=out_color_matrix=bt709:out_range=tv,format=yuv420p",
            "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", str(OVERLAY_CRF),
            "-movflags", "+faststart", "-f", "mp4", str(self.partial),
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self.log)

    def write(self, frame: np.ndarray, masks: list[tuple[int, str]]) -> None:
        if self.error is not None:
            return
        from pycocotools import mask as mask_utils

        out = frame
        if masks:
            out = frame.astype(np.float32)
            for index, counts in masks:
                m = mask_utils.decode({"size": self.size, "counts": counts.encode("ascii")}).astype(bool)
                colour = np.asarray(PALETTE[index % len(PALETTE)], dtype=np.float32)
                out[m] = out[m] * (1 - OVERLAY_ALPHA) + colour * OVERLAY_ALPHA
            out = (out + 0.5).astype(np.uint8)
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(np.ascontiguousarray(out).tobytes())
        except (BrokenPipeError, OSError):
            self.error = f"ffmpeg stopped reading frames: {self._tail()}"

    def _tail(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace").strip()[-500:] or "(no message)"

    def close(self) -> str | None:
        """None when overlay.mp4 is in place, else why not."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        rc = self.proc.wait()
        if self.error is None and rc != 0:
            self.error = f"ffmpeg exited {rc}: {self._tail()}"
        self.log.close()
        if self.error is not None:
            self.partial.unlink(missing_ok=True)
            return self.error
        os.replace(self.partial, self.path)
        return None

    def abort(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()
        self.partial.unlink(missing_ok=True)
