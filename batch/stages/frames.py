"""Frames as the stages pass them: numpy (uint8, or uint16 above 8 bits), or a device tensor.

(Tensors pass only between two model stages on one device.)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from batch.media.layout import FrameLayout


def as_numpy(frame: Any, dtype: Any = np.uint8) -> np.ndarray:
    """An array for a consumer that is not a model; a tensor becomes ``dtype`` (imports torch only then)."""
    if isinstance(frame, np.ndarray):
        return frame
    from batch.models.device import as_numpy as from_tensor

    return from_tensor(frame, dtype)


def layout_of(pix_fmt: str, width: int, height: int) -> FrameLayout:
    """The layout of the frames a stage receives (StageInput.pix_fmt and its size)."""
    return FrameLayout(pix_fmt, width, height)
