"""The shutdown itself: at least once, until confirmed, never twice, whatever the provider raises.

The provider here is a small in-process double (a cloud API cannot run here);
the real providers against their local control-plane fakes are in
tests/integration/test_fault_matrix.py and test_instance_providers.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from batch.contracts import STOPPED_SENTINEL, WATCHDOG_STATE
from batch.watchdog import shutdown


class Provider:
    name = "double"

    def __init__(self, fail: list[BaseException] | None = None, unsupported: str | None = None) -> None:
        self.fail = list(fail or [])
        self.calls: list[tuple[str, str]] = []
        self._unsupported = unsupported

    def unsupported(self, action: str) -> str | None:
        return self._unsupported

    def shutdown(self, action: str, reason: str) -> str:
        self.calls.append((action, reason))
        if self.fail:
            raise self.fail.pop(0)
        return "stopped"


def _decided(action: str = "stop", reason: str = "succeeded") -> dict[str, Any]:
    record: dict[str, Any] = {}
    shutdown.decide(record, "double", action, reason, "detail")
    return record


def test_any_exception_is_retried_until_the_provider_confirms() -> None:
    provider = Provider([KeyError("sdk bug"), ValueError("bad char"), OSError("reset"), RuntimeError("x")])
    record, saved, waits = _decided(), [], []
    code = shutdown.carry_out(provider, record, lambda: saved.append(dict(record)), sleep=waits.append)
    assert code == 0 and record["status"] == "confirmed" and record["attempts"] == 5
    assert len(provider.calls) == 5 and "last_error" not in record
    assert waits == sorted(waits) and waits[0] < waits[-1]  # backoff grows
    # "requested" was saved before every call, "confirmed" only after the last
    assert [s["status"] for s in saved] == ["requested"] * 5 + ["confirmed"]


def test_a_confirmed_shutdown_is_never_repeated_and_a_requested_one_is_carried_on() -> None:
    record = _decided()
    record.update(status="requested", attempts=2)  # a watchdog killed between the call and its answer
    assert not shutdown.is_final(record)
    provider = Provider()
    assert shutdown.carry_out(provider, record, lambda: None, sleep=lambda s: None) == 0
    assert record["attempts"] == 3 and len(provider.calls) == 1
    assert shutdown.is_final(record)
    # decide() keeps the first decision: a later, different one does not replace it
    shutdown.decide(record, "double", "destroy", "watchdog_failed", "later")
    assert (record["action"], record["reason"], record["status"]) == ("stop", "succeeded", "confirmed")


def test_the_budget_bounds_the_retries_and_the_result_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(shutdown.time, "monotonic", lambda: clock[0])
    provider = Provider([RuntimeError("down")] * 1000)

    def sleep(s: float) -> None:
        clock[0] += s

    record = _decided()
    code = shutdown.carry_out(provider, record, lambda: None, budget_s=120, sleep=sleep)
    assert code == shutdown.EXIT_GAVE_UP and record["status"] == "gave_up"
    assert "shutdown_budget_s" in record["result"] and "RuntimeError: down" in record["result"]
    assert clock[0] - 1000.0 <= 120 and 3 <= len(provider.calls) < 20


def test_a_save_that_fails_does_not_stop_the_call() -> None:
    def full_disk() -> None:
        raise OSError(28, "No space left on device")

    provider = Provider()
    record = _decided()
    assert shutdown.carry_out(provider, record, full_disk, sleep=lambda s: None) == 0
    assert provider.calls == [("stop", "succeeded")]


@pytest.mark.parametrize(
    ("action", "unsupported", "status"), [("keep", None, "kept"), ("stop", "no API", "unsupported")]
)
def test_nothing_to_call_is_final_without_a_call(action: str, unsupported: str | None, status: str) -> None:
    provider = Provider(unsupported=unsupported)
    record = _decided(action)
    assert shutdown.carry_out(provider, record, lambda: None) == 0
    assert record["status"] == status and provider.calls == []


def test_last_resort_in_a_dry_run_writes_the_sentinel_and_records_it(tmp_path: Path) -> None:
    code = shutdown.last_resort(tmp_path, dry_run=True, reason="watchdog_failed", detail="it raised")
    assert code == 0
    state = json.loads((tmp_path / WATCHDOG_STATE).read_text())
    assert state["shutdown"]["status"] == "confirmed" and state["shutdown"]["reason"] == "watchdog_failed"
    assert (tmp_path / STOPPED_SENTINEL).exists()
    # a second last resort (PID 1 restarted) sees it final and calls nothing more
    before = (tmp_path / STOPPED_SENTINEL).read_text()
    assert shutdown.last_resort(tmp_path, dry_run=True, reason="again", detail="") == 0
    assert (tmp_path / STOPPED_SENTINEL).read_text() == before


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "{",
        "[1, 2]",
        '{"shutdown": 7}',
        '{"shutdown": {"status": 1}}',
        '{"shutdown": {"status": "decided"}}',
        '{"shutdown": {"status": "requested", "action": "explode", "reason": "x"}}',
    ],
)
def test_last_resort_survives_a_corrupt_state_file(tmp_path: Path, garbage: str) -> None:
    (tmp_path / WATCHDOG_STATE).write_text(garbage)
    assert shutdown.last_resort(tmp_path, dry_run=True, reason="watchdog_failed", detail="x") == 0
    assert (tmp_path / STOPPED_SENTINEL).exists()


def test_last_resort_carries_on_the_watchdogs_own_decision(tmp_path: Path) -> None:
    record = _decided("destroy", "succeeded")
    record.update(status="requested", attempts=1)
    (tmp_path / WATCHDOG_STATE).write_text(json.dumps({"shutdown": record}))
    assert shutdown.last_resort(tmp_path, dry_run=True, reason="watchdog_failed", detail="x") == 0
    done = json.loads((tmp_path / WATCHDOG_STATE).read_text())["shutdown"]
    assert (done["action"], done["reason"], done["status"], done["attempts"]) == (
        "destroy",
        "succeeded",
        "confirmed",
        2,
    )
