"""Models loaded once per process and shared by every stage instance (chunks, inputs, workers)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import torch

T = TypeVar("T")

_LOCK = threading.Lock()  # guards the two dicts below, never held during a load
_LOADED: dict[tuple[Any, ...], Any] = {}
_KEY_LOCKS: dict[tuple[Any, ...], threading.Lock] = {}


def cached(key: tuple[Any, ...], load: Callable[[], T]) -> T:
    """``load()`` once per key; concurrent callers of the same key wait for the first, others do not."""
    with _LOCK:
        if key in _LOADED:
            return _LOADED[key]
        key_lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    with key_lock:
        with _LOCK:
            if key in _LOADED:
                return _LOADED[key]
        value = load()
        with _LOCK:
            _LOADED[key] = value
        return value


def on_device(
    key: tuple[Any, ...], base: Any, device: torch.device, dtype: torch.dtype = torch.float32
) -> Any:
    """``base`` (loaded under ``key`` on the CPU in fp32: an nn.Module, or a spandrel descriptor whose
    ``to`` checks the dtype is supported) copied once to ``device``/``dtype``; ``base`` itself on the
    CPU in fp32."""
    if device.type == "cpu" and dtype == torch.float32:
        return base
    return cached((*key, str(device), str(dtype)), lambda: copy.deepcopy(base).to(device=device, dtype=dtype))


def clear() -> None:
    with _LOCK:
        _LOADED.clear()
        _KEY_LOCKS.clear()
