"""Resizing by a scale factor or to a size. Rung here: ``lanczos`` (Pillow).

Model rungs (spandrel super-resolution) slot in above it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np
from PIL import Image

from batch.config import UpscaleStage
from batch.stages.ladder import Ladder

Frame = np.ndarray


class UpscaleRung(Protocol):
    def resize(self, frame: Frame, width: int, height: int) -> Frame: ...


class LanczosRung:
    def resize(self, frame: Frame, width: int, height: int) -> Frame:
        image = Image.fromarray(frame, mode="RGB")
        return np.asarray(image.resize((width, height), Image.Resampling.LANCZOS))


RUNGS: dict[str, Callable[[], UpscaleRung]] = {"lanczos": LanczosRung}


def target_size(stage: UpscaleStage, width: int, height: int) -> tuple[int, int]:
    """The output size; one missing side keeps the aspect ratio."""
    if stage.scale is not None:
        return max(1, round(width * stage.scale)), max(1, round(height * stage.scale))
    if stage.width and stage.height:
        return stage.width, stage.height
    if stage.width:
        return stage.width, max(1, round(height * stage.width / width))
    assert stage.height
    return max(1, round(width * stage.height / height)), stage.height


class Upscale:
    name = "upscale"
    needs_rgb = True

    def __init__(self, stage: UpscaleStage, width: int, height: int) -> None:
        self.config = stage
        self.size_in = (width, height)
        self.size_out = target_size(stage, width, height)
        self.ladder: Ladder[UpscaleRung] = Ladder("upscale", [(n, RUNGS[n]) for n in stage.ladder])
        self.frames = 0

    def expected_frames(self, frames_in: int) -> int:
        return frames_in

    def run(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        w, h = self.size_out
        for frame in frames:
            out = self.ladder.run(lambda rung, f=frame: rung.resize(f, w, h))
            self.frames += 1
            yield out

    def report(self) -> dict[str, object]:
        return {
            "name": self.name,
            "requested": self.config.model_dump(mode="json", exclude={"stage", "ladder"}, exclude_none=True),
            "size_in": list(self.size_in),
            "size_out": list(self.size_out),
            "frames_in": self.frames,
            "frames_out": self.frames,
            **self.ladder.report(),
        }
