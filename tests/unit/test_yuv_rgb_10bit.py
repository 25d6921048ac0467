"""10-bit 4:2:0 (yuv420p10le) <-> rgb48le in-process, both back ends, against ffmpeg's zscale: the
conversion the reader and writer run when 10-bit frames cross the pipes as RGB.

A model stage on a GPU uploads 10-bit planes and converts on its device (batch.models.yuv_rgb_torch);
the reader converts odd sizes in this process (batch.media.yuv_rgb.CpuYuvRgb). Both must give the model
what rgb48le from ffmpeg would have given it, and give the encoder back what ffmpeg would have made.
Torch runs on the CPU here (no GPU on this machine).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_yuv_rgb import PLANS, SOURCES, assert_close, diff, lavfi_yuv, zscale

from batch.media import yuv_rgb
from batch.media.colour import ColourPlan
from batch.models import yuv_rgb_torch as tyr
from batch.models.device_worker import Streams, Yuv420Frames, download_yuv, upload_yuv

CPU = torch.device("cpu")


def lavfi_yuv10(source: str, w: int, h: int) -> np.ndarray:
    return lavfi_yuv(source, w, h, depth=10)


def ramp10(w: int, h: int) -> np.ndarray:
    """A flat yuv420p10le frame: greys through the limited range's luma codes (grey: nothing clips)."""
    ch, cw = yuv_rgb.chroma_size(w, h)
    y = 64 + (np.arange(w * h) * 7) % 877
    return np.concatenate([y, np.full(2 * ch * cw, 512)]).astype(np.uint16)


def zscale10(frame: np.ndarray, w: int, h: int, plan: ColourPlan, *, to_rgb: bool) -> np.ndarray:
    return zscale(frame, w, h, plan, to_rgb=to_rgb, depth=10)


def torch_rgb48(frame: np.ndarray, w: int, h: int, conv: yuv_rgb.YuvRgb) -> np.ndarray:
    rgb = tyr.to_rgb(*tyr.split([frame], w, h), conv)
    return rgb.mul(65535).round().to(torch.int32).permute(0, 2, 3, 1)[0].numpy().astype(np.uint16)


def torch_yuv10(rgb: np.ndarray, conv: yuv_rgb.YuvRgb) -> np.ndarray:
    x = torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1)[None].div(65535)
    return tyr.join(*tyr.to_yuv(x, conv))[0]


@pytest.mark.parametrize("plan", PLANS, ids=lambda p: f"{p.matrix}-{p.range}")
@pytest.mark.parametrize("source", SOURCES)
def test_both_back_ends_convert_10_bits_as_zscale_does_both_ways(plan: ColourPlan, source: str) -> None:
    """Within a code both ways, as at 8 bits: rgb48le's codes (measured: at most 1 of 65535, every
    matrix and range) and back to 10-bit codes (at most 1)."""
    w, h = 64, 48
    src = lavfi_yuv10(SOURCES[source].replace("64x48", f"{w}x{h}"), w, h)
    assert src.dtype == np.uint16 and int(src.max()) <= 1023
    conv = yuv_rgb.for_plan(plan, 10)
    ref = zscale10(src, w, h, plan, to_rgb=True)
    for ours in (yuv_rgb.CpuYuvRgb(w, h, conv).to_rgb(src), torch_rgb48(src, w, h, conv)):
        assert ours.dtype == np.uint16 and ours.shape == ref.shape
        assert_close(ours, ref)
    back = zscale10(ref, w, h, plan, to_rgb=False)
    for ours in (yuv_rgb.CpuYuvRgb(w, h, conv).to_yuv(ref), torch_yuv10(ref, conv)):
        assert ours.dtype == np.uint16 and ours.shape == back.shape and int(ours.max()) <= 1023
        assert_close(ours, back)


def test_a_ramp_of_10_bit_codes_comes_back_from_the_device_as_it_went() -> None:
    """Greys through every 10-bit luma code of the range (nothing clips in RGB): back within a code of
    where they started, where 8 bits would have moved most samples by up to 2 (the round trip against
    ffmpeg's, every matrix and range: tests/unit/test_device_yuv.py)."""
    w, h = 64, 48
    fmt = Yuv420Frames(yuv_rgb.for_plan(PLANS[-2], 10), w, h)
    streams = Streams(CPU)
    ramp = ramp10(w, h)
    (again,) = download_yuv(streams, upload_yuv(streams, [ramp], CPU, fmt), fmt)
    assert again.dtype == np.uint16 and again.shape == ramp.shape
    luma = diff(again[: w * h], ramp[: w * h])
    assert int(luma.max()) <= 1 and luma.mean() < 0.1, (int(luma.max()), luma.mean())
    assert np.count_nonzero(ramp[: w * h] % 4) > w * h // 2  # (the ramp does use the low two bits)
    assert fmt.conv.yuv_max == 1023 and fmt.conv.rgb_max == 65535 and fmt.name == "yuv420p10le"


def test_10_bit_coefficients_are_the_8_bit_ones_scaled() -> None:
    """Limited range at 10 bits is 8 bits' 16-235 / 16-240 times four, full range spans 0-1023."""
    for matrix in ("bt709", "bt2020"):
        eight, ten = yuv_rgb.coefficients(matrix, "tv"), yuv_rgb.coefficients(matrix, "tv", 10)
        white = np.array([65535.0, 65535.0, 65535.0, 1.0])
        black = np.array([0.0, 0.0, 0.0, 1.0])
        assert np.allclose(np.array(ten.to_yuv) @ white, [940, 512, 512])
        assert np.allclose(np.array(ten.to_yuv) @ black, [64, 512, 512])
        assert np.allclose(np.array(eight.to_yuv) @ np.array([255.0, 255.0, 255.0, 1.0]), [235, 128, 128])
        full = yuv_rgb.coefficients(matrix, "pc", 10)
        assert np.allclose(np.array(full.to_yuv) @ white, [1023, 512, 512])
    with pytest.raises(ValueError, match="12 bits is not converted here"):
        yuv_rgb.coefficients("bt709", "tv", 12)


def test_frames_of_the_wrong_depth_are_refused() -> None:
    w, h = 64, 48
    ten = Yuv420Frames(yuv_rgb.coefficients("bt709", "tv", 10), w, h)
    eight = Yuv420Frames(yuv_rgb.coefficients("bt709", "tv"), w, h)
    samples = yuv_rgb.yuv420p_bytes(w, h)
    with pytest.raises(TypeError, match="yuv420p10le frame must be a uint16 numpy array"):
        upload_yuv(Streams(CPU), [np.zeros(samples, np.uint8)], CPU, ten)
    with pytest.raises(TypeError, match="yuv420p frame must be a uint8 numpy array"):
        upload_yuv(Streams(CPU), [np.zeros(samples, np.uint16)], CPU, eight)
    with pytest.raises(ValueError, match="yuv420p10le frame is"):
        yuv_rgb.CpuYuvRgb(w, h, ten.conv).to_rgb(np.zeros(samples, np.uint8))
    with pytest.raises(ValueError, match="rgb48le frame here"):
        yuv_rgb.CpuYuvRgb(w, h, ten.conv).to_yuv(np.zeros((h, w, 3), np.uint8))


@pytest.mark.parametrize(
    ("y_code", "c_code"), [(65472, 512), (32768, 512), (1023, 512), (500, 65535), (40000, 0)]
)
def test_codes_above_10_bits_clip_alike_on_both_back_ends(y_code: int, c_code: int) -> None:
    """A stray code past 1023 (an MSB-aligned P010 sample, a damaged decode) crosses to the device as
    int16: it must clip as the CPU back end and ffmpeg clip it (white), not wrap to negative (black)."""
    w, h = 4, 2
    conv = yuv_rgb.coefficients("bt709", "tv", 10)
    frame = np.concatenate([np.full(w * h, y_code), np.full(4, c_code)]).astype(np.uint16)
    cpu = yuv_rgb.CpuYuvRgb(w, h, conv).to_rgb(frame)
    device = upload_yuv(Streams(CPU), [frame], CPU, Yuv420Frames(conv, w, h))[0]
    got = device.mul(65535).round().to(torch.int32).permute(1, 2, 0).numpy()
    assert int(diff(got, cpu).max()) <= 1, (got[0, 0], cpu[0, 0])
