"""A variable-rate input is cut into chunks: the same frames as one pass, checkpointed.

Phone clips are variable-rate; they ran in one pass, so a preempted instance lost all of the
work on them and a host with several GPUs used one. Each chunk now decodes the source frames its
resampled frames are made of and puts each in its slot as ffmpeg's ``fps`` filter does in one
pass (``batch.media.frame_times.Timeline``). Frames are compared decoded (framemd5) from a
lossless encoder (FFV1), every source frame distinct (testsrc2 moves each frame), so "the same"
means bit for bit and a frame off by one slot shows.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest
from clips import clip_at, count_frames, damaged_vfr_clip, framemd5, retimed, timed_clip, video_duration

from batch.config import parse_config
from batch.errors import TruncatedVideo
from batch.job.chunks import DECODING, decoding_rule, fingerprint, plan_chunks
from batch.job.pipeline import Segment, pixel_plan_for, run_segment
from batch.media.encoder import choose_encoder
from batch.media.probe import probe

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# a rate-changing stage (its pairs cross the chunks' joins) and a resize (planes; at scale 1 it hands on)
STAGES = "[{interpolate: {factor: 2, ladder: [blend]}}, {upscale: {scale: 1}}]"


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def _lossless(path: Path, frames: int, pts: str, tb: str, *extra: str) -> Path:
    """testsrc2 frames at ``pts`` (an expression of N in ticks of ``tb``), x264 lossless."""
    return timed_clip(path, frames, pts, tb, "-qp", "0", "-preset", "ultrafast", *extra)


def _coarse_and_off_grid(path: Path) -> Path:
    """1/25 s ticks (a gap of 3 every 8 frames to cut at), and a file start (the audio's, 25 ms) that
    is not on them (the video's, 40 ms)."""
    video = _lossless(path.with_name("v25.mp4"), 60, "N+2*floor(N/8)", "1/25",
                      "-video_track_timescale", "25")  # fmt: skip
    audio = path.with_name("a.m4a")
    _ffmpeg(
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2.6", "-c:a", "aac", str(audio)
    )
    _ffmpeg("-itsoffset", "0.04", "-i", str(video), "-itsoffset", "0.046333", "-i", str(audio), "-map", "0:v",
            "-map", "1:a", "-c", "copy", "-video_track_timescale", "25", str(path))  # fmt: skip
    return path


def _late_with_audio(path: Path) -> Path:
    """The video half a second after the audio: MP4 keeps it with an edit, and its last sample then
    shows no duration (ffmpeg's rate filter gave the last frame no slot)."""
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=96x64:r=30", "-f", "lavfi",
            "-i", "sine=frequency=440:sample_rate=48000:duration=3.3", "-frames:v", "80",
            "-vf", "settb=1/90000,setpts='45000+round((N+gte(N,20)+2*gte(N,50))*3000)'",
            "-fps_mode", "passthrough", "-enc_time_base:v", "1/90000", "-c:v", "libx264", "-qp", "0",
            "-preset", "ultrafast", "-video_track_timescale", "90000", "-c:a", "aac", str(path))  # fmt: skip
    return path


def _interlaced(path: Path, frames: int, pts: str) -> Path:
    """Interlaced (top field first), lossless, at ``pts`` in 1/90000 s ticks."""
    return _lossless(path, frames, pts, "1/90000", "-flags", "+ilme+ildct", "-x264-params", "tff=1",
                     "-video_track_timescale", "90000")  # fmt: skip


def _keyframe_after_a_gap(path: Path) -> Path:
    """Lossy B-frames in MP4, a gap, then a keyframe that decodes before the frame shown before it:
    a seek to that frame by the MP4's index (decode times) landed on the keyframe, past it."""
    return timed_clip(path, 60, "N*3000+18000*gte(N\\,29)+90000*gte(N\\,30)", "1/90000", "-crf", "18",
                      "-bf", "3", "-g", "250", "-force_key_frames", "expr:eq(n,30)", "-preset", "medium",
                      "-video_track_timescale", "90000")  # fmt: skip


def _fragmented(make: Callable[[Path], Path]) -> Callable[[Path], Path]:
    """``make``'s clip as fragmented MP4 (one fragment a keyframe: seeks go by its fragments)."""

    def fragmented(path: Path) -> Path:
        whole = make(path.with_name("whole-" + path.name))
        _ffmpeg("-i", str(whole), "-c", "copy", "-movflags", "frag_keyframe+empty_moov", str(path))
        return path

    return fragmented


def _cfr_b_frames(path: Path) -> Path:
    """30 fps, lossy B-frames, a keyframe every 15 frames (a chunk of 14 starts just before one)."""
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=96x64:r=30", "-frames:v", "100", "-c:v", "libx264",
            "-crf", "18", "-bf", "3", "-g", "15", "-preset", "medium", "-video_track_timescale", "90000",
            str(path))  # fmt: skip
    return path


def _coarse_cfr(path: Path, rate: int, ticks: int, frames: int = 300) -> Path:
    """``rate`` fps stored in 1/``ticks`` s ticks, lossless."""
    _ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=96x64:r={rate}", "-frames:v", str(frames), "-c:v", "libx264",
            "-qp", "0", "-preset", "ultrafast", "-video_track_timescale", str(ticks), str(path))  # fmt: skip
    return path


CLIPS: dict[str, Callable[[Path], Path]] = {
    # 24 fps, then 30: Matroska reports equal rates for it; resampled to 30 with 12 frames held
    # (remuxed with its audio: the video starts 21 ms into the file, after the audio's priming)
    "24-to-30.mkv": lambda p: clip_at(
        p, "if(lt(N,48),round(N*1000/24),2000+round((N-48)*1000/30));108", audio=True, mkv_remux=True
    ),
    # a phone clip with frames missing (its slots hold the frame before), with audio
    "gaps.mp4": lambda p: clip_at(p, "round((N+gte(N,20)+gte(N,50)+2*gte(N,71))*1000/30);86", audio=True),
    # B-frames (decode order is not shown order) and a 240 fps burst in the middle, resampled to 240
    "burst-bframes.mp4": lambda p: clip_at(
        p,
        "if(lt(N,30),round(N*1000/30),if(lt(N,40),1000+round((N-30)*1000/240),1042+round((N-40)*1000/30)));70",
        x264=("-preset", "medium", "-bf", "3"),
    ),
    # microsecond ticks, frames 1 us apart where a chunk starts: halfway between them printed as
    # ffmpeg reads it (1 us) landed on the earlier frame, and the chunk came out a slot late
    "microseconds.mp4": lambda p: _lossless(
        p,
        62,
        "round((N-gte(N,16)-gte(N,47))*1000000/30)+eq(N,16)+eq(N,47)",
        "1/1000000",
        "-video_track_timescale",
        "1000000",
    ),
    "coarse-off-grid.mp4": _coarse_and_off_grid,
    "late-edit.mp4": _late_with_audio,
    # interlaced: the deinterlacer reads the fields of the frames either side of a chunk's first
    "interlaced.mp4": lambda p: _interlaced(p, 70, "round((N+gte(N,20)+gte(N,50))*3000)"),
    "keyframe-after-gap.mp4": _keyframe_after_a_gap,
    "fragmented.mp4": _fragmented(_keyframe_after_a_gap),
    # constant rate: its chunks seek by frame number, by the same rules
    "fragmented-cfr.mp4": _fragmented(_cfr_b_frames),
    "interlaced-cfr.mp4": lambda p: _interlaced(p, 90, "N*3000"),
}


def job(tmp: Path, src: Path, chunk_s: float, *, keep_parts: bool = False, stages: str = STAGES) -> Path:
    cfg = tmp / f"job-{chunk_s}-{keep_parts}.yaml"
    cfg.write_text(
        f"job_id: vfr\ninputs: [{src}]\nstages: {stages}\nencode: {{codec: ffv1, container: mkv}}\n"
        f"output: {{url: {tmp}/out/, keep_parts: {str(keep_parts).lower()}}}\n"
        f"limits: {{chunk_s: {chunk_s}}}\n"
    )
    return cfg


def run_job(cfg: Path, state: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run_with_config_batch_sync.py"), "--no-watchdog", "--config", str(cfg),
         "--state-dir", str(state)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(Path(state, "manifest.json").read_text())


def run_failing_job(out: Path, src: Path, chunk_s: float) -> dict:
    """Run the job on ``src`` in ``out`` (made here), which must fail: the input's manifest entry."""
    out.mkdir()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run_with_config_batch_sync.py"), "--no-watchdog",
         "--config", str(job(out, src, chunk_s)), "--state-dir", str(out / "state")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0
    entry: dict = json.loads((out / "state" / "manifest.json").read_text())["inputs"][0]
    assert entry["status"] == "failed"
    return entry


@pytest.mark.parametrize("name", list(CLIPS))
def test_chunks_of_a_variable_rate_input_equal_one_pass(name: str, tmp_path: Path) -> None:
    src = CLIPS[name](tmp_path / name)
    info = probe(src)
    constant = name.endswith("-cfr.mp4")
    assert constant or (info.vfr and info.timeline is not None and info.timeline.distinct())

    one = tmp_path / "one"
    one.mkdir()
    single = run_job(job(one, src, chunk_s=60), one / "state")["inputs"][0]
    assert not single.get("chunks")  # one pass
    chunked = tmp_path / "chunked"
    chunked.mkdir()
    manifest = run_job(job(chunked, src, chunk_s=14 / 30), chunked / "state")
    entry = manifest["inputs"][0]
    assert entry["chunks"]["count"] >= 4, entry["chunks"]

    stem = Path(name).stem
    a, b = one / "out" / stem / f"{stem}.mkv", chunked / "out" / stem / f"{stem}.mkv"
    frames = framemd5(b)
    assert frames == framemd5(a)
    # twice the resampled frames, every source frame among them (none dropped at a join)
    assert len(frames) == count_frames(b) == entry["media_out"]["frame_count"] == 2 * info.delivered_frames
    # the same timing within half an output frame: one pass starts the video at the source's start
    # rounded to a frame, the join at the start itself (and Matroska keeps milliseconds)
    assert abs(video_duration(b) - video_duration(a)) <= 1 / (4 * float(info.fps)) + 0.002
    assert abs(probe(b).duration - info.duration) <= 1 / 30 + info.last_frame_s  # (Matroska's tag: its end)
    if constant:
        return
    note = next(n for n in entry["notes"] if "variable frame rate" in n)
    assert note == next(n for n in single["notes"] if "variable frame rate" in n)
    assert (f"all {info.frame_count} source frames kept" in note) == (info.resample_dropped == 0)


def test_a_second_run_reuses_the_parts_of_a_variable_rate_input(tmp_path: Path) -> None:
    src = CLIPS["gaps.mp4"](tmp_path / "gaps.mp4")
    cfg = job(tmp_path, src, chunk_s=0.5, keep_parts=True)
    first = run_job(cfg, tmp_path / "state1")["inputs"][0]
    made = framemd5(tmp_path / "out" / "gaps" / "gaps.mkv")
    (tmp_path / "out" / "gaps" / "gaps.mkv").unlink()  # as a preempted run leaves it: parts, no output
    second = run_job(cfg, tmp_path / "state2")["inputs"][0]
    assert first["chunks"]["processed"] == first["chunks"]["count"] >= 5
    assert second["chunks"]["reused"] == second["chunks"]["count"] and second["chunks"]["processed"] == 0
    assert framemd5(tmp_path / "out" / "gaps" / "gaps.mkv") == made


def test_frames_sharing_a_timestamp_or_no_stages_keep_one_pass(tmp_path: Path) -> None:
    """A seek cannot tell apart two frames on one timestamp; without stages one direct transcode
    resamples the whole input."""
    base = clip_at(tmp_path / "base.mkv", "round(N*1000/30);90")
    # (written by the encoder they would be 1 ms apart: set by a filter)
    shared = retimed(base, tmp_path / "pairs.mkv", "pts=floor(N/2)*2*DURATION:dts=floor(N/2)*2*DURATION")
    pairs = probe(shared)
    assert pairs.vfr and pairs.timeline is not None and not pairs.timeline.distinct()
    staged = parse_config(f"inputs: [x]\noutput: out/\nstages: {STAGES}\nlimits: {{chunk_s: 0.5}}")
    assert plan_chunks(staged, pairs) is None
    gaps = probe(CLIPS["gaps.mp4"](tmp_path / "gaps.mp4"))
    assert plan_chunks(staged, gaps) is not None
    assert plan_chunks(parse_config("inputs: [x]\noutput: out/\nlimits: {chunk_s: 0.5}"), gaps) is None


def test_a_chunk_of_a_damaged_variable_rate_input_is_truncated_not_filled_in(tmp_path: Path) -> None:
    """A source frame that does not decode must not shift the ones after it into its slot."""
    whole, damaged = damaged_vfr_clip(tmp_path)  # a quarter of the frames zeroed
    cfg = parse_config(
        f"inputs: [x]\noutput: out/\nstages: {STAGES}\nencode: {{codec: ffv1, container: mkv}}"
    )
    for src in (damaged, whole):
        info = probe(src)
        assert info.vfr and info.timeline is not None
        segment = Segment(20, 30, last=False)  # frames 20-49: the zeroed quarter lies in them
        if src is damaged:
            with pytest.raises(
                TruncatedVideo,
                match=r"damaged\.mp4 is truncated or damaged: fewer than its 60 frames decoded "
                r"\(\d+ of source frames 2\d to",
            ):
                run_segment(cfg, info, segment, tmp_path / "part.mkv", choose_encoder(cfg.encode))
        else:
            written, _ = run_segment(cfg, info, segment, tmp_path / "part.mkv", choose_encoder(cfg.encode))
            assert written == 60


def test_a_frame_that_does_not_decode_inside_a_chunk_fails_the_input(tmp_path: Path) -> None:
    """A chunk read a frame past its end when one of its own did not decode: the job succeeded with
    that chunk's frames a slot early and a frame lost at the join. Every frame is a keyframe here, so
    the damage is one frame, in the middle of the second chunk of four."""
    whole = _lossless(tmp_path / "intra.mp4", 70, "round((N+gte(N,20)+gte(N,50))*3000)", "1/90000",
                      "-g", "1", "-video_track_timescale", "90000")  # fmt: skip
    packets = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=pos,size",
         "-of", "csv=p=0", str(whole)],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    pos, size = (int(x) for x in packets[25].split(","))
    data = bytearray(whole.read_bytes())
    data[pos : pos + size] = bytes(size)
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    for chunk_s in (0.5, 600):
        entry = run_failing_job(tmp_path / f"run-{chunk_s}", damaged, chunk_s)
        message = entry["error"]["message"]
        assert message.startswith(("damaged.mp4 is truncated or damaged", "decoding damaged.mp4 failed")), (
            message
        )


def test_chunks_of_an_interlaced_transcode_without_stages_equal_one_pass(tmp_path: Path) -> None:
    """The direct transcode's chunks seek as the reader's do: the deinterlacer reads the frame before."""
    src = CLIPS["interlaced-cfr.mp4"](tmp_path / "i.mp4")
    outputs = []
    for chunk_s in (60, 0.5):
        run = tmp_path / f"run-{chunk_s}"
        run.mkdir()
        entry = run_job(job(run, src, chunk_s, stages="[]"), run / "state")["inputs"][0]
        assert (entry.get("chunks") or {}).get("count", 1) == (1 if chunk_s == 60 else 6)
        outputs.append(framemd5(run / "out" / "i" / "i.mkv"))
    assert outputs[0] == outputs[1] and len(outputs[0]) == 90


def test_a_stream_too_close_everywhere_to_cut_stays_in_one_pass(tmp_path: Path) -> None:
    """60 fps in 1/100 s ticks (1 or 2 apart): no two frames are far enough apart to cut between but
    one, so every chunk would have decoded most of the input (quadratic in its length)."""
    src = _lossless(tmp_path / "ticks.mp4", 300, "round(N*100/60)+10*gte(N,10)", "1/100",
                    "-video_track_timescale", "100")  # fmt: skip
    info = probe(src)
    assert info.vfr and info.timeline is not None and info.timeline.distinct()
    cfg = parse_config(f"inputs: [x]\noutput: out/\nstages: {STAGES}\nlimits: {{chunk_s: 0.5}}")
    assert plan_chunks(cfg, info) is None


def test_parts_and_outputs_made_under_the_earlier_decoding_are_not_reused(tmp_path: Path) -> None:
    """A chunk of a B-frame MP4 could start a frame late before this rule (fragmented MP4: shifted by
    one, silently); parts and outputs made then carry a fingerprint without the rule, so a resumed job
    makes them again instead of joining them (found by the third outside review)."""
    frag = CLIPS["fragmented-cfr.mp4"](tmp_path / "frag.mp4")
    plain = _lossless(tmp_path / "plain.mp4", 90, "N*3000", "1/90000", "-video_track_timescale", "90000")
    phone = CLIPS["gaps.mp4"](tmp_path / "gaps.mp4")
    chunked = parse_config(f"inputs: [x]\noutput: out/\nstages: {STAGES}\nlimits: {{chunk_s: 0.5}}")
    one_pass = parse_config(f"inputs: [x]\noutput: out/\nstages: {STAGES}\nlimits: {{chunk_s: 60}}")
    b_frames, progressive, variable = probe(frag), probe(plain), probe(phone)
    assert b_frames.reorder_s > 0 and progressive.reorder_s == 0 and variable.vfr
    assert decoding_rule(chunked, b_frames) == decoding_rule(one_pass, variable) == DECODING
    assert decoding_rule(chunked, probe(CLIPS["interlaced-cfr.mp4"](tmp_path / "i.mp4"))) == DECODING
    # where the earlier rule made the same frames, fingerprints stay as they were (no work redone)
    assert decoding_rule(chunked, progressive) == decoding_rule(one_pass, b_frames) == ""
    encoder = choose_encoder(chunked.encode)
    assert fingerprint(chunked, "s", 15, encoder, "p", "") == fingerprint(chunked, "s", 15, encoder, "p")
    assert fingerprint(chunked, "s", 15, encoder, "p", DECODING) != fingerprint(
        chunked, "s", 15, encoder, "p"
    )
    # the parts a job writes carry it
    manifest = run_job(job(tmp_path, frag, 14 / 30, keep_parts=True), tmp_path / "state")
    entry = manifest["inputs"][0]
    cfg = parse_config(job(tmp_path, frag, 14 / 30, keep_parts=True).read_text())
    pixels = pixel_plan_for(cfg, b_frames, choose_encoder(cfg.encode))
    route = pixels.route
    record = json.loads((tmp_path / "out" / "frag" / "parts" / "part-00000.json").read_text())
    args = (cfg, entry["source"]["sha256"], 14, choose_encoder(cfg.encode), route)
    assert record["fingerprint"] == fingerprint(*args, DECODING) != fingerprint(*args)


@pytest.mark.parametrize(("coded", "stored"), [(30, 25), (25, 50)])
def test_a_rate_the_codec_declares_wrongly_is_read_from_the_timestamps(
    coded: int, stored: int, tmp_path: Path
) -> None:
    """25 fps stored in Matroska from an H.264 stream whose own timing says 30: ffprobe reported 30
    fps for both rates, and every job failed ("its container declares 4.793 s, its 120 video frames
    last 4.000 s"). Its frames are 40 ms apart: the output is 25 fps, as long as the input. Stored at
    50 from a stream that says 25, the direct transcode then wrote pairs of frames on one timestamp
    (its encoder's clock was the decoder's rate; outside review): each frame has its own now."""
    raw = tmp_path / "x.h264"
    _ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=96x64:r={coded}", "-frames:v", "120", "-c:v", "libx264",
            "-qp", "0", "-preset", "ultrafast", str(raw))  # fmt: skip
    src = tmp_path / "declared.mkv"
    _ffmpeg("-r", str(stored), "-i", str(raw), "-c", "copy", str(src))
    info = probe(src)
    assert info.fps == stored and info.reported_fps == coded and not info.vfr
    # outputs and parts made at the reported rate (where a job got through) are not reused
    assert decoding_rule(parse_config(f"inputs: [x]\noutput: out/\nstages: {STAGES}"), info) != ""
    length = 120 / stored
    for stages, chunk_s in (("[]", 60), ("[]", 1), (STAGES, 1)):
        run = tmp_path / f"run-{len(stages)}-{chunk_s}"
        run.mkdir()
        entry = run_job(job(run, src, chunk_s, stages=stages), run / "state")["inputs"][0]
        out = run / "out" / "declared" / "declared.mkv"
        factor = 1 if stages == "[]" else 2
        assert count_frames(out) == entry["media_out"]["frame_count"] == 120 * factor
        assert abs(video_duration(out) - length) <= 1 / stored + 0.001, video_duration(out)
        assert entry["media_in"]["fps"] == f"{stored}/1"
        assert (
            f"frame rate {stored} fps from the frames' timestamps (on its grid); the file reports {coded}"
            in (" ".join(entry["notes"]))
        )
        assert (entry.get("chunks") or {}).get("count", 1) == (1 if chunk_s == 60 else math.ceil(length))
        shown = _packet_times(out)  # each frame on its own timestamp, evenly (Matroska: milliseconds)
        steps = {b - a for a, b in itertools.pairwise(shown)}
        assert len(shown) == 120 * factor and steps <= {
            1000 // (stored * factor),
            -(-1000 // (stored * factor)),
        }


def _packet_times(path: Path) -> list[int]:
    """The video packets' timestamps in milliseconds, in the order shown."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=pts_time",
         "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return sorted(round(float(t) * 1000) for t in out)


def _video_packets(path: Path) -> list[tuple[int, int]]:
    """Each video packet's (position, size): in Matroska, where its block's track number starts."""
    packets = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=pos,size",
             "-of", "json", str(path)],
            capture_output=True, text=True, check=True,
        ).stdout
    )["packets"]  # fmt: skip
    return [(int(p["pos"]), int(p["size"])) for p in packets]


def _zero_block(src: Path, dest: Path, index: int) -> Path:
    """``src`` with video packet ``index``'s block (its header's last bytes and payload) zeroed."""
    pos, size = _video_packets(src)[index]
    data = bytearray(src.read_bytes())
    data[pos - 4 : pos + size] = bytes(size + 4)
    dest.write_bytes(bytes(data))
    return dest


@pytest.mark.parametrize("pts", ["round(N*1000/30);90", "round((N+gte(N,20)+gte(N,50))*1000/30);90"])
def test_a_matroska_block_the_demuxer_skips_fails_the_input(pts: str, tmp_path: Path) -> None:
    """ffmpeg's Matroska demuxer skips a block it cannot read to the next cluster: the probe counted
    one frame fewer, the gap looked like a variable rate, the frame before was held in its place and
    the job succeeded. Now the input fails, naming the damage and the way to accept it; bytes after
    a complete file (padding) are no damage, and the remuxed copy the hint names runs."""
    whole = clip_at(tmp_path / "whole.mkv", pts, x264=("-preset", "ultrafast", "-g", "1"), mkv_remux=True)
    damaged = _zero_block(whole, tmp_path / "damaged.mkv", 40)
    for chunk_s in (600, 0.5):
        out = tmp_path / f"run-{chunk_s}"
        entry = run_failing_job(out, damaged, chunk_s)
        assert entry["error"]["type"] == "video_truncated"
        assert entry["error"]["message"].startswith(
            "damaged.mkv is truncated or damaged: its Matroska data is unreadable at byte "
        ), entry["error"]
        assert "remux it first" in entry["error"]["hint"]
        assert not (out / "out" / "damaged" / "damaged.mkv").exists()
    padded = tmp_path / "padded.mkv"
    padded.write_bytes(whole.read_bytes() + bytes(4096))
    assert probe(padded).frame_count == probe(whole).frame_count == 90
    remuxed = tmp_path / "remuxed.mkv"
    _ffmpeg("-i", str(damaged), "-c", "copy", str(remuxed))
    assert probe(remuxed).frame_count == 89
    # a block whose header is whole but whose track number is zeroed: ffmpeg drops it the same way
    pos = _video_packets(whole)[40][0]
    data = bytearray(whole.read_bytes())
    data[pos] = 0
    (tmp_path / "zeroed-track.mkv").write_bytes(bytes(data))
    with pytest.raises(TruncatedVideo, match=r"Matroska data is unreadable"):
        probe(tmp_path / "zeroed-track.mkv")


def _ffprobe_complains(path: Path) -> bool:
    return (
        b"invalid as first byte"
        in subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "packet=pts", "-of", "csv", str(path)],
            capture_output=True,
            check=True,
        ).stderr
    )


def test_damage_in_matroska_tags_is_refused_too_with_the_way_to_accept_it(tmp_path: Path) -> None:
    """A byte zeroed in the Tags makes ffmpeg log what a lost block makes it log. Telling such damage
    (no frame lost) from a lost block, lace or track header by walking the file missed real losses
    (second outside review: a damaged lace lost 5 frames and 7 audio packets, a damaged track entry
    the audio), so it is refused as well; the hint's remux is the way to accept it."""
    good = tmp_path / "good.mkv"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=96x64:r=30", "-f", "lavfi", "-i", "sine=d=4", "-frames:v", "120",
            "-c:v", "libx264", "-qp", "0", "-preset", "ultrafast", "-g", "10", "-c:a", "libopus", "-shortest",
            str(good))  # fmt: skip
    data = good.read_bytes()
    start = data.index(b"\x12\x54\xc3\x67")  # Tags
    body = 4 + 9 - data[start + 4].bit_length()  # (its header: the ID, then its size's length)
    for offset in range(body, body + 120):  # the first byte of its body whose zeroing ffmpeg complains of
        damaged = tmp_path / f"tags-{offset}.mkv"
        damaged.write_bytes(data[: start + offset] + b"\0" + data[start + offset + 1 :])
        if _ffprobe_complains(damaged):
            break
    else:
        pytest.fail("no byte of the Tags made ffmpeg complain")
    with pytest.raises(TruncatedVideo, match=r"Matroska data is unreadable") as raised:
        probe(damaged)
    assert "remux it first" in str(raised.value.hint)
    remuxed = tmp_path / "remuxed.mkv"
    _ffmpeg("-i", str(damaged), "-c", "copy", str(remuxed))
    assert probe(remuxed).frame_count == 120 and framemd5(remuxed) == framemd5(good)


def test_a_frame_that_does_not_decode_where_two_share_a_timestamp_fails_fast(tmp_path: Path) -> None:
    """Second outside review: the rate filter's path holds the last frame on without end (a last
    frame held for seconds) and was cut only at the pipe's frame count; the check waiting for the
    source's last frame, which never decoded, kept ffmpeg cloning forever (a job hung). A trim now
    ends the graph, and the input fails as truncated at once."""
    base = clip_at(tmp_path / "base.mkv", "round(N*1000/30);90")
    pairs = retimed(base, tmp_path / "pairs.mkv", "pts=floor(N/2)*2*DURATION:dts=floor(N/2)*2*DURATION")
    pos = _video_packets(pairs)[-1][0]
    data = bytearray(pairs.read_bytes())
    data[pos + 8 : pos + 40] = bytes(32)  # the last frame's picture, its block header whole
    damaged = tmp_path / "pairs-last.mkv"
    damaged.write_bytes(bytes(data))
    info = probe(damaged)
    assert info.vfr and info.timeline is not None and not info.timeline.distinct()
    entry = run_failing_job(tmp_path / "run", damaged, 600)
    assert entry["error"]["type"] == "video_truncated", entry["error"]


@pytest.mark.parametrize(
    ("rate", "ticks", "reported"), [(20, 30, "9000/451"), (50, 60, None), (24, 25, "625/26")]
)
def test_frames_a_tick_or_two_apart_keep_one_pass_and_their_rate(
    rate: int, ticks: int, reported: str | None, tmp_path: Path
) -> None:
    """20 fps in 1/30 s ticks (spaced 2 and 1): ffprobe averaged it to 9000/451 fps, which drifts off
    the frames, and frame 240's chunk started at 241 (the input failed as truncated). At its own rate
    the chunks still cannot start exactly: ffmpeg rounds the seek and the trim to ticks, which are
    over a third of a frame here, and chunks of 50 fps in 1/60 s and 24 in 1/25 s started a frame
    early from frame 25, silently. Such an input runs in one pass, at the rate of its grid."""
    src = _coarse_cfr(tmp_path / f"c{rate}.mp4", rate, ticks)
    info = probe(src)
    assert info.fps == rate and not info.vfr and not info.cuts_exact
    assert info.reported_fps == (Fraction(reported) if reported else None)
    cfg = parse_config(f"inputs: [x]\noutput: out/\nstages: {STAGES}\nlimits: {{chunk_s: 0.5}}")
    assert plan_chunks(cfg, info) is None
    # outputs made from the earlier, shifted chunks are not taken for this rule's (outside review)
    assert decoding_rule(cfg, info) != ""
    for stages, frames in ((STAGES, 600), ("[]", 300)):
        run = tmp_path / f"run-{frames}"
        run.mkdir()
        entry = run_job(job(run, src, 0.5, stages=stages), run / "state")["inputs"][0]
        out = run / "out" / src.stem / f"{src.stem}.mkv"
        assert not entry.get("chunks") and count_frames(out) == entry["media_out"]["frame_count"] == frames
        assert abs(video_duration(out) - 300 / rate) <= 1 / rate
        if reported:
            assert f"frame rate {rate} fps from the frames' timestamps" in " ".join(entry["notes"])
    # every source frame, each once, in order
    assert framemd5(out) == framemd5(_ffv1(src, tmp_path / "src.mkv"))


def _ffv1(src: Path, dest: Path) -> Path:
    """``src``'s frames as they decode, lossless, at their rate (for framemd5)."""
    _ffmpeg("-i", str(src), "-c:v", "ffv1", "-fps_mode", "passthrough", str(dest))
    return dest


def test_constant_rate_clips_in_fine_ticks_still_run_in_chunks(tmp_path: Path) -> None:
    for name in ("fragmented-cfr.mp4", "interlaced-cfr.mp4"):
        assert probe(CLIPS[name](tmp_path / name)).cuts_exact
    jittered = timed_clip(tmp_path / "jitter.mp4", 120, "N*3000+mod(N*7\\,5)*5", "1/90000", "-qp", "0",
                          "-video_track_timescale", "90000")  # fmt: skip
    info = probe(jittered)  # up to 0.2 ms late: on no grid, yet every cut is 16 ms from a frame
    assert not info.vfr and info.cuts_exact and info.reported_fps is None
    cfg = parse_config(f"inputs: [x]\noutput: out/\nstages: {STAGES}\nlimits: {{chunk_s: 0.5}}")
    assert plan_chunks(cfg, info) is not None
