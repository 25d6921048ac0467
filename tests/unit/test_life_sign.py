"""The watchdog's sign of life: it never blocks or raises in the watchdog, and PID 1 reads it right."""

from __future__ import annotations

import os
import threading
import time

import pytest

from batch.watchdog import life_sign
from batch.watchdog.life_sign import LifeSign, Pulse


def test_pid1_hears_beats_then_finishing() -> None:
    pulse = Pulse()
    sign = LifeSign(pulse.write_fd)
    pulse.last -= 100  # as if long silent
    assert pulse.silent_for() > 99
    sign.beat()
    assert pulse.silent_for() < 1
    sign.finishing()
    assert pulse.silent_for() == 0.0 and pulse.finishing
    sign.beat()  # after finishing: nothing more is sent
    with pytest.raises(BlockingIOError):
        os.read(pulse.read_fd, 10)


def test_beats_are_at_most_one_a_second() -> None:
    pulse = Pulse()
    sign = LifeSign(pulse.write_fd)
    for _ in range(1000):
        sign.beat()
    assert os.read(pulse.read_fd, 4096) == life_sign.BEAT


def test_a_full_pipe_never_blocks_the_watch_loop(monkeypatch) -> None:
    """PID 1 stopped reading: the beat is dropped, the loop goes on at once."""
    monkeypatch.setattr(life_sign, "BEAT_EVERY_S", 0.0)
    pulse = Pulse()
    sign = LifeSign(pulse.write_fd)
    started = time.monotonic()
    for _ in range(200_000):  # far more than a pipe holds
        sign.beat()
    assert time.monotonic() - started < 30
    threading.Timer(0.5, lambda: os.read(pulse.read_fd, 1 << 20)).start()  # PID 1 reads again
    sign.finishing()  # waits for room rather than lose the word
    pulse.silent_for()
    assert pulse.finishing


@pytest.mark.parametrize("fd", [None, 987, -1])
def test_no_pipe_or_a_bad_one_is_no_error(fd) -> None:
    sign = LifeSign(fd)
    sign.beat()  # raises nothing: the watch loop goes on
    assert sign._fd is None  # and the sign gave up on the descriptor at once
    sign.finishing()


def test_pid1_gone_is_no_error() -> None:
    pulse = Pulse()
    sign = LifeSign(pulse.write_fd)
    pulse.close()
    sign.beat()  # EPIPE (Python ignores SIGPIPE): the sign stops, the watchdog goes on
    assert sign._fd is None
    started = time.monotonic()
    sign.finishing()  # nobody to tell: no wait for room
    assert time.monotonic() - started < 0.5


def test_a_watchdog_that_ended_reads_as_silent_not_finishing() -> None:
    """EOF is no beat: its exit status tells PID 1 the rest."""
    pulse = Pulse()
    pulse.sent()  # the only write end closed
    pulse.last -= 5
    assert pulse.silent_for() >= 5 and not pulse.finishing


def _supervisor_waiting_on(tmp_path, monkeypatch, *, beat_first: bool = False, **limits: float):
    """PID 1's wait on a watchdog that never beats (a real process that only sleeps); ``beat_first``:
    one beat came before the wait."""
    import subprocess

    from batch.watchdog import supervisor

    for name, value in limits.items():
        monkeypatch.setattr(supervisor, name, value)
    sup = supervisor.Supervisor("job.yaml", tmp_path, dry_run=True, quiet=True)
    pulse = sup._pulse = Pulse()
    monitor = subprocess.Popen(["sleep", "60"], pass_fds=(pulse.write_fd,))
    if beat_first:
        os.write(pulse.write_fd, life_sign.BEAT)
    pulse.sent()
    return sup, monitor


def test_a_watchdog_that_never_beat_gets_its_start_allowance(tmp_path, monkeypatch) -> None:
    """Its start may read a remote config for minutes (an outside review measured 613 s against a
    600 s limit): before its first beat the limit is WATCHDOG_START_S, not WATCHDOG_SILENCE_S."""
    sup, monitor = _supervisor_waiting_on(tmp_path, monkeypatch, WATCHDOG_SILENCE_S=1.0, WATCHDOG_START_S=5.0)
    started = time.monotonic()
    status = sup._wait(monitor)
    waited = time.monotonic() - started
    assert status == -9 and 5.0 <= waited < 15, (status, waited)


def test_after_its_first_beat_the_silence_limit_applies(tmp_path, monkeypatch) -> None:
    sup, monitor = _supervisor_waiting_on(
        tmp_path, monkeypatch, beat_first=True, WATCHDOG_SILENCE_S=2.0, WATCHDOG_START_S=60.0
    )
    started = time.monotonic()
    status = sup._wait(monitor)
    waited = time.monotonic() - started
    assert status == -9 and 2.0 <= waited < 15, (status, waited)


@pytest.mark.parametrize("value", ["0.001", "1", "2", "7"])
def test_a_short_silence_setting_cannot_switch_detection_off(value: str) -> None:
    """2 s had made every look of PID 1 (a second apart, a little more) count as PID 1 frozen, so the
    silence never added up (outside review). Now the limit is at least twice that bound."""
    import subprocess
    import sys

    code = (
        "from batch.watchdog import supervisor as s; "
        "print(s.WATCHDOG_SILENCE_S >= 2 * s.PID1_FROZEN_S, s.WATCHDOG_START_S >= s.WATCHDOG_SILENCE_S)"
    )
    env = {**os.environ, "WATCHDOG_SILENCE_S": value}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.splitlines()[-1].split() == ["True", "True"], out
    assert ("below its floor" in out.stdout) == (float(value) < 8), out  # raised, and said so


def test_a_watchdog_still_starting_when_the_runner_ends_is_restarted(tmp_path, monkeypatch) -> None:
    """A runner that fails fast (it could not read the config either) while the watchdog still reads
    it: WATCHDOG_FINISH_S is for a watchdog whose watch is over, not one that has not begun (second
    outside review); it is restarted after WATCHDOG_START_S, not replaced by the last resort."""
    sup, monitor = _supervisor_waiting_on(
        tmp_path, monkeypatch, WATCHDOG_SILENCE_S=1.0, WATCHDOG_START_S=5.0, WATCHDOG_FINISH_S=1.0
    )
    sup.runner_done.set()
    started = time.monotonic()
    status = sup._wait(monitor)
    waited = time.monotonic() - started
    assert status == -9 and 5.0 <= waited < 15, (status, waited)  # killed to be restarted, not None


def test_a_watchdog_that_does_not_die_at_once_does_not_hold_pid1(tmp_path, monkeypatch) -> None:
    """A process in an uninterruptible read (a hard network mount) dies only when the read returns.
    That state cannot be made here, so the kill is made to do nothing (the only stand-in in this
    file): PID 1 goes on after KILL_WAIT_S, as killed."""
    from batch.watchdog import supervisor

    sup, monitor = _supervisor_waiting_on(tmp_path, monkeypatch, WATCHDOG_SILENCE_S=1.0, WATCHDOG_START_S=1.0)
    monkeypatch.setattr(supervisor, "KILL_WAIT_S", 1.0)
    monkeypatch.setattr(monitor, "kill", lambda: None)
    started = time.monotonic()
    try:
        status = sup._wait(monitor)
    finally:
        monitor.terminate()
        monitor.wait()
    assert status == -9 and time.monotonic() - started < 10
