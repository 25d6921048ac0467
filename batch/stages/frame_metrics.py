"""Frame quality metrics on luma, and what they add up to over an input.

Per frame (on the luma plane, box-downscaled to at most ANALYSIS_WIDTH so the
cost and the thresholds do not depend on the resolution): sharpness
(variance of the Laplacian) and relative sharpness (that divided by the
variance of the luma, so a dark or low-contrast frame is not taken for a
blurred one), brightness (mean, 5th and 95th percentiles), a 64-bit
perceptual hash (DCT of a 32x32 thumbnail), motion (mean absolute difference
to the previous frame, in luma levels) and a scene-cut score: the jump in
motion over the previous frame's, scaled to 0..1 (CUT_SCALE levels = 1), so a
steady pan or a fade scores low and a cut scores high.

Per input: blurry and dark frames, duplicate groups (consecutive frames whose
hashes lie within a Hamming distance and that barely move: a slow pan keeps
its hash but not its pixels), idle intervals (motion below a threshold for at
least a given time) and scene cuts.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
from PIL import Image

ANALYSIS_WIDTH = 640
HASH_SIZE = 32  # thumbnail side for the DCT
HASH_BITS = 8  # low-frequency block side: 8 x 8 = 64 bits
CUT_SCALE = 50.0  # a jump of this many luma levels in motion scores 1


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2 / n)
    m[0] /= math.sqrt(2)
    return m.astype(np.float32)


_DCT = _dct_matrix(HASH_SIZE)


def luma_of(
    frame: np.ndarray, width: int, height: int, max_value: int = 255, limited: bool = False
) -> np.ndarray:
    """The luma plane in 8-bit levels, uint8 (H, W): the Y plane of planar YUV, or BT.709 luma of RGB.

    ``max_value`` is full white in ``frame`` (65535 for rgb48le, 1023 for 10-bit planes): deeper
    frames are scaled to 0..255, so every threshold means the same whatever the source's depth.
    The signal is the source's as coded (PQ or HLG stays PQ or HLG), not linear light.
    """
    if frame.ndim == 3:
        return rgb_luma(frame, max_value)
    return in_8bit_levels(frame[: width * height].reshape(height, width), max_value, limited)


BT709_LUMA = (0.2126, 0.7152, 0.0722)


@functools.cache
def _channel_terms(levels: int) -> np.ndarray:
    """(3, levels) float32: each channel's weighted term for every code value, as float32 gives it."""
    codes = np.arange(levels, dtype=np.float32)
    return np.stack([codes * np.float32(c) for c in BT709_LUMA])


BAND = 1 << 15  # samples per band of rows: the band's float32 scratch stays in the CPU's cache


def rgb_luma(rgb: np.ndarray, max_value: int) -> np.ndarray:
    """BT.709 luma of packed uint8/uint16 RGB(A) in 8-bit levels: ``round((0.2126 R + 0.7152 G +
    0.0722 B) * 255 / max_value)`` in float32, exactly as those float32 operations give it.

    Each product is looked up in a table of the channel's code values (the same float32 product)
    and summed in the same order, a band of rows at a time: the scene test's sample of a 720p
    frame 2.9 -> 1.1 ms, a whole 4K frame 86 -> 41 ms on the development VM, bit-identical to the
    float formula (``tests/unit/test_fast_frame_maths.py``).
    """
    if rgb.dtype not in (np.uint8, np.uint16):  # (numpy frames are one of those; kept for any other)
        f = rgb.astype(np.float32)
        y = BT709_LUMA[0] * f[..., 0] + BT709_LUMA[1] * f[..., 1] + BT709_LUMA[2] * f[..., 2]
        return np.clip(y * (255.0 / max_value) + 0.5, 0, 255).astype(np.uint8)  # type: ignore[no-any-return]
    terms = _channel_terms(int(np.iinfo(rgb.dtype).max) + 1)
    height, width = rgb.shape[:2]
    out = np.empty((height, width), np.uint8)
    rows = max(1, BAND // max(width, 1))
    y, term = np.empty((2, min(rows, height), width), np.float32)
    for top in range(0, height, rows):
        part = rgb[top : top + rows]
        n = part.shape[0]
        yb, tb = y[:n], term[:n]
        terms[0].take(part[..., 0], out=yb)
        yb += terms[1].take(part[..., 1], out=tb)
        yb += terms[2].take(part[..., 2], out=tb)
        if max_value != 255:  # (times 1.0 changes nothing)
            yb *= np.float32(255.0 / max_value)
        yb += np.float32(0.5)
        out[top : top + n] = np.clip(yb, 0, 255, out=yb)  # float -> uint8 truncates, as astype does
    return out


def _scaled(codes: np.ndarray, max_value: int, limited: bool) -> np.ndarray:
    """Code values as float32 8-bit levels before rounding; ``limited``: black at 16 and white at 235
    (shifted to the plane's depth) stretched to 0 and 255, as RGB luma has them."""
    if not limited:
        out: np.ndarray = codes * np.float32(255.0 / max_value) + np.float32(0.5)
        return out
    step = (max_value + 1) / 256  # 4 at 10 bits
    black, gain = np.float32(16 * step), np.float32(255.0 / (219 * step))
    stretched: np.ndarray = (codes - black) * gain + np.float32(0.5)
    return stretched


@functools.cache
def _level_table(levels: int, max_value: int, limited: bool = False) -> np.ndarray:
    """uint8 levels for every code value 0..levels-1 of a plane whose full white is ``max_value``."""
    codes = np.arange(levels, dtype=np.float32)
    table: np.ndarray = np.clip(_scaled(codes, max_value, limited), 0, 255).astype(np.uint8)
    return table


def in_8bit_levels(plane: np.ndarray, max_value: int = 255, limited: bool = False) -> np.ndarray:
    """A luma plane whose full white is ``max_value``, as uint8 levels 0..255 (rounded).

    ``limited``: a limited-range plane stretched to full range, so a frame measures as its RGB luma
    would (the device path's planes against the RGB path's frames: the same cuts, the same metrics).
    """
    if plane.dtype == np.uint8 and max_value == 255 and not limited:
        return plane
    if plane.dtype in (np.uint8, np.uint16):  # one lookup per sample, the same values as the float formula
        table = _level_table(int(np.iinfo(plane.dtype).max) + 1, max_value, limited)
        levels: np.ndarray = table.take(plane)
        return levels
    scaled = _scaled(plane.astype(np.float32), max_value, limited)
    levels8: np.ndarray = np.clip(scaled, 0, 255).astype(np.uint8)
    return levels8


def analysis_plane(luma: np.ndarray) -> np.ndarray:
    """Box-downscale to at most ANALYSIS_WIDTH wide, as float32."""
    h, w = luma.shape
    f = max(1, math.ceil(w / ANALYSIS_WIDTH))
    if f == 1:
        return luma.astype(np.float32)
    h2, w2 = h // f, w // f
    # summed as integers (exact, and 10x faster than a float mean), then divided once: the same
    # float32 values as the mean of the float32 block (every partial sum is an exact integer)
    block = luma[: h2 * f, : w2 * f]
    sums = np.zeros((h2, w2), np.uint32)
    for i in range(f):  # strided adds: 10x faster than numpy's sum over two axes of a reshape
        for j in range(f):
            sums += block[i::f, j::f]
    box: np.ndarray = sums.astype(np.float32) / np.float32(f * f)
    return box


def histogram_distance(a: np.ndarray, b: np.ndarray, bins: int = 32) -> float:
    """Half the L1 distance of two planes' luma histograms: 0 same tones, 1 disjoint.

    Depends on the pair alone, so a chunked run decides cuts as a single pass
    does; a pan or a small motion keeps the histogram, a cut changes it.
    """
    ha = luma_histogram(a, bins) / max(a.size, 1)
    hb = luma_histogram(b, bins) / max(b.size, 1)
    return share_distance(ha, hb)


def share_distance(ha: np.ndarray, hb: np.ndarray) -> float:
    """Half the L1 distance of two histograms of shares: 0 same tones, 1 disjoint."""
    return float(np.abs(ha - hb).sum() / 2)


def luma_histogram(plane: np.ndarray, bins: int = 32) -> np.ndarray:
    """Counts of values in ``bins`` equal bins over [0, 256): ``np.histogram``'s, 10x faster.

    For values in [0, 256) and a power-of-two bin width, ``floor(v * bins / 256)`` is
    exact, which is what np.histogram computes for uniform bins; out-of-range values
    are clipped into the end bins here (np.histogram would drop them; planes never hold any).
    A uint8 plane is counted per level (PIL's histogram, in C without the GIL: half the time of
    ``np.bincount``) and the levels grouped: the same bins (``v >> 3`` at 32 bins), 10x faster again.
    """
    if plane.dtype == np.uint8 and plane.ndim == 2 and 256 % bins == 0:
        levels = np.asarray(Image.fromarray(plane).histogram(), dtype=np.int64)
        grouped: np.ndarray = levels.reshape(bins, 256 // bins).sum(axis=1)
        return grouped
    index = np.clip((plane * np.float32(bins / 256)).astype(np.intp), 0, bins - 1)
    return np.bincount(index.ravel(), minlength=bins)


def laplacian_variance(plane: np.ndarray) -> float:
    if plane.shape[0] < 3 or plane.shape[1] < 3:
        return 0.0
    lap = plane[:-2, 1:-1] + plane[2:, 1:-1] + plane[1:-1, :-2] + plane[1:-1, 2:] - 4 * plane[1:-1, 1:-1]
    return float(lap.var())


def perceptual_hash(plane: np.ndarray) -> int:
    thumb = Image.fromarray(np.clip(plane, 0, 255).astype(np.uint8)).resize(
        (HASH_SIZE, HASH_SIZE), Image.Resampling.BOX
    )
    dct = _DCT @ np.asarray(thumb, dtype=np.float32) @ _DCT.T
    low = dct[:HASH_BITS, :HASH_BITS].flatten()
    bits = low > np.median(low[1:])  # the DC term would dominate the median
    return int(sum(1 << i for i, b in enumerate(bits) if b))


@dataclass
class FrameMetrics:
    frame: int
    time_s: float
    sharpness: float
    sharpness_rel: float
    brightness: float
    brightness_p5: float
    brightness_p95: float
    underexposed: bool
    phash: int
    motion: float
    cut_score: float


@dataclass
class Analyzer:
    """Feed frames in order; read rows and the summary at the end."""

    width: int
    height: int
    fps: Fraction
    dark_threshold: float = 40.0
    max_value: int = 255  # full white of planar frames (1023 for 10-bit); packed RGB says by its dtype
    limited: bool = False  # planar frames of limited range, measured as their RGB would be (see luma_of)
    rows: list[FrameMetrics] = field(default_factory=list)
    _prev_plane: np.ndarray | None = None

    def add(self, frame: np.ndarray) -> None:
        top = int(np.iinfo(frame.dtype).max) if frame.ndim == 3 else self.max_value
        plane = analysis_plane(luma_of(frame, self.width, self.height, top, self.limited))
        p5, p95 = np.percentile(plane, (5, 95))
        mean = float(plane.mean())
        motion = 0.0 if self._prev_plane is None else float(np.abs(plane - self._prev_plane).mean())
        before = self.rows[-1].motion if len(self.rows) > 1 else motion
        cut = 0.0 if self._prev_plane is None else min(1.0, max(0.0, motion - before) / CUT_SCALE)
        sharpness = laplacian_variance(plane)
        n = len(self.rows)
        self.rows.append(
            FrameMetrics(
                frame=n,
                time_s=float(n / self.fps),
                sharpness=sharpness,
                sharpness_rel=sharpness / max(float(plane.var()), 1e-6),
                brightness=mean,
                brightness_p5=float(p5),
                brightness_p95=float(p95),
                underexposed=mean < self.dark_threshold,
                phash=perceptual_hash(plane),
                motion=motion,
                cut_score=cut,
            )
        )
        self._prev_plane = plane


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def duplicate_groups(rows: list[FrameMetrics], max_distance: int, max_motion: float) -> list[list[int]]:
    """Runs of consecutive frames within ``max_distance`` of the run's first hash that barely move."""
    groups: list[list[int]] = []
    current: list[int] = []
    for r in rows:
        near = current and hamming(rows[current[0]].phash, r.phash) <= max_distance
        if near and r.motion <= max_motion:
            current.append(r.frame)
            continue
        if len(current) > 1:
            groups.append(current)
        current = [r.frame]
    if len(current) > 1:
        groups.append(current)
    return groups


def idle_intervals(
    rows: list[FrameMetrics], fps: Fraction, max_motion: float, min_s: float
) -> list[list[int]]:
    """[first, last] frame of each run whose motion stays below ``max_motion`` for ``min_s`` or more.

    A run starts at the frame before its first still frame: that frame is
    already on screen while nothing moves.
    """
    out: list[list[int]] = []
    start: int | None = None
    for r in [*rows, None]:
        still = r is not None and r.frame > 0 and r.motion < max_motion
        if still and start is None:
            start = r.frame - 1  # type: ignore[union-attr]
        elif not still and start is not None:
            last = (r.frame if r is not None else len(rows)) - 1
            if (last - start + 1) / fps >= min_s:
                out.append([start, last])
            start = None
    return out


def summarize(
    rows: list[FrameMetrics],
    fps: Fraction,
    *,
    blur_threshold: float,
    duplicate_distance: int,
    duplicate_motion: float,
    idle_motion: float,
    idle_s: float,
    cut_threshold: float,
) -> dict[str, Any]:
    n = max(1, len(rows))
    groups = duplicate_groups(rows, duplicate_distance, duplicate_motion)
    idle = idle_intervals(rows, fps, idle_motion, idle_s)
    cuts = [r.frame for r in rows if r.cut_score > cut_threshold]
    return {
        "frames": len(rows),
        "blurry_share": round(sum(r.sharpness_rel < blur_threshold for r in rows) / n, 4),
        "dark_share": round(sum(r.underexposed for r in rows) / n, 4),
        "duplicate_share": round(sum(len(g) - 1 for g in groups) / n, 4),
        "idle_share": round(sum(b - a + 1 for a, b in idle) / n, 4),
        "cut_count": len(cuts),
        "cuts": cuts,
        "duplicate_groups": [[g[0], g[-1]] for g in groups],
        "idle_intervals": [
            {"frames": iv, "seconds": [float(iv[0] / fps), float((iv[1] + 1) / fps)]} for iv in idle
        ],
    }
