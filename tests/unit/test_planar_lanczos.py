"""Lanczos on the source's planes must resize as zimg does, chroma siting included.

The oracle is real ffmpeg: ``zscale=filter=lanczos`` on the same planes (zimg keeps the chroma
siting it is told, "left" when none is). Our resize must land within one code of it, plane by
plane, at the edges too; the same resize with the siting ignored must not (so the content has
chroma edges that would show a shift).
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch.config import UpscaleStage
from batch.media.layout import FrameLayout
from batch.stages.base import StageInput
from batch.stages.lanczos import PlanarLanczosRung, resize_plane
from batch.stages.upscale import Upscale

W, H = 96, 64


def source_frame(tmp: Path, pix_fmt: str, width: int = W, height: int = H) -> np.ndarray:
    """One testsrc2 frame (sharp colour bars and text) as flat planes of ``pix_fmt``."""
    raw = tmp / f"src-{pix_fmt}-{width}x{height}.raw"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s={width}x{height}:r=1",
         "-frames:v", "1", "-pix_fmt", pix_fmt, "-f", "rawvideo", str(raw)],
        check=True,
    )  # fmt: skip
    layout = FrameLayout(pix_fmt, width, height)
    return np.fromfile(raw, layout.dtype)


def zscale_lanczos(
    tmp: Path, frame: np.ndarray, pix_fmt: str, size_in: tuple[int, int], size_out: tuple[int, int],
    siting: str | None = None,
) -> np.ndarray:  # fmt: skip
    src, out = tmp / "in.raw", tmp / "out.raw"
    frame.tofile(src)
    where = f":chromalin={siting}:chromal={siting}" if siting else ""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", pix_fmt,
         "-s", f"{size_in[0]}x{size_in[1]}", "-i", str(src),
         "-vf", f"zscale=w={size_out[0]}:h={size_out[1]}:filter=lanczos{where}",
         "-pix_fmt", pix_fmt, "-f", "rawvideo", str(out)],
        check=True,
    )  # fmt: skip
    return np.fromfile(out, FrameLayout(pix_fmt, *size_out).dtype)


def plane_errors(a: np.ndarray, b: np.ndarray, layout: FrameLayout) -> list[int]:
    return [
        int(np.abs(pa.astype(np.int32) - pb.astype(np.int32)).max())
        for pa, pb in zip(layout.split(a), layout.split(b), strict=True)
    ]


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv422p", "yuv444p", "yuv420p10le"])
# whole factors (2x, 4x, 1x by 2x) take the fixed-filter path; 1.5x and shrinking take Pillow's
@pytest.mark.parametrize("size_out", [(192, 128), (384, 256), (96, 128), (48, 32), (144, 96), (288, 128)])
def test_planes_resize_as_zscale_does(tmp_path: Path, pix_fmt: str, size_out: tuple[int, int]) -> None:
    frame = source_frame(tmp_path, pix_fmt)
    ours = PlanarLanczosRung(pix_fmt, (W, H)).resize(frame, *size_out)
    theirs = zscale_lanczos(tmp_path, frame, pix_fmt, (W, H), size_out)
    layout = FrameLayout(pix_fmt, *size_out)
    assert ours.dtype == layout.dtype and ours.shape == layout.shape
    tolerance = 1 if layout.bits == 8 else 4  # one 8-bit code in 10-bit codes
    assert max(plane_errors(ours, theirs, layout)) <= tolerance


@pytest.mark.parametrize("siting", ["left", "center", "topleft", "bottom"])
def test_the_chroma_siting_is_kept(tmp_path: Path, siting: str) -> None:
    frame = source_frame(tmp_path, "yuv420p")
    size_out = (192, 128)
    theirs = zscale_lanczos(tmp_path, frame, "yuv420p", (W, H), size_out, siting)
    layout = FrameLayout("yuv420p", *size_out)
    ours = PlanarLanczosRung("yuv420p", (W, H), siting).resize(frame, *size_out)
    assert max(plane_errors(ours, theirs, layout)) <= 1
    # the siting matters on this content: read as another one, chroma lands off by many codes
    other = "center" if siting != "center" else "topleft"
    shifted = PlanarLanczosRung("yuv420p", (W, H), other).resize(frame, *size_out)
    assert max(plane_errors(shifted, theirs, layout)[1:]) > 8


def test_deep_planes_ring_only_within_their_codes() -> None:
    """A black-to-white edge overshoots under Lanczos: 10-bit codes stop at 1023, not at 65535."""
    plane = np.zeros((8, 16), np.uint16)
    plane[:, 8:] = 1023
    out = resize_plane(plane, 64, 8, 1023)
    assert out.dtype == np.uint16 and int(out.max()) == 1023 and int(out.min()) == 0


def test_the_same_size_hands_the_frame_on_untouched() -> None:
    frame = np.arange(FrameLayout("yuv420p", W, H).elements, dtype=np.uint64).astype(np.uint8)
    assert PlanarLanczosRung("yuv420p", (W, H)).resize(frame, W, H) is frame


def test_planes_with_alpha_are_refused() -> None:
    with pytest.raises(ValueError, match="premultiplied"):
        PlanarLanczosRung("yuva420p", (W, H))


@settings(max_examples=40, deadline=None)
@given(
    pix_fmt=st.sampled_from(["yuv420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le"]),
    w_in=st.integers(1, 24).map(lambda n: 2 * n),
    h_in=st.integers(1, 24).map(lambda n: 2 * n),
    w_out=st.integers(1, 40).map(lambda n: 2 * n),
    h_out=st.integers(1, 40).map(lambda n: 2 * n),
    siting=st.sampled_from([None, "left", "center", "topleft", "top", "bottomleft", "bottom"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_even_size_gives_a_whole_frame_of_valid_codes(
    pix_fmt: str, w_in: int, h_in: int, w_out: int, h_out: int, siting: str | None, seed: int
) -> None:
    layout = FrameLayout(pix_fmt, w_in, h_in)
    frame = np.random.default_rng(seed).integers(0, layout.max_value + 1, layout.shape).astype(layout.dtype)
    out = PlanarLanczosRung(pix_fmt, (w_in, h_in), siting).resize(frame, w_out, h_out)
    want = FrameLayout(pix_fmt, w_out, h_out)
    assert out.dtype == want.dtype and out.shape == want.shape
    assert int(out.max()) <= want.max_value


def test_the_stage_resizes_planes_when_its_ladder_has_no_model() -> None:
    """Lanczos alone asks for no RGB; the frames it is given as planes come back as planes."""
    spec = UpscaleStage(scale=2, ladder=["lanczos"])
    assert not Upscale.caps_for(spec).needs_rgb and Upscale.caps_for(spec).resizes
    stage = Upscale(spec, StageInput(W, H, Fraction(25), pix_fmt="yuv422p10le", chroma_location="center"))
    frame = np.zeros(FrameLayout("yuv422p10le", W, H).shape, np.uint16)
    (out,) = list(stage.run(iter([frame])))
    assert out.shape == FrameLayout("yuv422p10le", 2 * W, 2 * H).shape and out.dtype == np.uint16
