"""What the entrypoint starts before its own imports: PID 1's runner, the runner's first ffprobe.

On the 2-core development VM PID 1 spent ~0.1 s importing before it started the runner, and the
runner ~0.15 s importing before it started its first ffprobe; each is on the way to the first frame
(docs/benchmarks.md). Both are head starts only: a runner started here waits for PID 1 to name its
state dir (after the watchdog has started), and an ffprobe started here is used only if the runner
asks for the same command on the same, unchanged file (batch.media.probe_ahead). Anything unusual
in the arguments means no head start, never another behaviour.
"""

from __future__ import annotations

import os
import signal
from types import FrameType

# arguments that make the entrypoint run no job at all, and those that make it something other than PID 1
NO_JOB = ("--validate", "--print-job-id", "-h", "--help")
NOT_PID1 = ("--worker", "--no-watchdog", *NO_JOB)


def is_pid1(raw: list[str]) -> bool:
    return not any(a in NOT_PID1 for a in raw)


def option(raw: list[str], name: str) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` as written (the last one wins, as in argparse)."""
    found = None
    for i, arg in enumerate(raw):
        if arg == name and i + 1 < len(raw):
            found = raw[i + 1]
        elif arg.startswith(name + "="):
            found = arg[len(name) + 1 :]
    return found


_stop_signal = 0


def _remember_stop(signum: int, _frame: FrameType | None) -> None:
    global _stop_signal
    _stop_signal = _stop_signal or signum


def stop_pending() -> bool:
    return _stop_signal != 0


def take_stop_signal() -> int:
    """A SIGTERM that reached PID 1 before its supervisor took it over, once; else 0."""
    global _stop_signal
    signum, _stop_signal = _stop_signal, 0
    return signum


def head_start(raw: list[str]) -> None:
    """PID 1: start the runner now; the runner of one job: start its first local input's ffprobe now."""
    if is_pid1(raw):
        # A container's PID 1 gets no signal it has no handler for: a provider's SIGTERM in PID 1's
        # first ~0.5 s was lost, and the run ended at the SIGKILL with no record. Kept here until the
        # supervisor's own handlers take it (batch.watchdog.supervisor), which then stops the run.
        # SIGINT keeps Python's own handling: a Ctrl-C at a terminal ends PID 1 at once, as before.
        signal.signal(signal.SIGTERM, _remember_stop)
        from batch.watchdog.launch import start_early_runner

        start_early_runner(raw)
        return
    if not ("--worker" in raw or "--no-watchdog" in raw):
        return
    if any(a in raw for a in NO_JOB):
        return
    from batch.shard_env import shard_spec_from_env

    if option(raw, "--shard") is not None or shard_spec_from_env() is not None:
        return  # a shard's first input is not the config's first input
    config_url = option(raw, "--config") or os.environ.get("CONFIG_URL")
    if config_url:
        from batch.job.early_probe import start_for

        start_for(config_url)
