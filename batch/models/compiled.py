"""A model called through ``torch.compile`` when the stage asks (``compile:``), eager when that fails.

``compile: none`` (the default) calls the model as it is. Another mode
(``default``, ``reduce-overhead``: CUDA graphs, ``max-autotune``) compiles it
on the first call of each input shape. Compilation errors are raised lazily,
at a call, and can come from a missing compiler, an operator inductor does
not handle or a graph break it cannot cope with: whatever the error (other
than out of memory, which the rung's halving handles), the wrapper records it
in the rung's ``events`` (so in the manifest step), drops the compiled
version and runs the same call eagerly. Eager results are the reference;
compiled ones agree within the model dtype's rounding.

Every call also notes whether its input shapes are new: the first call at a
shape compiles (or, on CUDA, lets cuDNN's autotuner try its kernels), so the
ladder leaves such units out of its deadline estimate (``warming_up``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from batch.models.device import is_oom

COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")


def _shapes(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    values = [*args, *kwargs.values()]
    return tuple((tuple(v.shape), v.dtype) if isinstance(v, torch.Tensor) else v for v in values)


class Compiled:
    """Calls ``compiled`` (from torch.compile) or, without one or after it failed, ``eager``."""

    def __init__(
        self, eager: Any, mode: str, events: list[str], compiled: Callable[..., Any] | None = None
    ) -> None:
        self.eager = eager
        self.mode = mode
        self.events = events
        self.compiled = compiled
        self.new_shapes = 0  # calls at a shape not seen before (compilation, autotuning)
        self._seen: set[tuple[Any, ...]] = set()

    @property
    def active(self) -> bool:
        return self.compiled is not None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        key = _shapes(args, kwargs)
        if key not in self._seen:
            self._seen.add(key)
            self.new_shapes += 1
        if self.compiled is None:
            return self.eager(*args, **kwargs)
        failure = None
        try:
            return self.compiled(*args, **kwargs)
        except Exception as e:
            if is_oom(e):
                raise
            failure = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e).strip() else ''}"
        # outside the except block: the failed attempt's tensors are released before the eager run
        self.compiled = None
        self.events.append(f"torch.compile (mode {self.mode}) failed ({failure}); running eager")
        return self.eager(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        """Sub-modules (RIFE's ``encode``) and attributes of the eager model."""
        return getattr(self.__dict__["eager"], name)

    def describe(self) -> dict[str, Any]:
        return {"mode": self.mode, "used": self.active} if self.mode != "none" else {"mode": "none"}


def wrap(
    eager: Any, mode: str, events: list[str], cached: Callable[[Callable[[], Any]], Any] | None = None
) -> Compiled:
    """``eager`` behind a :class:`Compiled`; ``cached`` shares the torch.compile object between rungs."""
    if mode == "none":
        return Compiled(eager, mode, events)

    def build() -> Any:
        return torch.compile(eager, mode=mode)

    try:
        compiled = cached(build) if cached is not None else build()
    except Exception as e:  # torch.compile itself refused (an unsupported Python, a bad mode)
        events.append(
            f"torch.compile (mode {mode}) failed ({type(e).__name__}: {str(e)[:200]}); running eager"
        )
        compiled = None
    return Compiled(eager, mode, events, compiled)
