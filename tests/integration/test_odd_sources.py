"""Sources of odd width or height with subsampled chroma (97x63 yuv420p).

zscale refuses them ("image dimensions must be divisible by subsampling factor"), so every job on
such a file failed while decoding, with a hint that the input was damaged (an outside review found
it). The reader now takes the source's 4:2:0 planes from ffmpeg (odd sizes round the chroma up) and
converts them in-process with zimg's rule (batch.media.yuv_rgb). Oracle: the frame one pixel larger
has the same chroma planes, and zscale's conversion of it, cropped, is what the odd frame's must be.
Real ffmpeg throughout.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from clips import count_frames, video_stream
from test_runner_local import run_cli, write_config

from batch.errors import MediaError
from batch.media.colour import plan_colour
from batch.media.layout import FrameLayout
from batch.media.probe import probe
from batch.media.reader import FrameReader

pytestmark = pytest.mark.integration

FORMATS = {
    "yuv420p": ("rgb24", np.uint8),
    "yuv420p10le": ("rgb48le", np.uint16),
    "yuv422p": ("rgb24", np.uint8),
}


def encode_raw(frames: np.ndarray, path: Path, pix_fmt: str, w: int, h: int) -> Path:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", f"{w}x{h}", "-r", "24",
         "-i", "-", "-c:v", "ffv1", str(path)],
        input=frames.tobytes(), check=True,
    )  # fmt: skip
    return path


def even_and_odd(tmp_path: Path, pix_fmt: str, w: int, h: int) -> tuple[Path, Path]:
    """The same 4 frames of 4:2:0 at the even size and at ``w`` x ``h`` (luma cropped, chroma as is)."""
    dtype = FORMATS[pix_fmt][1]
    ew, eh = w + w % 2, h + h % 2
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={ew}x{eh}:rate=24", "-frames:v", "4",
         "-f", "rawvideo", "-pix_fmt", pix_fmt, "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    even = np.frombuffer(raw, dtype).reshape(4, -1)
    luma = even[:, : ew * eh].reshape(4, eh, ew)
    odd = np.concatenate([luma[:, :h, :w].reshape(4, -1), even[:, ew * eh :]], axis=1)
    return (
        encode_raw(even, tmp_path / f"even-{pix_fmt}.mkv", pix_fmt, ew, eh),
        encode_raw(odd, tmp_path / f"odd-{pix_fmt}.mkv", pix_fmt, w, h),
    )


def read_rgb(path: Path, rgb: str) -> list[np.ndarray]:
    info = probe(path)
    with FrameReader(info, plan_colour(info.color, info.height, info.pix_fmt), pix_fmt=rgb) as reader:
        return [np.array(f) for f in reader]


@pytest.mark.parametrize(
    ("pix_fmt", "w", "h"), [("yuv420p", 97, 63), ("yuv420p10le", 97, 64), ("yuv420p", 2, 3)]
)
def test_an_odd_sized_source_reads_as_the_even_frame_cropped(
    tmp_path: Path, pix_fmt: str, w: int, h: int
) -> None:
    rgb = FORMATS[pix_fmt][0]
    even, odd = even_and_odd(tmp_path, pix_fmt, w, h)
    assert (video_stream(odd)["width"], video_stream(odd)["height"]) == (w, h)
    ours, whole = read_rgb(odd, rgb), read_rgb(even, rgb)
    assert len(ours) == len(whole) == 4
    for a, b in zip(ours, whole, strict=True):
        assert a.shape == FrameLayout(rgb, w, h).shape and a.dtype == b.dtype
        d = np.abs(a.astype(np.int32) - b[:h, :w].astype(np.int32))
        # within a code of zscale's conversion, as the in-process back end is (tests/unit/test_yuv_rgb.py)
        assert int(d.max()) <= 2 and np.count_nonzero(d > 1) <= max(1, d.size // 200), (
            int(d.max()),
            d.mean(),
        )


@pytest.mark.parametrize(
    ("pix_fmt", "size", "block"),
    [
        ("yuv422p", "33x16", "2x1"),
        ("yuv411p", "98x16", "4x1"),
        ("yuv410p", "96x18", "4x4"),
        ("yuvj420p", "33x16", "2x2"),
    ],
)
def test_a_size_zscale_refuses_in_another_layout_is_refused_with_the_fix(
    tmp_path: Path, pix_fmt: str, size: str, block: str
) -> None:
    """Not whole chroma blocks, and not 4:2:0 of limited range: refused as such, with a crop to whole
    blocks that runs as pasted (before: "decoding failed: the input may be damaged")."""
    w, h = (int(v) for v in size.split("x"))
    path = tmp_path / f"odd-{pix_fmt}.mkv"
    codec = "mjpeg" if pix_fmt == "yuvj420p" else "ffv1"  # (ffv1 stores yuvj420p as yuv420p)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={w + 4}x{h + 4}:rate=24",
         "-frames:v", "2", "-vf", f"scale={w}:{h}", "-pix_fmt", pix_fmt, "-c:v", codec, str(path)],
        check=True,
    )  # fmt: skip
    info = probe(path)
    assert (info.width, info.height, info.pix_fmt) == (w, h, pix_fmt)
    with pytest.raises(MediaError, match=f"{size} {pix_fmt}.*{block} pixels") as caught:
        FrameReader(info, plan_colour(info.color, info.height, info.pix_fmt), pix_fmt="rgb24")
    hint = caught.value.hint or ""
    fix = (
        hint[hint.index("ffmpeg ") :]
        .replace("in.mp4", str(path))
        .replace("out.mp4", str(tmp_path / "fixed.mkv"))
    )
    subprocess.run(
        ["bash", "-c", fix + " -v error -c:v ffv1"], check=True
    )  # the hint's command runs as written
    fixed = probe(tmp_path / "fixed.mkv")
    bw, bh = (int(v) for v in block.split("x"))
    assert fixed.width % bw == 0 and fixed.height % bh == 0


def test_an_odd_sized_10_bit_source_into_an_8_bit_output(tmp_path: Path) -> None:
    """10-bit planes converted at 16 bits and rounded to rgb24 (an outside review found this crashing
    as an internal error): as zscale's rgb24 of the even frame, cropped, within a code."""
    even, odd = even_and_odd(tmp_path, "yuv420p10le", 97, 63)
    ours, whole = read_rgb(odd, "rgb24"), read_rgb(even, "rgb24")
    for a, b in zip(ours, whole, strict=True):
        assert a.dtype == np.uint8 and a.shape == (63, 97, 3)
        d = np.abs(a.astype(np.int32) - b[:63, :97].astype(np.int32))
        assert int(d.max()) <= 2 and np.count_nonzero(d > 1) <= max(1, d.size // 200), int(d.max())
    out = tmp_path / "out8"
    body = f"inputs: [{odd}]\noutput: {out}\nencode: {{codec: ffv1, container: mkv, pix_fmt: yuv420p}}\n"
    result = run_cli("--config", str(write_config(tmp_path / "eight.yaml", body)))
    assert result.returncode == 0, result.stderr
    made = out / odd.stem / f"{odd.stem}.mkv"
    assert count_frames(made) == 4 and video_stream(made)["pix_fmt"] == "yuv420p"


def test_a_job_on_an_odd_sized_source_succeeds_padded_to_even_and_says_so(tmp_path: Path) -> None:
    """No stages and a lanczos stage: before, both failed while decoding ("the input may be damaged")."""
    _, odd = even_and_odd(tmp_path, "yuv420p", 97, 63)
    for name, stages in [("plain", "[]"), ("lanczos", "[{upscale: {scale: 1, ladder: [lanczos]}}]")]:
        out = tmp_path / f"out-{name}"
        encode = "{codec: libx264, preset: ultrafast}"
        body = f"inputs: [{odd}]\noutput: {out}\nstages: {stages}\nencode: {encode}\n"
        result = run_cli("--config", str(write_config(tmp_path / f"{name}.yaml", body)))
        assert result.returncode == 0, result.stderr
        record = json.loads((out / "manifest.json").read_text())["inputs"][0]
        assert record["status"] == "succeeded"
        assert any("odd frame size padded" in n for n in record["notes"])
        assert any("converted to RGB in this process" in n for n in record["notes"])
        made = out / odd.stem / f"{odd.stem}.mp4"
        assert count_frames(made) == 4
        assert (video_stream(made)["width"], video_stream(made)["height"]) == (98, 64)
