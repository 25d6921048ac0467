"""SkyPilot: the watchdog leaves stop and teardown to SkyPilot.

A SkyPilot managed job's cluster is torn down by SkyPilot itself (autostop /
autodown, run on the cluster), and a stop from inside would fight its
recovery logic. So this provider declares stop and destroy unsupported, with
the reason, and its ``shutdown`` calls nothing and reports ok. Raises nothing.
"""

from __future__ import annotations

import logging

from batch.providers.base import Action, ShutdownResult

log = logging.getLogger("batch.providers")

REASON = (
    "SkyPilot manages teardown of its managed jobs (autostop/autodown); the watchdog leaves it to SkyPilot"
)


class SkyPilotProvider:
    """Declares stop/destroy unsupported; shutdown is a no-op that says why."""

    name = "skypilot"

    def __repr__(self) -> str:
        return "SkyPilotProvider()"

    def unsupported(self, action: Action) -> str | None:
        return None if action == "keep" else REASON

    def shutdown(self, action: Action, reason: str) -> ShutdownResult:
        """Call nothing; ok=True, with the reason as detail."""
        if action == "keep":
            return ShutdownResult(self.name, action, ok=True, detail="keep: nothing to do")
        log.info("skypilot: not asking for %s (reason=%s): %s", action, reason, REASON)
        return ShutdownResult(self.name, action, ok=True, detail=REASON, attempts=0)
