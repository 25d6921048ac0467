"""SIGTERM (what a provider sends before stopping a container) mid-job."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clips import SLOW_STAGES, make_clip

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_writes_a_partial_manifest_and_exits_quickly(tmp_path: Path, clip_dir: Path) -> None:
    slow = make_clip(clip_dir / "slow.mp4", size="640x360", frames=600, audio=True)
    out, state = tmp_path / "out", tmp_path / "state"
    cfg = tmp_path / "job.yaml"
    cfg.write_text(
        f"job_id: sig\ninputs: [{slow}, {slow}]\nstages: {SLOW_STAGES}\n"
        f"encode: {{codec: libx264, preset: ultrafast}}\noutput: {out}\nlimits: {{heartbeat_s: 0.2}}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "run_with_config_batch_sync.py"), "--no-watchdog", "--config", str(cfg),
         "--state-dir", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    status = state / "status.json"
    deadline = time.monotonic() + 60
    seen: dict = {}
    while time.monotonic() < deadline:  # the heartbeat shows frames moving
        if status.exists():
            try:
                seen = json.loads(status.read_text())
            except ValueError:
                seen = {}
            if seen.get("phase") == "processing" and seen.get("frames_done", 0) > 10:
                break
        time.sleep(0.1)
    assert seen.get("phase") == "processing", seen
    assert seen["frames_total"] == 600 and seen["input_count"] == 2

    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 20
    assert proc.returncode == 1, stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "partial"
    assert [r["status"] for r in manifest["inputs"]] == ["cancelled", "cancelled"]
    assert manifest["inputs"][0]["error"]["type"] == "cancelled"
    assert not (out / "slow").exists()  # nothing half-made was uploaded
    assert json.loads((out / "status.json").read_text())["phase"] == "partial"
