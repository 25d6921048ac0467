"""The interpolate stage's cached scene sample (batch.stages.scene.LumaSample) decides exactly as the
float-plane tests it replaces in the stage: same histogram counts, same distances to the last bit, same
cuts and held frames, with each frame's histogram counted once.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from batch.config import InterpolateStage
from batch.stages import scene
from batch.stages.base import StageInput
from batch.stages.frame_metrics import histogram_distance, luma_histogram
from batch.stages.interpolate import Interpolate
from batch.stages.scene import LumaSample, cut_between, held_between, is_cut, is_held, sample_plane


@settings(max_examples=60, deadline=None)
@given(
    plane=arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40))),
    bins=st.sampled_from([1, 2, 4, 8, 16, 32, 64, 128, 256]),
)
def test_uint8_counts_equal_the_float_counts_and_numpys(plane: np.ndarray, bins: int) -> None:
    fast = luma_histogram(plane, bins)
    assert np.array_equal(fast, luma_histogram(plane.astype(np.float32), bins))
    assert np.array_equal(fast, np.histogram(plane, bins=bins, range=(0, 256))[0])
    assert int(fast.sum()) == plane.size


def test_uint8_counts_at_the_extremes() -> None:
    plane = np.array([[0, 7, 8, 247, 248, 255]], np.uint8)
    assert luma_histogram(plane).tolist() == [2, 1] + [0] * 28 + [1, 2]


def _frames(draw: st.DrawFn, shape: tuple[int, ...], dtype: type) -> tuple[np.ndarray, np.ndarray]:
    top = int(np.iinfo(dtype).max)
    a = draw(arrays(dtype, shape, elements=st.integers(0, top)))
    kind = draw(st.sampled_from(["random", "copy", "near", "shifted"]))
    if kind == "random":
        b = draw(arrays(dtype, shape, elements=st.integers(0, top)))
    elif kind == "copy":
        b = a.copy()
    elif kind == "near":
        b = np.clip(a.astype(np.int64) + draw(st.integers(-3, 3)), 0, top).astype(dtype)
    else:
        b = np.roll(a, draw(st.integers(1, 5)))
    return a, b


@st.composite
def pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    """Two frames (packed RGB 8/16 bits or planar 8/10 bits), their size and planar full white."""
    w, h = draw(st.integers(1, 1400)), draw(st.integers(1, 6))
    form = draw(st.sampled_from(["rgb24", "rgb48", "yuv8", "yuv10"]))
    if form.startswith("rgb"):
        a, b = _frames(draw, (h, w, 3), np.uint8 if form == "rgb24" else np.uint16)
        return a, b, w, h, 255
    top = 255 if form == "yuv8" else 1023
    size = w * h + 2 * ((w + 1) // 2) * ((h + 1) // 2)
    a, b = _frames(draw, (size,), np.uint8 if top == 255 else np.uint16)
    if top == 1023:
        a, b = np.minimum(a, 1023), np.minimum(b, 1023)
    return a, b, w, h, top


@settings(max_examples=150, deadline=None)
@given(pair=pairs(), cut=st.floats(0.01, 1.0), held=st.floats(0.0, 300.0))
def test_the_cached_sample_decides_as_the_float_planes(
    pair: tuple[np.ndarray, np.ndarray, int, int, int], cut: float, held: float
) -> None:
    a, b, w, h, top = pair
    pa, pb = sample_plane(a, w, h, top), sample_plane(b, w, h, top)
    sa, sb = LumaSample.of(a, w, h, top), LumaSample.of(b, w, h, top)
    assert sa.levels.dtype == np.uint8 and np.array_equal(sa.plane, pa) and np.array_equal(sb.plane, pb)
    distance = float(np.abs(sa.histogram - sb.histogram).sum() / 2)
    assert distance == histogram_distance(pa, pb)  # to the last bit, not within a tolerance
    assert cut_between(sa, sb, cut) == is_cut(pa, pb, cut)
    assert held_between(sa, sb, held) == is_held(pa, pb, held)
    assert cut_between(sa, sa, cut) is False and held_between(sb, sb, 0.0) is True


def test_a_tensor_sample_is_whole_levels_as_before() -> None:
    torch = pytest.importorskip("torch")
    t = torch.rand(3, 37, 1290, generator=torch.Generator().manual_seed(3))
    t[:, 0, :4] = torch.tensor([0.0, 1.0, 0.5, 1.0 / 510])[None, :]
    s = LumaSample.of(t, 1290, 37)
    assert s.levels.dtype == np.uint8 and s.levels.shape == (13, 430)  # every 3rd pixel
    assert np.array_equal(s.plane, sample_plane(t, 1290, 37))


def test_the_stage_counts_each_frame_once_and_finds_the_same_cuts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three shots of 1-3 frames, planar yuv420p at an odd width: cuts where the reference finds them."""
    w, h = 66, 10
    rng = np.random.default_rng(5)
    size = w * h + 2 * (w // 2) * (h // 2)
    dark = [rng.integers(10, 40, size, dtype=np.uint8) for _ in range(3)]
    light = [rng.integers(200, 240, size, dtype=np.uint8)]
    mid = [rng.integers(100, 140, size, dtype=np.uint8) for _ in range(2)]
    frames = [*dark, *light, *mid]
    planes = [sample_plane(f, w, h) for f in frames]
    threshold = InterpolateStage(factor=2).scene_threshold
    assert threshold is not None
    want = [i for i in range(1, len(frames)) if is_cut(planes[i - 1], planes[i], threshold)]
    assert want == [3, 4]

    counted: list[int] = []
    real = scene.luma_histogram
    monkeypatch.setattr(scene, "luma_histogram", lambda p, bins=32: counted.append(p.size) or real(p, bins))
    stage = _blend(w, h)
    out = list(stage.run(iter(frames)))
    assert stage.cuts == want
    assert len(counted) == len(frames)  # once per frame, not once per pair end
    assert len(out) == 2 * len(frames)
    assert out[5] is frames[2] and out[7] is frames[3]  # the positions before each cut hold, no morph
    assert np.array_equal(out[1], ((frames[0].astype(np.uint16) + frames[1] + 1) >> 1).astype(np.uint8))


def _blend(w: int, h: int) -> Interpolate:
    source = StageInput(w, h, Fraction(30), pix_fmt="yuv420p")
    return Interpolate(InterpolateStage(factor=2, ladder=["blend"]), source)


@pytest.mark.parametrize("frames", [1, 2])
def test_one_and_two_frame_clips(frames: int) -> None:
    w, h = 64, 48
    clip = [np.full(w * h * 3 // 2, 16 + 200 * k, np.uint8) for k in range(frames)]
    stage = _blend(w, h)
    out = list(stage.run(iter(clip)))
    assert len(out) == 2 * frames and stage.cuts == ([1] if frames == 2 else [])
