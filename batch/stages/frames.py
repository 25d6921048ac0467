"""Frames as the stages pass them: numpy uint8, or a device tensor between model stages."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_numpy(frame: Any) -> np.ndarray:
    """uint8 RGB (or planar) for a consumer that is not a model; imports torch only for a tensor."""
    if isinstance(frame, np.ndarray):
        return frame
    from batch.models.device import as_numpy as from_tensor

    return from_tensor(frame)
