"""Stages on 16-bit frames (rgb48le, 10-bit planes) and on frames with alpha: same promises as 8-bit."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from batch.config import CropStage, InterpolateStage, UpscaleStage
from batch.media.layout import FrameLayout
from batch.stages.base import StageInput
from batch.stages.crop import Crop
from batch.stages.frame_metrics import luma_of
from batch.stages.interpolate import BlendRung, Interpolate
from batch.stages.lanczos import LanczosRung
from batch.stages.upscale import Upscale

RNG = np.random.default_rng(7)


def planar(pix_fmt: str, w: int, h: int) -> np.ndarray:
    layout = FrameLayout(pix_fmt, w, h)
    return RNG.integers(0, layout.max_value + 1, layout.shape).astype(layout.dtype)


@given(st.integers(0, 65535), st.integers(0, 65535))
def test_a_16_bit_midpoint_is_the_exact_rounded_mean(a: int, b: int) -> None:
    fa, fb = np.full((2, 2, 3), a, np.uint16), np.full((2, 2, 3), b, np.uint16)
    (mid,) = BlendRung().between(fa, fb, [Fraction(1, 2)])
    assert mid.dtype == np.uint16 and int(mid[0, 0, 0]) == (a + b + 1) // 2


def test_a_third_of_the_way_stays_in_range_and_in_dtype() -> None:
    a, b = np.zeros((2, 2, 3), np.uint16), np.full((2, 2, 3), 65535, np.uint16)
    (third,) = BlendRung().between(a, b, [Fraction(1, 3)])
    assert third.dtype == np.uint16 and int(third[0, 0, 0]) == round(65535 / 3)


def test_2x_interpolation_of_10_bit_planes_keeps_their_depth_and_count() -> None:
    fmt, w, h = "yuv420p10le", 16, 8
    frames = [planar(fmt, w, h) for _ in range(3)]
    stage = Interpolate(InterpolateStage(factor=2), StageInput(w, h, Fraction(25), pix_fmt=fmt))
    out = list(stage.run(iter(frames)))
    assert len(out) == 6 and all(f.dtype == np.uint16 and f.shape == frames[0].shape for f in out)
    assert int(max(f.max() for f in out)) <= 1023
    assert np.array_equal(out[2], frames[1])


@pytest.mark.parametrize("fmt", ["yuv422p10le", "yuv444p12le", "yuva420p", "yuv420p16le"])
def test_a_crop_of_planes_cuts_each_plane_at_its_own_scale(fmt: str) -> None:
    w, h = 16, 8
    frame = planar(fmt, w, h)
    spec = CropStage(x=4, y=2, width=8, height=4)
    out = Crop(spec, StageInput(w, h, Fraction(25), pix_fmt=fmt)).crop(frame)
    src, dst = FrameLayout(fmt, w, h).split(frame), FrameLayout(fmt, 8, 4).split(out)
    assert out.dtype == frame.dtype and len(src) == len(dst)
    for a, b in zip(src, dst, strict=True):
        sx, sy = w // a.shape[1], h // a.shape[0]
        assert np.array_equal(b, a[2 // sy : 6 // sy, 4 // sx : 12 // sx])


def test_lanczos_on_16_bit_frames_is_the_identity_at_scale_1_and_keeps_the_dtype() -> None:
    frame = RNG.integers(0, 65536, (8, 12, 3)).astype(np.uint16)
    assert np.array_equal(LanczosRung().resize(frame, 12, 8), frame)
    up = Upscale(
        UpscaleStage(scale=2, ladder=["lanczos"]), StageInput(12, 8, Fraction(25), pix_fmt="rgb48le")
    )
    (out,) = list(up.run(iter([frame])))
    assert out.dtype == np.uint16 and out.shape == (16, 24, 3)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_lanczos_with_alpha_does_not_bleed_colour_from_transparent_pixels(dtype: type) -> None:
    top = np.iinfo(dtype).max
    frame = np.zeros((8, 16, 4), dtype)
    frame[:, :8] = (top, 0, 0, top)  # opaque red
    frame[:, 8:] = (0, top, 0, 0)  # transparent green
    out = LanczosRung(dtype).resize(frame, 32, 16)
    opaque = out[..., 3] > top // 2
    assert out.dtype == dtype and opaque.any()
    assert int(out[..., 1][opaque].max()) <= top // 50  # no green in the visible part


def test_luma_of_deep_frames_is_in_8_bit_levels() -> None:
    plane = np.array([0, 512, 1023, 1023], np.uint16)
    assert luma_of(plane, 2, 2, 1023).tolist() == [[0, 128], [255, 255]]
    rgb = np.full((1, 1, 3), 65535, np.uint16)
    assert luma_of(rgb, 1, 1, 65535).tolist() == [[255]]


def test_16_bit_frames_reach_a_model_as_the_same_0_to_1_signal_and_come_back_exact() -> None:
    torch = pytest.importorskip("torch")
    from batch.models.device import to_frames, to_tensor

    frame = RNG.integers(0, 65536, (4, 6, 3)).astype(np.uint16)
    t = to_tensor(frame, torch.device("cpu"))
    assert t.shape == (3, 4, 6) and float(t.max()) <= 1.0
    (back,) = to_frames(t.unsqueeze(0), np.uint16)
    assert back.dtype == np.uint16 and np.array_equal(back, frame)


@pytest.mark.parametrize("channels", [3, 4])
def test_lanczos_at_the_same_size_is_what_pillow_gives_without_its_copies(channels: int) -> None:
    """8-bit frames already at the asked size pass as they are; Pillow's own answer is the same pixels."""
    from PIL import Image

    frame = RNG.integers(0, 256, (9, 14, channels)).astype(np.uint8)
    frame[0, :, -1] = 0  # fully transparent pixels (RGBA): Pillow premultiplies only when it resizes
    mode = "RGBA" if channels == 4 else "RGB"
    pillow = np.asarray(Image.fromarray(frame, mode=mode).resize((14, 9), Image.Resampling.LANCZOS))
    same = LanczosRung().resize(frame, 14, 9)
    assert np.array_equal(same, pillow) and np.shares_memory(same, frame)
    wider = LanczosRung().resize(frame, 15, 9)  # one pixel off either way still resizes
    taller = LanczosRung().resize(frame, 14, 10)
    assert wider.shape == (9, 15, channels) and taller.shape == (10, 14, channels)
    assert not np.shares_memory(wider, frame) and not np.shares_memory(taller, frame)
