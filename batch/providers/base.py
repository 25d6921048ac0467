"""The interface every instance provider implements, and the STOPPING line.

A provider stops or destroys the machine this job runs on. What it cannot
do is declared as data (``unsupported(action)`` returns a readable reason),
so the watchdog can say so in its log and manifest instead of failing late.
Providers never read secrets from anywhere but the environment and never
put them in a message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from batch.errors import ControlPlaneError, ControlPlaneRefused
from batch.retry import call_control_plane
from batch.watchdog.shutdown import stopping_line

__all__ = ["Action", "Provider", "ShutdownResult", "remote_shutdown", "stopping_line"]

log = logging.getLogger("batch.providers")

Action = Literal["stop", "destroy", "keep"]


@dataclass(frozen=True)
class ShutdownResult:
    provider: str
    action: str
    ok: bool
    detail: str  # what the control plane answered, secrets excluded
    attempts: int = 1


@runtime_checkable
class Provider(Protocol):
    """One way to stop or destroy the instance: vast, runpod, command, local, skypilot."""

    name: str

    def unsupported(self, action: Action) -> str | None:
        """None when ``action`` can be carried out here, else why not."""
        ...

    def shutdown(self, action: Action, reason: str) -> ShutdownResult:
        """Carry out ``action`` ("stop" or "destroy"; "keep" does nothing) once.

        Retries transient failures (429, 5xx, connection errors) with the
        project's retry policy. Raises ControlPlaneRefused (bad key) and
        ControlPlaneUnavailable (still failing after the retries).
        """
        ...


def remote_shutdown(
    provider: str,
    label: str,
    target: str | None,
    action: Action,
    reason: str,
    *,
    unsupported: str | None,
    call: Callable[[Action], str],
) -> ShutdownResult:
    """The shared shape of a cloud provider's shutdown: check, call with retries, report.

    ``keep`` calls nothing. A missing key raises ControlPlaneRefused and a
    missing instance id ControlPlaneError, before any request. ``call`` makes
    one request and returns what the control plane said; it raises
    ControlPlaneUnavailable for answers worth retrying.
    """
    if action == "keep":
        return ShutdownResult(provider, action, ok=True, detail="keep: control plane not called")
    if unsupported:
        cls = ControlPlaneRefused if target else ControlPlaneError
        raise cls(f"{label} {action}: {unsupported}", provider=provider, action=action)
    attempts = 0

    def once() -> str:
        nonlocal attempts
        attempts += 1
        return call(action)

    detail = call_control_plane(once)
    log.info("%s %s of %s: %s (reason=%s)", label, action, target, detail, reason)
    return ShutdownResult(provider, action, ok=True, detail=detail, attempts=attempts)
