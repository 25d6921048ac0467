"""Models loaded once per process and shared by every stage instance (chunks, inputs, workers)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_LOCK = threading.Lock()
_LOADED: dict[tuple[Any, ...], Any] = {}


def cached(key: tuple[Any, ...], load: Callable[[], T]) -> T:
    """``load()`` once per key; concurrent callers wait for the first."""
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = load()
        return _LOADED[key]


def clear() -> None:
    with _LOCK:
        _LOADED.clear()
