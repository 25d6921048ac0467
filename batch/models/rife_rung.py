"""The ``rife`` and ``rife-cpu`` rungs of the interpolate ladder.

A rung owns one model on one device at one precision and a batch size. Out
of memory halves the batch and retries the same frames; at batch 1 the rung
gives up (RungUnavailable) and the ladder re-runs the whole unit on the next
rung. Every halving is recorded in ``events`` for the manifest.

Each call runs on the device's worker (batch.models.device_worker): the
unit's distinct source frames are uploaded once, padded once and (4.13+)
encoded once, and the last pair's frames stay on the device for the next
unit, so at 2x each source frame crosses the bus once, not twice. On CUDA
the frames come back as HostFrames still being copied.

On CUDA (and wherever ``compile`` is on) the model sees one shape per stage:
a short last unit is padded with repeats of its last pair, and the encoder's
frames are padded to a multiple of ``batch + 1``. A new shape costs cuDNN's
autotuner (``cudnn.benchmark``) a tuning run (about a second on an H200) and
``torch.compile`` a recompilation (about a minute), where the padding costs
at most ``batch - 1`` pairs of compute once per chunk. Not covered: a ratio
below 1 can give a unit up to ``2 x batch`` new frames (a second encoder
shape), and 3.x models bisect with fewer pairs at each level. Frames and
weights are channels-last on CUDA: measured 1.11x the model's rate at 1080p
in fp16 (docs/benchmarks.md).
"""

from __future__ import annotations

import functools
from fractions import Fraction
from typing import Any

import torch

from batch.config import InterpolateStage
from batch.errors import RungUnavailable
from batch.models import compiled, loaded, rife
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
    FrameCache,
    Yuv420Frames,
    download,
    download_yuv,
    fill_to,
    upload,
    upload_yuv,
    worker_for,
)
from batch.weights.cache import ensure


def _positions(ratio: Fraction) -> set[Fraction]:
    """The fractional positions a constant ratio visits (one period of them)."""
    step = 1 / ratio
    return {(j * step) % 1 for j in range(ratio.numerator)}


class RifeRung:
    def __init__(
        self,
        stage: InterpolateStage,
        device_kind: str,
        ratio: Fraction,
        keep_on_device: bool,
        models: loaded.ModelCache | None = None,
        out_dtype: Any = None,  # the dtype frames travel in (uint16 for 16-bit RGB); None: uint8
        yuv: Yuv420Frames | None = None,  # flat 4:2:0 frames (8/10-bit): RGB made and unmade on the device
    ) -> None:
        self.out_dtype = out_dtype if out_dtype is not None else "uint8"
        if yuv is not None and keep_on_device:
            raise ValueError("4:2:0 frames go back to the pipe: a model stage after this one takes RGB")
        self.yuv = yuv
        models = loaded.MODELS if models is None else models  # (an empty cache is falsy)
        assert stage.model is not None
        self.device = pick_device(device_kind)
        ref = stage.model
        path = ensure(ref)  # WeightsError: the caller turns it into RungUnavailable
        model, self.version = models.cached(("rife", str(path)), lambda: rife.load(path, ref.name))
        if not self.version.arbitrary_timestep and not (stage.dedupe is False and _dyadic_only(ratio)):
            raise RungUnavailable(
                f"RIFE {self.version.label} has no timestep input: only power-of-two factors "
                f"(2, 4, 8 ...) without dedupe; this job needs ratio {ratio}"
            )
        self.dtype = pick_dtype(stage.precision, self.device, half=True, bf16=True)
        device_model = models.on_device(("rife", str(path)), model, self.device, self.dtype)
        self.channels_last = self.device.type == "cuda"
        if self.channels_last and isinstance(device_model, torch.nn.Module):
            # the shared device copy: every CUDA rung wants it
            device_model.to(memory_format=torch.channels_last)
        self.events: list[str] = []
        key = ("rife", str(path), str(self.device), str(self.dtype), "compile", stage.compile)
        self.model = compiled.wrap(
            device_model, stage.compile, self.events, lambda build: models.cached(key, build)
        )
        self.runner = rife.RifeRunner(self.model, self.version, self.device, self.dtype, stage.flow_scale)
        self.batch = stage.batch
        self.fixed_shapes = self.device.type == "cuda" or stage.compile != "none"
        self.keep_on_device = keep_on_device
        self.weights = ref.name
        self.warming_up = False  # the last call ran a new shape (compiled, autotuned): see Ladder
        self.worker = worker_for(self.device)
        self.frames = FrameCache()  # per rung: its tensors are in this rung's dtype and padding

    def describe(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "version": self.version.label,
            "batch": self.batch,
            "compile": self.model.describe(),
            **placement(self.device, self.dtype, self.keep_on_device, self.out_dtype),
            **(
                {"colour_on_device": f"{self.yuv.name} {self.yuv.conv.matrix} {self.yuv.conv.range}"}
                if self.yuv
                else {}
            ),
        }

    def between_many(self, jobs: list[tuple[Any, Any, Fraction]]) -> list[Any]:
        out: list[Any] = []
        k = 0
        shapes_before = self.model.new_shapes
        while k < len(jobs):
            part = jobs[k : k + self.batch]
            # a short unit repeats its last pair (same frames: nothing more uploaded) up to the batch
            filled = part + [part[-1]] * (self.batch - len(part)) if self.fixed_shapes else part
            try:
                inject_oom("interpolate", len(filled))
                made = self.worker.call(functools.partial(self._infer, filled, len(part)))
            except Exception as e:
                if not is_oom(e):
                    raise
                oom, note = True, memory_note(self.device)  # while the failed batch still holds it
            else:
                oom, note = False, ""
            if oom:  # outside the except block: the failed call's tensors are gone by now
                self.frames.clear()
                release_after_oom(self.device)
                if len(filled) == 1:
                    raise RungUnavailable(f"out of memory at batch 1 on {self.device}{note}")
                self.batch = max(1, len(filled) // 2)
                self.events.append(
                    f"out of memory at batch {len(filled)}; retrying at batch {self.batch}{note}"
                )
                continue
            out.extend(made)
            k += len(part)
        self.warming_up = self.model.new_shapes > shapes_before
        return out

    def _prepared(self, frames: list[Any]) -> list[dict[str, torch.Tensor]]:
        """Each distinct frame uploaded, padded and encoded once; the cache holds the previous unit's last."""
        streams = self.worker.streams
        new: list[Any] = []  # distinct frames not on the device yet, in order
        for f in frames:
            if self.frames.get(f) is None and all(f is not g for g in new):
                new.append(f)
        if new:
            x = (
                upload_yuv(streams, new, self.device, self.yuv)
                if self.yuv
                else upload(streams, new, self.device)
            )
            streams.hand_over([x], streams.upload, streams.compute)
            padded = self.runner.pad(self._filled(x))
            if self.channels_last:
                padded = padded.contiguous(memory_format=torch.channels_last)
            feats = self.runner.encode(padded)
            for k, f in enumerate(new):
                self.frames.put(f, {"x": padded[k]} if feats is None else {"x": padded[k], "f": feats[k]})
            self.frames.uploads += len(new)
        return [self.frames.get(f) for f in frames]  # type: ignore[misc]

    def _filled(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (N frames) with its last frame repeated up to a multiple of ``batch + 1`` (fixed shapes)."""
        if not self.fixed_shapes:
            return x
        size = self.batch + 1
        return fill_to(x, -(-len(x) // size) * size)

    def _stacked(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        batch = torch.stack(tensors)
        return batch.contiguous(memory_format=torch.channels_last) if self.channels_last else batch

    def _infer(self, jobs: list[tuple[Any, Any, Fraction]], real: int | None = None) -> list[Any]:
        """The unit's frames; ``real``: how many of ``jobs`` count (the rest fill the batch)."""
        first = jobs[0][0]
        if self.yuv is not None:  # flat frames: the size is the stage's
            h, w = self.yuv.height, self.yuv.width
        elif isinstance(first, torch.Tensor):
            h, w = first.shape[-2], first.shape[-1]
        else:
            h, w = first.shape[:2]
        both = self._prepared([x for x, _, _ in jobs] + [y for _, y, _ in jobs])
        a, b = both[: len(jobs)], both[len(jobs) :]
        xa, xb = self._stacked([e["x"] for e in a]), self._stacked([e["x"] for e in b])
        fa = self._stacked([e["f"] for e in a]) if "f" in a[0] else None
        fb = self._stacked([e["f"] for e in b]) if "f" in b[0] else None
        result = self.runner.interpolate_padded(xa, xb, [t for _, _, t in jobs], (h, w), fa, fb)
        result = result[: len(jobs) if real is None else real]
        self.frames.keep_only([jobs[-1][0], jobs[-1][1]])  # the next unit may start with the last pair
        if self.keep_on_device:
            made = list(result.unbind(0))
        elif self.yuv is not None:
            made = download_yuv(self.worker.streams, result, self.yuv)
        else:  # back in the dtype frames came in (uint16 for 16-bit RGB)
            made = download(self.worker.streams, result, frame_dtype(first, self.out_dtype))
        self.worker.end_unit()
        return made


def _dyadic_only(ratio: Fraction) -> bool:
    return all(rife.is_dyadic(t) for t in _positions(ratio))
