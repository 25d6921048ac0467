"""A fallback ladder: rungs tried in order, every step recorded for the manifest.

A rung raises RungUnavailable when it cannot run (no CUDA, no weights, out of
memory ...). The ladder then moves to the next rung and re-runs the same unit
of work there, so no frame is lost or repeated. Any other exception is a bug
and propagates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from batch.errors import RungUnavailable, StageError

R = TypeVar("R")
T = TypeVar("T")


@dataclass
class Step:
    rung: str
    status: str  # "used" | "unavailable" | "failed"
    reason: str | None = None
    units: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rung": self.rung, "status": self.status}
        if self.reason:
            out["reason"] = self.reason
        if self.status == "used":
            out["units"] = self.units
            out["seconds"] = round(self.seconds, 3)
        return out


@dataclass
class Ladder(Generic[R]):
    """Rungs are (name, factory) pairs; a factory builds the rung or raises RungUnavailable."""

    stage: str
    rungs: Sequence[tuple[str, Callable[[], R]]]
    steps: list[Step] = field(default_factory=list)
    _index: int = -1
    _rung: R | None = None

    def _advance(self) -> R:
        while True:
            self._index += 1
            if self._index >= len(self.rungs):
                reasons = "; ".join(f"{s.rung}: {s.reason}" for s in self.steps if s.reason)
                raise StageError(
                    f"stage {self.stage}: no rung of the ladder could run ({reasons})",
                    hint="add a rung that runs here (e.g. a CPU fallback) to the stage's ladder",
                    steps=[s.to_dict() for s in self.steps],
                )
            name, factory = self.rungs[self._index]
            try:
                rung = factory()
            except RungUnavailable as e:
                self.steps.append(Step(name, "unavailable", e.message))
                continue
            self.steps.append(Step(name, "used"))
            self._rung = rung
            return rung

    @property
    def used(self) -> str | None:
        current = [s for s in self.steps if s.status == "used"]
        return current[-1].rung if current else None

    def run(self, work: Callable[[R], T]) -> T:
        """Run one unit of work on the current rung, falling down on RungUnavailable."""
        rung = self._rung if self._rung is not None else self._advance()
        while True:
            step = self.steps[-1]
            started = time.perf_counter()
            try:
                result = work(rung)
            except RungUnavailable as e:
                step.status = "failed"
                step.reason = e.message
                rung = self._advance()
                continue
            step.units += 1
            step.seconds += time.perf_counter() - started
            return result

    def report(self) -> dict[str, Any]:
        return {
            "ladder": [name for name, _ in self.rungs],
            "used": self.used,
            "steps": [s.to_dict() for s in self.steps],
        }
