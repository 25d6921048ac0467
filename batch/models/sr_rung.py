"""The ``model`` and ``model-cpu`` rungs of the upscale ladder.

Out of memory on the whole frame switches to tiles of FIRST_TILE pixels, and
each further one halves the tile, down to MIN_TILE; below that the rung gives
up and the ladder re-runs the frame on the next rung. Each change is recorded
in ``events`` for the manifest.
"""

from __future__ import annotations

from typing import Any

import torch

from batch.config import UpscaleStage
from batch.errors import RungUnavailable
from batch.models import loaded, sr
from batch.models.device import (
    frame_dtype,
    free_cache,
    inject_oom,
    is_oom,
    pick_device,
    pick_dtype,
    placement,
    to_frames,
    to_tensor,
)
from batch.weights.cache import ensure


class SrRung:
    def __init__(
        self,
        stage: UpscaleStage,
        device_kind: str,
        size_out: tuple[int, int],
        keep_on_device: bool,
        models: loaded.ModelCache | None = None,
        out_dtype: Any = None,  # the dtype frames travel in (uint16 for 16-bit RGB); None: uint8
    ) -> None:
        self.out_dtype = out_dtype if out_dtype is not None else "uint8"
        models = loaded.MODELS if models is None else models  # (an empty cache is falsy)
        assert stage.model is not None
        self.device = pick_device(device_kind)
        ref = stage.model
        path = ensure(ref)
        base = models.cached(("sr", str(path)), lambda: sr.load(path, ref.name))
        self.dtype = pick_dtype(
            stage.precision, self.device, half=base.supports_half, bf16=base.supports_bfloat16
        )
        self.model = models.on_device(("sr", str(path)), base, self.device, self.dtype)
        self.scale = int(base.scale)
        self.architecture = base.architecture.name
        self.tile: int | None = None if stage.tile == "auto" else int(stage.tile)
        self.overlap = stage.tile_overlap
        self.size_out = size_out
        self.keep_on_device = keep_on_device
        self.events: list[str] = []
        self.weights = ref.name

    def describe(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "architecture": self.architecture,
            "model_scale": self.scale,
            "tile": self.tile or "whole frame",
            **placement(self.device, self.dtype, self.keep_on_device, self.out_dtype),
        }

    def resize(self, frame: Any, width: int, height: int) -> Any:
        x = to_tensor(frame, self.device).unsqueeze(0).to(self.dtype)
        while True:
            try:
                inject_oom("upscale", self.tile or max(x.shape[-2:]))
                with torch.inference_mode():
                    y = sr.run_tiled(self.model, x, self.scale, self.tile, self.overlap)
                    y = sr.resize(y.float(), width, height)
                break
            except Exception as e:
                if not is_oom(e):
                    raise
                free_cache(self.device)
                was = self.tile or max(x.shape[-2:])
                nxt = sr.FIRST_TILE if self.tile is None else self.tile // 2
                nxt = min(nxt, was // 2) if self.tile is None else nxt
                if nxt < sr.MIN_TILE:
                    raise RungUnavailable(f"out of memory at tile {was} px on {self.device}") from None
                self.tile = nxt
                self.events.append(f"out of memory at tile {was} px; retrying with tiles of {nxt} px")
        return y[0] if self.keep_on_device else to_frames(y, frame_dtype(frame, self.out_dtype))[0]
