"""Carrying out a shutdown: at least once, until the provider confirms, never after it has.

The decision (action, reason) is made by the watchdog, or by PID 1 as a last
resort when the watchdog itself cannot run. From here on nothing that can
fail stands in the way: no storage, no config; the state record is saved
when the disk allows and skipped when it does not. The provider call is
retried with capped exponential backoff, whatever it raises, until it
returns (``confirmed``) or ``budget_s`` runs out (``gave_up``, the reason
says so). ``requested`` is recorded before each call and ``confirmed`` after
it, so a restarted watchdog carries on a shutdown that was started and never
repeats one that was confirmed (see :data:`batch.contracts.SHUTDOWN_FINAL`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

from batch import faults
from batch.contracts import (
    PROVIDER_STOP_FLAG,
    SHUTDOWN_FINAL,
    STOPPING_LINE,
    WATCHDOG_STATE,
    env_seconds,
    state_file,
)
from batch.retry import RetryCallState, RetryPolicy, retrying

log = logging.getLogger("batch.watchdog.watch")

# monitor.py's exit status when its shutdown is final but the provider never confirmed it;
# 0 when final and confirmed (or nothing to call). Anything else: PID 1 starts it again.
EXIT_GAVE_UP = 5
BUDGET_ENV = "SHUTDOWN_BUDGET_S"  # an operator's override of watchdog.shutdown_budget_s
DEFAULT_BUDGET_S = env_seconds(BUDGET_ENV, 900.0)
BASE_WAIT_S = env_seconds("SHUTDOWN_RETRY_BASE_WAIT_S", 2.0)
MAX_WAIT_S = 60.0


def utc(t: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if t is None else t))


def stopping_line(provider: str, action: str, reason: str) -> str:
    """The one line logged (and, in a dry run, written to the sentinel) at shutdown."""
    return f"{STOPPING_LINE} {utc()} provider={provider} action={action} reason={reason}"


def decide(record: MutableMapping[str, Any], provider: str, action: str, reason: str, detail: str) -> None:
    """Fill the record with the decision; an existing, well-formed decision is kept (it came first)."""
    if well_formed(record):
        return
    record.clear()  # empty or corrupt (a torn or hand-edited state file): decide afresh
    record.update(
        action=action,
        reason=reason,
        detail=detail,
        provider=provider,
        at=utc(),
        status="decided",
        attempts=0,
    )


def well_formed(record: MutableMapping[str, Any]) -> bool:
    return (
        record.get("status") in {"decided", "requested", *SHUTDOWN_FINAL}
        and record.get("action") in {"stop", "destroy", "keep"}
        and isinstance(record.get("reason"), str)
        and isinstance(record.get("provider"), str)
        and isinstance(record.get("attempts", 0), int)
    )


def is_final(record: MutableMapping[str, Any] | None) -> bool:
    return record is not None and record.get("status") in SHUTDOWN_FINAL


def carry_out(
    provider: Any,
    record: MutableMapping[str, Any],
    save: Callable[[], None],
    *,
    budget_s: float = DEFAULT_BUDGET_S,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Ask the provider for the decided action until it confirms: 0 (or nothing to do), else EXIT_GAVE_UP.

    ``provider`` has ``name``, ``unsupported(action)`` and ``shutdown(action,
    reason)``. ``save`` writes the record; its failures are logged and
    ignored. Never raises an Exception.
    """
    action, reason = record["action"], record["reason"]
    keep_or_why = _nothing_to_call(provider, action)
    if keep_or_why is not None:
        record.update(status=keep_or_why[0], result=keep_or_why[1], done_at=utc())
        _save(save)
        return 0
    deadline = time.monotonic() + budget_s

    # The project's retry loop, with this call's rules: any Exception (an SDK bug included) is tried
    # again, with no attempt limit and no jitter, until a wait would end past the budget. "requested"
    # is saved before each call, inside the attempt, so a restart never loses a call made.
    def said_failed(state: RetryCallState) -> None:
        log.warning(
            "the %s %s failed (attempt %d: %s); trying again in %.0f s",
            provider.name, action, record["attempts"], record.get("last_error"), state.upcoming_sleep,
        )  # fmt: skip

    policy = RetryPolicy(attempts=None, base_wait_s=BASE_WAIT_S, max_wait_s=MAX_WAIT_S, jitter=False)
    loop = retrying(
        policy,
        retry_on=lambda e: True,
        deadline=deadline,
        before_sleep=said_failed,
        sleep=sleep,
    )
    try:
        for call in loop:
            with call:
                result = _request(provider, record, save, action, reason)
    except Exception:  # the budget ran out: _request recorded the last error
        record.update(
            status="gave_up",
            done_at=utc(),
            result=f"failed: no confirmation after {record['attempts']} attempt(s) in {budget_s:g} s "
            f"(shutdown_budget_s); last error {record.get('last_error')}; stop the instance by hand",
        )
        log.error("the %s %s was not confirmed: %s", provider.name, action, record["result"])
        _save(save)
        return EXIT_GAVE_UP
    faults.after_provider_call(int(record["attempts"]))
    record.update(status="confirmed", confirmed_at=utc(), result=getattr(result, "detail", str(result)))
    record.pop("last_error", None)
    _save(save)
    log.info("shutdown confirmed by %s: %s", provider.name, record["result"])
    return 0


def _request(
    provider: Any, record: MutableMapping[str, Any], save: Callable[[], None], action: str, reason: str
) -> Any:
    """One call: ``requested`` saved first, then the provider asked. Raises what the call raised."""
    record["attempts"] = attempt = int(record.get("attempts") or 0) + 1
    record.update(status="requested", requested_at=utc())
    _save(save)
    try:
        faults.provider_call(attempt)
        return provider.shutdown(action, reason)
    except Exception as e:
        said = getattr(e, "message", None) or str(e)
        record["last_error"] = f"{type(e).__name__}: {said}"
        raise


def _nothing_to_call(provider: Any, action: str) -> tuple[str, str] | None:
    if action == "keep":
        return "kept", "kept running as configured (instance keeps billing)"
    try:
        why = provider.unsupported(action)
    except Exception as e:  # a broken provider object: treat as calling it, which will fail and retry
        log.error("provider %s: unsupported() raised %s", getattr(provider, "name", "?"), e)
        return None
    if why is not None:
        log.warning("provider %s cannot %s: %s", provider.name, action, why)
        return "unsupported", f"not supported: {why}"
    return None


def _save(save: Callable[[], None]) -> None:
    try:
        save()
    except Exception as e:  # a full disk must not stand between the decision and the call
        log.warning("could not save the watchdog state (%s); carrying on", e)


def last_resort(
    state_dir: Path, *, dry_run: bool, reason: str, detail: str, launch_id: str | None = None
) -> int:
    """PID 1's shutdown when the watchdog cannot finish: no config, no storage, the disk if it works.

    Carries on the watchdog's own decision when it recorded a well-formed one
    for this launch (its provider, action and reason); else stops the
    instance the environment names (``stop``: the disk is kept for a
    post-mortem). Never raises. 0 when confirmed (or nothing to call), else
    EXIT_GAVE_UP.
    """
    state: dict[str, Any] = {}
    path = state_file(state_dir, WATCHDOG_STATE)
    try:
        loaded = json.loads(path.read_text())
        state = loaded if isinstance(loaded, dict) else {}
    except Exception:
        pass
    if launch_id is not None and state.get("launch_id") != launch_id:
        state = {}  # another launch's record (its archive failed): not this run's decision
    record = state.get("shutdown") if isinstance(state.get("shutdown"), dict) else None
    if record is not None and not well_formed(record) and record.get("status") != "provider_stopping":
        record = None  # torn or hand-edited: a fresh "stop" is safer than guessing (never a destroy)
    if is_final(record) or state_file(state_dir, PROVIDER_STOP_FLAG).exists():
        return 0
    provider = _env_provider(record.get("provider") if record else None, dry_run=dry_run, state_dir=state_dir)
    record = record or {}
    decide(record, provider.name, "stop", reason, detail)
    log.error(stopping_line(provider.name, record["action"], record["reason"]) + " (last resort, by PID 1)")
    log.error("reason detail: %s", record.get("detail"))

    def save() -> None:
        faults.state_write()
        state["shutdown"] = record
        if launch_id is not None:
            state["launch_id"] = launch_id
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(path)

    return carry_out(provider, record, save)


def _env_provider(name: str | None, *, dry_run: bool, state_dir: Path) -> Any:
    """The provider named (else the one the environment says); a dry run always gets the local one."""
    try:
        from batch.providers.local import LocalProvider
        from batch.providers.registry import provider_for
    except Exception as e:  # cannot even import: nothing more can be done here than say so
        log.error("cannot import the providers: %s", e)
        return _Unavailable(f"providers cannot be imported: {type(e).__name__}: {e}")
    if dry_run:
        return LocalProvider(state_dir)
    for attempt in (name or "auto", "auto"):
        try:
            return provider_for(attempt, dry_run=False, state_dir=state_dir)
        except Exception as e:
            log.error("cannot set up provider %r: %s", attempt, e)
    return LocalProvider(state_dir)


class _Unavailable:
    name = "unavailable"

    def __init__(self, why: str) -> None:
        self.why = why

    def unsupported(self, action: str) -> str | None:
        return self.why

    def shutdown(self, action: str, reason: str) -> Any:
        raise RuntimeError(self.why)
