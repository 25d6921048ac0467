"""16-bit frames through the device stage, the scene tests and the zscale conversion.

The device worker uploads uint16 RGB (rgb48le) as floats in [0, 1] and hands frames back as
uint16 when they came in uint16; the scene tests read uint16 RGB and 10-bit planes in 8-bit
levels; colour.rgb_conversion converts to and from the pixel plan's 16-bit transport.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from batch.media.colour import plan_colour, rgb_conversion
from batch.media.probe import ColorInfo
from batch.models.device import to_frames, to_tensor
from batch.models.device_worker import HostFrame, NullEvent, Streams, download, upload
from batch.stages.scene import sample_plane

CPU = torch.device("cpu")


def deep_frames(n: int, h: int = 6, w: int = 5, seed: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 65536, (h, w, 3), dtype=np.uint16) for _ in range(n)]


def test_uint16_frames_upload_as_to_tensor_makes_them_and_come_back_uint16() -> None:
    frames = deep_frames(3)
    x = upload(Streams(CPU), frames, CPU)
    assert x.dtype == torch.float32 and float(x.max()) <= 1.0
    assert torch.equal(x, torch.stack([to_tensor(f, CPU) for f in frames]))
    back = download(Streams(CPU), x, np.uint16)
    assert all(b.dtype == np.uint16 and np.array_equal(b, f) for b, f in zip(back, frames, strict=True))
    assert all(np.array_equal(b, t) for b, t in zip(back, to_frames(x, np.uint16), strict=True))


def test_uint8_frames_still_come_back_uint8() -> None:
    frames = [(f >> 8).astype(np.uint8) for f in deep_frames(2)]
    back = download(Streams(CPU), upload(Streams(CPU), frames, CPU))
    assert all(b.dtype == np.uint8 and np.array_equal(b, f) for b, f in zip(back, frames, strict=True))


def test_a_host_frame_of_int16_bits_reads_back_as_uint16() -> None:
    frame = deep_frames(1)[0]
    host = torch.from_numpy(frame.view(np.int16).copy())  # how CUDA's download hands them over
    got = HostFrame(host, NullEvent(), np.uint16)
    assert got.dtype == np.uint16 and np.array_equal(got.numpy(), frame)


def test_a_tensor_among_uint16_frames_joins_them_at_16_bits() -> None:
    a, b = deep_frames(2)
    t = to_tensor(b, CPU)  # a model stage's frame, still a tensor
    x = upload(Streams(CPU), [a, t], CPU)
    assert torch.equal(x[0], to_tensor(a, CPU))
    assert torch.allclose(x[1], t, atol=0.5 / 65535)  # through uint16, not uint8


@pytest.mark.parametrize("width", [64, 1280])  # read whole, and sampled
def test_the_scene_plane_of_16_bit_rgb_matches_the_8_bit_one(width: int) -> None:
    rng = np.random.default_rng(1)
    rgb8 = rng.integers(0, 256, (36, width, 3), dtype=np.uint8)
    rgb16 = rgb8.astype(np.uint16) * 257
    diff = np.abs(sample_plane(rgb16, width, 36) - sample_plane(rgb8, width, 36))
    assert diff.max() <= 1 and diff.mean() < 0.01  # rounding at the half levels only


def test_the_scene_plane_of_10_bit_planes_is_in_8_bit_levels() -> None:
    w, h = 1280, 36
    rng = np.random.default_rng(2)
    y8 = rng.integers(16, 236, (h, w), dtype=np.uint8)
    chroma = np.full(2 * (h // 2) * (w // 2), 512, dtype=np.uint16)
    planes10 = np.concatenate([(y8.astype(np.uint16) * 4).ravel(), chroma])
    planes8 = np.concatenate([y8.ravel(), (chroma // 4).astype(np.uint8)])
    diff = np.abs(sample_plane(planes10, w, h, 1023) - sample_plane(planes8, w, h))
    assert diff.shape == (18, 640) and diff.max() <= 1  # 1023 is white, not 1020: within a level


def test_rgb_conversion_follows_the_16_bit_transport() -> None:
    plan = plan_colour(ColorInfo(range="tv", space="bt2020nc"), 1080, "yuv420p10le")
    to_rgb = rgb_conversion(plan, to_rgb=True, rgb_pix_fmt="rgb48le")
    assert to_rgb.startswith("zscale=matrixin=9:") and to_rgb.endswith("format=gbrp16le,format=rgb48le")
    back = rgb_conversion(plan, to_rgb=False, yuv_pix_fmt="yuv420p10le", rgb_pix_fmt="rgb48le")
    assert back.startswith("format=gbrp16le,zscale=matrix=9:") and back.endswith("format=yuv420p10le")
    alpha = rgb_conversion(plan, to_rgb=True, rgb_pix_fmt="rgba64le")
    assert alpha.endswith("format=gbrap16le,format=rgba64le")
    assert rgb_conversion(plan, to_rgb=True).endswith("format=gbrp,format=rgb24")  # 8-bit as before
