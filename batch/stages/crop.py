"""The ``crop`` stage: keep a window of each frame; the frames after it are smaller.

Works on both layouts frames travel in (batch.media.layout): RGB ``(H, W, 3)``
and the source's planar yuv420p (one flat array: the Y plane, then U and V at
half resolution). The config makes every number even, so the chroma planes
are cut at exactly half the offsets and sizes. Whether the window fits is
checked here, when the size of the frames the stage receives is known (the
source's, or what an earlier stage made of it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from batch.config import CropStage
from batch.errors import StageDoesNotFit
from batch.stages.base import Caps, Frame, Stage, StageInput
from batch.stages.frames import as_numpy


def check_fits(spec: CropStage, width: int, height: int) -> None:
    """Raise StageDoesNotFit, naming the problem and the fix, when the window leaves the frame."""
    problems = []
    if spec.x + spec.width > width:
        problems.append(f"x + width = {spec.x} + {spec.width} = {spec.x + spec.width} > frame width {width}")
    if spec.y + spec.height > height:
        problems.append(
            f"y + height = {spec.y} + {spec.height} = {spec.y + spec.height} > frame height {height}"
        )
    if problems:
        raise StageDoesNotFit(
            f"stage crop: the {spec.width}x{spec.height} window at ({spec.x}, {spec.y}) "
            f"does not fit in the {width}x{height} frames it receives",
            problems=problems,
            hint=(
                f"keep x + width <= {width} and y + height <= {height}: lower width/height or x/y "
                "(the frame size is the source's, or what the stages before crop make of it)"
            ),
        )


def crop_planar(frame: np.ndarray, width: int, height: int, spec: CropStage) -> np.ndarray:
    """Crop flat yuv420p planes of a ``width`` x ``height`` frame; returns the new flat planes."""
    cw, ch = (width + 1) // 2, (height + 1) // 2
    y_size, c_size = width * height, cw * ch
    luma = frame[:y_size].reshape(height, width)
    u = frame[y_size : y_size + c_size].reshape(ch, cw)
    v = frame[y_size + c_size : y_size + 2 * c_size].reshape(ch, cw)
    x0, y0, w, h = spec.x, spec.y, spec.width, spec.height
    cx, cy, cw_out, ch_out = x0 // 2, y0 // 2, w // 2, h // 2
    return np.concatenate(
        [
            luma[y0 : y0 + h, x0 : x0 + w].ravel(),
            u[cy : cy + ch_out, cx : cx + cw_out].ravel(),
            v[cy : cy + ch_out, cx : cx + cw_out].ravel(),
        ]
    )


class Crop(Stage[CropStage]):
    name = "crop"
    caps = Caps()  # any layout, any chunking, no model, no files

    def __init__(self, spec: CropStage, context: StageInput) -> None:
        """Raises StageDoesNotFit when the window does not fit in the frames received."""
        super().__init__(spec, context)
        check_fits(spec, context.width, context.height)
        self.size_out = (spec.width, spec.height)
        self.frames = 0

    def crop(self, frame: Frame) -> np.ndarray:
        arr = as_numpy(frame)
        c = self.config
        if arr.ndim == 3:  # RGB (H, W, 3)
            return np.ascontiguousarray(arr[c.y : c.y + c.height, c.x : c.x + c.width])
        return crop_planar(arr, self.context.width, self.context.height, c)

    def run(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        for frame in frames:
            self.frames += 1
            yield self.crop(frame)

    def report(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "requested": self.config.model_dump(mode="json", exclude={"stage"}),
            "size_in": [self.context.width, self.context.height],
            "size_out": list(self.size_out),
            "frames_in": self.frames,
            "frames_out": self.frames,
            "used": "numpy",  # no ladder: slicing the planes is the one way it runs
        }
