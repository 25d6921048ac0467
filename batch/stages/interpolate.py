"""Frame-rate conversion: output frame j sits at source position j / ratio.

Streaming: each pair of consecutive anchors (a at i0, b at i1) yields the
output frames whose position p falls in [i0, i1), at t = (p - i0) / (i1 - i0).
Anchors are the source frames, less the held (repeated) ones when ``dedupe``
is on, so motion in animation with held drawings is spread evenly. After the
last source frame, the last anchor is held for the positions in [N-1, N). The
output thus holds every frame whose time lies within the input's duration:
ceil(N * ratio) frames, never shorter than the input and longer by less than
one output frame.

A pair whose luma histograms differ by more than ``scene_threshold`` is a
scene cut: its in-between frames repeat the earlier frame instead of morphing
one shot into the next (both tests read a strided luma sample, see
batch.stages.scene). t = 0 always returns the source frame itself.

Output positions are collected across pairs into units of ``batch`` frames
to make (t = 0 costs nothing), so a model rung infers a whole batch at once. Rungs: ``rife`` (CUDA),
``rife-cpu``, ``blend`` (linear mix) and ``duplicate`` (hold the earlier frame).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from typing import Any, Protocol

import numpy as np

from batch.config import BLEND, DUPLICATE, INTERPOLATE_MODEL_RUNGS, RIFE_CPU, InterpolateStage
from batch.errors import RungUnavailable, WeightsError
from batch.media.layout import DEVICE_YUV
from batch.stages.base import Caps, Stage, StageInput, output_count
from batch.stages.frames import OneBehind, as_numpy, layout_of, stretch_planes
from batch.stages.ladder import Ladder, unavailable_if_oom
from batch.stages.scene import LumaSample, cut_between, held_between

Frame = Any  # numpy uint8/uint16 (RGB or planar), or a (3, H, W) float tensor between model stages
Job = tuple[Frame, Frame, Fraction]  # (a, b, t): the frame at t of the way from a to b


class InterpolateRung(Protocol):
    def between(self, a: Frame, b: Frame, ts: Sequence[Fraction]) -> list[Frame]:
        """Frames at fractions ``ts`` (0 <= t < 1) of the way from ``a`` to ``b``."""
        ...


_HALF = Fraction(1, 2)


class BlendRung:
    """A linear mix of the two frames, in any layout and depth (uint8 or uint16, packed or planar)."""

    def __init__(self, dtype: Any = np.uint8) -> None:
        self.dtype = dtype  # what a device tensor from a model stage before becomes

    def between(self, a: Frame, b: Frame, ts: Sequence[Fraction]) -> list[Frame]:
        out: list[Frame] = []
        a, b = as_numpy(a, self.dtype), as_numpy(b, self.dtype)
        for t in ts:
            if t == 0:
                out.append(a)
            elif t == _HALF:
                # exact rounded mean, the common 2x case: (a + b + 1) >> 1 without widening,
                # (a | b) - ((a ^ b) >> 1), in the frames' own dtype (uint8: 6x faster than widened)
                half = np.bitwise_xor(a, b)
                np.right_shift(half, 1, out=half)
                mean = np.bitwise_or(a, b)
                np.subtract(mean, half, out=mean)
                out.append(mean)
            else:
                w, top = np.float32(t), np.iinfo(a.dtype).max
                mix = a.astype(np.float32) * (1 - w) + b.astype(np.float32) * w
                out.append(np.clip(mix + 0.5, 0, top).astype(a.dtype))
        return out


class DuplicateRung:
    def between(self, a: Frame, b: Frame, ts: Sequence[Fraction]) -> list[Frame]:
        return [a for _ in ts]


RUNGS: dict[str, Callable[[], InterpolateRung]] = {BLEND: BlendRung, DUPLICATE: DuplicateRung}

UNIT_FRAMES = 8  # output frames per unit of ladder work without a model: bounds memory at high factors


def ratio_for(stage: InterpolateStage, fps_in: Fraction) -> Fraction:
    return stage.factor if stage.factor is not None else Fraction(stage.fps) / fps_in  # type: ignore[arg-type]


def _compute(jobs: list[Job], rung: Any) -> list[Frame]:
    """The unit's frames in order: t = 0 is the source frame itself, never a model output."""
    todo = [k for k, (_, _, t) in enumerate(jobs) if t != 0]
    out: list[Frame] = [a for a, _, _ in jobs]
    if not todo:
        return out
    if hasattr(rung, "between_many"):
        made = rung.between_many([jobs[k] for k in todo])
    else:
        made = [rung.between(jobs[k][0], jobs[k][1], [jobs[k][2]])[0] for k in todo]
    for k, frame in zip(todo, made, strict=True):
        out[k] = frame
    return out


def _unit_end(jobs: list[Job], unit: int) -> int | None:
    """The length of the prefix holding ``unit`` frames to make (t = 0 costs nothing), if there is one.

    A unit also ends after 4 x ``unit`` positions, so a ratio whose positions
    are all source frames (1, 1/2 ...) does not hold the whole input back.
    """
    made = 0
    for k, (_, _, t) in enumerate(jobs):
        made += t != 0
        if made == unit or k + 1 >= 4 * unit:
            return k + 1
    return None


class Interpolate(Stage[InterpolateStage]):
    name = "interpolate"
    caps = Caps(changes_rate=True)

    @classmethod
    def caps_for(cls, spec: InterpolateStage) -> Caps:
        """RIFE needs RGB (blend works on planar yuv too); dedupe's held frames span chunks."""
        assert spec.ladder is not None
        model = spec.model is not None
        return Caps(
            changes_rate=True,
            spans_input=spec.dedupe,
            needs_rgb=any(r in INTERPOLATE_MODEL_RUNGS for r in spec.ladder),
            model_kind="rife" if model else None,
            device_frames=model,
            yuv_on_device=model,  # rife converts on its device; blend and duplicate mix planes as they are
        )

    def __init__(self, spec: InterpolateStage, context: StageInput) -> None:
        super().__init__(spec, context)
        self.ratio = ratio_for(spec, context.fps)
        self.fps_out = context.fps * self.ratio
        self.size = (context.width, context.height)
        self.keep_on_device = context.keep_on_device  # the next stage is a model stage on the same device
        self.layout = layout_of(context.pix_fmt, context.width, context.height)
        self.dtype = self.layout.dtype
        self._stretch = stretch_planes(context)
        assert spec.ladder is not None
        self.unit = spec.batch if self.needs_rgb else UNIT_FRAMES
        self.ladder: Ladder[Any] = Ladder(
            "interpolate",
            [(n, self._factory(n)) for n in spec.ladder],
            total=self.expected_frames(context.total_frames),
            deadline=context.deadline,
        )
        self.frames_in = 0
        self.frames_out = 0
        self.cuts: list[int] = []  # source index of the frame after each cut
        self.held = 0  # source frames dropped as repeats (dedupe)
        self._behind = OneBehind()  # a device rung's unit is handed on after the next one is queued

    def _factory(self, name: str) -> Callable[[], Any]:
        if name == BLEND and RUNGS[name] is BlendRung:  # (tests swap RUNGS entries)
            return functools.partial(BlendRung, self.dtype)
        if name in RUNGS:
            return RUNGS[name]
        return functools.partial(self._rife, "cpu" if name == RIFE_CPU else "cuda")

    def _rife(self, device_kind: str) -> Any:
        from batch.models.rife_rung import RifeRung

        assert self.config.model is not None
        yuv = None
        depth = DEVICE_YUV.get(self.layout.pix_fmt)
        if depth is not None and self.context.colour is not None:  # see Caps.yuv_on_device
            from batch.media.yuv_rgb import for_plan
            from batch.models.device_worker import Yuv420Frames

            yuv = Yuv420Frames(for_plan(self.context.colour, depth), *self.size)
        try:
            return RifeRung(
                self.config, device_kind, self.ratio, self.keep_on_device, out_dtype=self.dtype, yuv=yuv
            )
        except WeightsError as e:
            raise RungUnavailable(e.message) from None
        except RuntimeError as e:
            raise unavailable_if_oom(e) from None

    def expected_frames(self, frames_in: int) -> int:
        return output_count(frames_in, self.ratio)

    def _plane(self, frame: Frame) -> LumaSample | None:
        c = self.config
        if c.scene_threshold is None and not c.dedupe:
            return None
        w, h = self.size
        # a strided sample (batch.stages.scene); planes stretched as their RGB luma would measure
        return LumaSample.of(frame, w, h, self.layout.max_value, self._stretch)

    def run(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        """Output frames for the chunk (or input) the context describes."""
        return self.run_range(frames, self.context.first, self.context.stop)

    def run_range(self, frames: Iterator[Frame], first: int = 0, stop: int | None = None) -> Iterator[Frame]:
        """Output frames for source frames starting at index ``first``.

        With ``stop`` (a chunk that is not the last), only positions before
        ``stop`` are made; the frame at ``stop`` may be given as the lookahead
        the last pair needs. Without it, the stream's end is the input's end.
        """
        c = self.config
        step = 1 / self.ratio  # source frames per output frame
        anchor: Frame | None = None
        anchor_at = first
        anchor_plane: LumaSample | None = None
        j = output_count(first, self.ratio)  # the first output position at or after `first`
        pending: list[Job] = []
        for n, cur in enumerate(frames):
            i = first + n
            self.frames_in = n + 1
            plane = self._plane(cur)
            if anchor is None:
                anchor, anchor_at, anchor_plane = cur, i, plane
                continue
            held = c.dedupe and plane is not None and anchor_plane is not None
            if held and held_between(anchor_plane, plane, c.dedupe_threshold):  # type: ignore[arg-type]
                self.held += 1
                continue  # a held frame: the next distinct one is the pair's end
            cut = (
                c.scene_threshold is not None
                and plane is not None
                and anchor_plane is not None
                and cut_between(anchor_plane, plane, c.scene_threshold)
            )
            if cut:
                self.cuts.append(i)
            span = i - anchor_at
            while j * step < i and (stop is None or j * step < stop):  # positions in [anchor, i)
                pending.append((anchor, cur, Fraction(0) if cut else (j * step - anchor_at) / span))
                j += 1
            while (cut_at := _unit_end(pending, self.unit)) is not None:
                yield from self._emit(pending[:cut_at])
                del pending[:cut_at]
            anchor, anchor_at, anchor_plane = cur, i, plane
        if pending:
            yield from self._emit(pending)
        yield from self._hand_on(self._behind.flush())
        if anchor is None or stop is not None:
            return
        while j * step < first + self.frames_in:  # positions in [N-1, N) hold the last anchor
            j += 1
            self.frames_out += 1
            yield anchor if self.keep_on_device else as_numpy(anchor, self.dtype)

    def _emit(self, jobs: list[Job]) -> Iterator[Frame]:
        made = self.ladder.run(functools.partial(_compute, list(jobs)), weight=len(jobs))
        self.frames_out += len(made)
        yield from self._hand_on(self._behind.push(made))

    def _hand_on(self, frames: list[Frame]) -> Iterator[Frame]:
        yield from (frames if self.keep_on_device else (as_numpy(f, self.dtype) for f in frames))

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "requested": self.config.to_data(exclude={"stage", "ladder"}, drop_none=True),
            "ratio": str(self.ratio),
            "fps_out": str(self.fps_out),
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "scene_cuts": len(self.cuts),
            **self.ladder.report(),
        }
        if self.config.dedupe:
            out["held_frames_removed"] = self.held
        return out
