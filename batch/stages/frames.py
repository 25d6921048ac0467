"""Frames as the stages pass them: numpy uint8, or a device tensor between model stages.

A model rung on CUDA may hand back frames still being copied from the device
(``batch.models.device_worker.HostFrame``): :func:`as_numpy` waits for one, and
:class:`OneBehind` lets a stage queue its next unit before it waits.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Pending(Protocol):
    """A frame on its way back from a device (HostFrame): ``numpy()`` waits for it."""

    @property
    def pending(self) -> bool: ...

    def numpy(self) -> np.ndarray: ...


def as_numpy(frame: Any) -> np.ndarray:
    """uint8 RGB (or planar) for a consumer that is not a model; imports torch only for a tensor."""
    if isinstance(frame, np.ndarray):
        return frame
    if isinstance(frame, Pending):
        return frame.numpy()
    from batch.models.device import as_numpy as from_tensor

    return from_tensor(frame)


class OneBehind:
    """Holds a unit of frames that are still being copied back until the next unit has been queued.

    ``push`` returns the frames to hand on now, in order: the unit held back
    before, then this one unless it is pending (it waits for the next push or
    ``flush``). Units without pending frames (the CPU, numpy rungs) pass
    straight through, so nothing changes where nothing is asynchronous.
    """

    def __init__(self) -> None:
        self._held: list[Any] = []

    def push(self, frames: list[Any]) -> list[Any]:
        out, self._held = self._held, []
        if any(isinstance(f, Pending) for f in frames):
            self._held = list(frames)
            return out
        return out + list(frames)

    def flush(self) -> list[Any]:
        out, self._held = self._held, []
        return out
