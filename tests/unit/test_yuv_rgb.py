"""8-bit yuv420p <-> rgb24 in-process (batch.media.yuv_rgb, batch.models.yuv_rgb_torch) against ffmpeg's
zscale conversion (colour.rgb_conversion, what the reader and writer run today), every matrix and range.

Real ffmpeg makes the sources and the reference; the torch back end runs on the CPU here (a GPU run is
scripts/gpu_yuv_rgb_check.py).
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import torch
from clips import GRADIENT_COLOURS
from hypothesis import given, settings
from hypothesis import strategies as st

from batch.media import yuv_rgb
from batch.media.colour import ColourPlan, rgb_conversion
from batch.media.probe import ColorInfo
from batch.models import yuv_rgb_torch as tyr

MATRICES = ["bt709", "smpte170m", "fcc", "smpte240m", "bt2020"]
PLANS = [ColourPlan(matrix=m, range=r, tags=ColorInfo()) for m in MATRICES for r in ("tv", "pc")]


FORMATS = {8: ("yuv420p", "rgb24", np.uint8), 10: ("yuv420p10le", "rgb48le", np.uint16)}  # by YUV depth


def lavfi_yuv(source: str, w: int, h: int, depth: int = 8) -> np.ndarray:
    yuv, _, dtype = FORMATS[depth]
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", source, "-frames:v", "1",
         "-vf", f"scale={w}:{h},format={yuv}", "-f", "rawvideo", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(out, dtype)


def zscale(
    frame: np.ndarray, w: int, h: int, plan: ColourPlan, *, to_rgb: bool, depth: int = 8
) -> np.ndarray:
    """What the reader's (``to_rgb``) or the writer's zscale filter makes of one raw frame."""
    yuv, rgb, dtype = FORMATS[depth]
    fmt_in, fmt_out = (yuv, rgb) if to_rgb else (rgb, yuv)
    vf = rgb_conversion(plan, to_rgb=to_rgb, yuv_pix_fmt=yuv, rgb_pix_fmt=rgb)
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", fmt_in, "-s", f"{w}x{h}", "-i", "-",
         "-vf", vf, "-f", "rawvideo", "-pix_fmt", fmt_out, "-"],
        input=frame.tobytes(), capture_output=True, check=True,
    ).stdout  # fmt: skip
    got = np.frombuffer(out, dtype)
    return got.reshape(h, w, 3) if to_rgb else got


def torch_rgb(frame: np.ndarray, w: int, h: int, conv: yuv_rgb.YuvRgb) -> np.ndarray:
    rgb = tyr.to_rgb(*tyr.split([frame], w, h), conv)
    return rgb.mul(255).round().to(torch.uint8).permute(0, 2, 3, 1)[0].numpy()


def torch_yuv(rgb: np.ndarray, conv: yuv_rgb.YuvRgb) -> np.ndarray:
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float().div(255)
    return tyr.join(*tyr.to_yuv(x, conv))[0]


def diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int32) - b.astype(np.int32))


def assert_close(a: np.ndarray, b: np.ndarray, codes: int = 1) -> None:
    """Within ``codes``, one code more allowed for a few samples: zimg and OpenCV pick SIMD kernels by
    CPU, and a float that lands on .5 may round the other way on another machine (CI's CPU did for the
    fidelity test). A wrong matrix or range moves most samples by many codes."""
    d = diff(a, b)
    assert int(d.max()) <= codes + 1, int(d.max())
    assert np.count_nonzero(d > codes) <= max(1, d.size // 200), np.count_nonzero(d > codes)


SOURCES = {"gradients": f"gradients=s=64x48:seed=4:{GRADIENT_COLOURS}", "testsrc2": "testsrc2=s=64x48"}


@pytest.mark.parametrize("plan", PLANS, ids=lambda p: f"{p.matrix}-{p.range}")
@pytest.mark.parametrize("source", SOURCES)
def test_both_back_ends_convert_as_zscale_does_both_ways(plan: ColourPlan, source: str) -> None:
    # smooth gradients within 1 code; sharp testsrc2 edges (Catmull-Rom overshoot, clipped) as tightly:
    # the kernels, siting and edges are zimg's, so they agree to the code value on the dev VM
    w, h = 64, 48
    src = lavfi_yuv(SOURCES[source], w, h)
    conv = yuv_rgb.for_plan(plan)
    ref = zscale(src, w, h, plan, to_rgb=True)
    for ours in (yuv_rgb.to_rgb24(src, w, h, conv), torch_rgb(src, w, h, conv)):
        assert ours.shape == (h, w, 3) and ours.dtype == np.uint8
        assert_close(ours, ref)
    back = zscale(ref, w, h, plan, to_rgb=False)
    for ours in (yuv_rgb.to_yuv420p(ref, conv), torch_yuv(ref, conv)):
        assert ours.shape == back.shape
        assert_close(ours, back)


def test_a_wrong_matrix_or_range_is_caught_by_the_comparison() -> None:
    # the test above can fail: bt601 read as bt709, or tv as pc, moves colours by many codes
    w, h = 64, 48
    src = lavfi_yuv(SOURCES["gradients"], w, h)
    ref = zscale(src, w, h, PLANS[0], to_rgb=True)
    assert diff(yuv_rgb.to_rgb24(src, w, h, yuv_rgb.coefficients("smpte170m", "tv")), ref).max() > 3
    assert diff(yuv_rgb.to_rgb24(src, w, h, yuv_rgb.coefficients("bt709", "pc")), ref).max() > 3


@pytest.mark.parametrize(("w", "h"), [(2, 2), (4, 2), (2, 6), (6, 4)])
def test_tiny_frames_match_zscale(w: int, h: int) -> None:
    rng = np.random.default_rng(w * 10 + h)
    src = rng.integers(16, 236, yuv_rgb.yuv420p_bytes(w, h), dtype=np.uint8)
    plan = PLANS[0]
    conv = yuv_rgb.for_plan(plan)
    ref = zscale(src, w, h, plan, to_rgb=True)
    assert_close(yuv_rgb.to_rgb24(src, w, h, conv), ref)
    assert_close(torch_rgb(src, w, h, conv), ref)
    back = zscale(ref, w, h, plan, to_rgb=False)
    assert_close(yuv_rgb.to_yuv420p(ref, conv), back)


@pytest.mark.parametrize(("w", "h"), [(33, 17), (1, 1), (3, 2), (2, 3), (65, 47)])
def test_odd_sizes_round_chroma_up_and_match_zscale_on_the_even_frame(w: int, h: int) -> None:
    # zscale refuses odd 4:2:0 sizes; the frame one pixel larger has the same chroma planes, and its
    # conversion cropped is what the odd frame's must be (the chroma grid is the same)
    rng = np.random.default_rng(w + h)
    cw, ch = -(-w // 2), -(-h // 2)
    src = lavfi_yuv(f"gradients=s=96x64:seed=2:{GRADIENT_COLOURS}", 2 * cw, 2 * ch)
    luma = src[: 4 * cw * ch].reshape(2 * ch, 2 * cw)
    odd = np.concatenate([luma[:h, :w].reshape(-1), src[4 * cw * ch :]])
    assert odd.size == yuv_rgb.yuv420p_bytes(w, h)
    conv = yuv_rgb.for_plan(PLANS[2])
    ref = zscale(src, 2 * cw, 2 * ch, PLANS[2], to_rgb=True)[:h, :w]
    assert_close(yuv_rgb.to_rgb24(odd, w, h, conv), ref)
    assert_close(torch_rgb(odd, w, h, conv), ref)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    a, b = yuv_rgb.to_yuv420p(rgb, conv), torch_yuv(rgb, conv)
    assert a.size == b.size == w * h + 2 * cw * ch
    assert_close(a, b)


def test_bad_frames_are_refused() -> None:
    conv = yuv_rgb.coefficients("bt709", "tv")
    with pytest.raises(ValueError, match="yuv420p"):
        yuv_rgb.to_rgb24(np.zeros(64 * 48 * 3 // 2 - 1, np.uint8), 64, 48, conv)
    with pytest.raises(ValueError, match="yuv420p"):
        yuv_rgb.to_rgb24(np.zeros(64 * 48 * 3 // 2, np.uint16), 64, 48, conv)
    with pytest.raises(ValueError, match="rgb24"):
        yuv_rgb.to_yuv420p(np.zeros((48, 64, 4), np.uint8), conv)
    with pytest.raises(ValueError, match="rgb24"):
        yuv_rgb.to_yuv420p(np.zeros((48, 64), np.uint8), conv)
    with pytest.raises(ValueError, match="rgb24"):
        yuv_rgb.CpuYuvRgb(64, 48, conv).to_yuv(np.zeros((48, 62, 3), np.uint8))
    with pytest.raises(ValueError, match="bytes"):
        tyr.split([np.zeros(100, np.uint8)], 64, 48)
    with pytest.raises(ValueError, match="does not fit"):
        tyr.to_rgb(torch.zeros(1, 48, 64), torch.zeros(1, 24, 31), torch.zeros(1, 24, 31), conv)


def test_a_converter_reused_across_frames_gives_each_frame_its_own_array() -> None:
    conv = yuv_rgb.coefficients("bt709", "tv")
    cpu = yuv_rgb.CpuYuvRgb(64, 48, conv)
    a, b = lavfi_yuv("testsrc2=s=64x48", 64, 48), lavfi_yuv("gradients=s=64x48:seed=9", 64, 48)
    ra, rb = cpu.to_rgb(a), cpu.to_rgb(b)
    assert not np.shares_memory(ra, rb) and np.array_equal(ra, yuv_rgb.to_rgb24(a, 64, 48, conv))
    ya, yb = cpu.to_yuv(ra), cpu.to_yuv(rb)
    assert not np.shares_memory(ya, yb) and np.array_equal(ya, yuv_rgb.to_yuv420p(ra, conv))


@settings(max_examples=40, deadline=None)
@given(
    w=st.integers(1, 24),
    h=st.integers(1, 24),
    plan=st.sampled_from(PLANS),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_frames_round_trip(w: int, h: int, plan: ColourPlan, seed: int) -> None:
    rng = np.random.default_rng(seed)
    conv = yuv_rgb.for_plan(plan)
    lo, hi = (16, 235) if plan.range == "tv" else (0, 255)
    # neutral chroma: every luma code survives yuv -> rgb -> yuv exactly (RGB has the finer steps)
    grey = np.full(yuv_rgb.yuv420p_bytes(w, h), 128, np.uint8)
    grey[: w * h] = rng.integers(lo, hi + 1, w * h, dtype=np.uint8)
    assert np.array_equal(yuv_rgb.to_yuv420p(yuv_rgb.to_rgb24(grey, w, h, conv), conv), grey)
    # any frame: the back ends agree, values stay in range, and a second trip moves nothing much
    frame = rng.integers(0, 256, yuv_rgb.yuv420p_bytes(w, h), dtype=np.uint8)
    rgb = yuv_rgb.to_rgb24(frame, w, h, conv)
    assert_close(rgb, torch_rgb(frame, w, h, conv))
    once = yuv_rgb.to_yuv420p(rgb, conv)
    assert_close(once, torch_yuv(rgb, conv))
    twice = yuv_rgb.to_yuv420p(yuv_rgb.to_rgb24(once, w, h, conv), conv)
    assert int(diff(once[: w * h], twice[: w * h]).max()) <= 64  # sanity: no wrap-around or plane swap
    # a flat colour inside the gamut comes back exactly
    flat = np.empty_like(frame)
    flat[: w * h], flat[w * h :] = rng.integers(lo + 40, hi - 40), 128 + int(rng.integers(-20, 21))
    assert_close(yuv_rgb.to_yuv420p(yuv_rgb.to_rgb24(flat, w, h, conv), conv), flat)


def test_torch_rgb_unquantised_keeps_the_in_between_values() -> None:
    conv = yuv_rgb.coefficients("bt709", "tv")
    y, u, v = tyr.split([lavfi_yuv("gradients=s=64x48:seed=4", 64, 48)], 64, 48)
    fine, coarse = tyr.to_rgb(y, u, v, conv, quantise=False), tyr.to_rgb(y, u, v, conv)
    assert fine.shape == (1, 3, 48, 64) and float(fine.min()) >= 0 and float(fine.max()) <= 1
    assert float((fine - coarse).abs().max()) <= 0.5 / 255 + 1e-6
    assert not torch.equal(fine, coarse)
