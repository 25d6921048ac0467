"""A shard with nothing to do (more shards than inputs) succeeds, and its instance is destroyed
like any finished one: it had been marked failed, so the watchdog only stopped it and its disk
kept billing (outside review). The whole product, dry run, local files, BATCH_RUN_ID set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from clips import make_clip

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_a_shard_without_inputs_succeeds_and_is_destroyed(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "only.mp4", frames=6, audio=False)
    cfg = tmp_path / "job.yaml"
    cfg.write_text(
        f"job_id: sparse\ninputs: [{clip}]\noutput: {tmp_path}/out/\n"
        "encode: {codec: libx264, preset: ultrafast}\nwatchdog: {confirm: 1, interval_s: 0.3}\n"
    )
    env = {**os.environ, "BATCH_RUN_ID": "sparse-1"}
    stopped = {}
    for i in range(3):
        state = tmp_path / f"state{i}"
        proc = subprocess.run(
            [sys.executable, str(ROOT / "run_with_config_batch_sync.py"), "--config", str(cfg), "--dry-run",
             "--shard", f"{i}/3", "--state-dir", str(state)],
            env=env, capture_output=True, timeout=180,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
        manifest = json.loads((state / "manifest.json").read_text())
        assert manifest["status"] == "succeeded", manifest
        stopped[i] = (state / "STOPPED").read_text()
    assert (
        sum(
            bool(json.loads((tmp_path / f"state{i}" / "manifest.json").read_text())["inputs"])
            for i in range(3)
        )
        == 1
    )
    assert all("action=destroy" in line for line in stopped.values()), stopped
