"""The one retry policy, for storage, control planes and the watchdog alike (tenacity).

Every retry loop in the project is a :func:`retrying` loop: capped
exponential backoff (with jitter unless the policy says otherwise), an
attempt limit and/or a deadline, and a predicate on the exception::

    for attempt in retrying(policy, retry_on=..., deadline=...):
        with attempt:
            ...  # raise to try again; return to finish

Storage and control-plane calls use :func:`call_with_retry` and
:func:`call_control_plane`: only errors whose class says ``retryable = True``
are retried (StorageUnreachable, UploadVerificationFailed,
ControlPlaneUnavailable); everything else surfaces at once. Backends and
instance providers map SDK errors to our classes *inside* the retried
function, so the decision is made on our types, never on message text.

Tuning, read from the environment at every call so tests can set it:

* ``STORAGE_RETRY_ATTEMPTS`` (default 5): total attempts, at least 1.
* ``STORAGE_RETRY_BASE_WAIT_S`` (default 0.5): first backoff step.
* ``STORAGE_RETRY_MAX_WAIT_S`` (default 30): cap on one wait; 0 means retry
  without waiting.

Control-plane calls (stopping a billed instance) use the same policy with
their own, more patient budget: ``CONTROL_PLANE_RETRY_ATTEMPTS`` (default 8),
``CONTROL_PLANE_RETRY_BASE_WAIT_S`` (1) and ``CONTROL_PLANE_RETRY_MAX_WAIT_S`` (60).

The error finally raised by :func:`call_with_retry` carries ``fields["attempts"]``.

Imports only the standard library, tenacity and batch.errors: the watchdog
and PID 1's last-resort shutdown use it (never batch.storage, which it is not part of).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_never,
    wait_exponential,
    wait_exponential_jitter,
    wait_none,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from batch.errors import BatchError

__all__ = [
    "CONTROL_PLANE",
    "STORAGE",
    "RetryCallState",
    "RetryPolicy",
    "backoff",
    "call_control_plane",
    "call_with_retry",
    "is_retryable",
    "log_before_sleep",
    "policy_from_env",
    "retrying",
    "stop_before_deadline",
]

log = logging.getLogger("batch.retry")

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to try: ``base_wait_s``, doubled each time, capped at ``max_wait_s``."""

    attempts: int | None = 5  # total attempts; None: no limit (a deadline then bounds the loop)
    base_wait_s: float = 0.5
    max_wait_s: float = 30.0
    jitter: bool = True  # add up to base_wait_s at random to each wait (many clients, one server)


STORAGE = RetryPolicy(attempts=5, base_wait_s=0.5, max_wait_s=30.0)
CONTROL_PLANE = RetryPolicy(attempts=8, base_wait_s=1.0, max_wait_s=60.0)


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return max(0.0, float(raw))
    except ValueError:
        log.warning("ignoring %s=%r (not a number)", name, raw)
        return default


def policy_from_env(prefix: str = "STORAGE", default: RetryPolicy = STORAGE) -> RetryPolicy:
    """The policy as the environment sets it now (``<prefix>_RETRY_*``)."""
    attempts = int(_env_float(f"{prefix}_RETRY_ATTEMPTS", default.attempts or 1))
    return RetryPolicy(
        attempts=max(1, attempts),
        base_wait_s=_env_float(f"{prefix}_RETRY_BASE_WAIT_S", default.base_wait_s),
        max_wait_s=_env_float(f"{prefix}_RETRY_MAX_WAIT_S", default.max_wait_s),
        jitter=default.jitter,
    )


def is_retryable(exc: BaseException) -> bool:
    """True for errors whose class declares ``retryable = True``."""
    return bool(getattr(type(exc), "retryable", False))


def backoff(policy: RetryPolicy) -> wait_base:
    """The project's backoff: base, 2 x base, 4 x base ... capped at max (plus jitter); none at max 0."""
    if policy.max_wait_s <= 0:
        return wait_none()
    if policy.jitter:
        return wait_exponential_jitter(
            multiplier=policy.base_wait_s, max=policy.max_wait_s, jitter=policy.base_wait_s
        )
    return wait_exponential(multiplier=policy.base_wait_s, max=policy.max_wait_s)


class stop_before_deadline(stop_base):  # named like tenacity's stop conditions
    """Stop when the next wait would end after ``deadline`` (a ``time.monotonic()`` value).

    Unlike tenacity's ``stop_after_delay`` it never sleeps past the deadline, and unlike
    ``stop_before_delay`` the deadline may be fixed before the loop starts (a caller's budget).
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return time.monotonic() + (retry_state.upcoming_sleep or 0.0) > self.deadline


def log_before_sleep(logger: logging.Logger, what: str) -> Callable[[RetryCallState], None]:
    """A before-sleep hook: ``<what> failed (attempt N: error); trying again in S s`` as a warning."""

    def hook(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        said = exc.message if isinstance(exc, BatchError) else f"{type(exc).__name__}: {exc}"
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "%s failed (attempt %d: %s); trying again in %.1f s", what, state.attempt_number, said, wait
        )

    return hook


def retrying(
    policy: RetryPolicy,
    *,
    retry_on: Callable[[BaseException], bool] = is_retryable,
    deadline: float | None = None,
    before_sleep: Callable[[RetryCallState], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Retrying:
    """A tenacity loop under ``policy``: the one way the project retries.

    Stops after ``policy.attempts`` (if set) or before a wait that would end after
    ``deadline`` (if set); retries the exceptions ``retry_on`` accepts (a BaseException that
    is not an Exception, e.g. KeyboardInterrupt, is never retried); the last exception is
    raised as it is. ``before_sleep`` is called before each wait (see :func:`log_before_sleep`).
    """
    stop: stop_base = stop_never if policy.attempts is None else stop_after_attempt(policy.attempts)
    if deadline is not None:
        stop = stop | stop_before_deadline(deadline)
    return Retrying(
        stop=stop,
        wait=backoff(policy),
        retry=retry_if_exception(lambda e: isinstance(e, Exception) and retry_on(e)),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )


def call_with_retry(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``fn(*args, **kwargs)`` under the storage policy; re-raise the last error.

    Raises whatever ``fn`` raises; a BatchError gets ``fields["attempts"]``.
    """
    return _call(policy_from_env(), fn, *args, **kwargs)


def call_control_plane(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Like :func:`call_with_retry`, with the control plane's more patient budget."""
    return _call(policy_from_env("CONTROL_PLANE", CONTROL_PLANE), fn, *args, **kwargs)


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning("call failed (attempt %d), retrying in %.2fs: %s", state.attempt_number, wait, exc)


def _call(policy: RetryPolicy, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    attempt_no = 0
    try:
        for attempt in retrying(policy, before_sleep=_log_retry):
            with attempt:
                attempt_no = attempt.retry_state.attempt_number
                return fn(*args, **kwargs)
    except BatchError as exc:
        exc.fields["attempts"] = attempt_no
        raise
    raise AssertionError("unreachable: tenacity stopped without an outcome")
