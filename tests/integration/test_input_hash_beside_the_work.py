"""A local input is hashed beside its transcode, not before it (batch/job/input_hash.py), and the
hash still decides what it decided: the manifest's sha256, and whether an earlier run's output is
reused (its record's fingerprint holds the hash). Real ffmpeg, the Runner in this process."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from clips import count_frames, make_clip

from batch.config import parse_config
from batch.contracts import output_record_key
from batch.job import input_hash
from batch.job import runner as runner_module
from batch.job.progress import Tracker
from batch.job.runner import Runner, RunOptions

pytestmark = pytest.mark.integration


CHUNKED = "limits: {chunk_s: 0.25}\nstages: [{interpolate: {factor: 2, ladder: [blend]}}]\n"


def _run(tmp: Path, clip: Path, state: str, chunked: bool = False) -> dict[str, Any]:
    text = f"job_id: hashed\ninputs: [{clip}]\noutput: {tmp}/out/\nencode: {{codec: ffv1, container: mkv}}\n"
    cfg = parse_config(text + (CHUNKED if chunked else ""))
    code = Runner(cfg, RunOptions(state_dir=tmp / state)).run()
    manifest = json.loads((tmp / "out" / "manifest.json").read_text())
    assert (code == 0) == (manifest["status"] == "succeeded"), manifest
    (record,) = manifest["inputs"]
    return record


def test_the_transcode_starts_before_the_hash_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=20)
    pipeline_started = threading.Event()
    waited: list[bool] = []
    real_hash, real_pipeline = input_hash.sha256_file, runner_module.run_pipeline

    def slow_hash(path: Path, stop: threading.Event | None = None) -> str | None:
        # the hash ends only once the transcode has begun: a runner that waits for it first hangs here
        waited.append(pipeline_started.wait(60))
        return real_hash(path, stop)

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipeline_started.set()
        return real_pipeline(*args, **kwargs)

    monkeypatch.setattr(input_hash, "sha256_file", slow_hash)
    monkeypatch.setattr(runner_module, "run_pipeline", pipeline)
    record = _run(tmp_path, clip, "state")
    assert waited == [True], "the runner waited for the input's hash before transcoding"
    assert record["status"] == "succeeded", record
    assert record["source"]["sha256"] == hashlib.sha256(clip.read_bytes()).hexdigest()
    assert count_frames(tmp_path / "out" / "in" / "in.mkv") == 20


def test_the_deferred_hash_still_decides_reuse(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=20)
    first = _run(tmp_path, clip, "state-1")
    assert first["status"] == "succeeded" and not any("skipped" in n for n in first["notes"])
    again = _run(tmp_path, clip, "state-2")  # the same bytes: the verified output is reused
    assert any("skipped: the final output of an earlier run" in n for n in again["notes"]), again["notes"]
    assert again["source"]["sha256"] == first["source"]["sha256"]
    # other bytes under the same name (and size): the earlier output must not be taken for them
    other = make_clip(tmp_path / "other.mp4", frames=20, size="320x240", extra=["-vf", "negate"])
    clip.write_bytes(other.read_bytes())
    third = _run(tmp_path, clip, "state-3")
    assert third["status"] == "succeeded"
    assert not any("skipped" in n for n in third["notes"]), third["notes"]
    assert (
        third["source"]["sha256"]
        == hashlib.sha256(other.read_bytes()).hexdigest()
        != first["source"]["sha256"]
    )


@pytest.mark.parametrize("chunked", [False, True])
def test_an_input_written_to_during_the_job_is_refused_and_not_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunked: bool
) -> None:
    """Outside review: 4 bytes rewritten in place after the transcode had read them, before the hash
    reached them; the manifest then named a hash of bytes never transcoded, and the next run reused
    the old output for the new bytes. Same size, so only the file's times tell."""
    clip = make_clip(tmp_path / "in.mp4", frames=20)
    original = clip.read_bytes()
    real_pipeline = runner_module.run_pipeline

    def pipeline_then_write(*args: Any, **kwargs: Any) -> Any:
        result = real_pipeline(*args, **kwargs)
        with clip.open("r+b") as f:  # the transcode has read it all; the file changes under the job
            f.seek(len(original) - 4)
            f.write(b"\0\0\0\1")
        return result

    monkeypatch.setattr(runner_module, "run_pipeline", pipeline_then_write)
    if chunked:  # the hash was taken before the parts: only the check before the upload can see it
        real_run = runner_module.ChunkedInput.run

        def run_then_write(self: Any, *args: Any, **kwargs: Any) -> Any:
            done = real_run(self, *args, **kwargs)
            with clip.open("r+b") as f:
                f.seek(len(original) - 4)
                f.write(b"\0\0\0\1")
            return done

        monkeypatch.setattr(runner_module.ChunkedInput, "run", run_then_write)
    record = _run(tmp_path, clip, "state-1", chunked)
    assert record["status"] == "failed" and record["error"]["type"] == "input_changed", record
    assert "run the job again" in record["error"]["hint"]
    made = tmp_path / "out" / "in"  # a chunked input's parts are kept in the bucket as they are made
    assert not (made / "in.mkv").exists() and not (tmp_path / "out" / output_record_key("in")).exists()
    assert chunked or not made.exists()  # nothing of it uploaded, no record to reuse
    report = tmp_path / "out" / "report-data.json"
    assert not report.exists() or json.loads(report.read_text())["images"] == {}
    monkeypatch.undo()
    again = _run(tmp_path, clip, "state-2", chunked)  # the file as it now is: processed afresh
    assert again["status"] == "succeeded" and not any("skipped" in n for n in again["notes"])
    assert not chunked or again["chunks"]["reused"] == 0  # the parts carry the old bytes' hash
    assert again["source"]["sha256"] == hashlib.sha256(clip.read_bytes()).hexdigest()


def test_a_chunked_input_waits_for_its_hash_as_hashing_not_as_frames_that_do_not_move(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside review: the wait ran in phase 'processing' with no frame moving, and the watchdog
    stopped the job as stalled. The heartbeat must say 'hashing' until the hash is done."""
    clip = make_clip(tmp_path / "in.mp4", frames=60)
    phases: list[tuple[str, bool]] = []
    hash_done = threading.Event()
    real_hash, real_set_phase = input_hash.sha256_file, Tracker.set_phase

    def slow_hash(path: Path, stop: threading.Event | None = None) -> str | None:
        time.sleep(1.0)
        try:
            return real_hash(path, stop)
        finally:
            hash_done.set()

    def set_phase(self: Tracker, phase: str, detail: str | None = None) -> None:
        phases.append((phase, hash_done.is_set()))
        real_set_phase(self, phase, detail)

    monkeypatch.setattr(input_hash, "sha256_file", slow_hash)
    monkeypatch.setattr(Tracker, "set_phase", set_phase)
    text = (
        f"job_id: hashed\ninputs: [{clip}]\noutput: {tmp_path}/out/\n"
        "encode: {codec: ffv1, container: mkv}\nlimits: {chunk_s: 0.5}\n"
        "stages: [{interpolate: {factor: 2, ladder: [blend]}}]\n"
    )
    code = Runner(parse_config(text), RunOptions(state_dir=tmp_path / "state")).run()
    record = json.loads((tmp_path / "out" / "manifest.json").read_text())["inputs"][0]
    assert code == 0 and record["chunks"]["count"] == 4, record
    assert ("hashing", False) in phases, phases
    assert all(done for phase, done in phases if phase == "processing"), phases
    assert record["timings"]["hash_wait_s"] > 0.3


def test_an_input_that_cannot_be_hashed_uploads_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=10)

    def failing(path: Path, stop: threading.Event | None = None) -> str | None:
        raise OSError(5, "Input/output error", str(path))

    monkeypatch.setattr(input_hash, "sha256_file", failing)
    record = _run(tmp_path, clip, "state")
    assert record["status"] == "failed" and record["error"]["type"] == "input_unreadable", record
    assert "Input/output error" in record["error"]["message"] and "sha256" not in record["source"]
    assert not (tmp_path / "out" / "in").exists()  # no output, no preview, no record of a finished input
    report = tmp_path / "out" / "report-data.json"  # nor its frames on the report page (outside review)
    assert not report.exists() or json.loads(report.read_text())["images"] == {}
