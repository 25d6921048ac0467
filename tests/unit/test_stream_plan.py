"""The stream plan (what each container keeps, converts or lists as dropped), timecodes and deinterlacing.

Pure decisions on probed facts; the files themselves are tested in
tests/integration/test_streams.py with real ffmpeg.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batch.errors import StreamsMismatch
from batch.media.colour import plan_colour
from batch.media.interlace import deinterlace_filter, deinterlace_note
from batch.media.probe import AudioStream, ColorInfo, MediaInfo, OtherStream
from batch.media.reader import FrameReader
from batch.media.streams import check_output, plan_streams, rescale_timecode, source_args

SUBS = (
    OtherStream(2, "subtitle", "subrip", language="eng"),
    OtherStream(3, "subtitle", "ass", language="fra"),
    OtherStream(4, "subtitle", "mov_text"),
    OtherStream(5, "subtitle", "hdmv_pgs_subtitle"),
    OtherStream(6, "subtitle", "dvd_subtitle"),
    OtherStream(7, "subtitle", "eia_608"),
    OtherStream(8, "subtitle", "text"),
)
OTHERS = (
    OtherStream(9, "attachment", "ttf"),  # no mimetype: Matroska's muxer knows ttf's
    OtherStream(10, "attachment", "none", filename="notes.bin"),  # no mimetype, unknown codec
    OtherStream(11, "attachment", "none", mimetype="application/pdf"),
    OtherStream(12, "video", "mjpeg", attached_pic=True),
    OtherStream(13, "video", "h264"),
    OtherStream(14, "data", "none", tag="tmcd"),
    OtherStream(15, "data", "bin_data", tag="text"),  # an MP4 chapter track
    OtherStream(16, "data", "bin_data", tag="gpmd"),
)


def info(**kw: object) -> MediaInfo:
    base: dict[str, object] = {
        "path": "x.mkv", "container": "matroska,webm", "codec": "h264", "width": 64, "height": 48,
        "fps": Fraction(30), "frame_count": 30, "duration": 1.0, "pix_fmt": "yuv420p",
    }  # fmt: skip
    return MediaInfo(**{**base, **kw})  # type: ignore[arg-type]


def dropped(plan_info: MediaInfo, container: str, fps: Fraction = Fraction(30)) -> dict[int | None, str]:
    return {d.index: d.reason for d in plan_streams(plan_info, container, fps).dropped}


def test_matroska_keeps_what_it_can_and_converts_other_text() -> None:
    src = info(streams=SUBS + OTHERS, chapters=2, timecode="01:00:00:00")
    plan = plan_streams(src, "mkv", Fraction(60))
    assert plan.subtitles == ((2, "copy"), (3, "copy"), (4, "srt"), (5, "copy"), (6, "copy"), (8, "srt"))
    assert plan.attachments == (9, 11)
    reasons = dropped(src, "mkv")
    assert set(reasons) == {7, 10, 12, 13, 16}
    assert "eia_608" in reasons[7]
    assert "mimetype" in reasons[10]
    assert "cover art" in reasons[12] and "first video" in reasons[13]
    assert "gpmd" in reasons[16]
    assert plan.chapters == 2 and plan.timecode == "01:00:00:00"  # frame 0 is frame 0 at any rate
    assert any("mov_text" in n and "subrip" in n for n in plan.notes)


@pytest.mark.parametrize("container", ["mp4", "mov"])
def test_mp4_and_mov_hold_text_subtitles_as_mov_text_only(container: str) -> None:
    src = info(streams=SUBS + OTHERS, chapters=2, timecode="01:00:00:00")
    plan = plan_streams(src, container, Fraction(30))
    assert plan.subtitles == ((2, "mov_text"), (3, "mov_text"), (4, "copy"), (8, "mov_text"))
    assert plan.attachments == ()
    reasons = dropped(src, container)
    assert set(reasons) == {5, 6, 7, 9, 10, 11, 12, 13, 16}  # the tmcd and chapter tracks are made again
    assert "bitmap" in reasons[5] and "use mkv" in reasons[5] and "bitmap" in reasons[6]
    assert "attachments" in reasons[9]
    assert any(n.startswith("subtitle stream 3 (ass)") and "styling" in n for n in plan.notes)
    assert not any("stream 2" in n and "styling" in n for n in plan.notes)


def test_timecode_and_chapter_tracks_without_what_they_carry_are_listed() -> None:
    src = info(
        streams=(OtherStream(1, "data", "none", tag="tmcd"), OtherStream(2, "data", "bin_data", tag="text"))
    )
    assert set(dropped(src, "mp4")) == {1, 2}


def test_audio_without_samples_is_listed_and_not_mapped() -> None:
    good, empty = AudioStream(1, "aac", 2, 48000), AudioStream(2, "aac", 0, 0)
    plan = plan_streams(info(audio=(good, empty)), "mp4", Fraction(30))
    assert plan.audio == (good,)
    assert [(d.index, d.type) for d in plan.dropped] == [(2, "audio")]
    args = source_args(plan)
    assert "1:1" in args and "1:2" not in args


def test_a_declared_audio_track_without_packets_is_listed_and_not_mapped() -> None:
    """A Matroska/AVI header can declare a track (with its rate) that never got a packet: mapping it
    gave an output without audio, then a StreamsMismatch calling it a bug (outside review)."""
    good, declared = AudioStream(1, "aac", 2, 48000, packets=470), AudioStream(2, "ac3", 1, 48000, packets=0)
    plan = plan_streams(info(audio=(good, declared)), "mp4", Fraction(30))
    assert plan.audio == (good,)
    assert [(d.index, d.type) for d in plan.dropped] == [(2, "audio")]
    assert "no audio packets" in plan.dropped[0].reason
    assert plan_streams(info(audio=(good, declared)), "mkv", Fraction(30)).audio == (good, declared)
    uncounted = AudioStream(3, "aac", 2, 48000)  # packets not counted (None): kept as before
    assert plan_streams(info(audio=(uncounted,)), "mp4", Fraction(30)).audio == (uncounted,)


def test_nothing_to_carry_means_nothing_dropped() -> None:
    plan = plan_streams(info(), "mp4", Fraction(60))
    assert plan.dropped == () and plan.notes == () and plan.subtitles == ()


@pytest.mark.parametrize(
    ("tc", "fps_in", "fps_out", "want"),
    [
        ("01:00:00:10", Fraction(30), Fraction(30), "01:00:00:10"),
        ("01:00:00:10", Fraction(30), Fraction(60), "01:00:00:20"),
        ("01:00:00:05", Fraction(24), Fraction(60), "01:00:00:12"),  # 12.5 rounded down
        ("01:00:00:59", Fraction(60), Fraction(24), "01:00:00:23"),  # never the next second's frame 0
        ("00:59:59;29", Fraction(30000, 1001), Fraction(60000, 1001), "00:59:59;58"),
        ("01:00:00:10", Fraction(30), Fraction(120), "01:00:00:040"),  # ffmpeg writes 3 digits past 100 fps
        ("10:00:00.12", Fraction(25), Fraction(50), "10:00:00.24"),
    ],
)
def test_rescale_timecode(tc: str, fps_in: Fraction, fps_out: Fraction, want: str) -> None:
    assert rescale_timecode(tc, fps_in, fps_out)[0] == want


@pytest.mark.parametrize(
    ("tc", "fps_in", "fps_out", "why"),
    [
        ("00:00:00;02", Fraction(30000, 1001), Fraction(25), "drop-frame"),
        ("garbage", Fraction(30), Fraction(60), "not HH:MM:SS:FF"),
        ("01:00:00:30", Fraction(30), Fraction(60), "does not fit"),
        ("1:2:3:4", Fraction(30), Fraction(60), "not HH:MM:SS:FF"),
    ],
)
def test_timecode_that_cannot_be_kept_says_why(
    tc: str, fps_in: Fraction, fps_out: Fraction, why: str
) -> None:
    value, reason = rescale_timecode(tc, fps_in, fps_out)
    assert value is None and why in reason
    listed = plan_streams(info(fps=fps_in, timecode=tc), "mov", fps_out).dropped
    assert [(d.type, why in d.reason) for d in listed] == [("timecode", True)]


RATES = st.sampled_from([Fraction(r) for r in ("24", "25", "30", "48", "50", "60", "120")])


@given(
    h=st.integers(0, 23), m=st.integers(0, 59), s=st.integers(0, 59), f=st.integers(0, 119),
    fps_in=RATES, fps_out=RATES,
)  # fmt: skip
def test_rescaled_timecode_is_never_later_and_less_than_a_frame_earlier(
    h: int, m: int, s: int, f: int, fps_in: Fraction, fps_out: Fraction
) -> None:
    f %= int(fps_in)
    value, _ = rescale_timecode(f"{h:02d}:{m:02d}:{s:02d}:{f:02d}", fps_in, fps_out)
    assert value is not None
    hh, mm, ss, ff = (int(x) for x in value.split(":"))
    assert (hh, mm, ss) == (h, m, s) and 0 <= ff < fps_out
    error = Fraction(f) / fps_in - Fraction(ff) / fps_out
    assert 0 <= error < 1 / fps_out


def test_source_args_map_by_index_and_convert_per_output_stream() -> None:
    src = info(
        audio=(AudioStream(1, "aac", 2, 48000),),
        streams=(SUBS[0], SUBS[3], OtherStream(9, "attachment", "ttf")),
        chapters=3,
        language="jpn",
        title="Main",
        timecode="01:00:00:10",
    )
    args = source_args(plan_streams(src, "mp4", Fraction(60)))
    pairs = list(zip(args[::2], args[1::2], strict=True))
    assert pairs[:3] == [("-map", "0:v:0"), ("-map", "1:1"), ("-map", "1:2")]
    assert ("-map", "1:5") not in pairs and ("-map", "1:9") not in pairs  # PGS and font: not in MP4
    assert ("-c:s:0", "mov_text") in pairs and ("-map_chapters", "1") in pairs
    assert ("-metadata:s:v:0", "language=jpn") in pairs and ("-metadata:s:v:0", "title=Main") in pairs
    assert pairs[-2:] == [("-metadata", "timecode="), ("-metadata:s:v:0", "timecode=01:00:00:20")]
    assert source_args(None) == ["-map", "0:v:0"]
    bare = source_args(plan_streams(info(), "mkv", Fraction(30)))
    assert "-1" in bare and "-c:s:0" not in bare  # no chapters: none copied from anywhere


def test_check_output_names_what_is_missing(tmp_path: Path) -> None:
    src = info(
        audio=(AudioStream(1, "aac", 2, 48000),),
        streams=(SUBS[0], SUBS[1], OtherStream(9, "attachment", "ttf")),
        chapters=2,
        timecode="01:00:00:10",
    )
    plan = plan_streams(src, "mkv", Fraction(60))
    complete = info(
        audio=src.audio, streams=(SUBS[0], SUBS[1], OTHERS[0]), chapters=2, timecode="01:00:00:020"
    )
    check_output(plan, complete, tmp_path / "out.mkv")  # the same numbers, padded differently
    short = info(audio=(), streams=(SUBS[0],), chapters=1, timecode="01:00:00:10")
    with pytest.raises(StreamsMismatch) as caught:
        check_output(plan, short, tmp_path / "out.mkv")
    message = caught.value.message
    for what in ("audio: 0 of 1", "subtitles: 1 of 2", "attachments: 0 of 1", "chapters: 1 of 2", "timecode"):
        assert what in message
    assert caught.value.to_dict()["type"] == "streams_mismatch"


@pytest.mark.parametrize(
    ("order", "parity"),
    [("tt", "tff"), ("bt", "tff"), ("bb", "bff"), ("tb", "bff"), ("progressive", None), (None, None)],
)
def test_deinterlace_follows_the_field_order(order: str | None, parity: str | None, tmp_path: Path) -> None:
    src = info(field_order=order, path=str(tmp_path / "x.ts"))
    got = deinterlace_filter(src)
    assert got == (None if parity is None else f"bwdif=mode=send_frame:parity={parity}:deint=all")
    assert (deinterlace_note(src) is None) == (parity is None)
    reader = FrameReader(src, plan_colour(ColorInfo(), 48, "yuv420p"))
    try:
        chain = reader.command[reader.command.index("-vf") + 1]
        assert chain.startswith("bwdif=") == (parity is not None)  # first, before scaling or resampling
    finally:
        reader.close()
