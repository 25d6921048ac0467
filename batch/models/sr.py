"""Super-resolution through spandrel: any architecture it detects, tiled when memory is short.

spandrel reads the architecture and its hyper-parameters from the state dict
(Real-ESRGAN RRDB and compact, Real-CUGAN, SwinIR, HAT, SPAN ...) and pads
each call to the model's size requirements. What it leaves to us, and this
module does: precision by the model's own flags, tiling with overlap (each
tile is run with ``overlap`` pixels of context on every side and only its
core is kept, so seams do not show), and resizing the model's native scale to
the requested size on the device.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from batch.errors import WeightsWrongArchitecture

MIN_TILE = 32
FIRST_TILE = 512  # after an out-of-memory on the whole frame


def load(path: Path, name: str) -> Any:
    """A spandrel ImageModelDescriptor in eval mode on the CPU. Raises WeightsWrongArchitecture."""
    from spandrel import ImageModelDescriptor, ModelLoader

    try:
        desc = ModelLoader().load_from_file(str(path))
    except Exception as e:
        raise WeightsWrongArchitecture(
            f"weights {name} are not a model spandrel can load: {type(e).__name__}: {str(e)[:200]}",
            hint="give a super-resolution .pth or .safetensors file (Real-ESRGAN, SwinIR, HAT, SPAN ...)",
            weights=name,
        ) from None
    if not isinstance(desc, ImageModelDescriptor) or desc.input_channels != 3 or desc.output_channels != 3:
        raise WeightsWrongArchitecture(
            f"weights {name} load as {desc.architecture.name} ({type(desc).__name__}, "
            f"{desc.input_channels}->{desc.output_channels} channels), not an RGB image-to-image model",
            hint="give an RGB super-resolution model",
            weights=name,
        )
    return desc.eval()


def _spans(size: int, tile: int) -> list[tuple[int, int]]:
    count = math.ceil(size / tile)
    return [(k * tile, min(size, (k + 1) * tile)) for k in range(count)]


def run_tiled(model: Any, x: torch.Tensor, scale: int, tile: int | None, overlap: int) -> torch.Tensor:
    """``model`` on (1, 3, H, W), whole or in tiles of ``tile`` input pixels with ``overlap`` context."""
    _, _, h, w = x.shape
    if tile is None or (h <= tile and w <= tile):
        return model(x)
    out = torch.empty((x.shape[0], 3, h * scale, w * scale), device=x.device, dtype=x.dtype)
    for y0, y1 in _spans(h, tile):
        for x0, x1 in _spans(w, tile):
            cy0, cy1 = max(0, y0 - overlap), min(h, y1 + overlap)
            cx0, cx1 = max(0, x0 - overlap), min(w, x1 + overlap)
            part = model(x[:, :, cy0:cy1, cx0:cx1])
            oy, ox = (y0 - cy0) * scale, (x0 - cx0) * scale
            out[:, :, y0 * scale : y1 * scale, x0 * scale : x1 * scale] = part[
                :, :, oy : oy + (y1 - y0) * scale, ox : ox + (x1 - x0) * scale
            ]
    return out


def resize(x: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """The model's native scale to the requested size, on the device (bicubic, antialiased down)."""
    if x.shape[-1] == width and x.shape[-2] == height:
        return x
    return F.interpolate(x, size=(height, width), mode="bicubic", align_corners=False, antialias=True).clamp_(
        0, 1
    )
