"""batch.retry: the one retry loop (tenacity) every storage, control-plane and watchdog retry uses."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from batch import retry
from batch.errors import ControlPlaneUnavailable, ObjectNotFound, StorageUnreachable
from batch.retry import RetryPolicy, retrying


def _run(loop: object, outcomes: list[BaseException | str]) -> str:
    for attempt in loop:  # type: ignore[attr-defined]
        with attempt:
            got = outcomes.pop(0)
            if isinstance(got, BaseException):
                raise got
            return got
    raise AssertionError("no outcome")


def test_waits_double_up_to_the_cap_without_jitter() -> None:
    waits: list[float] = []
    policy = RetryPolicy(attempts=6, base_wait_s=1.0, max_wait_s=5.0, jitter=False)
    outcomes: list[BaseException | str] = [StorageUnreachable("x")] * 5 + ["ok"]
    assert _run(retrying(policy, sleep=waits.append), outcomes) == "ok"
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_jitter_stays_within_one_base_step() -> None:
    waits: list[float] = []
    policy = RetryPolicy(attempts=4, base_wait_s=1.0, max_wait_s=60.0)
    _run(retrying(policy, sleep=waits.append), [StorageUnreachable("x")] * 3 + ["ok"])
    assert all(base <= w <= base + 1.0 for base, w in zip([1.0, 2.0, 4.0], waits, strict=True))


def test_the_attempt_limit_reraises_the_last_error() -> None:
    waits: list[float] = []
    errors = [StorageUnreachable("first"), StorageUnreachable("last")]
    with pytest.raises(StorageUnreachable, match="last"):
        _run(retrying(RetryPolicy(attempts=2, base_wait_s=0.1), sleep=waits.append), list(errors))
    assert len(waits) == 1


def test_only_what_retry_on_accepts_is_retried() -> None:
    with pytest.raises(ObjectNotFound):  # not retryable by class: raised at once
        _run(retrying(RetryPolicy(attempts=5), sleep=pytest.fail), [ObjectNotFound("gone"), "ok"])
    loop = retrying(RetryPolicy(attempts=5, max_wait_s=0), retry_on=lambda e: isinstance(e, KeyError))
    assert _run(loop, [KeyError("a"), "ok"]) == "ok"


def test_a_base_exception_is_never_retried() -> None:
    loop = retrying(RetryPolicy(attempts=None, max_wait_s=0), retry_on=lambda e: True)
    with pytest.raises(KeyboardInterrupt):
        _run(loop, [KeyboardInterrupt(), "ok"])


def test_a_deadline_stops_before_a_wait_that_would_end_past_it(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])

    def sleep(s: float) -> None:
        clock[0] += s

    policy = RetryPolicy(attempts=None, base_wait_s=1.0, max_wait_s=8.0, jitter=False)
    calls: list[float] = []

    def failing() -> str:
        calls.append(clock[0])
        raise RuntimeError("down")

    with pytest.raises(RuntimeError, match="down"):
        for attempt in retrying(policy, retry_on=lambda e: True, deadline=100.0 + 10.0, sleep=sleep):
            with attempt:
                failing()
    assert calls == [100.0, 101.0, 103.0, 107.0]  # the next wait (8 s) would end at 115 > 110
    assert clock[0] <= 110.0


def test_call_with_retry_reads_the_environment_and_counts_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("STORAGE_RETRY_MAX_WAIT_S", "0")
    calls: list[int] = []

    def down() -> None:
        calls.append(1)
        raise StorageUnreachable("down")

    with pytest.raises(StorageUnreachable) as info:
        retry.call_with_retry(down)
    assert len(calls) == 3 and info.value.fields["attempts"] == 3
    monkeypatch.setenv("CONTROL_PLANE_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("CONTROL_PLANE_RETRY_MAX_WAIT_S", "0")
    answers: list[BaseException | str] = [ControlPlaneUnavailable("busy"), "stopped"]

    def stop() -> str:
        got = answers.pop(0)
        if isinstance(got, BaseException):
            raise got
        return got

    assert retry.call_control_plane(stop) == "stopped"


def test_importing_it_pulls_in_no_storage_sdk_and_no_array_library() -> None:
    code = (
        "import sys, batch.retry, batch.watchdog.shutdown\n"
        "heavy = [m for m in ('numpy', 'torch', 'PIL', 'boto3', 'b2sdk', 'requests', 'batch.storage') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
