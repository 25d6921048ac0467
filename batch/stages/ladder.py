"""A fallback ladder: rungs tried in order, every step recorded for the manifest.

A rung raises RungUnavailable when it cannot run (no CUDA, no weights, out of
memory ...). The ladder then moves to the next rung and re-runs the same unit
of work there, so no frame is lost or repeated. Any other exception is a bug
and propagates.

With a deadline (the job's ``limits.max_runtime_s`` from its start, passed
in by the stage from its StageInput), the ladder times each
rung's first units and refuses a rung whose estimate for the remaining frames
would run past it: the work already done is kept and the rest goes to the
next rung, or the stage fails with the estimate in the message, instead of
burning hours of rented GPU time. The estimate leaves out warm-up: a rung's
first unit, and any unit after which the rung's ``warming_up`` is true (a new
batch shape for cuDNN's autotuner or torch.compile), so compilation or a
slow first batch does not make the ladder refuse a rung that is fast after.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from batch.errors import RungUnavailable, StageError, says_out_of_memory

R = TypeVar("R")
T = TypeVar("T")


@dataclass
class Step:
    rung: str
    status: str  # "used" | "unavailable" | "failed"
    reason: str | None = None
    units: int = 0
    seconds: float = 0.0
    weight: int = 0  # frames made on this rung
    warmup_seconds: float = 0.0  # of ``seconds``, spent in warm-up units (left out of the estimate)
    warmup_weight: int = 0  # of ``weight``, made in warm-up units
    backend: Any = None  # the rung object; its ``events`` (batch halvings ...) go in the manifest
    timed: bool = True  # False: the work ran inside another process's run (no seconds of its own)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rung": self.rung, "status": self.status}
        if self.reason:
            out["reason"] = self.reason
        if self.units:
            out["units"] = self.units
            out["frames"] = self.weight
            if self.timed:
                out["seconds"] = round(self.seconds, 3)
            if self.timed and self.warmup_seconds:
                out["warmup_seconds"] = round(self.warmup_seconds, 3)
        events = list(getattr(self.backend, "events", None) or [])
        if events:
            out["events"] = events
        describe = getattr(self.backend, "describe", None)
        if callable(describe):
            out["backend"] = describe()
        return out


def deadline_after(max_runtime_s: float | None) -> float | None:
    """The ``time.monotonic()`` by which a job started now must be done (None: no limit)."""
    return None if max_runtime_s is None else time.monotonic() + max_runtime_s


ESTIMATE_AFTER_S = float(os.environ.get("BATCH_ESTIMATE_AFTER_S", "2"))  # time a rung this long first


def unavailable_if_oom(error: RuntimeError) -> Exception:
    """Out of memory while a rung is built (a model copied to a full GPU) makes it unavailable;
    any other error is returned as it is, to be raised (a bug)."""
    if says_out_of_memory(error):
        return RungUnavailable(f"out of memory while loading the model: {str(error)[:160]}")
    return error


@dataclass
class Ladder(Generic[R]):
    """Rungs are (name, factory) pairs; a factory builds the rung or raises RungUnavailable."""

    stage: str
    rungs: Sequence[tuple[str, Callable[[], R]]]
    total: int = 0  # frames the stage will make in all (0: unknown, no estimate)
    deadline: float | None = None  # time.monotonic() by which the job must be done (None: no limit)
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
            self.steps.append(Step(name, "used", backend=rung))
            self._rung = rung
            return rung

    @property
    def used(self) -> str | None:
        current = [s for s in self.steps if s.units]
        return current[-1].rung if current else None

    def run(self, work: Callable[[R], T], weight: int = 1) -> T:
        """Run one unit of work (``weight`` frames) on the current rung, falling down on RungUnavailable."""
        rung = self._rung if self._rung is not None else self._advance()
        while True:
            step = self.steps[-1]
            started = time.perf_counter()
            try:
                result = work(rung)
            except RungUnavailable as e:
                step.status = "failed"
                step.reason = e.message
                failed = True
            else:
                failed = False
            if failed:  # outside the except block: the failed unit's objects are gone before the next
                rung = self._advance()  # rung loads its model (onto the same GPU)
                continue
            took = time.perf_counter() - started
            if step.units == 0 or getattr(rung, "warming_up", False):
                step.warmup_seconds += took
                step.warmup_weight += weight
            step.units += 1
            step.weight += weight
            step.seconds += took
            self._check_estimate(step)
            return result

    def _check_estimate(self, step: Step) -> None:
        """Refuse the rung when its pace would run past the job's deadline."""
        seconds, weight = step.seconds - step.warmup_seconds, step.weight - step.warmup_weight
        if self.deadline is None or not self.total or not weight or seconds < ESTIMATE_AFTER_S or step.reason:
            return
        done = sum(s.weight for s in self.steps)
        remaining = max(0, self.total - done)
        estimate = seconds / weight * remaining
        left = self.deadline - time.monotonic()
        if estimate <= left:
            step.reason = f"estimated {estimate:.0f} s for {remaining} more frames; within the limit"
            return
        step.status = "refused"
        step.reason = (
            f"estimated {estimate:.0f} s for the remaining {remaining} frames at "
            f"{weight / seconds:.2f} frames/s (after warm-up), but only {max(left, 0):.0f} s are left "
            "of limits.max_runtime_s"
        )
        self._rung = None
        if self._index + 1 >= len(self.rungs):
            raise StageError(
                f"stage {self.stage}: rung {step.rung} would take too long ({step.reason})",
                hint="rent a faster GPU, raise limits.max_runtime_s, or add a faster rung to the ladder",
                steps=[s.to_dict() for s in self.steps],
            )

    def paced_outside(self, weight: int, seconds: float) -> None:
        """The first rung's work running elsewhere (ffmpeg's graph: Stage.graph_filter) has made ``weight``
        frames in ``seconds``: the run-time estimate as for a rung of its own. Raises StageError when the
        pace would run past the deadline (no other rung can take over a transcode under way)."""
        step = self._outside_step()
        if weight and not step.warmup_weight:  # the first frames out: ffmpeg's start, the encoder's lookahead
            step.warmup_seconds, step.warmup_weight = seconds, weight
        step.units, step.weight, step.seconds = 1, weight, seconds
        self._check_estimate(step)  # (on the steady pace since then: the lag behind decoding stays)
        if step.status == "refused":
            raise StageError(
                f"stage {self.stage}: rung {step.rung} would take too long ({step.reason})",
                hint="rent a faster machine, raise limits.max_runtime_s, or make less work (a smaller size)",
                steps=[s.to_dict() for s in self.steps],
            )

    def ran_outside(self, weight: int, backend: Any) -> None:
        """The first rung's work done elsewhere in one go (ffmpeg's graph: Stage.graph_filter), not timed
        on its own: the time is the whole run's (decode, every stage, encode)."""
        step = self._outside_step()
        step.units, step.weight, step.backend, step.timed = 1, weight, backend, False

    def _outside_step(self) -> Step:
        if not self.steps:
            self._index = 0  # the first rung, as if built here (its one unit is the whole transcode)
            self.steps.append(Step(self.rungs[0][0], "used"))
        return self.steps[-1]

    def report(self) -> dict[str, Any]:
        return {
            "ladder": [name for name, _ in self.rungs],
            "used": self.used,
            "steps": [s.to_dict() for s in self.steps],
        }
