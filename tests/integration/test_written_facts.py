"""One ffprobe per input: the output's facts read from its index must be ffprobe's facts.

Each case encodes a real source through the pipeline (real ffmpeg), then compares the
MediaInfo the job used (``result.info_out``) with a full ffprobe of the same file, field by
field. The common outputs must take the in-process reading (no ffprobe run for the output);
the others (HDR, subtitles, rotation, Matroska, transcoded audio, HEVC) must fall back to
ffprobe. Damaged outputs, and random damage to a real one, never get facts ffprobe would not
give.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch.config import parse_config
from batch.errors import BatchError
from batch.job import pipeline
from batch.job.pipeline import run_pipeline
from batch.media.encoder import choose_encoder
from batch.media.probe import MediaInfo, probe
from batch.media.written import facts

pytestmark = pytest.mark.integration

AAC = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=1"]


def source(
    path: Path,
    *,
    size: str = "64x48",
    rate: str = "30",
    frames: int = 12,
    vf: str = "format=yuv420p",
    extra_in: list[str] | None = None,
    out: list[str] | None = None,
) -> Path:
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s={size}:r={rate}"]
    cmd += extra_in or []
    cmd += ["-vf", vf, "-frames:v", str(frames)]
    cmd += out or ["-c:v", "libx264", "-preset", "ultrafast"]
    subprocess.run([*cmd, "-shortest", str(path)], check=True)
    return path


def run(
    src: Path, dest: Path, stages: str = "[]", encode: str = "{codec: libx264, preset: ultrafast}"
) -> Any:
    cfg = parse_config(f"inputs: [x]\noutput: out/\nstages: {stages}\nencode: {encode}")
    return run_pipeline(cfg, src, dest, choose_encoder(cfg.encode))


def same_as_ffprobe(info: MediaInfo, dest: Path) -> None:
    full = probe(dest)
    assert dataclasses.replace(info, path="") == dataclasses.replace(full, path="")


@pytest.fixture
def output_probes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files the pipeline ran ffprobe on (the real probe still runs)."""
    seen: list[Path] = []

    def counting(path: Path) -> MediaInfo:
        seen.append(Path(path))
        return probe(path)

    monkeypatch.setattr(pipeline, "probe", counting)
    return seen


HLG = ("-color_trc", "arib-std-b67", "-color_primaries", "bt2020", "-colorspace", "bt2020nc")
X265_PQ = [
    "-c:v", "libx265", "-x265-params",
    "log-level=error:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"
    ":max-cll=1000,400",
    "-color_trc", "smpte2084", "-color_primaries", "bt2020", "-colorspace", "bt2020nc",
]  # fmt: skip


def _x264(pix_fmt: str, *extra: str, vf: str = "") -> tuple[dict[str, Any], str, str]:
    """A FAST case: a libx264 source in ``pix_fmt``, transcoded with no stages into MP4."""
    out = ["-c:v", "libx264", "-pix_fmt", pix_fmt, *extra]
    return {"vf": vf or f"format={pix_fmt}", "out": out}, "[]", "mp4"


FAST = {
    "untagged, no audio": ({}, "[]", "mp4"),
    "untagged, aac copied": ({"extra_in": AAC, "out": ["-c:v", "libx264", "-c:a", "aac"]}, "[]", "mp4"),
    "bt709 tv tagged": (
        {"out": ["-c:v", "libx264", "-color_range", "tv", "-colorspace", "bt709",
                 "-color_trc", "bt709", "-color_primaries", "bt709"]},
        "[]", "mp4",
    ),
    "smpte170m SD": (
        {"out": ["-c:v", "libx264", "-colorspace", "smpte170m", "-color_trc", "smpte170m",
                 "-color_primaries", "smpte170m", "-color_range", "tv"]},
        "[]", "mp4",
    ),
    "bt470bg matrix only": ({"out": ["-c:v", "libx264", "-colorspace", "bt470bg"]}, "[]", "mp4"),
    "chroma sited center": (
        {"out": ["-c:v", "libx264", "-chroma_sample_location", "center"]}, "[]", "mp4"
    ),
    "odd size (SPS cropping)": ({"size": "66x50"}, "[]", "mp4"),
    "NTSC rate": ({"rate": "30000/1001"}, "[]", "mp4"),
    "mov": ({}, "[]", "mov"),
    "two audio tracks": (
        {"extra_in": [*AAC, *AAC], "out": ["-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "libx264",
                                           "-c:a", "aac"]},
        "[]", "mp4",
    ),
    "10-bit": _x264("yuv420p10le"),
    "10-bit full range": _x264("yuv420p10le", "-color_range", "pc"),
    "4:2:2": _x264("yuv422p"),
    "4:2:2 10-bit": _x264("yuv422p10le"),
    "4:4:4": _x264("yuv444p"),
    "4:2:2 full range (MJPEG-like)": _x264("yuvj422p", vf="scale=out_range=full,format=yuvj422p"),
    "4:2:0 full range (phone-like)": _x264("yuvj420p", vf="scale=out_range=full,format=yuvj420p"),
    # HDR: the mastering data from the first frame, by the one-frame ffprobe probe() runs too
    "10-bit HLG": _x264("yuv420p10le", *HLG),
    "10-bit PQ from a source with mastering data": (
        {"vf": "format=yuv420p10le", "out": [*X265_PQ, "-pix_fmt", "yuv420p10le"]}, "[]", "mp4"
    ),
    "through the pipes, 2x blend": ({}, "[{interpolate: {factor: 2, ladder: [blend]}}]", "mp4"),
    "through the pipes, crop": ({"size": "96x64"}, "[{crop: {width: 50, height: 34}}]", "mp4"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(FAST))
def test_common_outputs_are_read_from_their_index_and_equal_ffprobe(
    case: str, tmp_path: Path, output_probes: list[Path]
) -> None:
    kwargs, stages, container = FAST[case]
    src = source(tmp_path / "src.mp4", **kwargs)  # type: ignore[arg-type]
    dest = tmp_path / f"out.{container}"
    result = run(src, dest, stages, f"{{codec: libx264, preset: ultrafast, container: {container}}}")
    assert dest not in output_probes, "the output should be read from its index, not by ffprobe"
    same_as_ffprobe(result.info_out, dest)


def test_a_high_profile_output_with_b_frames_is_read_from_its_index(
    tmp_path: Path, output_probes: list[Path]
) -> None:
    """veryfast: High profile (8x8 transforms in the PPS), B-frames (ctts, an edit list), AAC."""
    src = source(tmp_path / "src.mp4", frames=40, extra_in=AAC, out=["-c:v", "libx264", "-c:a", "aac"])
    dest = tmp_path / "out.mp4"
    result = run(src, dest, "[]", "{codec: libx264, preset: veryfast, crf: 30}")
    assert dest not in output_probes
    same_as_ffprobe(result.info_out, dest)


@pytest.mark.parametrize("ext", ["mkv", "avi"])
def test_a_source_whose_audio_track_holds_no_packets_gives_an_output_without_it(
    ext: str, tmp_path: Path
) -> None:
    """ffmpeg 5.1 with -shortest on a 1-second clip declares the audio track and writes no packet
    into it; the job listed it as kept and then failed (StreamsMismatch: "this is a bug")."""
    codec = "ac3" if ext == "mkv" else "libmp3lame"
    sine = ["-f", "lavfi", "-i", "sine=sample_rate=48000:duration=1"]
    src = source(tmp_path / f"src.{ext}", frames=30, extra_in=sine, out=["-c:v", "libx264", "-c:a", codec])
    info = probe(src)
    if not info.audio or info.audio[0].packets != 0:
        pytest.skip("this ffmpeg writes the audio packets; nothing to test")
    dest = tmp_path / "out.mp4"
    result = run(src, dest)
    assert result.info_out.audio == () and [d["type"] for d in result.dropped_streams] == ["audio"]
    same_as_ffprobe(result.info_out, dest)


SLOW = {
    "matroska output": ({"extra_in": AAC, "out": ["-c:v", "libx264", "-c:a", "aac"]}, "mkv", ""),
    "mov_text subtitles": ({}, "mp4", "subtitles"),
    "rotation": ({}, "mp4", "rotate"),
    "pcm audio (transcoded to aac)": (
        {"extra_in": AAC, "out": ["-c:v", "libx264", "-c:a", "pcm_s16le"]}, "mp4", "mov-src"
    ),
    "hevc": ({}, "mp4", "hevc"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(SLOW))
def test_other_outputs_fall_back_to_ffprobe(case: str, tmp_path: Path, output_probes: list[Path]) -> None:
    kwargs, container, how = SLOW[case]
    if how == "subtitles":
        srt = tmp_path / "subs.srt"
        srt.write_text("1\n00:00:00,000 --> 00:00:00,300\nhello\n\n")
        kwargs = {"extra_in": ["-i", str(srt)], "out": ["-c:v", "libx264", "-c:s", "mov_text"]}
    src = source(tmp_path / ("src.mov" if how == "mov-src" else "src.mp4"), **kwargs)  # type: ignore[arg-type]
    if how == "rotate":  # a display matrix, as phones write it (set on a stream copy in ffmpeg 5.1)
        rotated = tmp_path / "rotated.mp4"
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-i",
                str(src),
                "-c",
                "copy",
                "-metadata:s:v",
                "rotate=90",
                str(rotated),
            ],
            check=True,
        )
        src = rotated
        assert probe(src).rotation == 90
    dest = tmp_path / f"out.{container}"
    codec = "libx265" if how == "hevc" else "libx264"
    result = run(src, dest, "[]", f"{{codec: {codec}, preset: ultrafast, container: {container}}}")
    assert dest in output_probes
    same_as_ffprobe(result.info_out, dest)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A real output with audio, and what the pipeline knew when it read it."""
    work = tmp_path_factory.mktemp("made")
    src = source(work / "src.mp4", extra_in=AAC, out=["-c:v", "libx264", "-c:a", "aac"])
    cfg = parse_config("inputs: [x]\noutput: out/\nencode: {codec: libx264, preset: ultrafast}")
    encoder = choose_encoder(cfg.encode)
    info = probe(src)
    dest = work / "out.mp4"
    _, _, spec = pipeline._prepare(cfg, info, encoder, dest, audio_source=src)
    run_pipeline(cfg, src, dest, encoder, info=info)
    return dest, (info, spec)


def _facts_of(bytes_: bytes, tmp: Path, context: Any) -> MediaInfo | None:
    info, spec = context
    tmp.write_bytes(bytes_)
    return facts(info, dataclasses.replace(spec, path=tmp), tmp)


def test_a_cut_short_output_gets_no_facts_from_its_index(made: tuple[Path, Any], tmp_path: Path) -> None:
    dest, context = made
    data = dest.read_bytes()
    assert _facts_of(data, tmp_path / "whole.mp4", context) is not None
    for cut in (1, 100, len(data) // 2, len(data) - 16):
        assert _facts_of(data[:-cut], tmp_path / "cut.mp4", context) is None
    assert _facts_of(b"", tmp_path / "empty.mp4", context) is None
    assert _facts_of(b"not a video at all\n" * 40, tmp_path / "text.mp4", context) is None


def _patched(data: bytes, box: bytes, offset: int, value: bytes) -> bytes:
    at = data.index(box) + 4 + offset  # just after the box's type
    return data[:at] + value + data[at + len(value) :]


def test_an_index_that_promises_other_samples_than_the_file_holds_is_left_to_ffprobe(
    made: tuple[Path, Any], tmp_path: Path
) -> None:
    dest, context = made
    data = dest.read_bytes()
    # one more sample than the size table lists; a size one byte larger than the data
    count = int.from_bytes(data[data.index(b"stsz") + 12 : data.index(b"stsz") + 16], "big")
    more = _patched(data, b"stsz", 8, (count + 1).to_bytes(4, "big"))
    assert _facts_of(more, tmp_path / "more.mp4", context) is None
    first_size = data.index(b"stsz") + 16
    bigger = (
        data[:first_size]
        + (int.from_bytes(data[first_size : first_size + 4], "big") + 1).to_bytes(4, "big")
        + data[first_size + 4 :]
    )
    assert _facts_of(bigger, tmp_path / "bigger.mp4", context) is None
    # stts counting other frames than stsz
    stts_count = data.index(b"stts") + 12  # the first run's sample count
    n = int.from_bytes(data[stts_count : stts_count + 4], "big")
    fewer = data[:stts_count] + (n - 1).to_bytes(4, "big") + data[stts_count + 4 :]
    assert _facts_of(fewer, tmp_path / "fewer.mp4", context) is None


def test_an_audio_edit_shorter_than_its_samples_is_left_to_ffprobe(
    made: tuple[Path, Any], tmp_path: Path
) -> None:
    """ffprobe lists only the packets inside the edit: the index's count would not be its count."""
    dest, context = made
    data = dest.read_bytes()
    audio_elst = data.index(b"elst", data.index(b"elst") + 4) + 12  # the 2nd track's (audio) edit length
    segment = int.from_bytes(data[audio_elst : audio_elst + 4], "big")
    shorter = data[:audio_elst] + (segment // 2).to_bytes(4, "big") + data[audio_elst + 4 :]
    assert _facts_of(data, tmp_path / "whole.mp4", context) is not None
    assert _facts_of(shorter, tmp_path / "shorter.mp4", context) is None


def test_an_output_missing_frames_fails_the_frame_check(made: tuple[Path, Any], tmp_path: Path) -> None:
    """The index's count is the count checked: a file with fewer frames than written is refused."""
    dest, (info, spec) = made
    short = tmp_path / "short.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(dest), "-c", "copy", "-frames:v", "5", str(short)],
        check=True,
    )
    got = facts(info, dataclasses.replace(spec, path=short), short)
    assert got is not None and got.frame_count == 5
    same_as_ffprobe(got, short)


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,  # a fixed set in CI; other seeds and whole-index byte scans were run by hand
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=6))
def test_damage_anywhere_gives_no_facts_ffprobe_would_not_give(
    made: tuple[Path, Any], tmp_path: Path, edits: list[tuple[int, int]]
) -> None:
    """Random bytes changed in a real output: the reading never raises, and whatever facts it
    gives are ffprobe's for the same bytes (or ffprobe refuses the file too)."""
    dest, context = made
    data = bytearray(dest.read_bytes())
    # the index and the mdat box's header: the reading checks the index, not the coded samples
    # (damage inside an AAC frame changes what ffprobe decodes, not what the index says)
    index_end = data.index(b"mdat") + 4
    for where, value in edits:
        data[where % index_end] = value
    damaged = tmp_path / "damaged.mp4"
    got = _facts_of(bytes(data), damaged, context)
    if got is None:
        return
    try:
        full = probe(damaged)
    except BatchError:
        pytest.fail(f"facts {got} for a file ffprobe refuses")
    assert dataclasses.replace(got, path="") == dataclasses.replace(full, path="")


def test_no_ffprobe_on_path_is_not_needed_for_the_common_output(
    made: tuple[Path, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reading is in-process: with ffprobe gone it still gives the facts."""
    dest, context = made
    copy = tmp_path / "copy.mp4"
    shutil.copy(dest, copy)
    monkeypatch.setenv("PATH", str(tmp_path))
    info, spec = context
    got = facts(info, dataclasses.replace(spec, path=copy), copy)
    assert got is not None and got.frame_count == 12


@pytest.mark.parametrize("pix_fmt", ["yuv444p", "yuv444p10le"])
def test_a_4_4_4_output_whose_sps_names_the_gbr_matrix_is_left_to_ffprobe(
    pix_fmt: str, tmp_path: Path
) -> None:
    """ffmpeg's decoder reports such a stream as gbrp (an outside review: the index reading said
    yuv444p); no config makes one today, but facts() must never disagree with ffprobe."""
    path = source(tmp_path / "gbr.mp4", vf=f"format={pix_fmt}",
                  out=["-c:v", "libx264", "-preset", "ultrafast", "-colorspace", "rgb"])  # fmt: skip
    info = probe(path)
    assert info.pix_fmt.startswith("gbrp")
    cfg = parse_config("inputs: [x]\noutput: out/\nencode: {codec: libx264, preset: ultrafast}")
    _, _, spec = pipeline._prepare(cfg, info, choose_encoder(cfg.encode), path, audio_source=path)
    assert facts(info, dataclasses.replace(spec, path=path), path) is None


def test_an_hdr_output_whose_sample_entry_holds_hdr_boxes_is_left_to_ffprobe(tmp_path: Path) -> None:
    """A light-level box in the sample entry (here made by renaming the output's btrt, same size) is
    stream side data ffprobe reads from the container, which the index reading does not: ffprobe."""
    src = source(tmp_path / "src.mp4", **_x264("yuv420p10le", *HLG)[0])  # type: ignore[arg-type]
    dest = tmp_path / "out.mp4"
    cfg = parse_config("inputs: [x]\noutput: out/\nencode: {codec: libx264, preset: ultrafast}")
    encoder = choose_encoder(cfg.encode)
    info = probe(src)
    _, _, spec = pipeline._prepare(cfg, info, encoder, dest, audio_source=src)
    run_pipeline(cfg, src, dest, encoder, info=info)
    assert facts(info, spec, dest) is not None  # the plain HDR output is read from its index
    data = dest.read_bytes()
    assert data.count(b"btrt") == 1
    boxed = tmp_path / "boxed.mp4"
    boxed.write_bytes(data.replace(b"btrt", b"clli"))
    assert probe(boxed).hdr.max_cll is not None  # ffprobe reads the box as a content light level
    assert facts(info, dataclasses.replace(spec, path=boxed), boxed) is None
