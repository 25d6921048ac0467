"""A local input is hashed beside its transcode, not before it (batch/job/input_hash.py), and the
hash still decides what it decided: the manifest's sha256, and whether an earlier run's output is
reused (its record's fingerprint holds the hash). Real ffmpeg, the Runner in this process."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from clips import count_frames, make_clip

from batch.config import parse_config
from batch.job import input_hash
from batch.job import runner as runner_module
from batch.job.runner import Runner, RunOptions

pytestmark = pytest.mark.integration


def _run(tmp: Path, clip: Path, state: str) -> dict[str, Any]:
    cfg = parse_config(
        f"job_id: hashed\ninputs: [{clip}]\noutput: {tmp}/out/\nencode: {{codec: ffv1, container: mkv}}\n"
    )
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


def test_an_input_that_cannot_be_hashed_uploads_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=10)

    def failing(path: Path, stop: threading.Event | None = None) -> str | None:
        raise OSError(5, "Input/output error", str(path))

    monkeypatch.setattr(input_hash, "sha256_file", failing)
    record = _run(tmp_path, clip, "state")
    assert record["status"] == "failed" and "Input/output error" in json.dumps(record["error"]), record
    assert "sha256" not in record["source"]
    assert not (tmp_path / "out" / "in").exists()  # no output, no preview, no record of a finished input
