"""Two shards of one job, run at the same time against the real S3 server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from child_env import s3_child_env
from clips import make_clip
from run_state import frames_done, start_shards, wait_until

from batch.storage import open_url

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_two_shards_at_once_make_one_merged_manifest(s3_server, s3_prefix, clip_dir, tmp_path) -> None:
    client = s3_server.client()
    bucket, _, key = s3_prefix.removeprefix("s3://").partition("/")
    for i in range(5):
        clip = make_clip(clip_dir / f"shard-in-{i}.mp4", frames=10 + i, audio=False)
        client.upload_file(str(clip), bucket, f"{key}in/clip{i}.mp4")
    cfg = tmp_path / "job.yaml"
    cfg.write_text(
        f"job_id: sharded\ninputs: [{s3_prefix}in/]\nencode: {{codec: libx264, preset: ultrafast}}\n"
        f"output: {s3_prefix}out/\nwatchdog: {{confirm: 2, interval_s: 0.5}}\n"
    )
    env = s3_child_env(s3_server, BATCH_RUN_ID="two-at-once")
    procs = start_shards(cfg, env, 2, state_dirs=[tmp_path / f"state{i}" for i in range(2)])
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err.decode()[-2000:]

    def read(name: str) -> dict:
        return json.loads(client.get_object(Bucket=bucket, Key=f"{key}out/{name}")["Body"].read())

    merged = read("manifest.json")
    assert merged["status"] == "succeeded"
    assert [r["index"] for r in merged["inputs"]] == [1, 2, 3, 4, 5]  # every input exactly once
    assert [r["outputs"][0]["key"] for r in merged["inputs"]] == [f"clip{i}/clip{i}.mp4" for i in range(5)]
    assert [s["index"] for s in merged["shards"]] == [0, 1]
    assert [r["index"] for r in read("manifest.shard-0-of-2.json")["inputs"]] == [1, 3, 5]
    assert [r["index"] for r in read("manifest.shard-1-of-2.json")["inputs"]] == [2, 4]
    for i in range(2):  # each instance's watchdog verified its own shard before shutting down
        assert "reason=verified" in (tmp_path / f"state{i}" / "STOPPED").read_text()


def test_create_only_write_on_the_s3_server(s3_env, s3_prefix) -> None:
    url = f"{s3_prefix}once.json"
    store = open_url(url)
    assert store.create_bytes(url, b"first") is not None
    second = store.create_bytes(url, b"second")
    # SeaweedFS honours If-None-Match: the second create is refused and the first write stays
    assert second is None
    assert store.read_bytes(url) == b"first"


def _shard(cfg: Path, i: int, n: int, state: Path, server, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "run_with_config_batch_sync.py"), "--config", str(cfg), "--dry-run",
         "--state-dir", str(state)],
        env=s3_child_env(server, SKYPILOT_JOB_RANK=str(i), SKYPILOT_NUM_JOBS=str(n), **env),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def test_an_object_added_between_shard_starts_and_a_killed_shard_leave_no_input_behind(
    s3_server, s3_prefix, clip_dir, tmp_path
) -> None:
    """Three inputs, two SkyPilot-style jobs (SKYPILOT_JOB_RANK/NUM_JOBS). Shard 0 runs; an object
    that sorts first is added to the prefix; shard 1 is killed mid-input (a preemption: the whole
    container), then started again on a "new machine" (a fresh state dir). Listing per shard once
    left an input unprocessed under a "succeeded" merge; the run's snapshot keeps the list fixed."""
    import os
    import signal

    client = s3_server.client()
    bucket, _, key = s3_prefix.removeprefix("s3://").partition("/")
    for i in range(3):
        clip = make_clip(clip_dir / f"snap-in-{i}.mp4", frames=12 + i, audio=False)
        client.upload_file(str(clip), bucket, f"{key}in/clip{i}.mp4")
    cfg = tmp_path / "job.yaml"
    cfg.write_text(
        f"job_id: snap\ninputs: [{s3_prefix}in/]\nencode: {{codec: libx264, preset: ultrafast}}\n"
        f"output: {s3_prefix}out/\nwatchdog: {{confirm: 1, interval_s: 0.3}}\n"
    )
    run = {"BATCH_RUN_ID": "run-42"}
    first = _shard(cfg, 0, 2, tmp_path / "s0", s3_server, **run)
    _, err = first.communicate(timeout=180)
    assert first.returncode == 0, err.decode()[-3000:]
    client.upload_file(str(clip_dir / "snap-in-0.mp4"), bucket, f"{key}in/aaa-late.mp4")  # shifts positions

    killed = _shard(cfg, 1, 2, tmp_path / "s1-first", s3_server, BATCH_TEST_HANG_AT_FRAME="3", **run)
    wait_until(
        lambda: frames_done(tmp_path / "s1-first") >= 3, timeout=120, alive=lambda: killed.poll() is None
    )
    for name in ("runner.pid", "monitor.pid"):  # the machine is gone: every process of it at once
        os.kill(int((tmp_path / "s1-first" / name).read_text()), signal.SIGKILL)
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=30)

    again = _shard(cfg, 1, 2, tmp_path / "s1-again", s3_server, **run)
    _, err = again.communicate(timeout=180)
    assert again.returncode == 0, err.decode()[-3000:]

    def read(name: str) -> dict:
        return json.loads(client.get_object(Bucket=bucket, Key=f"{key}out/{name}")["Body"].read())

    (snap_key,) = [
        o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=f"{key}out/inputs.run-42.")["Contents"]
    ]
    snapshot = read(snap_key.removeprefix(f"{key}out/"))
    assert [e["url"].rsplit("/", 1)[1] for e in snapshot["inputs"]] == ["clip0.mp4", "clip1.mp4", "clip2.mp4"]
    merged = read("manifest.json")
    assert merged["status"] == "succeeded", merged["errors"]
    assert [r["index"] for r in merged["inputs"]] == [1, 2, 3]  # every input of the snapshot, once
    assert [r["outputs"][0]["key"] for r in merged["inputs"]] == [f"clip{i}/clip{i}.mp4" for i in range(3)]
    assert {s["inputs_total"] for s in merged["shards"]} == {3}
    assert "reason=verified" in (tmp_path / "s1-again" / "STOPPED").read_text()
