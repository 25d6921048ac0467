"""A rerun never loses what an earlier run left in the bucket.

Two runs of the entrypoint (dry run) write to the same output prefix in
SeaweedFS with different encode settings: the second replaces the video, so
the first's video, preview and output.json must be kept, byte for byte,
under previous/<second run's start>/ before they are replaced; and the first
manifest under manifests/.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from child_env import s3_child_env
from run_state import frames_done, stopped_lines, wait_until

from batch.job.manifest import key_stamp

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def run(tmp: Path, server, prefix: str, clip: Path, crf: int, name: str) -> dict:
    cfg = tmp / f"{name}.yaml"
    cfg.write_text(
        f"job_id: rerun\ninputs: [{clip}]\nencode: {{codec: libx264, preset: ultrafast, crf: {crf}}}\n"
        f"output: {prefix}out/\nwatchdog: {{confirm: 1, interval_s: 0.3}}\n"
    )
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run_with_config_batch_sync.py"), "--config", str(cfg), "--dry-run",
         "--state-dir", str(tmp / name)],
        env=s3_child_env(server), capture_output=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return json.loads((tmp / name / "manifest.json").read_text())


def test_a_rerun_with_other_settings_keeps_the_earlier_outputs(
    s3_server, s3_prefix, small_clip, tmp_path
) -> None:
    client = s3_server.client()
    bucket, _, key = s3_prefix.removeprefix("s3://").partition("/")

    def body(k: str) -> bytes:
        return client.get_object(Bucket=bucket, Key=f"{key}out/{k}")["Body"].read()

    first = run(tmp_path, s3_server, s3_prefix, small_clip, 30, "first")
    stem = Path(first["inputs"][0]["outputs"][0]["key"]).parts[0]
    video_key = f"{stem}/{stem}.mp4"
    before = {k: body(k) for k in (video_key, f"{stem}/preview.jpg", f"{stem}/output.json")}
    second = run(tmp_path, s3_server, s3_prefix, small_clip, 45, "second")
    assert hashlib.sha256(body(video_key)).hexdigest() != hashlib.sha256(before[video_key]).hexdigest()
    stamp = key_stamp(second["started_at"])
    for k, data in before.items():
        assert body(f"previous/{stamp}/{k}") == data, k
    assert any("kept as previous/" in n for n in second["inputs"][0]["notes"])
    # the first manifest was archived, not lost
    archived = client.list_objects_v2(Bucket=bucket, Prefix=f"{key}out/manifests/")["Contents"]
    assert any(json.loads(body(o["Key"].removeprefix(f"{key}out/")))["launch_id"] == first["launch_id"]
               for o in archived)  # fmt: skip
    # a third run with the same settings reuses the verified output: nothing more is archived
    third = run(tmp_path, s3_server, s3_prefix, small_clip, 45, "third")
    assert any("skipped" in n for n in third["inputs"][0]["notes"])
    third_stamp = key_stamp(third["started_at"])
    listed = client.list_objects_v2(Bucket=bucket, Prefix=f"{key}out/previous/{third_stamp}/")
    assert third_stamp == stamp or "Contents" not in listed


def test_the_watchdogs_failure_manifest_archives_a_good_one_and_uses_the_configs_endpoint(
    s3_server, s3_prefix, small_clip, tmp_path
) -> None:
    """A killed rerun's failure manifest (written by the watchdog) does not erase the good one before
    it; and the watchdog reaches the bucket by storage.endpoint_url alone (no AWS_ENDPOINT_URL)."""
    import os
    import signal

    client = s3_server.client()
    bucket, _, key = s3_prefix.removeprefix("s3://").partition("/")
    good = run(tmp_path, s3_server, s3_prefix, small_clip, 30, "good")
    cfg = tmp_path / "killed.yaml"
    cfg.write_text(
        f"job_id: rerun\ninputs: [{small_clip}]\nencode: {{codec: libx264, preset: ultrafast, crf: 40}}\n"
        f"output: {s3_prefix}out/\nwatchdog: {{confirm: 1, interval_s: 0.3, upload_timeout_s: 20}}\n"
        f"storage: {{endpoint_url: '{s3_server.endpoint_url}'}}\n"
    )
    env = s3_child_env(s3_server, BATCH_TEST_HANG_AT_FRAME="3")
    del env["AWS_ENDPOINT_URL"]
    state = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "run_with_config_batch_sync.py"), "--config", str(cfg), "--dry-run",
         "--state-dir", str(state)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    wait_until(
        lambda: (state / "runner.pid").exists() and frames_done(state) >= 3,
        timeout=90,
        alive=lambda: proc.poll() is None,
    )
    os.kill(int((state / "runner.pid").read_text()), signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    lines = stopped_lines(state)
    assert len(lines) == 1 and "reason=runner_exited_without_manifest" in lines[0], err.decode()[-3000:]
    now = json.loads(client.get_object(Bucket=bucket, Key=f"{key}out/manifest.json")["Body"].read())
    assert now["status"] == "failed" and now["launch_id"] != good["launch_id"]
    archived = client.list_objects_v2(Bucket=bucket, Prefix=f"{key}out/manifests/")["Contents"]
    bodies = [json.loads(client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()) for o in archived]
    assert any(b["launch_id"] == good["launch_id"] and b["status"] == "succeeded" for b in bodies)
