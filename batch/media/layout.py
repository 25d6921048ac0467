"""How frames travel between ffmpeg and the stages: packed RGB, or the source's own planar YUV.

Converting YUV->RGB->YUV costs CPU and risks colour shifts, so frames stay in
the source's planar YUV whenever every stage can work on it (no stages,
blend/duplicate interpolation, crop, analyze, a Lanczos resize). Stages that
look at pixels as colours (models) ask for RGB. Which format an input uses is decided
in :mod:`batch.media.pixel_plan`.

Packed RGB frames are ``(H, W, C)`` arrays: ``rgb24`` / ``rgba`` (uint8) or
``rgb48le`` / ``rgba64le`` (uint16, full 16-bit scale whatever the source's
depth). Planar YUV frames are one flat array holding the planes one after the
other (Y, U, V, then A): uint8 for 8-bit, uint16 holding the source's code
values (0..1023 for 10-bit) above 8 bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from batch.media.pixfmt import pix_facts

if TYPE_CHECKING:  # numpy is imported where frames are made: the direct transcode needs none
    import numpy as np

RGB = "rgb24"
RGBA = "rgba"
RGB48 = "rgb48le"
RGBA64 = "rgba64le"
YUV420 = "yuv420p"
YUV420P10 = "yuv420p10le"
DEVICE_YUV = {YUV420: 8, YUV420P10: 10}  # 4:2:0 planes a model stage converts on its device, by depth
PACKED = {RGB: (3, 8), RGBA: (4, 8), RGB48: (3, 16), RGBA64: (4, 16)}  # channels, bits


def packed_rgb(high_bit: bool, alpha: bool) -> str:
    """The packed RGB format frames travel in: 8 or 16 bits, with or without alpha."""
    if high_bit:
        return RGBA64 if alpha else RGB48
    return RGBA if alpha else RGB


@dataclass(frozen=True)
class FrameLayout:
    pix_fmt: str  # one of PACKED, or a planar yuv[a]{420,422,444}p[NNle]
    width: int
    height: int

    @property
    def packed(self) -> bool:
        return self.pix_fmt in PACKED

    @property
    def bits(self) -> int:
        return PACKED[self.pix_fmt][1] if self.packed else pix_facts(self.pix_fmt).depth

    @property
    def dtype(self) -> type[np.unsignedinteger]:
        import numpy as np

        return np.uint16 if self.bits > 8 else np.uint8

    @property
    def max_value(self) -> int:
        """The code value of full white (65535 for rgb48le, 1023 for 10-bit planes)."""
        return (1 << self.bits) - 1

    @property
    def alpha(self) -> bool:
        return PACKED[self.pix_fmt][0] == 4 if self.packed else pix_facts(self.pix_fmt).alpha

    @property
    def planes(self) -> list[tuple[int, int]]:
        """(height, width) of each plane of a planar format: Y, U, V (and A)."""
        facts = pix_facts(self.pix_fmt)
        sx = 2 if facts.chroma in ("420", "422") else 1
        sy = 2 if facts.chroma == "420" else 1
        luma = (self.height, self.width)
        chroma = (-(-self.height // sy), -(-self.width // sx))
        return [luma, chroma, chroma, *([luma] if facts.alpha else [])]

    @property
    def elements(self) -> int:
        if self.packed:
            return self.width * self.height * PACKED[self.pix_fmt][0]
        return sum(h * w for h, w in self.planes)

    @property
    def frame_bytes(self) -> int:
        return self.elements * (2 if self.bits > 8 else 1)

    @property
    def shape(self) -> tuple[int, ...]:
        """Packed RGB frames are (H, W, C); planar frames are the flat planes one after another."""
        if self.packed:
            return (self.height, self.width, PACKED[self.pix_fmt][0])
        return (self.elements,)

    def split(self, frame: np.ndarray) -> list[np.ndarray]:
        """The planes of a flat planar frame, each (h, w), as views."""
        out, at = [], 0
        for h, w in self.planes:
            out.append(frame[at : at + h * w].reshape(h, w))
            at += h * w
        return out

    def resized(self, width: int, height: int) -> FrameLayout:
        return FrameLayout(self.pix_fmt, width, height)


def to_8bit(values: np.ndarray, max_value: int) -> np.ndarray:
    """Code values scaled to 0..255 (uint8), rounded; uint8 input with max 255 is returned as it is."""
    import numpy as np

    if values.dtype == np.uint8 and max_value == 255:
        return values
    scaled = values.astype(np.float32) * (255.0 / max_value) + 0.5
    out: np.ndarray = np.clip(scaled, 0, 255).astype(np.uint8)
    return out
