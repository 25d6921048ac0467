"""The ``model`` and ``model-cpu`` rungs of the upscale ladder.

Frames go to the model ``batch`` at a time (on the device's worker, see
batch.models.device_worker: uploaded through pinned memory, copied back
without blocking the next batch). Out of memory first halves the batch; at
batch 1 it switches the whole frame to tiles of FIRST_TILE pixels, and each
further one halves the tile, down to MIN_TILE; below that the rung gives up
and the ladder re-runs the frames on the next rung. Each change is recorded
in ``events`` for the manifest. On CUDA the model runs channels-last (the
layout cuDNN's fp16 kernels read fastest) with cuDNN's autotuner on.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from batch.config import UpscaleStage
from batch.errors import RungUnavailable
from batch.models import compiled, loaded, sr
from batch.models.device import (
    frame_dtype,
    inject_oom,
    is_oom,
    memory_note,
    pick_device,
    pick_dtype,
    placement,
    release_after_oom,
)
from batch.models.device_worker import (
    Yuv420Frames,
    download,
    download_yuv,
    fill_to,
    upload,
    upload_yuv,
    worker_for,
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
        yuv: tuple[Yuv420Frames, Yuv420Frames] | None = None,  # flat 4:2:0 in and out: RGB on the device
    ) -> None:
        self.out_dtype = out_dtype if out_dtype is not None else "uint8"
        if yuv is not None and keep_on_device:
            raise ValueError("4:2:0 frames go back to the pipe: a model stage after this one takes RGB")
        self.yuv = yuv
        models = loaded.MODELS if models is None else models  # (an empty cache is falsy)
        assert stage.model is not None
        self.device = pick_device(device_kind)
        ref = stage.model
        path = ensure(ref)
        base = models.cached(("sr", str(path)), lambda: sr.load(path, ref.name))
        self.dtype = pick_dtype(
            stage.precision, self.device, half=base.supports_half, bf16=base.supports_bfloat16
        )
        device_model = models.on_device(("sr", str(path)), base, self.device, self.dtype)
        self.channels_last = self.device.type == "cuda"
        if self.channels_last and isinstance(getattr(device_model, "model", None), torch.nn.Module):
            device_model.model.to(
                memory_format=torch.channels_last
            )  # the shared device copy: all rungs want it
        self.events: list[str] = []
        key = ("sr", str(path), str(self.device), str(self.dtype), "compile", stage.compile)
        self.model = compiled.wrap(device_model, stage.compile, self.events, lambda b: models.cached(key, b))
        self.worker = worker_for(self.device)
        self.batch = stage.batch
        # one batch shape on CUDA (a short unit filled with its last frame): each new shape costs
        # cuDNN's autotuner ~1 s on an H200 and torch.compile a recompilation (see rife_rung)
        self.fixed_shapes = self.device.type == "cuda" or stage.compile != "none"
        self.warming_up = False  # the last call ran a new shape (compiled, autotuned): see Ladder
        self.scale = int(base.scale)
        self.architecture = base.architecture.name
        self.tile: int | None = None if stage.tile == "auto" else int(stage.tile)
        self.overlap = stage.tile_overlap
        self.size_out = size_out
        self.keep_on_device = keep_on_device
        self.weights = ref.name

    def describe(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "architecture": self.architecture,
            "model_scale": self.scale,
            "tile": self.tile or "whole frame",
            "batch": self.batch,
            "compile": self.model.describe(),
            **placement(self.device, self.dtype, self.keep_on_device, self.out_dtype),
            **(
                {"colour_on_device": f"{self.yuv[0].name} {self.yuv[0].conv.matrix} {self.yuv[0].conv.range}"}
                if self.yuv
                else {}
            ),
        }

    def resize(self, frame: Any, width: int, height: int) -> Any:
        return self.resize_many([frame], width, height)[0]

    def resize_many(self, frames: list[Any], width: int, height: int) -> list[Any]:
        """``frames`` at ``width`` x ``height``: arrays in their dtype (HostFrames on CUDA), or tensors."""
        out: list[Any] = []
        k = 0
        shapes_before = self.model.new_shapes
        first = frames[0]
        if self.yuv is not None:  # flat frames: the size is the stage's
            side = max(self.yuv[0].width, self.yuv[0].height)
        elif isinstance(first, torch.Tensor):
            side = max(first.shape[-2:])
        else:
            side = max(first.shape[:2])
        while k < len(frames):
            part = frames[k : k + self.batch]
            size = self.batch if self.fixed_shapes else len(part)
            try:
                inject_oom("upscale", self.tile or side)
                made = self.worker.call(functools.partial(self._infer, part, width, height, size))
            except Exception as e:
                if not is_oom(e):
                    raise
                oom, note = True, memory_note(self.device)  # while the failed batch still holds it
            else:
                oom, note = False, ""
            if oom:  # outside the except block: the failed call's tensors are gone by now
                release_after_oom(self.device)
                self._shrink(size, side, note)
                continue
            out.extend(made)
            k += len(part)
        self.warming_up = self.model.new_shapes > shapes_before
        return out

    def _shrink(self, batch: int, side: int, note: str = "") -> None:
        """After out of memory: half the batch, at batch 1 smaller tiles; RungUnavailable below MIN_TILE.

        ``note``: the device's memory when the call failed (:func:`memory_note`), for the events."""
        if batch > 1:
            self.batch = max(1, batch // 2)
            self.events.append(f"out of memory at batch {batch}; retrying at batch {self.batch}{note}")
            return
        was = self.tile or side
        nxt = min(sr.FIRST_TILE, was // 2) if self.tile is None else self.tile // 2
        if nxt < sr.MIN_TILE:
            raise RungUnavailable(f"out of memory at tile {was} px on {self.device}{note}")
        self.tile = nxt
        self.events.append(f"out of memory at tile {was} px; retrying with tiles of {nxt} px{note}")

    def _infer(self, frames: list[Any], width: int, height: int, size: int | None = None) -> list[Any]:
        """``frames`` upscaled; ``size``: the batch the model sees (the last frame repeated on the device)."""
        streams = self.worker.streams
        if self.yuv is not None:
            x = upload_yuv(streams, frames, self.device, self.yuv[0])
        else:
            x = upload(streams, frames, self.device)
        streams.hand_over([x], streams.upload, streams.compute)
        x = x.to(self.dtype)
        if size is not None:
            x = fill_to(x, size)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = sr.run_tiled(self.model, x, self.scale, self.tile, self.overlap)
        y = sr.resize(y[: len(frames)].float(), width, height)
        if self.keep_on_device:
            made = list(y.unbind(0))
        elif self.yuv is not None:
            made = download_yuv(streams, y, self.yuv[1])
        else:  # back in the dtype frames came in (uint16 for 16-bit RGB)
            made = download(streams, y, frame_dtype(frames[0], self.out_dtype))
        self.worker.end_unit()
        return made
