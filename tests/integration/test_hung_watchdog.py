"""A watchdog that hangs must not leave the instance up: PID 1 hears its sign of life, or kills it and
starts it again (batch.watchdog.life_sign).

The hang is real: the watchdog process is SIGSTOPped, as a deadlock or a read that never returns would
leave it (no beat, no exit). Dry runs with local files; WATCHDOG_SILENCE_S is made short (8 s, its
floor: a restarted watchdog on a loaded machine must still beat within it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from run_state import entrypoint_env, stopped_lines, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ENTRY = str(ROOT / "run_with_config_batch_sync.py")


def _env(**extra: str) -> dict[str, str]:
    return entrypoint_env(**{"WATCHDOG_SILENCE_S": "8", "WATCHDOG_START_S": "30", **extra})


def _start(tmp: Path, clip: Path, extra: str, **env: str) -> tuple[subprocess.Popen[bytes], Path]:
    cfg = tmp / "job.yaml"
    cfg.write_text(
        f"job_id: hung-wd\ninputs: [{clip}]\nencode: {{codec: libx264, preset: ultrafast}}\n"
        f"output: {tmp / 'out'}/\nwatchdog: {{confirm: 1, interval_s: 0.2}}\n{extra}"
    )
    state = tmp / "state"
    proc = subprocess.Popen(
        [sys.executable, ENTRY, "--config", str(cfg), "--dry-run", "--state-dir", str(state)],
        env=_env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    return proc, state


def _freeze_watchdog(state: Path, proc: subprocess.Popen[bytes]) -> int:
    """SIGSTOP the first watchdog once it watches (its state file is written as its watch loop starts,
    which beats at once; frozen before its first beat, WATCHDOG_START_S would apply instead)."""
    pid_file = state / "monitor.pid"
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip().isdigit(), 60, proc_alive(proc))
    wait_until(lambda: (state / "watchdog.json").exists(), 60, proc_alive(proc))
    pid = int(pid_file.read_text())
    os.kill(pid, signal.SIGSTOP)
    return pid


def proc_alive(proc: subprocess.Popen[bytes]):
    return lambda: proc.poll() is None


def _finish(proc: subprocess.Popen[bytes], state: Path, frozen: int, timeout: float = 150) -> str:
    """PID 1's output once it ended; on a timeout, PID 1, the frozen watchdog and the runner are
    killed (a failing run must not leave a stopped process and a hung runner behind)."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        for name in ("monitor.pid", "runner.pid"):
            with contextlib.suppress(OSError, ValueError):
                os.kill(int((state / name).read_text()), signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(frozen, signal.SIGKILL)
        raise AssertionError("PID 1 still waited on its hung watchdog: " + out.decode()[-3000:]) from None
    return out.decode()


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] == "Z"
    except OSError:
        return True


@pytest.mark.parametrize("silence", ["8", "2"])  # 2: below the floor, which an outside review found
def test_a_hung_watchdog_and_a_hung_runner_still_end_in_a_shutdown(silence, small_clip, tmp_path) -> None:
    """Both hang: before, nothing ever stopped the instance. Now PID 1 kills the silent watchdog, the
    new one finds the runner stalled, stops it and shuts down."""
    proc, state = _start(
        tmp_path, small_clip, "limits: {stall_s: 5, heartbeat_s: 0.5}\n",
        BATCH_TEST_HANG_AT_FRAME="3", WATCHDOG_SILENCE_S=silence,
    )  # fmt: skip
    frozen = _freeze_watchdog(state, proc)
    out = _finish(proc, state, frozen)
    assert "gave no sign of life" in out, out[-3000:]
    lines = stopped_lines(state)
    assert len(lines) == 1 and "reason=stalled" in lines[0], (lines, out[-3000:])
    assert proc.returncode != 0
    assert _gone(frozen), "the hung watchdog was left behind"


def test_a_watchdog_hung_through_a_good_run_is_replaced_and_verifies(small_clip, tmp_path) -> None:
    """The runner ends well while the watchdog is frozen: the new watchdog verifies the upload and the
    instance is destroyed as after any good run (not a last resort an hour later)."""
    proc, state = _start(tmp_path, small_clip, "", WATCHDOG_FINISH_S="3600")
    frozen = _freeze_watchdog(state, proc)
    started = time.monotonic()
    out = _finish(proc, state, frozen)
    assert proc.returncode == 0, out[-3000:]
    assert "gave no sign of life" in out, out[-3000:]
    lines = stopped_lines(state)
    assert len(lines) == 1 and "action=destroy reason=verified" in lines[0], (lines, out[-3000:])
    assert time.monotonic() - started < 120
    assert _gone(frozen)


def test_a_paused_container_is_no_hung_watchdog(small_clip, tmp_path) -> None:
    """PID 1 and the watchdog frozen together (docker pause) past WATCHDOG_SILENCE_S: when they run
    again the watchdog is not taken for hung (PID 1 heard nobody because it did not run itself)."""
    proc, state = _start(tmp_path, small_clip, "")
    watchdog = _freeze_watchdog(state, proc)
    os.kill(proc.pid, signal.SIGSTOP)
    time.sleep(11)  # past WATCHDOG_SILENCE_S
    os.kill(proc.pid, signal.SIGCONT)  # PID 1 first: it looks before the watchdog could beat
    time.sleep(1.0)
    os.kill(watchdog, signal.SIGCONT)
    out = _finish(proc, state, watchdog)
    assert proc.returncode == 0, out[-3000:]
    assert "gave no sign of life" not in out, out[-3000:]
    lines = stopped_lines(state)
    assert len(lines) == 1 and "action=destroy reason=verified" in lines[0], (lines, out[-3000:])
