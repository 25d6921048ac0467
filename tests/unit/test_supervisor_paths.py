"""PID 1 starts the watchdog and the runner by path: those paths must exist (a move once broke them)."""

from __future__ import annotations

from batch.watchdog import supervisor


def test_pid1_finds_the_watchdog_and_the_runner_entrypoints() -> None:
    assert supervisor.MONITOR.is_file(), supervisor.MONITOR
    assert supervisor.ENTRYPOINT.is_file(), supervisor.ENTRYPOINT
