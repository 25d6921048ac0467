"""The fast CPU frame maths must give exactly what the plain numpy formulas give.

Scene cuts and held frames are decided on these numbers, and a chunked run
must decide as a single pass does: "close" is not enough, they must be equal.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from batch.stages.frame_metrics import ANALYSIS_WIDTH, analysis_plane, luma_histogram
from batch.stages.interpolate import BlendRung


def reference_plane(luma: np.ndarray) -> np.ndarray:
    h, w = luma.shape
    f = max(1, math.ceil(w / ANALYSIS_WIDTH))
    if f == 1:
        return luma.astype(np.float32)
    h2, w2 = h // f, w // f
    return luma[: h2 * f, : w2 * f].astype(np.float32).reshape(h2, f, w2, f).mean(axis=(1, 3))


sizes = st.tuples(st.integers(1, 40), st.sampled_from([1, 7, 639, 640, 641, 1281, 1920, 2000]))


@settings(max_examples=40, deadline=None)
@given(size=sizes, seed=st.integers(0, 2**32 - 1), flat=st.booleans())
def test_the_analysis_plane_and_its_histogram_equal_numpys(
    size: tuple[int, int], seed: int, flat: bool
) -> None:
    rng = np.random.default_rng(seed)
    luma = np.full(size, 255, np.uint8) if flat else rng.integers(0, 256, size, dtype=np.uint8)
    plane = analysis_plane(luma)
    want = reference_plane(luma)
    assert plane.dtype == want.dtype and plane.shape == want.shape and np.array_equal(plane, want)
    assert np.array_equal(luma_histogram(plane), np.histogram(want, bins=32, range=(0, 256))[0])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 5000))
def test_the_2x_blend_is_the_exact_rounded_mean(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 256, n, dtype=np.uint8), rng.integers(0, 256, n, dtype=np.uint8)
    a[:2], b[:2] = (0, 255), (255, 255)  # the extremes: no wrap-around
    (mid,) = BlendRung().between(a, b, [Fraction(1, 2)])
    assert mid.dtype == np.uint8
    assert np.array_equal(mid, ((a.astype(np.uint16) + b + 1) >> 1).astype(np.uint8))
