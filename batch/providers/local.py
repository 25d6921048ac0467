"""The dry-run provider: writes the STOPPING line to a sentinel, calls no cloud.

``--dry-run`` always gets this provider, whatever ``instance.provider`` says,
so a dry run can never reach a control plane. The line is appended to
``<state_dir>/STOPPED`` (one line per shutdown asked), which tests and users
read to see what a real run would have done. ``keep`` writes nothing.

Raises ControlPlaneError only when the sentinel cannot be written.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from batch.contracts import STOPPED_SENTINEL
from batch.errors import ControlPlaneError
from batch.providers.base import Action, ShutdownResult, stopping_line

log = logging.getLogger("batch.providers")

SENTINEL = STOPPED_SENTINEL  # the name is the contract's


class LocalProvider:
    """Records the shutdown in ``<state_dir>/STOPPED`` instead of stopping anything.

    ``stands_in_for`` names the provider a real run would have used; it only
    goes into the result's detail.
    """

    name = "local"

    def __init__(self, state_dir: str | os.PathLike[str], *, stands_in_for: str | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.stands_in_for = stands_in_for

    @property
    def sentinel(self) -> Path:
        return self.state_dir / SENTINEL

    def __repr__(self) -> str:
        return f"LocalProvider(state_dir={str(self.state_dir)!r}, stands_in_for={self.stands_in_for!r})"

    def unsupported(self, action: Action) -> str | None:
        return None

    def shutdown(self, action: Action, reason: str) -> ShutdownResult:
        """Append the STOPPING line; no network. Raises ControlPlaneError on a write failure."""
        if action == "keep":
            return ShutdownResult(self.name, action, ok=True, detail="keep: nothing written")
        line = stopping_line(self.name, action, reason)
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            with self.sentinel.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise ControlPlaneError(
                f"dry run {action}: cannot write {self.sentinel}: {exc.strerror or exc}",
                provider=self.name,
                action=action,
                path=str(self.sentinel),
            ) from None
        instead = f" (a real run would ask {self.stands_in_for})" if self.stands_in_for else ""
        log.info("dry run: %s written to %s%s", action, self.sentinel, instead)
        return ShutdownResult(
            self.name, action, ok=True, detail=f"dry run: line written to {self.sentinel}{instead}"
        )
