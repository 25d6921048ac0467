"""The ``crop`` stage: keep a window of each frame; the frames after it are smaller.

Works on every layout frames travel in (batch.media.layout): packed RGB
``(H, W, C)`` and the source's planar YUV (one flat array: the Y plane, then
U and V, at half resolution where subsampled, then A), 8 or 16 bits. The
config makes every number even, so subsampled chroma planes are cut at
exactly half the offsets and sizes. Whether the window fits is
checked here, when the size of the frames the stage receives is known (the
source's, or what an earlier stage made of it).

Planning a crop imports no numpy: on planes the encoder takes as they are, the crop runs in the
transcode's own graph (ffmpeg's ``crop``), and numpy loads only where frames pass through Python.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from batch.config import CropStage
from batch.errors import StageDoesNotFit
from batch.media.layout import YUV420, FrameLayout
from batch.stages.base import Caps, Frame, Stage, StageInput

if TYPE_CHECKING:
    import numpy as np


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


def crop_planar(
    frame: np.ndarray, width: int, height: int, spec: CropStage, pix_fmt: str = YUV420
) -> np.ndarray:
    """Crop the flat planes of a ``width`` x ``height`` planar frame (any 4:2:0/4:2:2/4:4:4 layout,
    8 or 16 bits, with or without alpha); returns the new flat planes."""
    import numpy as np

    layout = FrameLayout(pix_fmt, width, height)
    x0, y0, w, h = spec.x, spec.y, spec.width, spec.height
    parts = []
    for plane in layout.split(frame):
        sx, sy = (2 if plane.shape[1] < width else 1), (2 if plane.shape[0] < height else 1)  # subsampled
        parts.append(plane[y0 // sy : (y0 + h) // sy, x0 // sx : (x0 + w) // sx].ravel())
    return np.concatenate(parts)


class Crop(Stage[CropStage]):
    name = "crop"
    resamples = False  # a part of the picture, pixel for pixel
    caps = Caps()  # any layout, any chunking, no model, no files

    def __init__(self, spec: CropStage, context: StageInput) -> None:
        """Raises StageDoesNotFit when the window does not fit in the frames received."""
        super().__init__(spec, context)
        check_fits(spec, context.width, context.height)
        self.size_out = (spec.width, spec.height)
        self.frames = 0
        self.used = "numpy"  # no ladder: slicing the planes is the one way it runs (or ffmpeg's graph)
        packed = FrameLayout(context.pix_fmt, 2, 2).packed
        self.planar_fmt = YUV420 if packed else context.pix_fmt  # flat frames under an RGB default: yuv420p

    def crop(self, frame: Frame) -> np.ndarray:
        import numpy as np

        from batch.stages.frames import as_numpy

        arr = as_numpy(frame, self.dtype)
        c = self.config
        if arr.ndim == 3:  # packed RGB (H, W, C)
            return np.ascontiguousarray(arr[c.y : c.y + c.height, c.x : c.x + c.width])
        return crop_planar(arr, self.context.width, self.context.height, c, self.planar_fmt)

    def run(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        for frame in frames:
            self.frames += 1
            yield self.crop(frame)

    def graph_filter(self) -> str | None:
        """ffmpeg's crop: even offsets and sizes (the config's rule), so subsampled chroma is cut at
        exactly half of them, as :func:`crop_planar` cuts it: the same samples."""
        c = self.config
        return f"crop=w={c.width}:h={c.height}:x={c.x}:y={c.y}:exact=1"

    def ran_in_graph(self, frames: int) -> None:
        self.frames = frames
        self.used = "ffmpeg crop (in the transcode's graph)"

    def report(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "requested": self.config.to_data(exclude={"stage"}),
            "size_in": [self.context.width, self.context.height],
            "size_out": list(self.size_out),
            "frames_in": self.frames,
            "frames_out": self.frames,
            "used": self.used,
        }
