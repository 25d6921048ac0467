"""Moved to :mod:`batch.retry`: control planes and the watchdog use the one policy too.

Kept as a re-export so that code importing it here (batch/instance, on its way to
batch/providers) keeps working; import from batch.retry in new code.
"""

from __future__ import annotations

from batch.retry import (
    CONTROL_PLANE,
    STORAGE,
    RetryPolicy,
    call_control_plane,
    call_with_retry,
    is_retryable,
    policy_from_env,
)

__all__ = [
    "CONTROL_PLANE",
    "STORAGE",
    "RetryPolicy",
    "call_control_plane",
    "call_with_retry",
    "is_retryable",
    "policy_from_env",
]
