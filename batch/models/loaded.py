"""Models loaded once per process and shared by every stage instance (chunks, inputs, workers)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

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


def clear() -> None:
    with _LOCK:
        _LOADED.clear()
        _KEY_LOCKS.clear()
