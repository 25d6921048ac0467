"""The source's other streams in the output, interlaced sources, and 1- and 2-frame clips.

Real ffmpeg throughout; every output is read back with ffprobe. Sources are
64x48, 1 s: an MKV with two text subtitle tracks (srt, ass), a bitmap one
(PGS, written byte by byte below: ffmpeg cannot render text to bitmaps),
chapters, a font attachment, a title and languages; a MOV with a timecode
track; an interlaced MPEG-2 TS.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from clips import count_frames, ffprobe, make_clip, video_duration, video_stream

from batch.config import JobConfig, parse_config
from batch.job.pipeline import PipelineResult, run_pipeline
from batch.job.runner import RunOptions, run_job
from batch.media.encoder import choose_encoder
from batch.media.probe import probe

pytestmark = pytest.mark.integration

BLEND_2X = "[{interpolate: {factor: 2, ladder: [blend]}}]"
SRT = "1\n00:00:00,200 --> 00:00:00,500\nHello\n\n2\n00:00:00,600 --> 00:00:00,900\nWorld\n"
ASS = """[Script Info]
ScriptType: v4.00+
PlayResX: 64
PlayResY: 48

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, \
Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, \
MarginR, MarginV, Encoding
Style: Default,Arial,10,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,1,0,2,1,1,1,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:00.30,0:00:00.70,Default,,0,0,0,,Bonjour
"""
CHAPTERS = """;FFMETADATA1
title=Tiny Movie

[CHAPTER]
TIMEBASE=1/1000
START=0
END=400
title=Intro

[CHAPTER]
TIMEBASE=1/1000
START=400
END=1000
title=Main
"""


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def pgs(path: Path) -> Path:
    """A Blu-ray bitmap subtitle (.sup): a 2x2 picture shown from 0.3 s to 0.6 s."""

    def segment(pts: int, kind: int, data: bytes) -> bytes:
        return b"PG" + struct.pack(">IIBH", pts, 0, kind, len(data)) + data

    def display(seconds: float, show: bool) -> bytes:
        pts = int(seconds * 90000)
        pcs = struct.pack(">HHBHBBBB", 64, 48, 0x10, 0, 0x80 if show else 0, 0, 0, int(show))
        out = segment(pts, 0x16, pcs + (struct.pack(">HBBHH", 0, 0, 0, 10, 10) if show else b""))
        out += segment(pts, 0x17, struct.pack(">BBHHHH", 1, 0, 10, 10, 2, 2))
        if show:
            out += segment(pts, 0x14, bytes([0, 0, 1, 235, 128, 128, 255]))
            body = struct.pack(">HH", 2, 2) + bytes([1, 1, 0, 0]) * 2
            ods = struct.pack(">HBB", 0, 0, 0xC0) + len(body).to_bytes(3, "big") + body
            out += segment(pts, 0x15, ods)
        return out + segment(pts, 0x80, b"")

    path.write_bytes(display(0.3, True) + display(0.6, False))
    return path


@pytest.fixture(scope="module")
def rich_mkv(clip_dir: Path) -> Path:
    """Video (jpn), audio (deu), srt (eng), ass (fra), PGS (spa), two chapters, a font, a title."""
    d = clip_dir
    (d / "a.srt").write_text(SRT)
    (d / "b.ass").write_text(ASS)
    (d / "ch.txt").write_text(CHAPTERS)
    (d / "font.ttf").write_bytes(b"\x00\x01\x00\x00" + bytes(range(256)))
    out = d / "rich.mkv"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=30", "-f", "lavfi", "-i", "sine=duration=1",
        "-i", str(d / "a.srt"), "-i", str(d / "b.ass"), "-i", str(pgs(d / "c.sup")), "-i", str(d / "ch.txt"),
        "-map", "0:v", "-map", "1:a", "-map", "2", "-map", "3", "-map", "4",
        "-map_metadata", "5", "-map_chapters", "5", "-frames:v", "30",
        "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-c:s", "copy",
        "-metadata:s:v:0", "language=jpn", "-metadata:s:a:0", "language=deu",
        "-metadata:s:s:0", "language=eng", "-metadata:s:s:1", "language=fra",
        "-metadata:s:s:1", "title=French (styled)", "-metadata:s:s:2", "language=spa",
        "-attach", str(d / "font.ttf"), "-metadata:s:t:0", "mimetype=application/x-truetype-font",
        str(out),
    )  # fmt: skip
    return out


def job(stages: str = "[]", container: str = "mkv") -> JobConfig:
    return parse_config(
        f"inputs: [x]\noutput: out/\nstages: {stages}\n"
        f"encode: {{codec: libx264, preset: ultrafast, crf: 30, container: {container}}}"
    )


def process(src: Path, dest: Path, stages: str = "[]") -> PipelineResult:
    cfg = job(stages, dest.suffix[1:])
    return run_pipeline(cfg, src, dest, choose_encoder(cfg.encode))


def streams_of(path: Path, kind: str) -> list[dict]:
    return [s for s in ffprobe(path)["streams"] if s["codec_type"] == kind]


def chapters(path: Path) -> list[tuple[float, float, str]]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_chapters", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return [
        (float(c["start_time"]), float(c["end_time"]), c["tags"]["title"])
        for c in json.loads(out)["chapters"]
    ]


def cues(path: Path, sub: int) -> list[tuple[float, float, str]]:
    """The text cues of subtitle stream ``sub`` as (start, end, text) in seconds after the first video frame.

    Read with ffmpeg's srt writer. Times count from the first frame because the
    files place it a little after zero (B-frame delay), differently at each rate.
    """
    zero = float(video_stream(path)["start_time"])
    text = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", f"0:s:{sub}", "-f", "srt", "-"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip

    def secs(t: str) -> float:
        h, m, s = t.replace(",", ".").split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    found = re.findall(r"(\d+:\d+:\d+,\d+) --> (\d+:\d+:\d+,\d+)\n(.+?)\n", text)
    return [
        (round(secs(a) - zero, 3), round(secs(b) - zero, 3), re.sub(r"<[^>]+>|\{[^}]+\}", "", t))
        for a, b, t in found
    ]


def packet_times(path: Path, stream: str) -> list[float]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", stream, "-show_entries", "packet=pts_time",
         "-of", "csv=p=0", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return [float(x) for x in out.split()]


def assert_close(
    got: list[tuple[float, float, str]], want: list[tuple[float, float, str]], frame: float
) -> None:
    assert [t for *_, t in got] == [t for *_, t in want]
    for (a0, a1, _), (b0, b1, _) in zip(got, want, strict=True):
        assert abs(a0 - b0) <= frame and abs(a1 - b1) <= frame, (got, want)


def test_mkv_to_mkv_through_2x_keeps_every_stream_on_time(rich_mkv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    result = process(rich_mkv, out, BLEND_2X)
    frame = 1 / 60
    assert count_frames(out) == 60 == result.frames_out
    assert abs(video_duration(out) - 1.0) <= frame + 1e-3
    assert result.dropped_streams == []
    subs = streams_of(out, "subtitle")
    assert [(s["codec_name"], s["tags"].get("language")) for s in subs] == [
        ("subrip", "eng"),
        ("ass", "fra"),
        ("hdmv_pgs_subtitle", "spa"),
    ]
    assert subs[1]["tags"].get("title") == "French (styled)"
    assert_close(cues(out, 0), cues(rich_mkv, 0), frame)
    assert_close(cues(out, 1), cues(rich_mkv, 1), frame)
    assert_close(cues(out, 0), [(0.2, 0.5, "Hello"), (0.6, 0.9, "World")], frame)
    got, want = packet_times(out, "s:2"), packet_times(rich_mkv, "s:2")
    assert len(got) == len(want) and all(abs(a - b) <= frame for a, b in zip(got, want, strict=True))
    assert chapters(out) == chapters(rich_mkv) == [(0.0, 0.4, "Intro"), (0.4, 1.0, "Main")]
    [font] = streams_of(out, "attachment")
    assert font["tags"]["mimetype"] == "application/x-truetype-font"
    assert font["tags"]["filename"] == "font.ttf"
    assert ffprobe(out)["format"]["tags"]["title"] == "Tiny Movie"
    assert video_stream(out)["tags"]["language"] == "jpn"
    assert streams_of(out, "audio")[0]["tags"]["language"] == "deu"
    info = probe(out)
    assert info.chapters == 2 and info.language == "jpn"


def test_mkv_to_mp4_converts_text_subtitles_and_lists_what_it_drops(rich_mkv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    result = process(rich_mkv, out, BLEND_2X)
    subs = streams_of(out, "subtitle")
    assert [(s["codec_name"], s["tags"]["language"]) for s in subs] == [
        ("mov_text", "eng"),
        ("mov_text", "fra"),
    ]
    assert_close(cues(out, 0), cues(rich_mkv, 0), 1 / 60)
    assert_close(cues(out, 1), cues(rich_mkv, 1), 1 / 60)
    assert streams_of(out, "attachment") == []
    dropped = {(d["index"], d["type"], d["codec"]): d["reason"] for d in result.dropped_streams}
    assert set(dropped) == {(4, "subtitle", "hdmv_pgs_subtitle"), (5, "attachment", "ttf")}
    assert "bitmap" in dropped[(4, "subtitle", "hdmv_pgs_subtitle")]
    assert "use mkv" in dropped[(5, "attachment", "ttf")]
    assert any("ass" in n and "mov_text" in n and "styling" in n for n in result.notes)
    assert chapters(out) == [(0.0, 0.4, "Intro"), (0.4, 1.0, "Main")]
    assert ffprobe(out)["format"]["tags"]["title"] == "Tiny Movie"
    assert video_stream(out)["tags"]["language"] == "jpn"
    assert count_frames(out) == 60


def test_mp4_with_mov_text_to_mp4_and_to_mkv(rich_mkv: Path, tmp_path: Path) -> None:
    src = tmp_path / "mt.mp4"
    ffmpeg("-i", str(rich_mkv), "-map", "0:v", "-map", "0:a", "-map", "0:s:0", "-c:v", "copy", "-c:a", "copy",
           "-c:s", "mov_text", str(src))  # fmt: skip
    assert [s["codec_name"] for s in streams_of(src, "subtitle")] == ["mov_text"]
    assert [s.tag for s in probe(src).streams if s.type == "data"] == ["text"]  # the chapter track
    out = tmp_path / "out.mp4"
    result = process(src, out)
    assert [(s["codec_name"], s["tags"]["language"]) for s in streams_of(out, "subtitle")] == [
        ("mov_text", "eng")
    ]
    assert_close(cues(out, 0), cues(src, 0), 1 / 30)
    assert_close(cues(out, 0), [(0.2, 0.5, "Hello"), (0.6, 0.9, "World")], 1 / 30)
    assert result.dropped_streams == []  # the chapter track is made again from the chapters
    assert chapters(out) == chapters(src)
    as_mkv = tmp_path / "out.mkv"
    result = process(src, as_mkv)
    assert [s["codec_name"] for s in streams_of(as_mkv, "subtitle")] == ["subrip"]  # Matroska has no mov_text
    assert_close(cues(as_mkv, 0), cues(src, 0), 1 / 30)
    assert result.dropped_streams == []


@pytest.fixture(scope="module")
def timecoded(clip_dir: Path) -> Path:
    return make_clip(
        clip_dir / "tc.mov", size="64x48", frames=30, audio=False, extra=["-timecode", "01:00:00:10"]
    )


def test_timecode_track_rescaled_with_the_rate(timecoded: Path, tmp_path: Path) -> None:
    assert probe(timecoded).timecode == "01:00:00:10"
    assert [s.tag for s in probe(timecoded).streams] == ["tmcd"]
    out = tmp_path / "out.mov"
    result = process(timecoded, out, BLEND_2X)
    tracks = [s for s in ffprobe(out)["streams"] if s.get("codec_tag_string") == "tmcd"]
    assert len(tracks) == 1 and tracks[0]["tags"]["timecode"] == "01:00:00:20"  # frame 10 of 30 = 20 of 60
    assert result.dropped_streams == []
    assert any("rescaled to 01:00:00:20" in n for n in result.notes)
    as_mkv = tmp_path / "out.mkv"
    result = process(timecoded, as_mkv)
    assert video_stream(as_mkv)["tags"]["TIMECODE"] == "01:00:00:10"
    assert result.dropped_streams == [] and any("TIMECODE tag" in n for n in result.notes)


FIELDS = "geq=lum='if(mod(N\\,2)\\,235\\,16)':cb=128:cr=128"  # odd frames white, even black


@pytest.fixture(scope="module")
def interlaced_ts(clip_dir: Path) -> Path:
    """25 frames, top field first, whose two fields are far apart: odd lines white, even lines black."""
    out = clip_dir / "interlaced.ts"
    ffmpeg(
        "-f", "lavfi", "-i", f"color=black:size=64x48:rate=50,{FIELDS}",
        "-vf", "tinterlace=mode=interleave_top,setfield=tff", "-frames:v", "25",
        "-c:v", "mpeg2video", "-q:v", "2", "-flags", "+ildct+ilme", "-top", "1", "-f", "mpegts", str(out),
    )  # fmt: skip
    return out


def combing(path: Path) -> float:
    """Mean luma step between neighbouring lines of the first frame, decoded as it is (no deinterlacing)."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo",
         "-pix_fmt", "gray", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    luma = np.frombuffer(raw, np.uint8).reshape(48, 64).astype(np.int16)
    return float(np.abs(np.diff(luma, axis=0)).mean())


def test_interlaced_source_is_deinterlaced_frame_for_frame(interlaced_ts: Path, tmp_path: Path) -> None:
    info = probe(interlaced_ts)
    assert info.field_order == "tt" and info.frame_count == 25
    assert combing(interlaced_ts) > 100  # the fields differ: every line steps by ~200
    out = tmp_path / "out.mp4"
    result = process(interlaced_ts, out)
    assert count_frames(out) == 25 == result.frames_out
    assert Fraction(video_stream(out)["avg_frame_rate"]) == 25
    assert video_stream(out)["field_order"] == "progressive"
    assert combing(out) < 20
    assert any("interlaced" in n and "bwdif" in n and "tt" in n for n in result.notes)
    assert result.info_in.to_dict()["field_order"] == "tt"
    two_x = tmp_path / "2x.mkv"
    result = process(interlaced_ts, two_x, BLEND_2X)
    assert count_frames(two_x) == 50 and combing(two_x) < 20


def test_progressive_source_is_not_deinterlaced(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "p.mp4", size="64x48", frames=10, audio=False)
    out = tmp_path / "out.mp4"
    result = process(src, out)
    assert probe(src).field_order == "progressive"
    assert not any("interlaced" in n for n in result.notes)
    assert count_frames(out) == 10


@pytest.mark.parametrize(
    ("frames", "container", "stages", "ratio"),
    [(1, "mp4", "[]", 1), (1, "mkv", BLEND_2X, 2), (2, "mp4", BLEND_2X, 2), (2, "mkv", "[]", 1)],
)
def test_one_and_two_frame_clips(
    frames: int, container: str, stages: str, ratio: int, tmp_path: Path
) -> None:
    src = make_clip(tmp_path / f"in.{container}", size="64x48", frames=frames)
    out = tmp_path / f"out.{container}"
    result = process(src, out, stages)
    assert count_frames(out) == frames * ratio == result.frames_out
    assert Fraction(video_stream(out)["avg_frame_rate"]) == 30 * ratio
    exact = frames / 30
    assert abs(video_duration(out) - exact) <= 0.0015  # Matroska keeps milliseconds
    assert len(streams_of(out, "audio")) == len(streams_of(src, "audio"))  # a 1-frame MP4 gets none
    assert result.dropped_streams == []


def test_one_frame_ts_whose_audio_holds_no_samples_lists_it(tmp_path: Path) -> None:
    """ffprobe finds no parameters for the audio of a one-frame TS: it is listed, the video is made."""
    src = make_clip(tmp_path / "one.ts", size="64x48", frames=1)
    assert probe(src).audio[0].sample_rate == 0
    out = tmp_path / "out.mkv"
    result = process(src, out, BLEND_2X)
    assert count_frames(out) == 2
    assert result.dropped_streams == [
        {"index": 1, "type": "audio", "codec": "aac", "reason": result.dropped_streams[0]["reason"]}
    ]
    assert "no sample rate" in result.dropped_streams[0]["reason"]


def test_chunked_job_keeps_subtitles_chapters_and_lists_drops(rich_mkv: Path, tmp_path: Path) -> None:
    """Three chunks joined at the end: the join adds the source's streams; the manifest lists the drops."""
    out = tmp_path / "out"
    cfg = tmp_path / "job.yaml"
    cfg.write_text(
        f"job_id: streams\ninputs: [{rich_mkv}]\nstages: {BLEND_2X}\noutput: {out}/\n"
        "encode: {codec: libx264, preset: ultrafast, crf: 30, container: mp4}\n"
        "limits: {chunk_s: 0.34, heartbeat_s: 0.5}\n"
    )
    assert run_job(str(cfg), RunOptions(dry_run=True, state_dir=tmp_path / "state")) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    [entry] = manifest["inputs"]
    assert entry["chunks"]["count"] == 3, entry
    dest = out / "rich" / "rich.mp4"
    assert count_frames(dest) == 60
    assert [s["codec_name"] for s in streams_of(dest, "subtitle")] == ["mov_text", "mov_text"]
    assert_close(cues(dest, 0), cues(rich_mkv, 0), 1 / 60)
    assert_close(cues(dest, 1), cues(rich_mkv, 1), 1 / 60)
    assert chapters(dest) == [(0.0, 0.4, "Intro"), (0.4, 1.0, "Main")]
    assert {(d["index"], d["type"]) for d in entry["dropped_streams"]} == {(4, "subtitle"), (5, "attachment")}
    assert entry["media_in"]["chapters"] == 2
    assert [s["codec"] for s in entry["media_in"]["streams"]] == ["subrip", "ass", "hdmv_pgs_subtitle", "ttf"]
    assert any("mov_text" in n for n in entry["notes"])
    # a second run reuses the verified output and still lists what it lacks
    assert run_job(str(cfg), RunOptions(dry_run=True, state_dir=tmp_path / "state2")) == 0
    [again] = json.loads((out / "manifest.json").read_text())["inputs"]
    assert any("skipped" in n for n in again["notes"])
    assert again["dropped_streams"] == entry["dropped_streams"]


@pytest.mark.parametrize(("size", "pix_fmt"), [("64x48", "yuv420p"), ("63x47", "yuv444p")])
def test_matroska_video_that_starts_after_its_audio(size: str, pix_fmt: str, tmp_path: Path) -> None:
    """ffmpeg's Matroska DURATION tag is the track's end, not its length: a late video is not VFR.

    Found from outside: the 0.35 s offset read as 9 missing frames (29 frames out of 20, or a
    duration mismatch with an odd size).
    """
    src = tmp_path / "late.mkv"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc=s={size}:r=25:d=0.8", "-f", "lavfi", "-i", "sine=d=1.2",
         "-vf", "setpts=PTS+0.35/TB", "-c:v", "libx264", "-pix_fmt", pix_fmt, "-c:a", "aac", str(src)],
        check=True,
    )  # fmt: skip
    info = probe(src)
    assert not info.vfr and info.frame_count == 20 and abs(info.duration - 0.8) < 0.01
    out = tmp_path / "out.mkv"
    result = process(src, out)
    assert count_frames(out) == 20 == result.frames_out
    video_start = float(video_stream(out)["start_time"])
    assert abs(video_start - info.start_s) <= 0.5 / 25 + 0.001  # the offset kept within half a frame
