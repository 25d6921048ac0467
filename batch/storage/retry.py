"""The one retry policy for every storage and control-plane call.

Capped exponential backoff with jitter (tenacity). Only errors whose class
says ``retryable = True`` are retried (StorageUnreachable,
UploadVerificationFailed, ControlPlaneUnavailable); everything else surfaces
at once. Backends and instance providers map SDK errors to our classes
*inside* the retried function, so the decision is made on our types, never
on message text.

Tuning, read from the environment at every call so tests can set it:

* ``STORAGE_RETRY_ATTEMPTS`` (default 5): total attempts, at least 1.
* ``STORAGE_RETRY_BASE_WAIT_S`` (default 0.5): first backoff step.
* ``STORAGE_RETRY_MAX_WAIT_S`` (default 30): cap on one wait; 0 means retry
  without waiting.

Control-plane calls (stopping a billed instance) use the same policy with
their own, more patient budget: ``CONTROL_PLANE_RETRY_ATTEMPTS`` (default 8),
``CONTROL_PLANE_RETRY_BASE_WAIT_S`` (1) and ``CONTROL_PLANE_RETRY_MAX_WAIT_S`` (60).

The error finally raised carries ``fields["attempts"]``.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
    wait_none,
)

from batch.errors import BatchError

log = logging.getLogger("batch.storage")

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_wait_s: float = 0.5
    max_wait_s: float = 30.0


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return max(0.0, float(raw))
    except ValueError:
        log.warning("ignoring %s=%r (not a number)", name, raw)
        return default


STORAGE = RetryPolicy(attempts=5, base_wait_s=0.5, max_wait_s=30.0)
CONTROL_PLANE = RetryPolicy(attempts=8, base_wait_s=1.0, max_wait_s=60.0)


def policy_from_env(prefix: str = "STORAGE", default: RetryPolicy = STORAGE) -> RetryPolicy:
    """The policy as the environment sets it now (``<prefix>_RETRY_*``)."""
    attempts = int(_env_float(f"{prefix}_RETRY_ATTEMPTS", default.attempts))
    return RetryPolicy(
        attempts=max(1, attempts),
        base_wait_s=_env_float(f"{prefix}_RETRY_BASE_WAIT_S", default.base_wait_s),
        max_wait_s=_env_float(f"{prefix}_RETRY_MAX_WAIT_S", default.max_wait_s),
    )


def is_retryable(exc: BaseException) -> bool:
    """True for errors whose class declares ``retryable = True``."""
    return bool(getattr(type(exc), "retryable", False))


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning(
        "call failed (attempt %d), retrying in %.2fs: %s",
        state.attempt_number,
        wait,
        exc,
    )


def call_with_retry(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``fn(*args, **kwargs)`` under the storage policy; re-raise the last error.

    Raises whatever ``fn`` raises; a BatchError gets ``fields["attempts"]``.
    """
    return _call(policy_from_env(), fn, *args, **kwargs)


def call_control_plane(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Like :func:`call_with_retry`, with the control plane's more patient budget."""
    return _call(policy_from_env("CONTROL_PLANE", CONTROL_PLANE), fn, *args, **kwargs)


def _call(policy: RetryPolicy, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    if policy.max_wait_s <= 0:
        wait = wait_none()
    else:
        wait = wait_exponential_jitter(
            multiplier=policy.base_wait_s,
            max=policy.max_wait_s,
            jitter=policy.base_wait_s,
        )
    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts),
        wait=wait,
        retry=retry_if_exception(is_retryable),
        before_sleep=_log_retry,
        reraise=True,
    )
    attempt_no = 0
    try:
        for attempt in retrying:
            with attempt:
                attempt_no = attempt.retry_state.attempt_number
                return fn(*args, **kwargs)
    except BatchError as exc:
        exc.fields["attempts"] = attempt_no
        raise
    raise AssertionError("unreachable: tenacity stopped without an outcome")


def retrying(fn: Callable[P, T]) -> Callable[P, T]:
    """Decorator form of :func:`call_with_retry`."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return call_with_retry(fn, *args, **kwargs)

    return wrapper
