"""What an ffmpeg pixel format name says: colour family, chroma subsampling, bit depth, alpha.

Read from the name alone (``yuv422p10le``, ``gbrap12le``, ``rgba64le``,
``p010le``, ``nv12`` ...), so no ffmpeg call is needed. A name this module
does not know raises ValueError; :func:`pix_facts_or_guess` is the lenient
form for a probed source (8-bit, 4:2:0, no alpha, which is what ffmpeg
converts it to anyway).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Family = Literal["yuv", "rgb", "gray"]
CHROMAS = ("420", "422", "444", "440", "411", "410")


@dataclass(frozen=True)
class PixFacts:
    name: str
    family: Family
    chroma: str  # "420", "422", "444" ... ; RGB and gray are "444" (every pixel has its own colour)
    depth: int  # bits per component
    alpha: bool
    full_range: bool = False  # the yuvj* formats: full range by definition

    @property
    def high_bit(self) -> bool:
        return self.depth > 8


_YUV = re.compile(r"(yuv|yuva|yuvj)(420|422|444|440|411|410)p(\d+)?(le|be)?")
_GBR = re.compile(r"gbr(a)?p(\d+)?(le|be)?")
_GRAY = re.compile(r"(gray|ya)(\d+)?(le|be)?")
_SEMI = {  # semi-planar and packed YUV: (chroma, depth)
    "nv12": ("420", 8),
    "nv21": ("420", 8),
    "nv16": ("422", 8),
    "nv24": ("444", 8),
    "nv42": ("444", 8),
    "nv20le": ("422", 10),
    "p010le": ("420", 10),
    "p012le": ("420", 12),
    "p016le": ("420", 16),
    "p210le": ("422", 10),
    "p216le": ("422", 16),
    "p410le": ("444", 10),
    "p416le": ("444", 16),
    "yuyv422": ("422", 8),
    "uyvy422": ("422", 8),
    "yvyu422": ("422", 8),
    "y210le": ("422", 10),
    "y212le": ("422", 12),
    "v210": ("422", 10),
    "xv30le": ("444", 10),
    "xv36le": ("444", 12),
    "ayuv64le": ("444", 16),
    "vuya": ("444", 8),
    "vuyx": ("444", 8),
}
_RGB8 = {"rgb24", "bgr24", "rgb0", "bgr0", "0rgb", "0bgr", "rgb565le", "rgb555le", "bgr565le", "bgr555le"}
_RGBA8 = {"rgba", "bgra", "argb", "abgr", "pal8"}  # pal8 (PNG, GIF palettes) may hold transparency
_RGB_HIGH = {
    "rgb48le": (16, False),
    "rgb48be": (16, False),
    "bgr48le": (16, False),
    "bgr48be": (16, False),
    "rgba64le": (16, True),
    "rgba64be": (16, True),
    "bgra64le": (16, True),
    "bgra64be": (16, True),
    "x2rgb10le": (10, False),
    "x2bgr10le": (10, False),
}


def pix_facts(name: str) -> PixFacts:
    """The facts of a pixel format name; ValueError naming it when it is not one this module knows."""
    if m := _YUV.fullmatch(name):
        kind, chroma, bits, _ = m.groups()
        return PixFacts(name, "yuv", chroma, int(bits or 8), kind == "yuva", kind == "yuvj")
    if m := _GBR.fullmatch(name):
        alpha, bits, _ = m.groups()
        return PixFacts(name, "rgb", "444", int(bits or 8), alpha is not None)
    if name in _SEMI:
        chroma, depth = _SEMI[name]
        return PixFacts(name, "yuv", chroma, depth, name in ("ayuv64le", "vuya"))
    if name in _RGB8:
        return PixFacts(name, "rgb", "444", 8, False)
    if name in _RGBA8:
        return PixFacts(name, "rgb", "444", 8, True)
    if name in _RGB_HIGH:
        depth, alpha = _RGB_HIGH[name]
        return PixFacts(name, "rgb", "444", depth, alpha)
    if m := _GRAY.fullmatch(name):
        kind, bits, _ = m.groups()
        return PixFacts(name, "gray", "444", int(bits or 8), kind == "ya")
    if name in ("monob", "monow"):
        return PixFacts(name, "gray", "444", 8, False)
    raise ValueError(f"unknown pixel format {name!r}")


def pix_facts_or_guess(name: str) -> PixFacts:
    """``pix_facts``, or 8-bit 4:2:0 YUV for a name it does not know (ffmpeg converts such sources)."""
    try:
        return pix_facts(name)
    except ValueError:
        return PixFacts(name or "unknown", "yuv", "420", 8, False)


# luma samples per chroma sample across and down (ffmpeg's 1 << log2_chroma_w / h), by chroma layout
CHROMA_BLOCK = {"420": (2, 2), "422": (2, 1), "440": (1, 2), "411": (4, 1), "410": (4, 4)}

# where a subsampled chroma sample sits within its block of luma samples, in luma samples from the
# block's first (0: with it, "co-sited"; 0.5: between two), (across, down), by ffmpeg's names of the
# sitings; unset is MPEG-2's "left", what every reader takes when none is written
CHROMA_SITING = {
    "left": (0.0, 0.5),
    "center": (0.5, 0.5),
    "topleft": (0.0, 0.0),
    "top": (0.5, 0.0),
    "bottomleft": (0.0, 1.0),
    "bottom": (0.5, 1.0),
}


def partial_chroma(facts: PixFacts, width: int, height: int) -> bool:
    """A subsampled YUV frame whose size is not whole chroma blocks (97x63 4:2:0, 98-wide 4:1:1): a
    size ffmpeg's zscale refuses to convert ("image dimensions must be divisible by subsampling
    factor")."""
    bw, bh = CHROMA_BLOCK.get(facts.chroma, (1, 1))
    return facts.family == "yuv" and (width % bw != 0 or height % bh != 0)


def planar_yuv(chroma: str, depth: int, alpha: bool = False) -> str:
    """The planar YUV name ffmpeg gives these facts: ``yuv420p``, ``yuv422p10le``, ``yuva444p12le``."""
    bits = "" if depth <= 8 else f"{depth}le"
    return f"yuv{'a' if alpha else ''}{chroma}p{bits}"


def describe(facts: PixFacts) -> str:
    """Words for notes: ``10-bit 4:2:2 YUV with alpha``."""
    kind = {"yuv": f"{facts.chroma[0]}:{facts.chroma[1]}:{facts.chroma[2]} YUV", "rgb": "RGB", "gray": "gray"}
    return f"{facts.depth}-bit {kind[facts.family]}" + (" with alpha" if facts.alpha else "")
