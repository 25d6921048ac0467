"""yuv420p through the device stage: uploaded as planes, converted to RGB and back on the device.

Torch runs on the CPU here (the same operations as on CUDA, without streams or pinned memory; no
GPU on this machine). The reference is ffmpeg's zscale conversion, what the reader and writer do
when RGB crosses the pipes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from clips import GRADIENT_COLOURS
from test_yuv_rgb import PLANS, assert_close, lavfi_yuv, zscale

from batch.media import yuv_rgb
from batch.media.colour import ColourPlan
from batch.models.device_worker import (
    HostFrame,
    Streams,
    Yuv420Frames,
    download_yuv,
    upload_yuv,
)

CPU = torch.device("cpu")


@pytest.mark.parametrize("depth", [8, 10])
@pytest.mark.parametrize("plan", PLANS, ids=lambda p: f"{p.matrix}-{p.range}")
def test_a_round_trip_through_the_device_is_within_a_code_of_ffmpegs(plan: ColourPlan, depth: int) -> None:
    """yuv420p and rgb24, or yuv420p10le and rgb48le: what the model sees is ffmpeg's RGB within a
    code, and what comes back is what the writer's zscale would make of it."""
    w, h = 64, 48
    sources = (f"gradients=s={w}x{h}:seed=3:{GRADIENT_COLOURS}", "testsrc2")
    frames = [lavfi_yuv(source, w, h, depth) for source in sources]
    fmt = Yuv420Frames(yuv_rgb.for_plan(plan, depth), w, h)
    streams = Streams(CPU)
    rgb = upload_yuv(streams, frames, CPU, fmt)
    assert rgb.shape == (2, 3, h, w) and rgb.dtype == torch.float32
    back = download_yuv(streams, rgb, fmt)
    top = fmt.conv.rgb_max
    for frame, ours_rgb, ours_yuv in zip(frames, rgb, back, strict=True):
        theirs_rgb = zscale(frame, w, h, plan, to_rgb=True, depth=depth)
        codes = ours_rgb.mul(top).round().to(torch.int32).permute(1, 2, 0).numpy().astype(frame.dtype)
        assert_close(codes, theirs_rgb)  # what the model sees: ffmpeg's rgb24 / rgb48le, within a code
        theirs_yuv = zscale(theirs_rgb, w, h, plan, to_rgb=False, depth=depth)
        assert ours_yuv.shape == frame.shape and ours_yuv.dtype == frame.dtype
        assert_close(ours_yuv, theirs_yuv)  # and back, as the writer's zscale makes it


def test_a_wrong_matrix_is_caught_by_the_comparison() -> None:
    """The comparison above can fail: bt2020 coefficients for a bt709 plan are many codes off."""
    w, h = 64, 48
    frame = lavfi_yuv("testsrc2=s=64x48", w, h)
    bt709 = next(p for p in PLANS if (p.matrix, p.range) == ("bt709", "tv"))
    wrong = Yuv420Frames(yuv_rgb.coefficients("bt2020", "tv"), w, h)
    rgb = upload_yuv(Streams(CPU), [frame], CPU, wrong)[0]
    codes = rgb.mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    with pytest.raises(AssertionError):
        assert_close(codes, zscale(frame, w, h, bt709, to_rgb=True))


@pytest.mark.parametrize(("w", "h"), [(2, 2), (34, 18), (6, 64)])
def test_small_and_narrow_frames_keep_their_size(w: int, h: int) -> None:
    frame = lavfi_yuv(f"testsrc2=s={w}x{h}", w, h)
    fmt = Yuv420Frames(yuv_rgb.coefficients("bt709", "tv"), w, h)
    streams = Streams(CPU)
    rgb = upload_yuv(streams, [frame], CPU, fmt)
    assert rgb.shape == (1, 3, h, w)
    (back,) = download_yuv(streams, rgb, fmt)
    assert back.shape == (yuv_rgb.yuv420p_bytes(w, h),)


def test_frames_of_the_wrong_size_or_kind_are_refused() -> None:
    fmt = Yuv420Frames(yuv_rgb.coefficients("bt709", "tv"), 64, 48)
    streams = Streams(CPU)
    right = np.zeros(yuv_rgb.yuv420p_bytes(64, 48), np.uint8)
    with pytest.raises(ValueError, match="4:2:0 frame is 4608 samples"):
        upload_yuv(streams, [right[:-1]], CPU, fmt)
    with pytest.raises(TypeError, match="uint8"):
        upload_yuv(streams, [right.astype(np.uint16)], CPU, fmt)
    with pytest.raises(TypeError, match="uint8 numpy array"):
        upload_yuv(streams, [torch.zeros(3, 48, 64)], CPU, fmt)


def test_a_host_frame_being_copied_back_is_read_when_uploaded() -> None:
    """A frame the device made earlier (a HostFrame) may be uploaded again: it is waited for."""
    fmt = Yuv420Frames(yuv_rgb.coefficients("bt709", "tv"), 64, 48)
    frame = lavfi_yuv("testsrc2=s=64x48", 64, 48)
    streams = Streams(CPU)

    class Ready:
        def synchronize(self) -> None:
            return None

    held = HostFrame(torch.from_numpy(frame.copy()), Ready(), np.uint8)
    assert torch.equal(upload_yuv(streams, [held], CPU, fmt), upload_yuv(streams, [frame], CPU, fmt))


def test_the_pinned_send_keeps_each_frame_in_its_place() -> None:
    """The CUDA path's staging (run here on the CPU, where it is not pinned): frame k lands in row k."""
    from batch.models.device_worker import _send

    frames = [np.full(10, k, np.uint8) for k in range(4)] + [np.arange(10, dtype=np.uint8)]
    sent = _send(Streams(CPU), frames, CPU)
    assert sent.dtype == torch.uint8 and sent.shape == (5, 10)
    assert np.array_equal(sent.numpy(), np.stack(frames))
    deep = [np.full((2, 3), 40000, np.uint16).view(np.int16)]
    assert _send(Streams(CPU), deep, CPU).dtype == torch.int16
