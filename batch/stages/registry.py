"""Which class runs each stage of a config, what it can do, and what a chain makes of an input.

One line per stage (:data:`REGISTRY`): its config model and where its class
lives, as ``"module:Class"``. The module is imported when the stage is first
asked about, so a config without ``segment`` never imports the segment stage.
The pipeline, the chunk planner and the runner ask a registry (the default
one unless they are given another) and never name a stage class.

Adding a stage: its config model in ``batch.config`` (added to the ``Stage``
union), one module in ``batch/stages/`` with a :class:`~batch.stages.base.Stage`
subclass, and one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, cast

from batch.config import MAX_SIDE, AnalyzeStage, CropStage, InterpolateStage, SegmentStage, UpscaleStage
from batch.config_rules import Record
from batch.errors import ConfigError
from batch.stages.base import Caps, Stage, StageFile, StageInput


@dataclass(frozen=True)
class StageEntry:
    """One registered stage: its config model and its class, imported on first use."""

    config: type[Record]
    target: str  # "package.module:Class"

    @property
    def name(self) -> str:
        """The ``stage`` literal of the config model (``interpolate``, ``crop`` ...)."""
        return cast(str, self.config.field_named("stage").default)

    def load(self) -> type[Stage[Any]]:
        module, _, attr = self.target.partition(":")
        cls = getattr(importlib.import_module(module), attr)
        if not (isinstance(cls, type) and issubclass(cls, Stage)):
            raise TypeError(f"{self.target} is not a Stage subclass")
        return cls


@dataclass
class Plan:
    """What the stages will make of a source: size, rate, frame count."""

    stages: list[Stage[Any]]
    width: int
    height: int
    fps: Fraction
    expected_frames: int
    sar: Fraction | None = None  # the pixel aspect of the frames made (None: square)


class StageRegistry:
    """Config type -> stage. Built all at once; a stage named twice is refused (ValueError)."""

    def __init__(self, entries: Iterable[StageEntry]) -> None:
        self.entries: tuple[StageEntry, ...] = tuple(entries)
        names = [e.name for e in self.entries]
        doubles = sorted({n for n in names if names.count(n) > 1})
        if doubles or len({e.config for e in self.entries}) != len(self.entries):
            raise ValueError(f"stage(s) registered twice: {doubles or 'a config model'}")
        self._by_config = {e.config: e for e in self.entries}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.entries)

    def entry(self, spec: Record) -> StageEntry:
        """The entry for a stage's config; TypeError for a config type nobody registered."""
        try:
            return self._by_config[type(spec)]
        except KeyError:
            raise TypeError(f"no stage is registered for {type(spec).__name__}") from None

    def stage_class(self, spec: Record) -> type[Stage[Any]]:
        return self.entry(spec).load()

    def caps_for(self, spec: Record) -> Caps:
        return self.stage_class(spec).caps_for(spec)

    def files(self, specs: Sequence[Record]) -> list[StageFile]:
        """The files the configured stages may write, in registry order, each once."""
        wanted = {self.entry(s).name for s in specs}
        out: list[StageFile] = []
        for e in self.entries:
            if e.name in wanted:
                out.extend(f for f in e.load().caps.files if f not in out)
        return out

    def chunkable(self, specs: Sequence[Record]) -> bool:
        """Whether chunks can run independently: no stage spans the input, at most one changes the rate."""
        caps = [self.caps_for(s) for s in specs]
        return not any(c.spans_input for c in caps) and sum(c.changes_rate for c in caps) <= 1

    def needs_rgb(self, specs: Sequence[Record]) -> bool:
        return any(self.caps_for(s).needs_rgb for s in specs)

    def plan(self, specs: Sequence[Record], source: StageInput) -> Plan:
        """The stages for one input, each told the size, rate and frame count it receives.

        ``source`` describes the decoded input (and the chunk, the artifacts
        folder and the deadline, which every stage shares). A stage that takes
        device frames followed by another keeps its frames on the device: the
        chain converts to uint8 once, at its end. Raises ConfigError when a
        stage cannot apply to what it receives (a crop larger than the frame).
        """
        caps = [self.caps_for(s) for s in specs]
        stages: list[Stage[Any]] = []
        width, height, fps, frames = source.width, source.height, source.fps, source.total_frames
        sar = source.sar
        for k, spec in enumerate(specs):
            keep = caps[k].device_frames and k + 1 < len(specs) and caps[k + 1].device_frames
            context = replace(
                source, width=width, height=height, fps=fps, total_frames=frames, keep_on_device=keep, sar=sar
            )
            stage = self.stage_class(spec)(spec, context)
            width, height = stage.size_out
            if max(width, height) > MAX_SIDE:  # before any frame: a chain of x16 upscales ran out of memory
                raise ConfigError(
                    f"stages.{k} ({stage.name}) would make {width}x{height} frames from "
                    f"{context.width}x{context.height}: at most {MAX_SIDE} pixels a side",
                    hint="lower the upscale's scale, width or height",
                )
            fps, sar = stage.fps_out, stage.sar_out
            frames = stage.expected_frames(frames)
            stages.append(stage)
        return Plan(stages, width, height, fps, frames, sar)


REGISTRY = StageRegistry(
    [
        StageEntry(InterpolateStage, "batch.stages.interpolate:Interpolate"),
        StageEntry(UpscaleStage, "batch.stages.upscale:Upscale"),
        StageEntry(AnalyzeStage, "batch.stages.analyze:Analyze"),
        StageEntry(SegmentStage, "batch.stages.segment:Segment"),
        StageEntry(CropStage, "batch.stages.crop:Crop"),
    ]
)


def caps_for(spec: Record, registry: StageRegistry = REGISTRY) -> Caps:
    """The capabilities of one configured stage."""
    return registry.caps_for(spec)


def plan(specs: Sequence[Record], source: StageInput, registry: StageRegistry = REGISTRY) -> Plan:
    """The stages for one input; see :meth:`StageRegistry.plan`."""
    return registry.plan(specs, source)
