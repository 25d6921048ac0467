"""One input through the pipeline: frame counts, durations, audio, colour, sizes.

Every count here is read back from the encoded file with ffprobe.
"""

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from clips import (
    audio_stream,
    count_frames,
    decode_rgb,
    make_clip,
    video_duration,
    video_stream,
)

from batch.config import parse_config
from batch.errors import TruncatedVideo
from batch.job.pipeline import run_pipeline
from batch.media.colour import plan_colour
from batch.media.encoder import choose_encoder
from batch.media.probe import probe
from batch.media.reader import FrameReader

pytestmark = pytest.mark.integration


def job(stages: str = "[]", encode: str = "{codec: libx264, preset: ultrafast, crf: 12}"):
    return parse_config(f"inputs: [x]\noutput: out/\nstages: {stages}\nencode: {encode}")


def process(src: Path, dest: Path, stages: str = "[]", encode: str | None = None):
    cfg = job(stages) if encode is None else job(stages, encode)
    return run_pipeline(cfg, src, dest, choose_encoder(cfg.encode))


def decode_raw(path: Path, pix_fmt: str) -> bytes:
    # passthrough: every decoded frame once (the default would pad a late-starting video)
    cmd = ["ffmpeg", "-v", "error", "-i", str(path), "-fps_mode", "passthrough", "-f", "rawvideo"]
    return subprocess.run([*cmd, "-pix_fmt", pix_fmt, "pipe:1"], check=True, capture_output=True).stdout


def assert_audio_carried(src: Path, out: Path) -> None:
    """The source's audio is in the output whole, starting with the video."""
    a_in, a_out = audio_stream(src), audio_stream(out)
    assert a_in is not None and a_out is not None
    assert a_out["codec_name"] == a_in["codec_name"]
    assert abs(float(a_out["duration"]) - float(a_in["duration"])) < 0.025
    v_in, v_out = video_stream(src), video_stream(out)
    offset_in = float(v_in["start_time"]) - float(a_in["start_time"])
    offset_out = float(v_out["start_time"]) - float(a_out["start_time"])
    assert abs(offset_in - offset_out) < 0.002


def assert_same_duration(src: Path, out: Path, fps_out: Fraction) -> None:
    assert abs(video_duration(out) - video_duration(src)) <= float(1 / fps_out) + 1e-3


def test_no_stages_keeps_every_frame_and_the_audio(small_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    result = process(small_clip, out)
    assert count_frames(out) == 30 == result.frames_out
    assert Fraction(video_stream(out)["avg_frame_rate"]) == 30
    assert_audio_carried(small_clip, out)
    assert_same_duration(small_clip, out, Fraction(30))


@pytest.mark.parametrize(
    ("stages", "src_rate", "frames_in", "frames_out", "fps_out"),
    [
        ("[{interpolate: {factor: 2}}]", "30", 30, 60, Fraction(60)),
        (
            "[{interpolate: {factor: 3, ladder: [duplicate]}}]",
            "30",
            30,
            90,
            Fraction(90),
        ),
        ("[{interpolate: {fps: 60}}]", "24000/1001", 24, 61, Fraction(60)),  # 1.001 s needs 60.06 frames
        ("[{interpolate: {fps: 24}}]", "30", 30, 24, Fraction(24)),
    ],
)
def test_interpolation_frame_count_and_duration(
    clip_dir: Path,
    tmp_path: Path,
    stages: str,
    src_rate: str,
    frames_in: int,
    frames_out: int,
    fps_out: Fraction,
) -> None:
    src = make_clip(
        clip_dir / f"src-{src_rate.replace('/', '_')}.mp4",
        rate=src_rate,
        frames=frames_in,
    )
    out = tmp_path / "out.mp4"
    result = process(src, out, stages)
    assert count_frames(out) == frames_out == result.frames_out
    assert Fraction(video_stream(out)["avg_frame_rate"]) == fps_out
    assert_same_duration(src, out, fps_out)
    assert result.stages[0]["frames_out"] == frames_out
    assert_audio_carried(src, out)


def test_upscale_to_size_and_odd_sizes(clip_dir: Path, tmp_path: Path) -> None:
    src = make_clip(clip_dir / "odd.mkv", size="161x91", frames=10, codec="ffv1", pix_fmt="yuv444p")
    out = tmp_path / "up.mp4"
    result = process(
        src, out, "[{upscale: {width: 321}}]", "{codec: libx264, preset: ultrafast, pix_fmt: yuv420p}"
    )
    s = video_stream(out)
    # 161x91 * (321/161) = 321x181, padded by one pixel to even for 4:2:0
    assert (s["width"], s["height"]) == (322, 182)
    assert result.stages[0]["size_out"] == [321, 181]
    assert any("odd frame size" in n for n in result.notes)
    assert count_frames(out) == 10
    # pix_fmt: source keeps 4:4:4, which needs no padding
    kept = process(src, tmp_path / "444.mp4", "[{upscale: {width: 321}}]")
    s = video_stream(tmp_path / "444.mp4")
    assert (s["width"], s["height"], s["pix_fmt"]) == (321, 181, "yuv444p")
    assert not any("odd frame size" in n for n in kept.notes)


@pytest.mark.parametrize(
    ("size", "space", "matrix_name"),
    [("1280x720", "bt709", "bt709"), ("640x480", "smpte170m", "smpte170m")],
)
def test_colours_and_tags_survive(
    clip_dir: Path, tmp_path: Path, size: str, space: str, matrix_name: str
) -> None:
    src = make_clip(
        clip_dir / f"bars-{space}.mp4",
        size=size,
        frames=3,
        source="smptehdbars",
        audio=False,
        extra=[
            "-vf", f"scale=out_color_matrix={matrix_name}",
            "-colorspace", space, "-color_primaries", space, "-color_trc", space,
        ],
    )  # fmt: skip
    out = tmp_path / "out.mp4"
    process(src, out)
    s = video_stream(out)
    assert s["color_space"] == space and s["color_primaries"] == space and s["color_transfer"] == space
    before = np.frombuffer(decode_rgb(src), np.uint8).astype(int)
    after = np.frombuffer(decode_rgb(out), np.uint8).astype(int)
    # a BT.601/BT.709 mix-up shifts saturated bars by 20+ levels; encoding noise stays small
    assert np.abs(before - after).mean() < 2.0


def test_truncated_faststart_video_is_reported_not_shortened(clip_dir: Path, tmp_path: Path) -> None:
    src = make_clip(clip_dir / "fast.mp4", frames=60, extra=["-movflags", "+faststart"])
    data = src.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(TruncatedVideo, match="truncated"):
        process(cut, tmp_path / "out.mp4")


def test_lossless_ffv1_roundtrip_is_exact(small_clip: Path, tmp_path: Path) -> None:
    cfg = parse_config("inputs: [x]\noutput: out/\nencode: {codec: ffv1, container: mkv}")
    out = tmp_path / "out.mkv"
    run_pipeline(cfg, small_clip, out, choose_encoder(cfg.encode))
    assert count_frames(out) == 30
    # pix_fmt: source: ffv1 keeps the source's own yuv420p, so every plane is in the output bit for bit
    assert video_stream(out)["pix_fmt"] == "yuv420p"
    assert decode_raw(out, "yuv420p") == decode_raw(small_clip, "yuv420p")
    # with RGB frames between stages and RGB out, the frames the reader gave are in the output bit for bit
    cfg = parse_config("inputs: [x]\noutput: out/\nencode: {codec: ffv1, container: mkv, pix_fmt: gbrp}")
    run_pipeline(cfg, small_clip, out, choose_encoder(cfg.encode))
    info = probe(small_clip)
    with FrameReader(info, plan_colour(info.color, info.height, info.pix_fmt)) as reader:
        source_frames = [f.tobytes() for f in reader]
    assert decode_rgb(out, 7) == source_frames[7]
    assert decode_rgb(out, 29) == source_frames[29]


def test_variable_frame_rate_keeps_every_frame(clip_dir: Path, tmp_path: Path) -> None:
    # 30 frames at 30 fps, then 30 frames at 15 fps: base rate 30, average ~20
    src = make_clip(
        clip_dir / "vfr.mp4",
        frames=60,
        audio=False,
        extra=["-vf", "setpts='if(lt(N,30),N,30+(N-30)*2)/30/TB'", "-fps_mode", "vfr"],
    )
    out = tmp_path / "out.mp4"
    result = process(src, out)
    assert result.info_in.vfr and result.info_in.fps == 30
    # every source frame kept; the slow half's frames each held twice: 30 + 2 * 30 - 1
    assert count_frames(out) == result.frames_out
    assert 88 <= result.frames_out <= 90
    assert Fraction(video_stream(out)["avg_frame_rate"]) == 30
    assert abs(video_duration(out) - video_duration(src)) <= 1 / 30 + 1e-3
    assert any("variable frame rate" in n for n in result.notes)


def test_matroska_vfr_with_a_nominal_rate_keeps_its_duration(clip_dir: Path, tmp_path: Path) -> None:
    # 2 s at 60 fps then 6 s at 15 fps; Matroska reports 60/1 for both rates
    src = make_clip(
        clip_dir / "vfr2.mkv",
        rate="60",
        frames=210,
        audio=False,
        extra=["-vf", "setpts='if(lt(N,120),N/60,2+(N-120)/15)/TB'", "-fps_mode", "vfr"],
    )
    out = tmp_path / "out.mp4"
    result = process(src, out)
    assert result.info_in.vfr and result.info_in.fps == 60
    assert abs(video_duration(out) - result.info_in.duration) <= 1 / 60 + 1e-3
    assert count_frames(out) == result.frames_out >= 470


def test_stream_copied_cut_with_an_edit_list_is_not_truncated(clip_dir: Path, tmp_path: Path) -> None:
    import subprocess

    base = make_clip(clip_dir / "gop.mp4", frames=90, audio=False, extra=["-g", "30"])
    cut = tmp_path / "cut.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-ss", "1.3", "-i", str(base), "-c", "copy", str(cut)], check=True
    )
    result = process(cut, tmp_path / "out.mp4")
    # packets before the edit list's start decode but are never shown
    assert result.info_in.frame_count == count_frames(cut) == result.frames_out


def test_sd_transfer_tag_gamma28_is_carried(clip_dir: Path, tmp_path: Path) -> None:
    src = make_clip(
        clip_dir / "pal.mp4",
        size="720x576",
        rate="25",
        frames=5,
        audio=False,
        extra=["-colorspace", "bt470bg", "-color_primaries", "bt470bg", "-color_trc", "gamma28"],
    )
    out = tmp_path / "out.mp4"
    process(src, out, "[{upscale: {scale: 0.5}}]")
    s = video_stream(out)
    assert (s["color_space"], s["color_primaries"], s["color_transfer"]) == ("bt470bg", "bt470bg", "bt470bg")


def test_ten_bit_source_is_kept_or_the_step_down_is_noted(clip_dir: Path, tmp_path: Path) -> None:
    src = make_clip(clip_dir / "tenbit.mp4", frames=5, audio=False, pix_fmt="yuv420p10le")
    result = process(src, tmp_path / "out.mp4", encode="{codec: libx265, preset: ultrafast}")
    assert any("(yuv420p10le) encoded as 10-bit" in n for n in result.notes)
    assert video_stream(tmp_path / "out.mp4")["pix_fmt"] == "yuv420p10le"
    asked = process(src, tmp_path / "8.mp4", encode="{codec: libx264, preset: ultrafast, pix_fmt: yuv420p}")
    assert any("bit depth: 10 -> 8 (encode.pix_fmt is yuv420p)" in n for n in asked.notes)
    assert video_stream(tmp_path / "8.mp4")["pix_fmt"] == "yuv420p"


@pytest.mark.parametrize(
    ("pix_fmt", "codec"),
    [("bgr0", "ffv1"), ("rgb24", "qtrle"), ("gbrp", "ffv1")],
    ids=["ffv1-bgr0", "qtrle-rgb24", "ffv1-gbrp"],
)
@pytest.mark.parametrize(
    "stages", ["[]", "[{interpolate: {factor: 2, ladder: [blend]}}]"], ids=["none", "2x"]
)
def test_an_rgb_master_encodes_and_is_tagged_with_the_matrix_used(
    pix_fmt: str, codec: str, stages: str, tmp_path: Path
) -> None:
    """An RGB master (colour space "gbr") once made libx264 refuse `-colorspace gbr`: no output."""
    import subprocess

    src = tmp_path / ("rgb.mov" if codec == "qtrle" else "rgb.mkv")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10", "-t", "1",
         "-pix_fmt", pix_fmt, "-c:v", codec, "-y", str(src)],
        check=True,
    )  # fmt: skip
    out = tmp_path / "out.mp4"
    result = process(src, out, stages)
    stream = video_stream(out)
    assert count_frames(out) == result.frames_out == (20 if "interpolate" in stages else 10)
    assert stream["color_space"] in ("smpte170m", "bt709")  # the matrix the writer converted with
    # the picture survives: mean colour of the first frame within a few code values of the source's
    firsts = []
    for path in (src, out):
        info = probe(path)
        with FrameReader(info, plan_colour(info.color, info.height, info.pix_fmt), count=1) as reader:
            firsts.append(next(iter(reader)).astype(float))
    first_in, first_out = firsts
    assert (
        np.abs(first_in.astype(float).mean(axis=(0, 1)) - first_out.astype(float).mean(axis=(0, 1))).max() < 4
    )
