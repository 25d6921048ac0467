"""The ``rife`` and ``rife-cpu`` rungs of the interpolate ladder.

A rung owns one model on one device at one precision and a batch size. Out
of memory halves the batch and retries the same frames; at batch 1 the rung
gives up (RungUnavailable) and the ladder re-runs the whole unit on the next
rung. Every halving is recorded in ``events`` for the manifest.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import torch

from batch.config import InterpolateStage
from batch.errors import RungUnavailable
from batch.models import loaded, rife
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
    ) -> None:
        self.out_dtype = out_dtype if out_dtype is not None else "uint8"
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
        self.runner = rife.RifeRunner(device_model, self.version, self.device, self.dtype, stage.flow_scale)
        self.batch = stage.batch
        self.keep_on_device = keep_on_device
        self.events: list[str] = []
        self.weights = ref.name

    def describe(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "version": self.version.label,
            "batch": self.batch,
            **placement(self.device, self.dtype, self.keep_on_device, self.out_dtype),
        }

    def between_many(self, jobs: list[tuple[Any, Any, Fraction]]) -> list[Any]:
        out: list[Any] = []
        k = 0
        while k < len(jobs):
            part = jobs[k : k + self.batch]
            try:
                inject_oom("interpolate", len(part))
                made = self._infer(part)
            except Exception as e:
                if not is_oom(e):
                    raise
                free_cache(self.device)
                if len(part) == 1:
                    raise RungUnavailable(f"out of memory at batch 1 on {self.device}") from None
                self.batch = max(1, len(part) // 2)
                self.events.append(f"out of memory at batch {len(part)}; retrying at batch {self.batch}")
                continue
            out.extend(made)
            k += len(part)
        return out

    def _infer(self, jobs: list[tuple[Any, Any, Fraction]]) -> list[Any]:
        a = torch.stack([to_tensor(x, self.device) for x, _, _ in jobs])
        b = torch.stack([to_tensor(y, self.device) for _, y, _ in jobs])
        result = self.runner.interpolate(a, b, [t for _, _, t in jobs])
        if self.keep_on_device:
            return list(result.unbind(0))
        return to_frames(result, frame_dtype(jobs[0][0], self.out_dtype))


def _dyadic_only(ratio: Fraction) -> bool:
    return all(rife.is_dyadic(t) for t in _positions(ratio))
