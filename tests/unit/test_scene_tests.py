"""Scene-cut and held-frame tests on the strided luma sample (batch.stages.scene).

Real photographs (scikit-image's astronaut and coffee) at 1280x720, so the
sample really is strided (every 2nd pixel): a pan must not be a cut, a cut
between two shots must be one, and the decisions must be those of the
full-resolution box-filtered plane the stage used before.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image

from batch.config import InterpolateStage
from batch.stages.base import StageInput
from batch.stages.frame_metrics import analysis_plane, histogram_distance, luma_of
from batch.stages.interpolate import Interpolate
from batch.stages.scene import is_cut, is_held, sample_plane, stride_for

W, H = 1280, 720


def _big(image: np.ndarray, w: int, h: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((w, h), Image.Resampling.BICUBIC))


@pytest.fixture(scope="module")
def pan() -> list[np.ndarray]:
    """The astronaut panned 12 px a frame (a fast pan at 720p)."""
    from skimage import data

    wide = _big(data.astronaut(), W + 200, H + 200)
    return [np.ascontiguousarray(wide[100 : 100 + H, 12 * k : 12 * k + W]) for k in range(4)]


@pytest.fixture(scope="module")
def other_shot() -> np.ndarray:
    from skimage import data

    return _big(data.coffee(), W, H)


def _box(frame: np.ndarray) -> np.ndarray:
    """The plane the stage read before: full-resolution luma, box-averaged to ANALYSIS_WIDTH."""
    return analysis_plane(luma_of(frame, frame.shape[1], frame.shape[0]))


def test_the_sample_is_strided_at_720p_and_whole_for_small_frames() -> None:
    assert stride_for(1280) == 2 and stride_for(3840) == 6 and stride_for(640) == 1
    small = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    assert np.array_equal(sample_plane(small, 64, 48), _box(small))  # small frames: exactly as before
    assert sample_plane(np.zeros((720, 1280, 3), np.uint8), 1280, 720).shape == (360, 640)


def test_a_pan_is_neither_a_cut_nor_held_and_a_cut_is_a_cut(
    pan: list[np.ndarray], other_shot: np.ndarray
) -> None:
    threshold = InterpolateStage(factor=2).scene_threshold
    assert threshold is not None
    planes = [sample_plane(f, W, H) for f in pan]
    for a, b, fa, fb in zip(planes, planes[1:], pan, pan[1:], strict=False):
        sampled, boxed = histogram_distance(a, b), histogram_distance(_box(fa), _box(fb))
        assert sampled < threshold / 3 and boxed < threshold / 3, (sampled, boxed)
        assert not is_cut(a, b, threshold) and not is_held(a, b, 0.5)
    cut = sample_plane(other_shot, W, H)
    sampled, boxed = histogram_distance(planes[-1], cut), histogram_distance(_box(pan[-1]), _box(other_shot))
    assert sampled > threshold and boxed > threshold and abs(sampled - boxed) < 0.05, (sampled, boxed)
    assert is_cut(planes[-1], cut, threshold)
    assert is_held(planes[0], sample_plane(pan[0].copy(), W, H), 0.5)  # a repeated frame is held


def test_the_stage_finds_the_real_cut_and_only_it(pan: list[np.ndarray], other_shot: np.ndarray) -> None:
    frames = [*pan, other_shot, other_shot.copy()]
    it = Interpolate(InterpolateStage(factor=2, ladder=["blend"]), StageInput(W, H, Fraction(30)))
    out = list(it.run(iter(frames)))
    assert len(out) == 12
    assert it.cuts == [4]
    assert out[7] is pan[3]  # the position between the last pan frame and the cut holds, no morph
    assert not np.array_equal(out[1], pan[0]) and not np.array_equal(out[1], pan[1])  # the pan blends


def test_planar_yuv_samples_the_y_plane() -> None:
    y = np.random.default_rng(1).integers(0, 256, (720, 1280), dtype=np.uint8)
    yuv = np.concatenate([y.ravel(), np.full(1280 * 720 // 2, 128, np.uint8)])
    assert np.array_equal(sample_plane(yuv, 1280, 720), y[::2, ::2].astype(np.float32))


def test_a_device_tensor_is_sampled_where_it_is_as_its_uint8_form() -> None:
    """CPU tensor here (no GPU): the same code runs on CUDA tensors, copying back only the sample."""
    from batch.models.device import as_numpy

    t = torch.rand(3, 720, 1280)
    ours = sample_plane(t, 1280, 720)
    expected = sample_plane(as_numpy(t), 1280, 720)
    assert ours.shape == expected.shape == (360, 640)
    assert float(np.abs(ours - expected).max()) <= 1.0 and float(np.abs(ours - expected).mean()) < 0.01
