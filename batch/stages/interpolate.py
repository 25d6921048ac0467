"""Frame-rate conversion: output frame j sits at source position j / ratio.

Streaming: each source pair (a, b) yields the output frames whose position
falls in [a, b). After the last source frame, that frame is held for the
positions in [N-1, N). The output thus holds every frame whose time lies
within the input's duration: ceil(N * ratio) frames, never shorter than the
input and longer by less than one output frame.
Rungs here: ``blend`` (linear mix of the two neighbours) and ``duplicate``
(hold the earlier frame). Model rungs (RIFE) slot in above them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from typing import Protocol

import numpy as np

from batch.config import InterpolateStage
from batch.stages.ladder import Ladder

Frame = np.ndarray


class InterpolateRung(Protocol):
    def between(self, a: Frame, b: Frame, ts: Sequence[Fraction]) -> list[Frame]:
        """Frames at fractions ``ts`` (0 <= t < 1) of the way from ``a`` to ``b``."""
        ...


class BlendRung:
    def between(self, a: Frame, b: Frame, ts: Sequence[Fraction]) -> list[Frame]:
        out: list[Frame] = []
        for t in ts:
            if t == 0:
                out.append(a)
            elif t == Fraction(1, 2):
                # exact rounded mean in integers, the common 2x case
                out.append(((a.astype(np.uint16) + b + 1) >> 1).astype(np.uint8))
            else:
                w = np.float32(t)
                mix = a.astype(np.float32) * (1 - w) + b.astype(np.float32) * w
                out.append(np.clip(mix + 0.5, 0, 255).astype(np.uint8))
        return out


class DuplicateRung:
    def between(self, a: Frame, b: Frame, ts: Sequence[Fraction]) -> list[Frame]:
        return [a for _ in ts]


RUNGS: dict[str, Callable[[], InterpolateRung]] = {"blend": BlendRung, "duplicate": DuplicateRung}


UNIT_FRAMES = 8  # output frames per unit of ladder work: bounds memory at high factors


def output_count(frames_in: int, ratio: Fraction) -> int:
    """ceil(frames_in * ratio): the output positions j / ratio that lie in [0, frames_in)."""
    return math.ceil(frames_in * ratio)


def ratio_for(stage: InterpolateStage, fps_in: Fraction) -> Fraction:
    return stage.factor if stage.factor is not None else Fraction(stage.fps) / fps_in  # type: ignore[arg-type]


def _between(a: Frame, b: Frame, ts: list[Fraction], rung: InterpolateRung) -> list[Frame]:
    return rung.between(a, b, ts)


class Interpolate:
    name = "interpolate"
    needs_rgb = False  # blend and duplicate work on any planar layout

    def __init__(self, stage: InterpolateStage, fps_in: Fraction) -> None:
        self.config = stage
        self.ratio = ratio_for(stage, fps_in)
        self.fps_out = fps_in * self.ratio
        self.ladder: Ladder[InterpolateRung] = Ladder(
            "interpolate", [(name, RUNGS[name]) for name in stage.ladder]
        )
        self.frames_in = 0
        self.frames_out = 0

    def expected_frames(self, frames_in: int) -> int:
        return output_count(frames_in, self.ratio)

    def run(self, frames: Iterator[Frame], first: int = 0, stop: int | None = None) -> Iterator[Frame]:
        """Output frames for source frames starting at index ``first``.

        With ``stop`` (a chunk that is not the last), only positions before
        ``stop`` are made; the frame at ``stop`` may be given as the lookahead
        the last pair needs. Without it, the stream's end is the input's end.
        """
        step = 1 / self.ratio  # source frames per output frame
        prev: Frame | None = None
        j = output_count(first, self.ratio)  # the first output position at or after `first`
        for n, cur in enumerate(frames):
            i = first + n
            self.frames_in = n + 1
            if prev is not None:
                ts: list[Fraction] = []
                while j * step < i and (stop is None or j * step < stop):  # positions in [i-1, i)
                    ts.append(j * step - (i - 1))
                    j += 1
                for start in range(0, len(ts), UNIT_FRAMES):
                    work = functools.partial(_between, prev, cur, ts[start : start + UNIT_FRAMES])
                    for frame in self.ladder.run(work):
                        self.frames_out += 1
                        yield frame
            prev = cur
        if prev is None or stop is not None:
            return
        while j * step < first + self.frames_in:  # positions in [N-1, N) hold the last frame
            j += 1
            self.frames_out += 1
            yield prev

    def report(self) -> dict[str, object]:
        return {
            "name": self.name,
            "requested": self.config.model_dump(mode="json", exclude={"stage", "ladder"}, exclude_none=True),
            "ratio": str(self.ratio),
            "fps_out": str(self.fps_out),
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            **self.ladder.report(),
        }
