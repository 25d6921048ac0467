"""Reading an entrypoint run's state dir from a test: its heartbeat, its STOPPED lines, waiting on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def frames_done(state: Path) -> int:
    """``frames_done`` from the heartbeat (status.json); 0 before the first beat or mid-write."""
    try:
        return int(json.loads((state / "status.json").read_text()).get("frames_done") or 0)
    except (OSError, ValueError, AttributeError):
        return 0


def stopped_lines(state: Path) -> list[str]:
    """The dry run's STOPPING lines (one per shutdown call)."""
    path = state / "STOPPED"
    return path.read_text().splitlines() if path.exists() else []


def wait_until(
    predicate: Callable[[], bool], timeout: float = 60, alive: Callable[[], bool] | None = None
) -> None:
    """Poll ``predicate``; fail when ``timeout`` passes or ``alive()`` says the run ended first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if alive is not None and not alive():
            raise AssertionError("the run ended before the condition held")
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def entrypoint_env(**extra: str) -> dict[str, str]:
    """The environment for a dry run of the entrypoint: no cloud credentials or config URL from the
    caller's, shutdown retries made fast, then ``extra``."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CONFIG_URL", "VAST_", "RUNPOD_"))
    }
    env["SHUTDOWN_RETRY_BASE_WAIT_S"] = "0.05"
    env.update(extra)
    return env


ENTRYPOINT = Path(__file__).resolve().parents[1] / "run_with_config_batch_sync.py"


def start_shards(
    config: Path,
    env: dict[str, str],
    count: int,
    *,
    state_dirs: list[Path] | None = None,
    cwd: Path | None = None,
) -> list[subprocess.Popen[bytes]]:
    """``count`` dry-run entrypoints of one job at once, shard I of ``count`` each (its own
    ``--state-dir`` where ``state_dirs`` names them, else PID 1's default), output piped."""
    procs = []
    for i in range(count):
        cmd = [sys.executable, str(ENTRYPOINT), "--config", str(config), "--dry-run"]
        cmd += ["--shard", f"{i}/{count}"]
        if state_dirs is not None:
            cmd += ["--state-dir", str(state_dirs[i])]
        procs.append(subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    return procs
