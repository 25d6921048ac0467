"""Variable frame rate is told from the frames' timestamps, and resampling keeps every frame.

An outside review found frames dropped or shifted without a word: a Matroska stream that
changes from 24 to 30 fps reports equal rates, so it was taken for constant-rate and retimed
(video 120 ms ahead of its audio); a phone clip missing one frame was cut into chunks as if
constant (frames duplicated and lost at the joins); a variable-rate stream was resampled to its
base rate (24 for a 24 -> 30 clip: 12 frames lost) or, above 240, to at most 120 (half of a
240 fps clip lost).

The drop model is checked against ffmpeg's own ``fps`` filter on random timestamps; the
product's output is checked frame by frame (lossless, every source frame distinct) with
ffprobe / framemd5.
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import pytest
from clips import (
    clip_at,
    count_frames,
    damaged_vfr_clip,
    frame_hashes,
    retimed,
    timed_clip,
    video_duration,
    video_stream,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch.config import parse_config
from batch.errors import TruncatedVideo
from batch.job.chunks import plan_chunks
from batch.job.pipeline import run_pipeline
from batch.media.encoder import choose_encoder
from batch.media.frame_times import Timeline, dropped_at, resampled_count
from batch.media.probe import probe

pytestmark = pytest.mark.integration


def run(src: Path, dest: Path) -> object:
    cfg = parse_config("inputs: [x]\noutput: out/\nencode: {codec: libx264, preset: ultrafast, crf: 0}")
    return run_pipeline(cfg, src, dest, choose_encoder(cfg.encode))


def source_pts(path: Path) -> tuple[list[int], Fraction, int, int | None]:
    import json

    data = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-of", "json", "-show_streams", "-show_format",
             "-show_entries", "packet=stream_index,flags,pts", str(path)],
            capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    video = next(s for s in data["streams"] if s["codec_type"] == "video")
    tb = Fraction(video["time_base"])
    packets = [p for p in data["packets"] if p["stream_index"] == video["index"]]
    last = max(packets, key=lambda p: p["pts"])
    origin = round(Fraction(data["format"].get("start_time") or "0") / tb)
    end = last["pts"] + last["duration"] if "duration" in last else None  # as the probe takes it
    return sorted(p["pts"] for p in packets), tb, origin, end


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(gaps=st.lists(st.integers(min_value=1, max_value=90), min_size=8, max_size=30), mkv=st.booleans())
def test_the_drop_model_is_ffmpegs_fps_filter(gaps: list[int], mkv: bool, tmp_path: Path) -> None:
    times = [0]
    for g in gaps:
        times.append(times[-1] + g)
    src = clip_at(
        tmp_path / ("s.mkv" if mkv else "s.mp4"), times
    )  # Matroska written directly: with durations
    source = frame_hashes(src)
    assert len(set(source)) == len(times)
    pts, tb, origin, end = source_pts(src)
    for rate in (Fraction(24), Fraction(30000, 1001), Fraction(60)):
        out = set(frame_hashes(src, f"fps={rate.numerator}/{rate.denominator}"))
        # the frames before the last: exact in any container
        assert dropped_at(pts, tb, rate, origin) == sum(h not in out for h in source[:-1]), (rate, times)
        if (
            mkv and end is not None
        ):  # the last too, from where it ends (MP4's end is not the one ffmpeg's decoder uses)
            assert dropped_at(pts, tb, rate, origin, end) == sum(h not in out for h in source), (rate, times)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(gaps=st.lists(st.integers(min_value=1, max_value=90), min_size=8, max_size=30), mkv=st.booleans())
def test_the_slot_model_puts_the_frames_ffmpegs_fps_filter_puts(
    gaps: list[int], mkv: bool, tmp_path: Path
) -> None:
    """Which source frame fills each resampled frame, from the timestamps alone (a chunk of a
    variable-rate input is decoded by it), against ffmpeg's own ``fps`` filter, frame by frame."""
    times = [0]
    for g in gaps:
        times.append(times[-1] + g)
    src = clip_at(tmp_path / ("s.mkv" if mkv else "s.mp4"), times)
    source = frame_hashes(src)
    pts, tb, origin, end = source_pts(src)
    for rate in (Fraction(24), Fraction(30000, 1001), Fraction(60)):
        out = frame_hashes(src, f"fps={rate.numerator}/{rate.denominator}")
        timeline = Timeline(tuple(pts), tb, origin, rate)
        upto = min(len(out), timeline.frames)  # past the last frame's slot: how long it is held
        assert [source[i] for i in timeline.picks(0, upto)] == out[:upto], (rate, times)
        # any window of them, as a chunk asks for it
        for start in range(0, upto, 5):
            count = min(7, upto - start)
            assert timeline.picks(start, count) == timeline.picks(0, upto)[start : start + count]
        if mkv and end is not None:  # where the stream ends is known: the frames to its end, held
            assert resampled_count(pts, tb, rate, origin, end) == len(out), (rate, times)
            assert [source[i] for i in timeline.picks(0, len(out))] == out, (rate, times)


def test_a_matroska_stream_from_24_to_30_fps_keeps_every_frame_and_its_sync(tmp_path: Path) -> None:
    times = "if(lt(N,48),round(N*1000/24),2000+round((N-48)*1000/30));108"
    src = clip_at(tmp_path / "vfr.mkv", times, audio=True, mkv_remux=True)
    info = probe(src)
    assert info.vfr and info.fps == 30 and info.resample_dropped == 0
    dest = tmp_path / "out.mp4"
    result = run(src, dest)
    # the rows of the preview spread over the resampled frames (they had bunched at the start: picked
    # from the source's 108 frames among the 120 that flow)
    assert info.resampled_frames == result.frames_in  # type: ignore[attr-defined]
    rows = [r.output for r in result.preview.rows]  # type: ignore[attr-defined]
    assert abs(rows[-1] - 0.75 * result.frames_in) <= 2, rows  # type: ignore[attr-defined]
    assert set(frame_hashes(dest)) == set(frame_hashes(src))  # lossless: every source frame is there
    assert count_frames(dest) == result.frames_out  # type: ignore[attr-defined]
    assert abs(video_duration(dest) - info.duration) <= 1 / 30 + info.last_frame_s
    note = next(n for n in result.notes if "variable frame rate" in n)  # type: ignore[attr-defined]
    assert "all 108 source frames kept" in note
    # each frame in the slot nearest its timestamp: frame 60, 2.4 s into the video (which starts 21 ms
    # into the file, after the audio's priming), at 30 fps
    # (it was frame 73, one frame late: the rate filter's frames were filled from the file's start
    # with a copy of the first, and the writer starts the video at 21 ms as well)
    pts, tb, origin, _ = source_pts(src)
    index = frame_hashes(dest).index(frame_hashes(src)[60])
    shown_at = float(video_stream(dest)["start_time"]) + index / 30
    assert abs(shown_at - float((pts[60] - origin) * tb)) <= 1 / 60 and index == 72


def test_a_240_fps_clip_with_jitter_keeps_all_its_frames(tmp_path: Path) -> None:
    times = "round(N*1000/240)+eq(mod(N,3),0);120"  # 4.17 ms apart, every third 1 ms late
    src = clip_at(tmp_path / "fast.mkv", times)
    info = probe(src)
    assert info.vfr and info.fps == 240 and info.resample_dropped == 0
    dest = tmp_path / "out.mp4"
    run(src, dest)
    assert set(frame_hashes(dest)) == set(frame_hashes(src))


def test_frames_closer_than_any_rate_are_dropped_and_said(tmp_path: Path) -> None:
    times = [0, 40, 80, 81, 120, 160, 200, 240]  # frames 2 and 3 are 1 ms apart
    src = clip_at(tmp_path / "burst.mkv", times)
    info = probe(src)
    assert info.vfr and info.resample_dropped == 1
    result = run(src, tmp_path / "out.mp4")
    note = next(n for n in result.notes if "variable frame rate" in n)  # type: ignore[attr-defined]
    assert "1 of the source's 8 frames dropped" in note
    assert len(set(frame_hashes(tmp_path / "out.mp4"))) == 7


def test_a_phone_clip_missing_one_frame_is_variable_and_cut_by_its_resampled_frames(tmp_path: Path) -> None:
    """It was cut as if constant (frames duplicated and lost at the joins); now its chunks count the
    frames its resampling makes (90: the missing one's slot holds the frame before), not the 89."""
    times = "round((N+gte(N,20))*1000/30);89"  # frame 20 of 90 missing
    src = clip_at(tmp_path / "gap.mp4", times)
    info = probe(src)
    assert info.vfr and info.fps == 30 and info.frame_count == 89 and info.delivered_frames == 90
    cfg = parse_config("inputs: [x]\noutput: out/\nstages: [{upscale: {scale: 1}}]\nlimits: {chunk_s: 1}")
    chunks = plan_chunks(cfg, info)
    assert chunks is not None
    assert [(c.start, c.count) for c in chunks] == [(0, 30), (30, 30), (60, 30)]
    result = run(src, tmp_path / "out.mp4")
    assert result.frames_out == count_frames(tmp_path / "out.mp4")  # type: ignore[attr-defined]
    assert set(frame_hashes(tmp_path / "out.mp4")) == set(frame_hashes(src))


@pytest.mark.parametrize("container", ["mkv", "mp4"])
def test_a_constant_rate_stream_in_a_coarse_time_base_is_not_variable(container: str, tmp_path: Path) -> None:
    """29.97 fps in milliseconds is spaced 33 and 34 ms: the rounding, not a variable rate."""
    src = clip_at(tmp_path / f"ntsc.{container}", "round(N*1001/30);60")
    assert not probe(src).vfr


def test_a_truncated_matroska_file_is_truncated_not_a_bug(tmp_path: Path) -> None:
    full = tmp_path / "full.mkv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=3",
         "-f", "lavfi", "-i", "sine=d=3", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "libvorbis",
         str(full)],
        check=True,
    )  # fmt: skip
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(
        TruncatedVideo, match=r"cut\.mkv is truncated or damaged: its container declares 3\.000 s"
    ):
        run(cut, tmp_path / "out.mp4")


def test_a_last_frame_held_long_is_variable_and_keeps_its_time(tmp_path: Path) -> None:
    """Even timestamps, but the last frame shown for a second (its packet's duration): the output
    holds it as long, at the stream's rate (the reported average rate was 20.2 fps)."""
    base = tmp_path / "base.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=96x64:r=30:d=2",
         "-c:v", "libx264", "-bf", "0", "-preset", "ultrafast", str(base)],
        check=True,
    )  # fmt: skip
    src = retimed(base, tmp_path / "held.mp4", "duration='if(eq(N\\,59)\\,15360\\,DURATION)'")
    info = probe(src)
    assert info.vfr and info.fps == 30 and abs(info.last_frame_s - 1.0) < 0.01
    dest = tmp_path / "out.mp4"
    run(src, dest)
    assert abs(video_duration(dest) - info.duration) <= 1 / 30 + 0.002
    assert set(frame_hashes(dest)) == set(frame_hashes(src))


def test_joined_transport_streams_fall_back_to_the_reported_rates(tmp_path: Path) -> None:
    """Two MPEG-TS segments joined byte for byte: the timestamps start again (ffmpeg mends the
    discontinuity); sorted together they would look like frames sharing times, a false drop count."""
    seg = tmp_path / "seg.ts"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=96x64:r=30000/1001:d=2",
         "-c:v", "libx264", "-preset", "ultrafast", str(seg)],
        check=True,
    )  # fmt: skip
    joined = tmp_path / "joined.ts"
    joined.write_bytes(seg.read_bytes() * 2)
    info = probe(joined)
    assert info.fps == Fraction(30000, 1001) and info.resample_dropped == 0


def test_frames_sharing_a_timestamp_take_the_lowest_rate_that_drops_no_more(tmp_path: Path) -> None:
    times = "floor(N/2)*round(1000/30);30"  # pairs of frames on one timestamp, 30 fps apart
    src = clip_at(tmp_path / "pairs.mkv", times)
    info = probe(src)
    assert info.vfr and info.fps == 30 and info.resample_dropped == 15


@pytest.mark.parametrize(
    "stages", ["[]", "[{interpolate: {factor: 2, ladder: [blend]}}]"], ids=["direct", "reader"]
)
def test_a_damaged_variable_rate_source_is_truncated_not_filled_in(stages: str, tmp_path: Path) -> None:
    """Frames that fail to decode would be filled by the rate filter holding the one before: the
    count cannot show it, the last frame's decode does (the job had "succeeded", 75 of 90 decoded)."""
    whole, damaged = damaged_vfr_clip(tmp_path)  # a quarter of the frames zeroed
    info = probe(damaged)
    assert info.vfr and info.frame_count == 60
    cfg = parse_config(
        f"inputs: [x]\noutput: out/\nstages: {stages}\nencode: {{codec: libx264, preset: ultrafast}}"
    )
    with pytest.raises(
        TruncatedVideo, match=r"damaged\.mp4 is truncated or damaged: fewer than its 60 frames"
    ):
        run_pipeline(cfg, damaged, tmp_path / "out.mp4", choose_encoder(cfg.encode))
    run_pipeline(cfg, whole, tmp_path / "out.mp4", choose_encoder(cfg.encode))  # the whole file passes


@pytest.mark.parametrize(
    "stages", ["[]", "[{interpolate: {factor: 2, ladder: [blend]}}]"], ids=["direct", "reader"]
)
def test_a_variable_rate_video_that_starts_after_its_audio_keeps_its_place(
    stages: str, tmp_path: Path
) -> None:
    """A phone clip's video can start after its audio. Resampled, its frames were filled from the
    file's start with copies of the first (ffmpeg's ``cfr`` output), and the video was also placed at
    its start: half a second late here, and the job failed its duration check."""
    times = "520+round((N+gte(N,20))*1000/30);60"  # 0.52 s after the audio, frame 20 missing
    src = clip_at(tmp_path / "late.mkv", times, audio=True)
    info = probe(src)
    assert info.vfr and info.start_s >= 0.52 and info.delivered_frames == 61  # (the audio primed 21 ms)
    cfg = parse_config(
        f"inputs: [x]\noutput: out/\nstages: {stages}\nencode: {{codec: ffv1, container: mkv}}"
    )
    dest = tmp_path / "out.mkv"
    result = run_pipeline(cfg, src, dest, choose_encoder(cfg.encode))
    factor = 2 if "interpolate" in stages else 1
    assert result.frames_out == count_frames(dest) == factor * 61
    assert abs(float(video_stream(dest)["start_time"]) - info.start_s) <= 1 / 60
    assert abs(probe(dest).duration - info.duration) <= 1 / 30 + info.last_frame_s  # (Matroska: its end)
    if factor == 1:  # lossless and unchanged: the source frames in order, the missing one's slot held
        out, source = frame_hashes(dest), frame_hashes(src)
        assert out == [*source[:20], source[19], *source[20:]]


@pytest.mark.parametrize(
    "stages", ["[]", "[{interpolate: {factor: 2, ladder: [blend]}}]"], ids=["direct", "reader"]
)
def test_the_last_frame_of_an_mp4_with_b_frames_is_kept(stages: str, tmp_path: Path) -> None:
    """ffmpeg's rate filter ends where the decoder says the stream ends; an MP4 with B-frames
    (x264's default) carries no duration for its samples there, so the filter dropped the last frame
    while the manifest said "all source frames kept". Resampled frames now follow the timestamps:
    the reader puts each source frame in its slot itself, the direct transcode holds the last one a
    little longer and stops at the count the timestamps give."""
    src = timed_clip(tmp_path / "phone.mp4", 100, "round((N+floor(N/37))*3000)", "1/90000",
                     "-preset", "veryfast", "-crf", "18", size="160x96", fps_mode="vfr")  # fmt: skip
    source = frame_hashes(src)
    assert source[-1] not in frame_hashes(src, "fps=30")  # the premise: ffmpeg's own filter drops it
    info = probe(src)
    assert info.vfr and info.fps == 30 and info.delivered_frames == 102 and info.timeline is not None
    in_slots = [source[i] for i in info.timeline.picks(0, 102)]
    assert in_slots[-1] == source[-1] and set(in_slots) == set(source)
    cfg = parse_config(
        f"inputs: [x]\noutput: out/\nstages: {stages}\nencode: {{codec: ffv1, container: mkv}}"
    )
    dest = tmp_path / "out.mkv"
    result = run_pipeline(cfg, src, dest, choose_encoder(cfg.encode))
    out = frame_hashes(dest)
    if stages == "[]":
        assert out == in_slots
    else:  # the source frames between the blended ones, unchanged (yuv420p through the stages)
        assert len(out) == 204 and out[::2] == in_slots
    assert "all 100 source frames kept, 2 repeated" in next(n for n in result.notes if "variable" in n)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    gaps=st.lists(st.sampled_from([16, 33, 34, 40, 67, 90, 200]), min_size=6, max_size=24),
    container=st.sampled_from(["mp4", "mov", "mkv"]),
    b_frames=st.booleans(),
)
def test_one_direct_transcode_puts_the_frames_where_the_timestamps_do(
    gaps: list[int], container: str, b_frames: bool, tmp_path: Path
) -> None:
    """The transcode without stages resamples in ffmpeg (a rate filter, the last frame held a little
    longer, cut at the count the timestamps give); frame by frame it must be what the reader and the
    chunks make from the timestamps, last frame included (B-frames: no duration at the end)."""
    times = [0]
    for g in [*gaps, 33]:  # (a last gap far longer than the rest: its MP4 declares a duration too short)
        times.append(times[-1] + g)
    x264 = ("-preset", "veryfast", "-qp", "20") if b_frames else ("-preset", "ultrafast")  # lossy: B-frames
    src = clip_at(tmp_path / f"s.{container}", times, x264=x264)
    info = probe(src)
    if not (info.vfr and info.timeline is not None and info.timeline.distinct()):
        return  # (a constant rate, or frames on one timestamp: not this test's)
    source = frame_hashes(src)
    cfg = parse_config("inputs: [x]\noutput: out/\nencode: {codec: ffv1, container: mkv}")
    dest = tmp_path / "out.mkv"
    run_pipeline(cfg, src, dest, choose_encoder(cfg.encode))
    assert frame_hashes(dest) == [source[i] for i in info.timeline.picks(0, info.delivered_frames)], times


def test_an_mp4_with_b_frames_that_declares_less_than_its_frames_last_is_not_a_timing_failure(
    tmp_path: Path,
) -> None:
    """x264's B-frames in MP4: the stream declares a length from its decode times, shorter than its
    frames are shown for (73 ms for frames shown until 96 ms and on). The frames are there; the job
    failed its duration check ("the source's timing could not be kept")."""
    src = clip_at(
        tmp_path / "s.mp4", [0, 5, 10, 15, 20, 25, 30, 63, 96], x264=("-preset", "veryfast", "-qp", "20")
    )
    declared = float(video_stream(src)["duration"])
    info = probe(src)
    assert info.vfr and declared < 0.096 <= info.duration
    cfg = parse_config("inputs: [x]\noutput: out/\nencode: {codec: ffv1, container: mkv}")
    result = run_pipeline(cfg, src, tmp_path / "out.mkv", choose_encoder(cfg.encode))
    assert result.frames_out == count_frames(tmp_path / "out.mkv") == info.delivered_frames


def test_a_file_that_starts_on_half_a_tick_is_counted_as_ffmpeg_counts_it(tmp_path: Path) -> None:
    """The file starts 12.5 ms in (its audio's start, in 1/48000 s), its video counts milliseconds:
    ffmpeg puts its time 0 at 13 ticks (halves away from zero); Python's round() said 12, and frames
    went to other slots than ffmpeg's rate filter gives them."""
    shown = [
        40,
        73,
        85,
        110,
        144,
        169,
        219,
        269,
        319,
        336,
        386,
        419,
        444,
        494,
        519,
        569,
        619,
        631,
        656,
        673,
        723,
        757,
        774,
        807,
        819,
        844,
        878,
        903,
        928,
        953,
        970,
        982,
        1007,
        1057,
        1074,
    ]
    video = clip_at(tmp_path / "v.mp4", shown)
    src = tmp_path / "half.mov"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-copyts", "-i", str(video), "-f", "lavfi",
         "-i", "sine=duration=1.2:sample_rate=48000", "-map", "0:v", "-map", "1:a", "-c:v", "copy",
         "-c:a", "pcm_s16le", "-af", "asetpts=PTS+600/(48000*TB)", "-video_track_timescale", "1000",
         "-movie_timescale", "48000", str(src)],
        check=True,
    )  # fmt: skip
    info = probe(src)
    assert info.vfr and info.timeline is not None and info.timeline.origin == 13
    source = frame_hashes(src)
    for rate in (Fraction(48), Fraction(90)):
        timeline = Timeline(info.timeline.pts, info.timeline.time_base, info.timeline.origin, rate)
        out = frame_hashes(src, f"fps={rate}")
        upto = min(len(out), timeline.frames)
        assert [source[i] for i in timeline.picks(0, upto)] == out[:upto], rate


def _held_matroska(path: Path, held_s: int, rate: int = 30, shared: bool = False) -> Path:
    """60 frames at ``rate`` fps in Matroska, the last shown for ``held_s`` seconds: Matroska stores
    no duration for it, only the track's length (its DURATION tag). ``shared``: frames 9 and 10 on
    one timestamp (the rate filter's path, not the reader's slots)."""
    setts = f"duration=if(eq(N\\,59)\\,{held_s * 1000}\\,DURATION)"
    if shared:
        setts += f":pts=if(eq(N\\,10)\\,9\\,N)*1000/{rate}:dts=if(eq(N\\,10)\\,9\\,N)*1000/{rate}"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s=96x64:r={rate}", "-frames:v", "60",
         "-c:v", "libx264", "-qp", "0", "-preset", "ultrafast", "-bsf:v", f"setts={setts}",
         "-time_base", "1/1000", str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.mark.parametrize("held_s", [2, 5])
@pytest.mark.parametrize("stages", ["", "stages: [{interpolate: {factor: 2, ladder: [blend]}}]"])
def test_a_matroska_last_frame_held_for_seconds_is_kept_not_called_truncated(
    held_s: int, stages: str, tmp_path: Path
) -> None:
    """It failed as truncated ("its container declares 3.967 s, its 60 video frames last 2.000 s"): a
    cut copy looks the same to ffprobe. The file holds its whole Segment, so the length is the last
    frame's; a copy cut short (below) is still truncated."""
    src = _held_matroska(tmp_path / "held.mkv", held_s)
    info = probe(src)
    assert info.vfr and abs(info.last_frame_s - held_s) < 0.002
    cfg = parse_config(
        f"inputs: [x]\noutput: out/\n{stages}\nencode: {{codec: libx264, preset: ultrafast, crf: 0}}"
    )
    out = tmp_path / "out.mkv"
    result = run_pipeline(cfg, src, out, choose_encoder(cfg.encode))
    factor = 2 if stages else 1
    assert count_frames(out) == result.frames_out == (59 + 30 * held_s) * factor  # type: ignore[attr-defined]
    assert abs(video_duration(out) - (59 / 30 + held_s)) <= 1 / 30
    if not stages:  # (lossless: the held frames are the source's last)
        made = frame_hashes(out)
        assert made[:60] == frame_hashes(src) and set(made[59:]) == {made[59]}
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(TruncatedVideo, match=r"cut\.mkv is truncated or damaged: its container declares"):
        run_pipeline(cfg, cut, tmp_path / "cut-out.mkv", choose_encoder(cfg.encode))


@pytest.mark.parametrize("stages", ["", "stages: [{upscale: {scale: 1}}]"])
@pytest.mark.parametrize(("held_s", "rate", "shared"), [(5, 30, True), (60, 120, False)])
def test_a_long_hold_is_kept_whole_on_every_path(
    held_s: int, rate: int, shared: bool, stages: str, tmp_path: Path
) -> None:
    """Outside review: with two frames on one timestamp (ffmpeg's rate filter resamples it) the held
    frame was dropped (60 frames for 6.97 s declared, and the job succeeded: the duration check
    allowed the whole hold); the direct transcode held a 60 s hold at 120 fps 4% short (tpad steps
    by the rate rounded to the 1 ms ticks). Now every path holds it to the count the timestamps give."""
    src = _held_matroska(tmp_path / "held.mkv", held_s, rate, shared)
    info = probe(src)
    assert info.vfr and info.timeline is not None and info.timeline.distinct() is not shared
    expected = 59 + rate * held_s
    assert info.delivered_frames == expected
    cfg = parse_config(
        f"inputs: [x]\noutput: out/\n{stages}\nencode: {{codec: libx264, preset: ultrafast, crf: 0}}"
    )
    out = tmp_path / "out.mkv"
    result = run_pipeline(cfg, src, out, choose_encoder(cfg.encode))
    assert count_frames(out) == result.frames_out == expected  # type: ignore[attr-defined]
    assert abs(video_duration(out) - expected / rate) <= 1 / rate


def test_a_late_held_video_is_held_only_where_its_length_tag_is_known_to_be_its_end(tmp_path: Path) -> None:
    """ffmpeg's Matroska muxer writes a track's end time as its DURATION tag; another muxer may write
    its length. For a video starting 1.5 s late the two readings differ by the start, and the last
    frame's hold was cut short on the wrong guess (outside review, by a tag rewritten as such a muxer
    would). The hold is taken from a file ffmpeg wrote; from another, the input fails as truncated
    with both lengths rather than come out short."""
    video = _held_matroska(tmp_path / "v.mkv", 3)
    late = tmp_path / "late.mkv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-itsoffset", "1.5", "-i", str(video), "-f", "lavfi",
         "-i", "sine=d=6", "-map", "0:v", "-map", "1:a", "-c:v", "copy",
         "-bsf:v", "setts=duration=if(eq(N\\,59)\\,3000\\,DURATION)", "-c:a", "aac", str(late)],
        check=True,
    )  # fmt: skip
    info = probe(late)
    assert info.vfr and abs(info.last_frame_s - 3) < 0.002 and info.delivered_frames == 59 + 90
    data = late.read_bytes()
    at = data.index(b"Lavf", data.index(b"ENCODER"))  # the file's ENCODER tag, as another muxer's
    other = tmp_path / "other.mkv"
    other.write_bytes(data[:at] + b"Xavf" + data[at + 4 :])
    info = probe(other)
    assert not info.vfr and info.frame_count == 60
    cfg = parse_config("inputs: [x]\noutput: out/\nencode: {codec: libx264, preset: ultrafast, crf: 0}")
    with pytest.raises(
        TruncatedVideo, match=r"other\.mkv is truncated or damaged: its container declares 4\.96"
    ):
        run_pipeline(cfg, other, tmp_path / "out.mkv", choose_encoder(cfg.encode))
