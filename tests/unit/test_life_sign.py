"""The watchdog's sign of life: it never blocks or raises in the watchdog, and PID 1 reads it right."""

from __future__ import annotations

import os
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
    sign.finishing()
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("fd", [None, 987, -1])
def test_no_pipe_or_a_bad_one_is_no_error(fd) -> None:
    sign = LifeSign(fd)
    sign.beat()
    sign.finishing()


def test_pid1_gone_is_no_error() -> None:
    pulse = Pulse()
    sign = LifeSign(pulse.write_fd)
    pulse.close()
    sign.beat()  # EPIPE (Python ignores SIGPIPE): the sign stops, the watchdog goes on
    sign.finishing()


def test_a_watchdog_that_ended_reads_as_silent_not_finishing() -> None:
    """EOF is no beat: its exit status tells PID 1 the rest."""
    pulse = Pulse()
    pulse.sent()  # the only write end closed
    pulse.last -= 5
    assert pulse.silent_for() >= 5 and not pulse.finishing
