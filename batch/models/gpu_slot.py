"""Which GPU this worker thread uses: worker k of ``--workers N`` takes GPU k mod the GPU count.

Torch-free, so the chunk scheduler can hand out slots without importing torch;
batch.models.device.pick_device reads the slot.
"""

from __future__ import annotations

import itertools
import threading

_LOCAL = threading.local()
_NEXT = itertools.count()
_LOCK = threading.Lock()


def claim() -> None:
    """Give the calling thread the next slot (a ThreadPoolExecutor initializer)."""
    with _LOCK:
        _LOCAL.index = next(_NEXT)


def index() -> int:
    """The calling thread's slot; 0 for a thread that claimed none (the one-worker path)."""
    return getattr(_LOCAL, "index", 0)


def reset() -> None:
    """Start numbering again at 0 (each input's worker pool)."""
    global _NEXT
    with _LOCK:
        _NEXT = itertools.count()
