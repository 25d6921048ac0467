"""One run at a time in a state dir (outside review: a second run archived the first's records,
deleted its work files, and the first's watchdog took the second's end for its own and stopped the
instance mid-job). The second run refuses at once and touches nothing; the first finishes as if alone.
The whole product, dry run, local files."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clips import SLOW_STAGES, make_clip
from run_state import start_shards

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def start(cfg: Path, state: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "run_with_config_batch_sync.py"), "--config", str(cfg), "--dry-run",
         "--state-dir", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def test_a_second_run_in_a_busy_state_dir_refuses_and_leaves_the_first_alone(tmp_path: Path) -> None:
    slow = make_clip(tmp_path / "slow.mp4", size="640x360", frames=300, audio=False)
    quick = make_clip(tmp_path / "quick.mp4", frames=4, audio=False)
    state = tmp_path / "state"
    first_cfg, second_cfg = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first_cfg.write_text(
        f"job_id: a\ninputs: [{slow}]\noutput: {tmp_path}/out-a/\nstages: {SLOW_STAGES}\n"
        "encode: {codec: libx264, preset: ultrafast}\nwatchdog: {confirm: 1, interval_s: 0.3}\n"
    )
    second_cfg.write_text(
        f"job_id: b\ninputs: [{quick}]\noutput: {tmp_path}/out-b/\n"
        "encode: {codec: libx264, preset: ultrafast}\nwatchdog: {confirm: 1, interval_s: 0.3}\n"
    )
    first = start(first_cfg, state)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the first is transcoding
        try:
            if json.loads((state / "status.json").read_text()).get("frames_done", 0) > 5:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    second = start(second_cfg, state)
    _, err = second.communicate(timeout=60)
    assert second.returncode == 2
    assert b"is in use by another run" in err
    assert not (tmp_path / "out-b").exists() and not (state / "previous").exists()
    _, err = first.communicate(timeout=180)
    assert first.returncode == 0, err.decode()[-2000:]
    lines = (state / "STOPPED").read_text().splitlines()
    assert len(lines) == 1 and "action=destroy reason=verified" in lines[0]
    assert json.loads((state / "manifest.json").read_text())["status"] == "succeeded"


def test_shards_of_a_run_get_their_own_default_state_dirs(tmp_path: Path) -> None:
    """Two shards on one machine, no --state-dir: each its own state/<job id>.shard-I-of-N (they had
    shared state/<job id>, and with the lock the second would have been refused: its inputs never run)."""
    import os

    clips = [make_clip(tmp_path / f"c{i}.mp4", frames=4, audio=False) for i in range(2)]
    cfg = tmp_path / "job.yaml"
    cfg.write_text(
        f"job_id: both\ninputs: [{clips[0]}, {clips[1]}]\noutput: {tmp_path}/out/\n"
        "encode: {codec: libx264, preset: ultrafast}\nwatchdog: {confirm: 1, interval_s: 0.3}\n"
    )
    env = {**os.environ, "BATCH_RUN_ID": "both-1"}
    procs = start_shards(cfg, env, 2, cwd=tmp_path)
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()[-2000:]
    for i in range(2):
        state = tmp_path / "state" / f"both.shard-{i}-of-2"
        assert json.loads((state / "manifest.json").read_text())["status"] == "succeeded"
        assert "action=destroy reason=verified" in (state / "STOPPED").read_text()
