"""Frames as the stages pass them: numpy (uint8, or uint16 above 8 bits), or a device tensor between
model stages on one device.

A model rung on CUDA may hand back frames still being copied from the device
(``batch.models.device_worker.HostFrame``, uint8 or uint16 as the frames came in): :func:`as_numpy`
waits for one, and :class:`OneBehind` lets a stage queue its next unit before it waits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from batch.media.layout import FrameLayout

if TYPE_CHECKING:
    from batch.stages.base import StageInput


@runtime_checkable
class Pending(Protocol):
    """A frame on its way back from a device (HostFrame): ``numpy()`` waits for it."""

    @property
    def pending(self) -> bool: ...

    def numpy(self) -> np.ndarray: ...


def as_numpy(frame: Any, dtype: Any = np.uint8) -> np.ndarray:
    """An array (RGB or planar) for a consumer that is not a model; a device tensor becomes ``dtype``
    (imports torch only then), a pending frame is waited for (it keeps its own dtype)."""
    if isinstance(frame, np.ndarray):
        return frame
    if isinstance(frame, Pending):
        return frame.numpy()
    from batch.models.device import as_numpy as from_tensor

    return from_tensor(frame, dtype)


def stretch_planes(context: StageInput) -> bool:
    """Whether luma measured on this stage's planar frames is stretched from limited to full range.

    On the device path (``StageInput.colour`` set: the model stage converts colour on its device)
    the same job crosses the pipes as RGB on a host without a GPU; its scene cuts, held frames and
    metrics should not depend on which, so the planes' luma is scaled as RGB luma is (black 0, white
    255). Exact for greys and in-gamut BT.709 colours; Y follows the source's matrix and is not
    clipped as out-of-gamut RGB is, so other footage measures a few levels apart. Planes that would
    cross as planes anyway (no stage needs RGB) keep their levels as coded.
    """
    colour = context.colour
    return colour is not None and colour.range == "tv" and not FrameLayout(context.pix_fmt, 2, 2).packed


def layout_of(pix_fmt: str, width: int, height: int) -> FrameLayout:
    """The layout of the frames a stage receives (StageInput.pix_fmt and its size)."""
    return FrameLayout(pix_fmt, width, height)


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
        if any(not isinstance(f, np.ndarray) and isinstance(f, Pending) for f in frames):  # (arrays: fast)
            self._held = list(frames)
            return out
        return out + list(frames)

    def flush(self) -> list[Any]:
        out, self._held = self._held, []
        return out
