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

from batch.stages.frame_metrics import ANALYSIS_WIDTH, analysis_plane, in_8bit_levels, luma_histogram, luma_of
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


def reference_luma(rgb: np.ndarray, max_value: int) -> np.ndarray:
    """BT.709 luma in 8-bit levels, the plain float32 formula the tables replace."""
    f = rgb.astype(np.float32)
    y = (0.2126 * f[..., 0] + 0.7152 * f[..., 1] + 0.0722 * f[..., 2]) * (255.0 / max_value)
    return np.clip(y + 0.5, 0, 255).astype(np.uint8)


def reference_levels(plane: np.ndarray, max_value: int, limited: bool = False) -> np.ndarray:
    codes = plane.astype(np.float32)
    if limited:  # 16..235 (times 2^(depth - 8)) stretched to 0..255
        step = (max_value + 1) / 256
        return np.clip(
            (codes - np.float32(16 * step)) * np.float32(255 / (219 * step)) + np.float32(0.5), 0, 255
        ).astype(np.uint8)
    return np.clip(codes * (255.0 / max_value) + 0.5, 0, 255).astype(np.uint8)


def test_the_luma_of_every_8bit_rgb_colour_equals_the_float_formula() -> None:
    """All 2^24 colours, once: a table that rounded one tie differently would move a cut decision."""
    codes = np.arange(1 << 24, dtype=np.uint32)
    rgb = np.stack([codes >> 16, (codes >> 8) & 255, codes & 255], axis=-1).astype(np.uint8)
    rgb = rgb.reshape(4096, 4096, 3)
    assert np.array_equal(luma_of(rgb, 4096, 4096), reference_luma(rgb, 255))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shape=st.tuples(st.integers(1, 30), st.integers(1, 30)),
    depth=st.sampled_from([(np.uint16, 65535), (np.uint16, 1023), (np.uint8, 255), (np.uint8, 1023)]),
    alpha=st.booleans(),
    strided=st.booleans(),
)
def test_the_luma_of_any_rgb_frame_equals_the_float_formula(
    seed: int, shape: tuple[int, int], depth: tuple[type, int], alpha: bool, strided: bool
) -> None:
    dtype, max_value = depth
    rng = np.random.default_rng(seed)
    top = int(np.iinfo(dtype).max)
    frame = rng.integers(0, top + 1, (*shape, 4 if alpha else 3), dtype=dtype)
    frame.flat[: min(8, frame.size)] = top  # full white and the top codes: no overflow past 255
    if strided:
        frame = frame[::2, ::3]  # the scene test's strided sample is a view like this
    got = luma_of(frame, frame.shape[1], frame.shape[0], max_value)
    assert got.dtype == np.uint8 and np.array_equal(got, reference_luma(frame, max_value))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    max_value=st.sampled_from([255, 1023, 4095, 65535]),
    over=st.booleans(),
    limited=st.booleans(),
)
def test_deep_planes_in_8bit_levels_equal_the_float_formula(
    seed: int, max_value: int, over: bool, limited: bool
) -> None:
    """10/12/16-bit planes; ``over``: codes above full white (a stray decode) clip to 255, as before;
    ``limited``: stretched from limited range (codes below black clip to 0)."""
    rng = np.random.default_rng(seed)
    dtype = np.uint8 if max_value == 255 else np.uint16
    top = int(np.iinfo(dtype).max) if over else max_value
    plane = rng.integers(0, top + 1, (17, 23), dtype=dtype)
    got = in_8bit_levels(plane[::2, ::3], max_value, limited)
    want = reference_levels(plane[::2, ::3], max_value, limited)
    assert got.dtype == np.uint8 and np.array_equal(got, want)


def test_limited_range_planes_stretch_black_and_white_to_0_and_255() -> None:
    for depth in (8, 10):
        step = 1 << (depth - 8)
        plane = np.array(
            [[0, 16 * step, 235 * step, (1 << depth) - 1]], np.uint8 if depth == 8 else np.uint16
        )
        assert in_8bit_levels(plane, (1 << depth) - 1, limited=True).tolist() == [[0, 0, 255, 255]]
        top = (1 << depth) - 1
        as_coded = [[round(int(c) * 255 / top) for c in plane[0]]]  # (940 of 1023 is level 234)
        assert in_8bit_levels(plane, top).tolist() == as_coded
