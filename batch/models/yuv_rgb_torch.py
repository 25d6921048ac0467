"""The torch back end of :mod:`batch.media.yuv_rgb`: yuv420p (8 bits) or yuv420p10le (10 bits) <-> RGB
on the model's device.

Same matrix, range, chroma siting, kernels and mirrored edges as the CPU back end (and ffmpeg's
``zscale``), so a device stage can upload 4:2:0 planes (half the bytes of rgb24 / rgb48le) and
convert there. Batches: ``y`` is ``(N, H, W)``, ``u`` and ``v`` are ``(N, ceil(H/2), ceil(W/2))``,
integer (uint8; int16 for 10 bits, as 16-bit samples cross to a device) or float code values; RGB
is ``(N, 3, H, W)`` float32 in [0, 1] as :func:`batch.models.device_worker.upload` gives it. Runs on
the CPU too (the tests compare it with ffmpeg there).
"""

from __future__ import annotations

import numpy as np
import torch

from batch.media.yuv_rgb import DOWN_X, DOWN_Y, UP_X, UP_Y, Kernel, YuvRgb, chroma_size


def _mirror(index: torch.Tensor, n: int) -> torch.Tensor:
    """Indices outside 0..n-1 mirrored with the edge sample repeated (``cba|abc``), as zimg and OpenCV."""
    m = torch.remainder(index, 2 * n)
    return torch.where(m < n, m, 2 * n - 1 - m)


def _taps(x: torch.Tensor, kernel: Kernel, dim: int, centres: torch.Tensor) -> torch.Tensor:
    """Sum over the kernel's taps of ``x`` along ``dim`` around each of ``centres`` (indices)."""
    taps, anchor = kernel
    n = x.shape[dim]
    out = torch.zeros((), dtype=x.dtype, device=x.device)
    for k, w in enumerate(taps):
        if w:
            out = out + w * x.index_select(dim, _mirror(centres + (k - anchor), n))
    return out


def upsample(plane: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N, ch, cw) float chroma -> (N, height, width) on the luma grid."""
    n, ch, cw = plane.shape
    rows_at = torch.arange(ch, device=plane.device)
    rows = torch.stack([_taps(plane, UP_Y[0], 1, rows_at), _taps(plane, UP_Y[1], 1, rows_at)], dim=2)
    tall = rows.reshape(n, 2 * ch, cw)
    cols_at = torch.arange(cw, device=plane.device)
    full = torch.stack([_taps(tall, UP_X[0], 2, cols_at), _taps(tall, UP_X[1], 2, cols_at)], dim=3)
    return full.reshape(n, 2 * ch, 2 * cw)[:, :height, :width]


def _affine(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, row: tuple[float, ...]) -> torch.Tensor:
    return a * row[0] + b * row[1] + c * row[2] + row[3]


def to_rgb(
    y: torch.Tensor, u: torch.Tensor, v: torch.Tensor, conv: YuvRgb, *, quantise: bool = True
) -> torch.Tensor:
    """4:2:0 planes -> (N, 3, H, W) float32 RGB in [0, 1].

    ``quantise``: rounded to RGB code values first (8 bits from yuv420p, 16 from 10-bit planes), so the
    values are those of the CPU back end's rgb24 / rgb48le divided by 255 / 65535 (False keeps the
    in-between precision for a model).
    """
    height, width = y.shape[1:]
    if tuple(u.shape[1:]) != chroma_size(width, height) or u.shape != v.shape:
        raise ValueError(f"chroma {tuple(u.shape)} / {tuple(v.shape)} does not fit luma {tuple(y.shape)}")
    yf = float_codes(y)
    uf, vf = upsample(float_codes(u), height, width), upsample(float_codes(v), height, width)
    rgb = torch.stack([_affine(yf, uf, vf, row) for row in conv.to_rgb], dim=1)
    if quantise:
        rgb = rgb.round_()
    return rgb.clamp_(0, conv.rgb_max).div_(float(conv.rgb_max))


def float_codes(plane: torch.Tensor) -> torch.Tensor:
    """Code values as float32; int16 tensors hold uint16 bits (16-bit samples cross to a device as int16:
    a code above 32767 stays large, and a stray one clips to white as in ffmpeg instead of black)."""
    if plane.dtype == torch.int16:
        return plane.to(torch.int32).bitwise_and_(0xFFFF).to(torch.float32)
    return plane.to(torch.float32)


def to_yuv(rgb: torch.Tensor, conv: YuvRgb) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, 3, H, W) RGB in [0, 1] -> 4:2:0 planes of ``conv``'s depth: uint8, or int16 for 10 bits (RGB
    rounded to rgb24's or rgb48le's codes first, as the writer's RGB would be)."""
    top = float(conv.rgb_max)
    codes = rgb.to(torch.float32).mul(top).round_().clamp_(0, top)
    r, g, b = codes.unbind(1)
    height, width = r.shape[1:]
    ch, cw = chroma_size(width, height)
    y = _affine(r, g, b, conv.to_yuv[0])
    chroma = []
    for row in conv.to_yuv[1:]:
        full = _affine(r, g, b, row)
        half = _taps(full, DOWN_X, 2, 2 * torch.arange(cw, device=rgb.device))
        chroma.append(_taps(half, DOWN_Y, 1, 2 * torch.arange(ch, device=rgb.device)))
    u, v = (_to_codes(c, conv) for c in chroma)
    return _to_codes(y, conv), u, v


def _to_codes(x: torch.Tensor, conv: YuvRgb) -> torch.Tensor:
    return x.round().clamp_(0, conv.yuv_max).to(torch.uint8 if conv.depth == 8 else torch.int16)


def planes(flat: torch.Tensor, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A ``(N, samples)`` batch of flat 4:2:0 frames -> (y, u, v) views, on the batch's device."""
    ch, cw = chroma_size(width, height)
    n = width * height
    if flat.ndim != 2 or flat.shape[1] != n + 2 * ch * cw:
        raise ValueError(
            f"a {width}x{height} 4:2:0 frame is {n + 2 * ch * cw} samples (bytes at 8 bits), "
            f"not {tuple(flat.shape)}"
        )
    y = flat[:, :n].reshape(-1, height, width)
    return y, flat[:, n : n + ch * cw].reshape(-1, ch, cw), flat[:, n + ch * cw :].reshape(-1, ch, cw)


def flatten(y: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(y, u, v) batches -> ``(N, samples)`` flat 4:2:0 frames, on their device."""
    return torch.cat([p.reshape(p.shape[0], -1) for p in (y, u, v)], dim=1)


def split(
    frames: list[np.ndarray], width: int, height: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flat 4:2:0 frames (as the reader gives them: uint8, or uint16 for 10 bits) -> (y, u, v) batches on
    the CPU (uint16 samples as int16: every 10-bit code fits)."""
    stacked = np.stack([np.asarray(f).reshape(-1) for f in frames])
    flat = torch.from_numpy(stacked.view(np.int16) if stacked.dtype == np.uint16 else stacked)
    return planes(flat, width, height)


def join(y: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> list[np.ndarray]:
    """(y, u, v) batches -> flat 4:2:0 frames (as the writer takes them: uint8, or uint16 from int16),
    through the host."""
    flat = flatten(y, u, v).cpu().numpy()
    return list(flat.view(np.uint16) if flat.dtype == np.int16 else flat)
