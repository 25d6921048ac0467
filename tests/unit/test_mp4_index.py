"""The in-process MP4 index and H.264 SPS readers: right on real files, and never anything but
their own error on damaged or arbitrary bytes (the caller then asks ffprobe)."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch.media.h264_sps import SpsUnreadable, _Bits, parse_sps, sps_from_avcc
from batch.media.mp4_index import IndexUnreadable, read_index


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """66x50 (an SPS cropping window), 25 fps, High profile, tagged BT.709, chroma centre, AAC."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=66x50:r=25", "-f", "lavfi",
            "-i", "sine=sample_rate=48000:duration=1", "-frames:v", "20", "-c:v", "libx264",
            "-preset", "veryfast", "-profile:v", "high", "-colorspace", "bt709", "-color_range", "tv",
            "-color_trc", "bt709", "-color_primaries", "bt709", "-chroma_sample_location", "center",
            "-c:a", "aac", "-ac", "2", "-shortest", "-movflags", "+faststart", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


def test_a_real_file_reads_as_ffmpeg_wrote_it(clip: Path) -> None:
    index = read_index(clip)
    assert index.top_level[:2] == ("ftyp", "moov") and not index.fragmented
    video, audio = index.tracks
    assert (video.handler, video.fourcc, video.samples, video.width, video.height) == (
        "vide",
        "avc1",
        20,
        66,
        50,
    )
    assert len({d for _, d in video.deltas}) == 1 and video.timescale // video.deltas[0][1] == 25
    assert (audio.handler, audio.fourcc, audio.aac) == ("soun", "mp4a", (2, 48000))
    held = sum(end - start for start, end in index.mdat)
    assert held == video.sample_bytes + audio.sample_bytes
    sps = sps_from_avcc(video.avcc)
    assert sps.profile == 100  # High: its PPS carries transform_8x8_mode_flag (more_rbsp_data)
    assert (sps.width, sps.height, sps.chroma_format, sps.bit_depth_luma) == (66, 50, 1, 8)
    assert sps.colour_description and (sps.primaries, sps.transfer, sps.matrix) == (1, 1, 1)
    assert sps.video_signal_type and not sps.full_range and sps.chroma_loc_top == 1  # 1: centre


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_index_unreadable(
    tmp_path_factory: pytest.TempPathFactory, blob: bytes
) -> None:
    path = tmp_path_factory.mktemp("blob") / "x.mp4"
    path.write_bytes(blob)
    with pytest.raises(IndexUnreadable):
        read_index(path)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_damaged_real_files_raise_only_index_unreadable(clip: Path, data: st.DataObject) -> None:
    raw = bytearray(clip.read_bytes())
    end = raw.index(b"mdat") + 4
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, end - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, 64))
    path = clip.with_name("damaged.mp4")
    path.write_bytes(bytes(raw[: len(raw) - cut]))
    try:
        index = read_index(path)
    except IndexUnreadable:
        return
    for track in index.tracks:
        if track.avcc:
            with contextlib.suppress(SpsUnreadable):
                sps_from_avcc(track.avcc)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_an_sps_of_arbitrary_bits_raises_only_sps_unreadable(blob: bytes) -> None:
    try:
        sps = parse_sps(blob)
    except SpsUnreadable:
        return
    assert sps.width > 0 and sps.height > 0 and sps.chroma_format in (0, 1, 2, 3)


def test_an_sps_cut_short_or_with_bytes_after_its_end_is_refused(clip: Path) -> None:
    avcc = read_index(clip).tracks[0].avcc
    length = int.from_bytes(avcc[6:8], "big")
    rbsp = avcc[9 : 8 + length].replace(b"\x00\x00\x03", b"\x00\x00")  # emulation prevention off
    parse_sps(rbsp)
    with pytest.raises(SpsUnreadable):
        parse_sps(rbsp[:-2])
    with pytest.raises(SpsUnreadable):
        parse_sps(rbsp + b"\x80")


def test_avcc_of_another_shape_is_refused(clip: Path) -> None:
    avcc = read_index(clip).tracks[0].avcc
    for bad in (b"", avcc[:7], b"\x02" + avcc[1:], avcc[:5] + b"\xe2" + avcc[6:], avcc[: 8 + 3]):
        with pytest.raises(SpsUnreadable):
            sps_from_avcc(bad)


def test_an_sps_with_separate_colour_planes_is_refused(tmp_path: Path) -> None:
    """ffmpeg decodes no such stream (ffprobe gives no pix_fmt); read as 4:4:4, its damaged copy got
    facts ffprobe would not give (an outside review)."""
    clip = tmp_path / "444.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=64x48:r=25", "-frames:v", "2",
         "-pix_fmt", "yuv444p", "-c:v", "libx264", "-preset", "ultrafast", str(clip)],
        check=True,
    )  # fmt: skip
    avcc = read_index(clip).tracks[0].avcc
    length = int.from_bytes(avcc[6:8], "big")
    rbsp = avcc[9 : 8 + length].replace(b"\x00\x00\x03", b"\x00\x00")
    assert parse_sps(rbsp).chroma_format == 3
    bits = _Bits(rbsp)
    bits.pos = 24  # after profile_idc, the constraint flags and level_idc
    bits.ue()  # seq_parameter_set_id
    assert bits.ue() == 3  # chroma_format_idc; separate_colour_plane_flag follows
    flipped = bytearray(rbsp)
    flipped[bits.pos // 8] |= 0x80 >> (bits.pos % 8)
    with pytest.raises(SpsUnreadable, match="separate colour planes"):
        parse_sps(bytes(flipped))
