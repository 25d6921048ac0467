"""4:2:0 YUV (8 or 10 bits) <-> packed RGB (rgb24 or rgb48le) in the stage process, as ffmpeg's
``zscale`` does it.

The rule the reader and writer filters follow (:func:`batch.media.colour.rgb_conversion`), done
here instead of in the ffmpeg processes, so yuv420p crosses the pipes (half the bytes of rgb24):
the source's matrix and range, 4:2:0 chroma sited as MPEG-2/H.264 put it ("left": co-sited with
the left luma sample horizontally, centred between two rows vertically; what zimg assumes for an
unspecified ``chroma_location``), chroma resampled with zimg's bicubic as ffmpeg 5.1 asks for it
(Catmull-Rom, B = 0, C = 1/2; widened by 2 when downsampling), edges mirrored (``cba|abc``) as
zimg does, rounding to nearest, clipped. Measured against ``zscale`` (tests/unit/test_yuv_rgb.py):
the chroma it upsamples is the same to the code value.

This module holds the numbers (:class:`YuvRgb`: the affine maps in code values and the chroma
kernels) and the CPU back end (OpenCV's SIMD filters); :mod:`batch.models.yuv_rgb_torch` is the
torch back end on the same numbers, for a device stage that uploads yuv420p.

Frames are what :class:`batch.media.layout.FrameLayout` says: a flat uint8 yuv420p frame (Y, U, V
one after another, chroma ``ceil(h/2) x ceil(w/2)``) and an ``(H, W, 3)`` uint8 rgb24 frame; at 10
bits a flat uint16 yuv420p10le frame and a uint16 rgb48le frame (what the reader gives for such a
source when RGB crosses the pipes).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from batch.media.colour import KR_KB, ColourPlan

if TYPE_CHECKING:
    import numpy as np


def bicubic(x: float, b: float = 0.0, c: float = 0.5) -> float:
    """The BC-spline of zimg's bicubic filter with the parameters ffmpeg's ``zscale`` gives it."""
    x = abs(x)
    if x < 1:
        return ((12 - 9 * b - 6 * c) * x**3 + (-18 + 12 * b + 6 * c) * x**2 + (6 - 2 * b)) / 6
    if x < 2:
        return ((-b - 6 * c) * x**3 + (6 * b + 30 * c) * x**2 + (-12 * b - 48 * c) * x + (8 * b + 24 * c)) / 6
    return 0.0


Kernel = tuple[tuple[float, ...], int]  # taps over consecutive samples, the index of the tap at offset 0


def _taps(offsets: range, position: float, scale: float = 1.0) -> Kernel:
    """Taps at sample ``offsets`` for an output at ``position`` (in samples; ``scale`` widens the filter)."""
    taps = tuple(bicubic((o - position) / scale) / scale for o in offsets)
    return taps, offsets.index(0)


# upsampling chroma to the luma grid (chroma sample units): luma column 2k+j sits at chroma k + j/2
# ("left"), luma row 2k+j at chroma k - 1/4 + j/2 (centred)
UP_X: tuple[Kernel, Kernel] = (_taps(range(-1, 2), 0.0), _taps(range(-1, 3), 0.5))
UP_Y: tuple[Kernel, Kernel] = (_taps(range(-2, 2), -0.25), _taps(range(-1, 3), 0.25))
# downsampling (luma sample units): chroma k sits on luma column 2k and between luma rows 2k and 2k+1
DOWN_X: Kernel = _taps(range(-3, 4), 0.0, 2.0)
DOWN_Y: Kernel = _taps(range(-3, 5), 0.5, 2.0)
_IDENTITY: Kernel = ((0.0, 1.0, 0.0), 1)


@dataclass(frozen=True)
class YuvRgb:
    """The affine maps between Y, U, V and R, G, B code values for one matrix, range and depth.

    ``to_rgb`` / ``to_yuv``: 3x4 row-major (a 3x3 matrix and an offset column), exact inverses.
    ``depth``: bits of the YUV codes (8: yuv420p, 10: yuv420p10le); RGB codes are rgb24's (0..255)
    at 8 bits and rgb48's (0..65535) above, as the reader's RGB would be for that source.
    """

    matrix: str
    range: str
    to_rgb: tuple[tuple[float, float, float, float], ...]
    to_yuv: tuple[tuple[float, float, float, float], ...]
    depth: int = 8

    @property
    def rgb_max(self) -> int:
        return 255 if self.depth == 8 else 65535

    @property
    def yuv_max(self) -> int:
        return (1 << self.depth) - 1

    @property
    def yuv_pix_fmt(self) -> str:
        return "yuv420p" if self.depth == 8 else f"yuv420p{self.depth}le"

    @property
    def rgb_pix_fmt(self) -> str:
        return "rgb24" if self.depth == 8 else "rgb48le"

    @property
    def sample_dtype(self) -> np.dtype[Any]:
        """The numpy type of a YUV or RGB sample at this depth: uint8, or uint16 above 8 bits."""
        import numpy as np

        return np.dtype(np.uint8 if self.depth == 8 else np.uint16)


DEPTHS = (8, 10)  # the YUV depths converted in this process or on a device


@functools.cache
def coefficients(matrix: str, range_: str, depth: int = 8) -> YuvRgb:
    """The maps for a swscale matrix name (unknown: bt709), ``tv``/``pc`` range and YUV ``depth``.

    Codes scale as zimg scales them: limited range is 8-bit's 16-235 / 16-240 shifted left by
    ``depth - 8``; full range spans 0 .. 2^depth - 1 with chroma centred on 2^(depth - 1).
    """
    import numpy as np

    if depth not in DEPTHS:
        raise ValueError(f"YUV of {depth} bits is not converted here (only {', '.join(map(str, DEPTHS))})")
    kr, kb = KR_KB.get(matrix, KR_KB["bt709"])
    kg = 1 - kr - kb
    # normalised R'G'B' in [0, 1] -> Y' in [0, 1], Pb, Pr in [-1/2, 1/2]
    ypbpr = np.array(
        [
            [kr, kg, kb],
            [-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5],
            [0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))],
        ]
    )
    shift = float(1 << (depth - 8))
    top = float((1 << depth) - 1)
    ys, cs, y0 = (top, top, 0.0) if range_ == "pc" else (219.0 * shift, 224.0 * shift, 16.0 * shift)
    rgb_max = 255.0 if depth == 8 else 65535.0
    fwd = np.eye(4)
    fwd[:3, :3] = np.diag([ys, cs, cs]) @ ypbpr / rgb_max  # from RGB code values
    fwd[:3, 3] = [y0, 128.0 * shift, 128.0 * shift]
    inv = np.linalg.inv(fwd)
    return YuvRgb(
        matrix=matrix,
        range=range_,
        to_rgb=tuple(tuple(float(v) for v in row) for row in inv[:3]),  # type: ignore[misc]
        to_yuv=tuple(tuple(float(v) for v in row) for row in fwd[:3]),  # type: ignore[misc]
        depth=depth,
    )


def for_plan(plan: ColourPlan, depth: int = 8) -> YuvRgb:
    return coefficients(plan.matrix, plan.range, depth)


def chroma_size(width: int, height: int) -> tuple[int, int]:
    """(height, width) of a 4:2:0 chroma plane: odd sizes round up."""
    return -(-height // 2), -(-width // 2)


def yuv420p_bytes(width: int, height: int) -> int:
    ch, cw = chroma_size(width, height)
    return width * height + 2 * ch * cw


# ---- the CPU back end: OpenCV filters (SIMD, float32), GIL released; scratch planes kept between frames
# (a fresh float plane a step costs as much in page faults as the arithmetic)


def _filter(plane: np.ndarray, kernel: Kernel, axis: int, dst: np.ndarray | None = None) -> np.ndarray:
    import cv2
    import numpy as np

    taps, anchor = kernel
    k = np.array(taps, np.float32).reshape((1, -1) if axis == 1 else (-1, 1))
    at = (anchor, 0) if axis == 1 else (0, anchor)
    out: np.ndarray = cv2.filter2D(plane, cv2.CV_32F, k, dst=dst, anchor=at, borderType=cv2.BORDER_REFLECT)
    return out


class CpuYuvRgb:
    """yuv420p <-> rgb24 (or, for a 10-bit :class:`YuvRgb`, yuv420p10le <-> rgb48le) for frames of one
    size, on the CPU.

    Keeps its scratch planes between frames: one instance per thread. The frames it returns are new.
    """

    def __init__(self, width: int, height: int, conv: YuvRgb) -> None:
        import numpy as np

        self.width, self.height, self.conv = width, height, conv
        ch, cw = chroma_size(width, height)
        self.chroma = (ch, cw)
        self.frame_bytes = width * height + 2 * ch * cw  # samples (bytes at 8 bits)
        self.dtype = conv.sample_dtype  # of YUV and RGB samples alike
        f32 = np.float32
        self._y = np.empty((height, width), f32)
        self._c = np.empty((ch, cw), f32)
        self._rows = np.empty((ch, 2, cw), f32)  # chroma row k's two luma rows, then the next
        self._odd = np.empty((2 * ch, cw), f32)
        self._up = [np.empty((2 * ch, 2 * cw), f32) for _ in range(2)]
        self._partial = np.empty((height, width), f32)
        self._rgb = [np.empty((height, width), f32) for _ in range(3)]
        self._full = np.empty((height, width), f32)
        self._wide = np.empty((height, width), f32)
        self._half = np.empty((height, cw), f32)
        self._tall = np.empty((height, cw), f32)

    def _upsample(self, plane: np.ndarray, k: int) -> np.ndarray:
        import cv2
        import numpy as np

        ch, cw = self.chroma
        np.copyto(self._c, plane)
        rows = self._rows
        rows[:, 0] = _filter(self._c, UP_Y[0], 0)
        rows[:, 1] = _filter(self._c, UP_Y[1], 0)
        tall = rows.reshape(2 * ch, cw)
        even = tall if UP_X[0] == _IDENTITY else _filter(tall, UP_X[0], 1)  # phase 0: Catmull-Rom copies
        _filter(tall, UP_X[1], 1, self._odd)
        full = self._up[k]
        cv2.merge([even, self._odd], dst=full.reshape(2 * ch, cw, 2))
        return full[: self.height, : self.width]

    def _terms(
        self,
        a: np.ndarray,
        b: np.ndarray,
        c: np.ndarray,
        row: tuple[float, ...],
        dst: np.ndarray,
        top: int = 255,
    ) -> None:
        """dst = row[0] a + row[1] b + row[2] c + row[3] (into integers: rounded to nearest, clipped
        to ``top``)."""
        import cv2
        import numpy as np

        cv2.addWeighted(b, row[1], c, row[2], row[3], dst=self._partial, dtype=cv2.CV_32F)
        if dst.dtype == np.uint16:  # 10-bit YUV or rgb48: OpenCV saturates at 65535, not at `top`
            cv2.addWeighted(a, row[0], self._partial, 1.0, 0.0, dst=self._partial, dtype=cv2.CV_32F)
            np.copyto(dst, np.clip(np.rint(self._partial), 0, top), casting="unsafe")
            return
        cv2.addWeighted(
            a,
            row[0],
            self._partial,
            1.0,
            0.0,
            dst=dst,
            dtype=cv2.CV_8U if dst.dtype.itemsize == 1 else cv2.CV_32F,
        )

    def to_rgb(self, frame: np.ndarray) -> np.ndarray:
        """A flat yuv420p frame -> (height, width, 3) rgb24 (10 bits: yuv420p10le -> rgb48le)."""
        import cv2
        import numpy as np

        w, h = self.width, self.height
        ch, cw = self.chroma
        n = w * h
        if frame.dtype != self.dtype or frame.size != self.frame_bytes:
            raise ValueError(
                f"a {w}x{h} {self.conv.yuv_pix_fmt} frame is {self.frame_bytes} {self.dtype}, "
                f"not {frame.size} {frame.dtype}"
            )
        flat = frame.reshape(-1)
        np.copyto(self._y, flat[:n].reshape(h, w))
        u = self._upsample(flat[n : n + ch * cw].reshape(ch, cw), 0)
        v = self._upsample(flat[n + ch * cw :].reshape(ch, cw), 1)
        out = np.empty((h, w, 3), self.dtype)
        planes = [np.empty((h, w), self.dtype) for _ in range(3)]
        for row, plane in zip(self.conv.to_rgb, planes, strict=True):
            self._terms(self._y, u, v, row, plane, self.conv.rgb_max)
        cv2.merge(planes, dst=out)
        return out

    def to_yuv(self, rgb: np.ndarray) -> np.ndarray:
        """An (height, width, 3) rgb24 frame -> a flat yuv420p frame (10 bits: rgb48le -> yuv420p10le)."""
        import cv2
        import numpy as np

        w, h = self.width, self.height
        if rgb.shape != (h, w, 3) or rgb.dtype != self.dtype:
            raise ValueError(
                f"an {self.conv.rgb_pix_fmt} frame here is ({h}, {w}, 3) {self.dtype}, "
                f"not {rgb.shape} {rgb.dtype}"
            )
        ch, cw = self.chroma
        n = w * h
        for plane, channel in zip(self._rgb, cv2.split(rgb), strict=True):
            np.copyto(plane, channel)
        r, g, b = self._rgb
        top = self.conv.yuv_max
        out = np.empty(self.frame_bytes, self.dtype)
        self._terms(r, g, b, self.conv.to_yuv[0], out[:n].reshape(h, w), top)
        for k, row in enumerate(self.conv.to_yuv[1:]):
            self._terms(r, g, b, row, self._full)
            _filter(self._full, DOWN_X, 1, self._wide)
            np.copyto(self._half, self._wide[:, 0::2])
            _filter(self._half, DOWN_Y, 0, self._tall)
            chroma = out[n + k * ch * cw : n + (k + 1) * ch * cw].reshape(ch, cw)
            # numpy, not cv2.add: OpenCV takes a 1x1 array for a scalar (the chroma of a 2x2 frame)
            np.copyto(chroma, np.clip(np.rint(self._tall[0::2]), 0, top), casting="unsafe")
        return out


def to_rgb24(frame: np.ndarray, width: int, height: int, conv: YuvRgb) -> np.ndarray:
    """One flat yuv420p frame -> (height, width, 3) rgb24 (:class:`CpuYuvRgb` for many)."""
    return CpuYuvRgb(width, height, conv).to_rgb(frame)


def to_yuv420p(rgb: np.ndarray, conv: YuvRgb) -> np.ndarray:
    """One (H, W, 3) rgb24 frame -> a flat yuv420p frame (:class:`CpuYuvRgb` for many)."""
    if rgb.ndim != 3:
        raise ValueError(f"an rgb24 frame is (H, W, 3) uint8, not {rgb.shape} {rgb.dtype}")
    return CpuYuvRgb(rgb.shape[1], rgb.shape[0], conv).to_yuv(rgb)
