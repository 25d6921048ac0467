"""How frames travel between ffmpeg and the stages: RGB, or the source's own YUV.

Converting YUV->RGB->YUV costs CPU and risks colour shifts, so frames stay in
the source's planar yuv420p whenever every stage can work on it (no stages,
or blend/duplicate interpolation). Stages that look at pixels as colours
(resizing, models) ask for RGB.
"""

from __future__ import annotations

from dataclasses import dataclass

RGB = "rgb24"
YUV420 = "yuv420p"


@dataclass(frozen=True)
class FrameLayout:
    pix_fmt: str  # RGB or YUV420
    width: int
    height: int

    @property
    def frame_bytes(self) -> int:
        if self.pix_fmt == RGB:
            return self.width * self.height * 3
        chroma = ((self.width + 1) // 2) * ((self.height + 1) // 2)
        return self.width * self.height + 2 * chroma

    @property
    def shape(self) -> tuple[int, ...]:
        """RGB frames are (H, W, 3); YUV frames are the flat planes Y, U, V."""
        if self.pix_fmt == RGB:
            return (self.height, self.width, 3)
        return (self.frame_bytes,)

    def resized(self, width: int, height: int) -> FrameLayout:
        return FrameLayout(self.pix_fmt, width, height)


def choose_pix_fmt(
    source_pix_fmt: str, width: int, height: int, stages_need_rgb: bool, encoder_pix_fmt: str
) -> str:
    """YUV420 passthrough when nothing needs RGB and the source and encoder are 8-bit 4:2:0."""
    passthrough = (
        not stages_need_rgb
        and source_pix_fmt == YUV420
        and encoder_pix_fmt == YUV420
        and width % 2 == 0
        and height % 2 == 0
    )
    return YUV420 if passthrough else RGB
