"""Scene-cut and held-frame tests on a sampled luma plane, cheap enough to run on every frame.

The interpolate stage asks two questions of each source frame: is it a cut
from the previous anchor (half the L1 distance of the luma histograms above
``scene_threshold``), and is it a held (repeated) frame (mean absolute luma
difference at most ``dedupe_threshold``)? Both read a luma plane on a grid at
most SAMPLE_WIDTH pixels wide, so the thresholds mean the same at every
resolution.

The plane is a strided sample, not a box average: every ``f``-th pixel of
every ``f``-th row (``f = ceil(width / SAMPLE_WIDTH)``), converted to BT.709
luma. That reads 1/f^2 of the frame (1/9 at 1080p, 1/36 at 4K), a few
milliseconds instead of 50-200 ms for full-resolution float luma followed by a
box filter. Frames at most SAMPLE_WIDTH wide are read whole, exactly as
before. A histogram over the sample estimates the frame's histogram without
bias, so cut decisions hold (``tests/unit/test_scene_tests.py`` checks a real
cut and a pan at 1280x720); the mean absolute difference of a sample
estimates the per-pixel one, which is a little above that of box-averaged
planes when the held frames carry coding noise.

A frame already on the device (a float tensor from a model stage before) is
sampled there and only the small plane is copied back, not the whole frame.

The stage keeps each frame's sample as a :class:`LumaSample`: uint8 levels and
their histogram, counted once (over the 256 levels by
:func:`~batch.stages.frame_metrics.luma_histogram`, then grouped), although
every frame is the end of one pair and the start of the next. The distances
and decisions are exactly those of :func:`is_cut` and :func:`is_held` on
:func:`sample_plane`'s float planes (``tests/unit/test_scene_sample_cache.py``);
the histogram costs 0.5 ms a 720p frame instead of twice 3.5 ms.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any

import numpy as np

from batch.stages.frame_metrics import (
    ANALYSIS_WIDTH,
    BT709_LUMA,
    histogram_distance,
    in_8bit_levels,
    luma_histogram,
    luma_of,
    share_distance,
)

SAMPLE_WIDTH = ANALYSIS_WIDTH
BT709 = BT709_LUMA


def stride_for(width: int) -> int:
    """Pixels between samples: the grid is at most SAMPLE_WIDTH wide."""
    return max(1, math.ceil(width / SAMPLE_WIDTH))


def sample_plane(
    frame: Any, width: int, height: int, max_value: int = 255, limited: bool = False
) -> np.ndarray:
    """Float32 luma in 8-bit levels (0..255) on the sampling grid, from RGB (H, W, 3 or 4), planar
    YUV, or a tensor.

    uint16 RGB (rgb48le) is scaled by its dtype's full white; planar frames by ``max_value`` (1023
    for 10-bit planes), so the thresholds mean the same at every bit depth.
    """
    return sample_levels(frame, width, height, max_value, limited).astype(np.float32)


def sample_levels(
    frame: Any, width: int, height: int, max_value: int = 255, limited: bool = False
) -> np.ndarray:
    """:func:`sample_plane`'s values as they are made: uint8 levels (every value is a whole level).

    ``limited``: planar frames of limited range stretched to full range (see
    :func:`~batch.stages.frame_metrics.in_8bit_levels`)."""
    if not isinstance(frame, np.ndarray):
        return _tensor_levels(frame)
    if frame.ndim == 3:
        h, w = frame.shape[:2]
        f = stride_for(w)
        rgb = frame if f == 1 else frame[::f, ::f]
        return luma_of(rgb, w, h, int(np.iinfo(frame.dtype).max))
    f = stride_for(width)
    y = frame[: width * height].reshape(height, width)
    if f > 1:
        y = y[::f, ::f]
    return in_8bit_levels(y, max_value, limited)  # sampled first, then scaled as luma_of does


def _tensor_levels(frame: Any) -> np.ndarray:
    """A (3, H, W) float tensor in [0, 1] on any device: sampled there, the small plane copied back."""
    f = stride_for(int(frame.shape[-1]))
    sample = frame[:, ::f, ::f].float().mul(255.0).add(0.5).clamp(0, 255).floor()  # as its uint8 form
    y = BT709[0] * sample[0] + BT709[1] * sample[1] + BT709[2] * sample[2]
    plane: np.ndarray = y.add(0.5).clamp(0, 255).floor().byte().cpu().numpy()  # whole levels: exact
    return plane


class LumaSample:
    """One frame's sample for both tests, each part computed once and kept for the next pair."""

    def __init__(self, levels: np.ndarray) -> None:
        self.levels = levels  # uint8 on the sampling grid

    @classmethod
    def of(
        cls, frame: Any, width: int, height: int, max_value: int = 255, limited: bool = False
    ) -> LumaSample:
        return cls(sample_levels(frame, width, height, max_value, limited))

    @cached_property
    def histogram(self) -> np.ndarray:
        """The share of samples in each of 32 bins, as :func:`histogram_distance` divides it."""
        counts: np.ndarray = luma_histogram(self.levels) / max(self.levels.size, 1)
        return counts

    @cached_property
    def plane(self) -> np.ndarray:
        """The levels as float32: :func:`sample_plane`'s plane."""
        return self.levels.astype(np.float32)


def cut_between(previous: LumaSample, current: LumaSample, threshold: float) -> bool:
    """:func:`is_cut` on the two samples, with each histogram counted once per frame."""
    return share_distance(previous.histogram, current.histogram) > threshold


def held_between(previous: LumaSample, current: LumaSample, threshold: float) -> bool:
    """:func:`is_held` on the two samples."""
    return is_held(previous.plane, current.plane, threshold)


def is_held(previous: np.ndarray, plane: np.ndarray, threshold: float) -> bool:
    """A repeated frame: the mean absolute luma difference is at most ``threshold`` levels."""
    return float(np.abs(plane - previous).mean()) <= threshold


def is_cut(previous: np.ndarray, plane: np.ndarray, threshold: float) -> bool:
    """A scene cut: the luma histograms differ by more than ``threshold`` (0..1)."""
    return histogram_distance(previous, plane) > threshold
