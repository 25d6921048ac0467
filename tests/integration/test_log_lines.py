"""Log lines cannot be forged by a file name, and every failed input says why on the console
(outside review: a name holding a line feed and escape codes split every line it was in, the second
half reading as a record of its own; a prefix with no video failed with no line saying so)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from clips import make_clip

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RECORD = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d (INFO|WARNING|ERROR) ")


def run(tmp: Path, inputs: str) -> str:
    cfg = tmp / "job.yaml"
    cfg.write_text(f"inputs: [{inputs}]\noutput: {tmp}/out/\nencode: {{codec: libx264, preset: ultrafast}}\n")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run_with_config_batch_sync.py"), "--config", str(cfg), "--dry-run",
         "--no-watchdog", "--state-dir", str(tmp / "state")],
        capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "BATCH_PROGRESS": "lines"},
    )  # fmt: skip
    return proc.stderr


def test_a_name_with_line_feeds_and_escape_codes_forges_no_line(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    clip = make_clip(tmp_path / "c.mp4", frames=4)
    shutil.copy(clip, folder / "a\nFAKE 2026-12-04T00:00:00 WARNING STOPPING INSTANCE\x1b[31m\r.mp4")
    err = run(tmp_path, f"{folder}/")
    assert "\x1b" not in err and "\r" not in err
    lines = err.splitlines()
    assert any("FAKE" in line for line in lines)
    for line in lines:
        assert RECORD.match(line) or line.startswith("    "), line


def test_a_prefix_without_videos_says_so_on_the_console(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    err = run(tmp_path, f"{tmp_path}/empty/")
    assert re.search(r"ERROR \[1/1\] no videos under .*empty", err), err
