"""A chunked input's joined output is read from its own index, as a one-pass output is: ffprobe's facts.

The runner ran a full ffprobe on every joined output (every packet: ~0.2 s a minute of 720p on
the development VM, seconds for a film). Each case runs a real chunked job (real ffmpeg, parts,
the concat join) through the runner in this process, keeps the MediaInfo the job checked the
joined file with, and compares it with a full ffprobe of the same file, field by field. The common
outputs must take the in-process reading; the others (Matroska, MOV, an anamorphic source) must still
be probed. A join that lost a part of another length fails its frame check either way, and damage in
the joined index (found by the outside review) sends it to ffprobe.
"""

from __future__ import annotations

import dataclasses
import json
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from batch.config import parse_config
from batch.job import chunks as chunks_module
from batch.job import runner as runner_module
from batch.job.runner import Runner, RunOptions
from batch.media.probe import MediaInfo, probe

pytestmark = pytest.mark.integration

AAC = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=2"]


def source(path: Path, *, vf: str = "format=yuv420p", extra_in: list[str] | None = None,
           out: list[str] | None = None, frames: int = 48) -> Path:  # fmt: skip
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=96x64:r=24", *(extra_in or [])]
    cmd += ["-vf", vf, "-frames:v", str(frames), *(out or ["-c:v", "libx264", "-preset", "ultrafast"])]
    subprocess.run([*cmd, "-shortest", str(path)], check=True)
    return path


@pytest.fixture
def joined(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the runner checked the joined file with, and which files the join's check probed."""
    seen: dict[str, Any] = {"probed": []}
    real_verify, real_probe = runner_module.verify_joined, chunks_module.probe

    def verify(dest: Path, *args: Any, **kwargs: Any) -> MediaInfo:
        seen["dest"] = Path(dest)
        seen["info"] = real_verify(dest, *args, **kwargs)
        seen["ffprobe"] = real_probe(dest)  # the oracle, read before the runner moves the file on
        return seen["info"]

    def probing(path: Path) -> MediaInfo:
        seen["probed"].append(Path(path))
        return real_probe(path)

    monkeypatch.setattr(runner_module, "verify_joined", verify)
    monkeypatch.setattr(chunks_module, "probe", probing)
    return seen


def run_job(tmp: Path, src: Path, *, stages: str = "[]", encode: str = "{codec: libx264, preset: ultrafast}",
            chunk_s: float = 0.75) -> dict[str, Any]:  # fmt: skip
    cfg = parse_config(
        f"job_id: joined\ninputs: [{src}]\noutput: {tmp}/out/\nstages: {stages}\nencode: {encode}\n"
        f"limits: {{chunk_s: {chunk_s}}}\n"
    )
    assert Runner(cfg, RunOptions(state_dir=tmp / "state", workers=1)).run() == 0
    manifest = json.loads((tmp / "out" / "manifest.json").read_text())
    entry = manifest["inputs"][0]
    assert entry["chunks"]["count"] >= 2, "the case must be chunked"
    return entry


def _same_as_ffprobe(seen: dict[str, Any]) -> None:
    assert dataclasses.replace(seen["info"], path="") == dataclasses.replace(seen["ffprobe"], path="")


READ_HERE = {
    "no stages, no audio": ({}, "[]", "{codec: libx264, preset: ultrafast}"),
    "no stages, aac copied": ({"extra_in": AAC, "out": ["-c:v", "libx264", "-c:a", "aac"]}, "[]",
                              "{codec: libx264, preset: ultrafast}"),
    "B-frames (an edit list), aac": ({"extra_in": AAC, "out": ["-c:v", "libx264", "-c:a", "aac"]}, "[]",
                                     "{codec: libx264, preset: veryfast}"),
    "2x blend through the pipes": ({"extra_in": AAC, "out": ["-c:v", "libx264", "-c:a", "aac"]},
                                   "[{interpolate: {factor: 2, ladder: [blend]}}]",
                                   "{codec: libx264, preset: ultrafast}"),
    "two audio tracks": ({"extra_in": [*AAC, *AAC], "out": ["-map", "0:v", "-map", "1:a", "-map", "2:a",
                                                             "-c:v", "libx264", "-c:a", "aac"]}, "[]",
                         "{codec: libx264, preset: ultrafast}"),
    "10-bit": ({"vf": "format=yuv420p10le", "out": ["-c:v", "libx264", "-pix_fmt", "yuv420p10le"]}, "[]",
               "{codec: libx264, preset: ultrafast, pix_fmt: source}"),
}  # fmt: skip


@pytest.mark.parametrize(("made", "stages", "encode"), READ_HERE.values(), ids=READ_HERE.keys())
def test_a_common_joined_output_is_read_from_its_index_as_ffprobe_reads_it(
    tmp_path: Path, joined: dict[str, Any], made: dict[str, Any], stages: str, encode: str
) -> None:
    src = source(tmp_path / "src.mp4", **made)
    entry = run_job(tmp_path, src, stages=stages, encode=encode)
    assert joined["probed"] == [], "the joined output was probed: the in-process reading was not taken"
    _same_as_ffprobe(joined)
    assert (
        entry["media_out"]["frame_count"]
        == joined["info"].frame_count
        == probe(src).frame_count * (2 if "interpolate" in stages else 1)
    )


PROBED = {
    "Matroska": ({"extra_in": AAC, "out": ["-c:v", "libx264", "-c:a", "aac"]},
                 "{codec: libx264, preset: ultrafast, container: mkv}"),
    "anamorphic": ({"vf": "format=yuv420p,setsar=32/27"}, "{codec: libx264, preset: ultrafast}"),
    # a joined MOV holds a box the index reader does not take (a one-pass MOV is read in-process)
    "mov": ({"extra_in": AAC, "out": ["-c:v", "libx264", "-c:a", "aac"]},
            "{codec: libx264, preset: ultrafast, container: mov}"),
}  # fmt: skip


@pytest.mark.parametrize(("made", "encode"), PROBED.values(), ids=PROBED.keys())
def test_other_joined_outputs_are_still_probed(
    tmp_path: Path, joined: dict[str, Any], made: dict[str, Any], encode: str
) -> None:
    src = source(tmp_path / "src.mp4", **made)
    run_job(tmp_path, src, encode=encode)
    assert joined["probed"] == [joined["dest"]]
    _same_as_ffprobe(joined)


def test_a_joined_file_that_does_not_hold_what_the_parts_made_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, joined: dict[str, Any]
) -> None:
    """A join that lost a part (here: the concat list names the first part twice and the last never,
    18 + 18 + 18 frames for 48) must fail the frame check whichever way the facts were read. (Parts
    of equal length swapped or repeated keep the count: neither reading can see that.)"""
    src = source(tmp_path / "src.mp4", frames=48)
    real_join = chunks_module.join_parts

    def lossy(parts: list[Path], dest: Path, **kwargs: Any) -> None:
        kwargs.pop("durations", None)
        real_join([parts[0], *parts[:-1]], dest, **kwargs)  # the last part's frames replaced by the first's

    monkeypatch.setattr(chunks_module, "join_parts", lossy)
    cfg = parse_config(
        f"job_id: joined\ninputs: [{src}]\noutput: {tmp_path}/out/\nstages: []\n"
        "encode: {codec: libx264, preset: ultrafast}\nlimits: {chunk_s: 0.75}\n"
    )
    code = Runner(cfg, RunOptions(state_dir=tmp_path / "state", workers=1)).run()
    assert code != 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["inputs"][0]["status"] != "ok"


def _box(data: bytes | bytearray, kind: bytes, nth: int = 0) -> int:
    """Where the ``nth`` box of ``kind`` starts (its size field)."""
    at = -1
    for _ in range(nth + 1):
        at = data.find(kind, at + 1)
        assert at >= 4, f"no {kind!r} box number {nth}"
    return at - 4


def _flip_ctts_count(b: bytearray) -> None:
    b[_box(b, b"ctts") + 16] ^= 0x80  # the first entry's sample count: 2^31 samples more


def _pasp_two_to_one(b: bytearray) -> None:
    struct.pack_into(">II", b, _box(b, b"pasp") + 8, 2, 1)


def _nal_length_of_three(b: bytearray) -> None:
    b[_box(b, b"avcC") + 12] ^= 1  # lengthSizeMinusOne 3 -> 2: every NAL length misread


def _audio_chunk_onto_video(b: bytearray) -> None:
    video, audio = _box(b, b"stco", 0), _box(b, b"stco", 1)
    b[audio + 16 : audio + 20] = b[video + 16 : video + 20]  # the first audio chunk read from video bytes


DAMAGE = {
    "ctts count": (_flip_ctts_count, "veryfast"),
    "pasp 2:1": (_pasp_two_to_one, "ultrafast"),
    "avcC NAL length": (_nal_length_of_three, "ultrafast"),
    "audio chunk on video bytes": (_audio_chunk_onto_video, "ultrafast"),
}


@pytest.mark.parametrize(("damage", "preset"), DAMAGE.values(), ids=DAMAGE.keys())
def test_damage_in_a_joined_index_sends_it_to_ffprobe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, joined: dict[str, Any], damage: Any, preset: str
) -> None:
    """Found by the outside review: a flipped ctts count made the reader build a list of 2^31 offsets
    (MemoryError, the job failed), a pasp of 2:1 was recorded as square pixels, 3-byte NAL lengths
    and an audio chunk placed on the video's bytes (undecodable files) were read as healthy."""
    src = source(tmp_path / "src.mp4", extra_in=AAC, out=["-c:v", "libx264", "-c:a", "aac"])
    real_join = chunks_module.join_parts

    def damaging(parts: list[Path], dest: Path, **kwargs: Any) -> None:
        real_join(parts, dest, **kwargs)
        data = bytearray(dest.read_bytes())
        damage(data)
        dest.write_bytes(bytes(data))

    monkeypatch.setattr(chunks_module, "join_parts", damaging)
    cfg = parse_config(
        f"job_id: joined\ninputs: [{src}]\noutput: {tmp_path}/out/\nstages: []\n"
        f"encode: {{codec: libx264, preset: {preset}}}\nlimits: {{chunk_s: 0.75}}\n"
    )
    Runner(cfg, RunOptions(state_dir=tmp_path / "state", workers=1)).run()
    assert joined["probed"] == [joined["dest"]], "the damaged index was read in-process"
    _same_as_ffprobe(joined)
