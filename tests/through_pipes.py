"""A stage registry whose ``upscale`` has no graph filter, so a Lanczos upscale runs as a stage on
frames through the pipes (PlanarLanczosRung) instead of inside the transcode's ffmpeg graph: tests
hold both routes to the same answer. Test-only (no config can pick it)."""

from __future__ import annotations

from batch.config import UpscaleStage
from batch.stages.registry import REGISTRY, StageEntry, StageRegistry
from batch.stages.upscale import Upscale


class UpscaleThroughPipes(Upscale):
    def graph_filter(self) -> str | None:
        return None


PIPES_REGISTRY = StageRegistry(
    [
        StageEntry(UpscaleStage, f"{__name__}:UpscaleThroughPipes") if e.config is UpscaleStage else e
        for e in REGISTRY.entries
    ]
)
