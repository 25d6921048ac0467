"""Which GPU this worker thread uses: worker k of ``--workers N`` takes GPU k mod the GPU count.

Torch-free, so the chunk scheduler can hand out slots without importing torch;
batch.models.device.pick_device reads the slot.

The numbering lives in a :class:`GpuSlots` object. The process has one,
:data:`SLOTS`, owned by this module: the chunk scheduler claims from it (through
:func:`claim` and :func:`reset`) and ``pick_device`` reads it (through
:func:`index`). Tests that must not share numbering with anything else make their own.
"""

from __future__ import annotations

import functools
import itertools
import os
import subprocess
import threading


class GpuSlots:
    """Hands each worker thread the next slot number; thread-safe."""

    def __init__(self) -> None:
        self._local = threading.local()  # the calling thread's slot
        self._lock = threading.Lock()  # guards _next
        self._next = itertools.count()

    def claim(self) -> None:
        """Give the calling thread the next slot (a ThreadPoolExecutor initializer)."""
        with self._lock:
            self._local.index = next(self._next)

    def index(self) -> int:
        """The calling thread's slot; 0 for a thread that claimed none (the one-worker path)."""
        return int(getattr(self._local, "index", 0))

    def reset(self) -> None:
        """Start numbering again at 0 (each input's worker pool). Threads keep the slot they claimed."""
        with self._lock:
            self._next = itertools.count()


SLOTS = GpuSlots()  # the process's slots: the chunk scheduler's workers and pick_device share them


def claim() -> None:
    """:meth:`GpuSlots.claim` on the process's :data:`SLOTS`."""
    SLOTS.claim()


def index() -> int:
    """:meth:`GpuSlots.index` on the process's :data:`SLOTS`."""
    return SLOTS.index()


def reset() -> None:
    """:meth:`GpuSlots.reset` on the process's :data:`SLOTS`."""
    SLOTS.reset()


@functools.cache
def visible_gpus() -> int:
    """GPUs this process may use (CUDA_VISIBLE_DEVICES respected, else ``nvidia-smi -L``); 0 without one."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(line.startswith("GPU ") for line in out.stdout.splitlines())


def gpu_index(slots: GpuSlots | None = None) -> int:
    """The GPU the calling worker is pinned to: its slot modulo the visible GPUs (as pick_device does)."""
    return (SLOTS if slots is None else slots).index() % max(1, visible_gpus())
