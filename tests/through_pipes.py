"""A stage registry whose ``upscale`` and ``crop`` have no graph filter, so they run as stages on
frames through the pipes (PlanarLanczosRung, numpy slices) instead of inside the transcode's ffmpeg
graph: tests hold both routes to the same answer. Test-only (no config can pick it)."""

from __future__ import annotations

from batch.config import CropStage, UpscaleStage
from batch.stages.crop import Crop
from batch.stages.registry import REGISTRY, StageEntry, StageRegistry
from batch.stages.upscale import Upscale


class UpscaleThroughPipes(Upscale):
    def graph_filter(self) -> str | None:
        return None


class CropThroughPipes(Crop):
    def graph_filter(self) -> str | None:
        return None


_THROUGH_PIPES = {UpscaleStage: "UpscaleThroughPipes", CropStage: "CropThroughPipes"}
PIPES_REGISTRY = StageRegistry(
    [
        StageEntry(e.config, f"{__name__}:{_THROUGH_PIPES[e.config]}") if e.config in _THROUGH_PIPES else e
        for e in REGISTRY.entries
    ]
)
