"""Models loaded once per process and shared by every stage instance (chunks, inputs, workers).

The models live in a :class:`ModelCache`. The process has one, :data:`MODELS`,
owned by this module: the rungs (``RifeRung``, ``SrRung``, ``sam2_predictor.load``)
use it unless given another, and :func:`cached`, :func:`on_device` and
:func:`clear` act on it. Tests that must not share loaded models make their own.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import torch

T = TypeVar("T")


class ModelCache:
    """``load()`` once per key, thread-safe; a load runs outside the cache's lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the two dicts below, never held during a load
        self._loaded: dict[tuple[Any, ...], Any] = {}
        self._key_locks: dict[tuple[Any, ...], threading.Lock] = {}

    def cached(self, key: tuple[Any, ...], load: Callable[[], T]) -> T:
        """``load()`` once per key; concurrent callers of the same key wait for the first, others do not."""
        with self._lock:
            if key in self._loaded:
                return self._loaded[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._loaded:
                    return self._loaded[key]
            value = load()
            with self._lock:
                self._loaded[key] = value
            return value

    def on_device(
        self, key: tuple[Any, ...], base: Any, device: torch.device, dtype: torch.dtype = torch.float32
    ) -> Any:
        """``base`` (loaded under ``key`` on the CPU in fp32: an nn.Module, or a spandrel descriptor whose
        ``to`` checks the dtype is supported) copied once to ``device``/``dtype``; ``base`` itself on the
        CPU in fp32."""
        if device.type == "cpu" and dtype == torch.float32:
            return base
        return self.cached(
            (*key, str(device), str(dtype)), lambda: copy.deepcopy(base).to(device=device, dtype=dtype)
        )

    def clear(self) -> None:
        """Forget every model (they are freed once no stage holds them)."""
        with self._lock:
            self._loaded.clear()
            self._key_locks.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._loaded)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._loaded


MODELS = ModelCache()  # the process's models: every rung shares them unless given another cache


def cached(key: tuple[Any, ...], load: Callable[[], T]) -> T:
    """:meth:`ModelCache.cached` on the process's :data:`MODELS`."""
    return MODELS.cached(key, load)


def on_device(
    key: tuple[Any, ...], base: Any, device: torch.device, dtype: torch.dtype = torch.float32
) -> Any:
    """:meth:`ModelCache.on_device` on the process's :data:`MODELS`."""
    return MODELS.on_device(key, base, device, dtype)


def clear() -> None:
    """:meth:`ModelCache.clear` on the process's :data:`MODELS`."""
    MODELS.clear()
