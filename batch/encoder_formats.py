"""Which output pixel formats each encoder holds (``encode.pix_fmt`` values), as plain data.

Light on purpose: the config check reads it, and so does the pixel planner
(``batch.media.pixel_plan``), which also asks this ffmpeg what its libx264
and libx265 were built with. Names are ffmpeg's planar ones; NVENC is fed
its own names for the same layouts (``p010le`` for 10-bit 4:2:0).
"""

from __future__ import annotations

from typing import Literal, get_args

PixFmtChoice = Literal[
    "source",
    "yuv420p",
    "yuv422p",
    "yuv444p",
    "yuv420p10le",
    "yuv422p10le",
    "yuv444p10le",
    "yuv420p12le",
    "yuv422p12le",
    "yuv444p12le",
    "yuva420p",
    "yuva444p10le",
    "gbrp",
    "gbrp10le",
    "gbrp12le",
    "gbrp16le",
    "gbrap",
    "gbrap10le",
    "gbrap12le",
    "gbrap16le",
]
PIX_FMT_CHOICES: tuple[str, ...] = get_args(PixFmtChoice)

_X264 = ("yuv420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le", "yuv444p10le")
_YUV_8_10_12 = (*_X264, "yuv420p12le", "yuv422p12le", "yuv444p12le")
_FFV1_YUV_MORE = (
    "yuv420p16le", "yuv422p16le", "yuv444p16le",
    "yuva420p", "yuva422p", "yuva444p", "yuva420p10le", "yuva422p10le", "yuva444p10le",
    "yuva420p16le", "yuva422p16le", "yuva444p16le",
)  # fmt: skip
_FFV1_RGB = ("gbrp", "gbrp10le", "gbrp12le", "gbrp16le", "gbrap", "gbrap10le", "gbrap12le", "gbrap16le")

# what each codec can be asked for (a planner may still step down where this ffmpeg lacks one)
ENCODER_PIX_FMTS: dict[str, tuple[str, ...]] = {
    "libx264": _X264,
    "libx265": _YUV_8_10_12,
    "h264_nvenc": ("yuv420p", "yuv444p"),
    "hevc_nvenc": ("yuv420p", "yuv444p", "yuv420p10le", "yuv444p10le"),
    "ffv1": (*_YUV_8_10_12, *_FFV1_YUV_MORE, *_FFV1_RGB),
    "prores_ks": ("yuv422p10le", "yuv444p10le", "yuva444p10le"),
    "libvpx-vp9": (*_YUV_8_10_12, "yuva420p"),
}
# ``auto`` is h264_nvenc where it works and holds the pix_fmt asked for, else libx264
ENCODER_PIX_FMTS["auto"] = _X264

# the codec a pix_fmt needs, for the error message
_SUGGEST = {
    "10": "libx265 (or libx264 for 10-bit)",
    "12": "libx265 or ffv1",
    "alpha": "ffv1 (container: mkv), prores_ks (yuva444p10le) or libvpx-vp9 (yuva420p, container: mkv)",
    "rgb": "ffv1 (container: mkv)",
}


def unsupported(codec: str, pix_fmt: str) -> str | None:
    """None when ``codec`` holds ``pix_fmt``; else the problem and the fix, for a config error."""
    if pix_fmt == "source" or pix_fmt in ENCODER_PIX_FMTS.get(codec, ()):
        return None
    holds = ", ".join(ENCODER_PIX_FMTS.get(codec, ()))
    if pix_fmt.startswith(("gbra", "yuva")):
        need = _SUGGEST["alpha"]
    elif pix_fmt.startswith("gbr"):
        need = _SUGGEST["rgb"]
    elif "12le" in pix_fmt:
        need = _SUGGEST["12"]
    else:
        need = _SUGGEST["10"] if "10le" in pix_fmt else "libx265 or ffv1"
    return (
        f"codec {codec} cannot encode pix_fmt {pix_fmt} (it holds {holds}); "
        f"set encode.codec to {need}, or choose one of those pix_fmts, or pix_fmt: source"
    )
