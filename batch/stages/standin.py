"""A stand-in for a model stage: a fixed time per batch, no CPU, frames passed on unchanged.

Never in :data:`batch.stages.registry.REGISTRY` (no config can name it): tests
and ``scripts/bench.py --standin`` inject it with :data:`STANDIN_REGISTRY`.
It shows whether decode, conversion, "model" and encode overlap: the batch
time is a ``time.sleep``, which releases the GIL as a GPU call does, so the
end-to-end rate should reach the stand-in's own rate (``batch / seconds``)
whenever ffmpeg decodes and encodes faster than that.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Literal

from batch.config_rules import Record, boolean, choice, field, integer, number
from batch.stages.base import Caps, Frame, Stage
from batch.stages.registry import REGISTRY, StageEntry, StageRegistry


class StandInStage(Record):
    stage: Literal["standin"] = field(choice("standin"), "standin")
    batch: int = field(integer(ge=1), 8)  # frames per "model call"
    seconds: float = field(number(ge=0), 0.0)  # the time each call takes
    rgb: bool = field(boolean(), False)  # ask for RGB frames, as an image model does


class StandIn(Stage[StandInStage]):
    name = "standin"

    @classmethod
    def caps_for(cls, spec: StandInStage) -> Caps:
        return Caps(needs_rgb=spec.rgb)

    def __init__(self, spec: StandInStage, context: Any) -> None:
        super().__init__(spec, context)
        self.calls = 0
        self.busy_s = 0.0
        self.first_call_at: float | None = None  # time.perf_counter() when the first call began
        self.last_call_end: float | None = None  # ... and when the last one ended (fill and drain)

    def _call(self, batch: list[Frame]) -> list[Frame]:
        started = time.perf_counter()
        if self.first_call_at is None:
            self.first_call_at = started
        if self.config.seconds:
            time.sleep(self.config.seconds)
        self.calls += 1
        self.last_call_end = time.perf_counter()
        self.busy_s += self.last_call_end - started
        return batch

    def run(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        batch: list[Frame] = []
        for frame in frames:
            batch.append(frame)
            if len(batch) == self.config.batch:
                yield from self._call(batch)
                batch = []
        if batch:
            yield from self._call(batch)

    def report(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "calls": self.calls,
            "busy_s": round(self.busy_s, 3),
            "first_call_at": self.first_call_at,
            "last_call_end": self.last_call_end,
        }


STANDIN_REGISTRY = StageRegistry([*REGISTRY.entries, StageEntry(StandInStage, f"{__name__}:StandIn")])
