"""Two shards of one job, run at the same time against the real S3 server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from child_env import s3_child_env
from clips import make_clip

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
    env = s3_child_env(s3_server)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "run_with_config_batch_sync.py"),
                "--config",
                str(cfg),
                "--dry-run",
                "--shard",
                f"{i}/2",
                "--state-dir",
                str(tmp_path / f"state{i}"),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
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
