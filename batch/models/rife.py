"""Loading RIFE weights and running them on batches of frame pairs.

The version is read from the state dict, not from the file name: 3.x HDv3
has PReLU blocks (``block0.convblock0...``); 4.x has residual blocks with a
``beta`` scale, and its encoder width, block widths and block count tell
4.6, 4.22, 4.22-lite, 4.25/4.26 and 4.25-lite apart (4.25 and 4.26 share one
layout). Frames are padded to the multiple the flow pyramid needs and
cropped back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from batch.errors import WeightsWrongArchitecture
from batch.models.rife_arch import IFNet3, IFNet4, Layout4

MIN_PAD = 32


@dataclass(frozen=True)
class RifeVersion:
    family: int  # 3 or 4
    label: str  # "4.25/4.26", "4.22-lite", "3.x (HDv3)" ...
    layout: Layout4 | None = None
    width: int = 0  # 3.x block width

    @property
    def arbitrary_timestep(self) -> bool:
        return self.family == 4

    def pad_multiple(self, flow_scale: float) -> int:
        coarsest = max(self.layout.scales) if self.layout else max(IFNet3.scales)
        return max(MIN_PAD, int(4 * coarsest / flow_scale))


def read_state_dict(path: Path, name: str) -> dict[str, torch.Tensor]:
    """The inference tensors of a flownet.pkl: ``module.`` prefixes stripped."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise _wrong(name, f"it does not load as a PyTorch state dict ({type(e).__name__})") from None
    if isinstance(raw, dict) and "state_dict" in raw and isinstance(raw["state_dict"], dict):
        raw = raw["state_dict"]
    if not isinstance(raw, dict) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise _wrong(name, "it is not a flat mapping of tensors")
    return {k.removeprefix("module."): v for k, v in raw.items()}


def _wrong(name: str, why: str) -> WeightsWrongArchitecture:
    return WeightsWrongArchitecture(
        f"weights {name} are not a RIFE flownet.pkl: {why}",
        hint="give a RIFE 4.x or 3.x (HDv3) flownet.pkl, e.g. model: rife-4.25",
        weights=name,
    )


def detect(sd: dict[str, torch.Tensor], name: str = "weights") -> RifeVersion:
    """Which RIFE this state dict is. Raises WeightsWrongArchitecture."""
    try:
        return _detect(sd, name)
    except (KeyError, IndexError) as e:
        raise _wrong(name, f"tensor {e} is missing or misshaped for any RIFE layout") from None


def _detect(sd: dict[str, torch.Tensor], name: str) -> RifeVersion:
    if "block0.convblock0.0.0.weight" in sd and "block0.conv1.0.weight" in sd:
        first = sd["block0.conv0.0.0.weight"]
        return RifeVersion(3, "3.x (HDv3)", width=first.shape[0] * 2)
    if "block0.convblock.0.beta" not in sd:
        raise _wrong(name, "no IFBlock tensors (block0.convblock...) found")
    count = 0
    while f"block{count}.conv0.0.0.weight" in sd:
        count += 1
    widths = tuple(sd[f"block{i}.conv0.1.0.weight"].shape[0] for i in range(count))
    in_planes = tuple(sd[f"block{i}.conv0.0.0.weight"].shape[1] for i in range(count))
    block_out = sd["block0.lastconv.0.weight"].shape[1] // 4
    head = None
    if "encode.cnn0.weight" in sd:
        head = (sd["encode.cnn0.weight"].shape[0], sd["encode.cnn3.weight"].shape[1])
    elif any(k.startswith("encode.") for k in sd):
        raise _wrong(name, "RIFE 4.7-4.12 (sequential encoder) is not supported; use 4.6 or 4.13+")
    if count == 4:
        scales: tuple[int, ...] = (8, 4, 2, 1)
        label = "4.6" if head is None else ("4.22" if widths[0] == 256 else "4.22-lite")
    elif count == 5:
        lite = widths[-1] == 24
        scales = (32, 16, 8, 4, 1) if lite else (16, 8, 4, 2, 1)
        label = "4.25-lite" if lite else ("4.26-heavy" if head and head[1] == 16 else "4.25/4.26")
    else:
        raise _wrong(name, f"{count} IFBlocks; RIFE 4.x has 4 or 5")
    layout = Layout4(widths, in_planes, scales, head, block_out)
    return RifeVersion(4, label, layout=layout)


def build(version: RifeVersion) -> torch.nn.Module:
    if version.family == 3:
        return IFNet3(version.width)
    assert version.layout is not None
    return IFNet4(version.layout)


def load(path: Path, name: str) -> tuple[torch.nn.Module, RifeVersion]:
    """The model in eval mode on the CPU, fp32. Raises WeightsWrongArchitecture."""
    sd = read_state_dict(path, name)
    version = detect(sd, name)
    model = build(version)
    wanted = model.state_dict()
    missing = [k for k in wanted if k not in sd]
    wrong = [k for k in wanted if k in sd and sd[k].shape != wanted[k].shape]
    if missing or wrong:
        raise _wrong(
            name, f"RIFE {version.label} layout, but tensors missing {missing[:3]} or misshaped {wrong[:3]}"
        )
    model.load_state_dict({k: sd[k] for k in wanted})  # training-only keys (teacher, caltime) are left out
    return model.eval(), version


def is_dyadic(t: Fraction) -> bool:
    """t = k / 2^n: reachable by recursive midpoints (3.x)."""
    return t.denominator & (t.denominator - 1) == 0


class RifeRunner:
    """Interpolates batches of (frame a, frame b, t) on one device and dtype.

    Inputs and outputs are float tensors (N, 3, H, W) in [0, 1] on ``device``.
    """

    def __init__(
        self,
        model: Any,  # the IFNet (an nn.Module), or it behind batch.models.compiled.Compiled
        version: RifeVersion,
        device: torch.device,
        dtype: torch.dtype,
        flow_scale: float,
    ) -> None:
        self.model = model  # already on device and dtype (see batch.models.loaded)
        self.version = version
        self.device = device
        self.dtype = dtype
        self.flow_scale = flow_scale

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) float frames in the model's dtype, padded to the multiple the flow pyramid needs."""
        _, _, h, w = x.shape
        m = self.version.pad_multiple(self.flow_scale)
        return F.pad(x.to(self.dtype), (0, math.ceil(w / m) * m - w, 0, math.ceil(h / m) * m - h))

    @torch.inference_mode()
    def encode(self, padded: torch.Tensor) -> torch.Tensor | None:
        """The 4.13+ encoder's features of padded frames (None for models without one): once per frame."""
        if self.version.layout is None or self.version.layout.head is None:
            return None
        return self.model.encode(padded)

    @torch.inference_mode()
    def interpolate(self, img0: torch.Tensor, img1: torch.Tensor, ts: list[Fraction]) -> torch.Tensor:
        _, _, h, w = img0.shape
        return self.interpolate_padded(self.pad(img0), self.pad(img1), ts, (h, w))

    @torch.inference_mode()
    def interpolate_padded(
        self,
        a: torch.Tensor,
        b: torch.Tensor,
        ts: list[Fraction],
        size: tuple[int, int],
        f0: torch.Tensor | None = None,
        f1: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Frames at ``ts`` between padded ``a`` and ``b`` (see :meth:`pad`), cropped to ``size`` (h, w):
        float32 in [0, 1]. ``f0``/``f1``: their features from :meth:`encode`, if already made."""
        h, w = size
        if self.version.family == 4:
            t = torch.tensor([float(x) for x in ts], device=self.device, dtype=self.dtype)
            feats = {} if f0 is None or f1 is None else {"f0": f0, "f1": f1}
            out = self.model(a, b, t, self.flow_scale, **feats)
        else:
            out = self._bisect(a, b, ts)
        return out[:, :, :h, :w].float().clamp_(0, 1)

    def _bisect(self, a: torch.Tensor, b: torch.Tensor, ts: list[Fraction]) -> torch.Tensor:
        """3.x: each t = k/2^n by halving the interval, one batched midpoint per level."""
        lo = [Fraction(0)] * len(ts)
        hi = [Fraction(1)] * len(ts)
        left, right = a.clone(), b.clone()
        result = a.clone()
        pending = list(range(len(ts)))
        while pending:
            mids = self.model(left[pending], right[pending], self.flow_scale)
            still: list[int] = []
            for k, i in enumerate(pending):
                mid_t = (lo[i] + hi[i]) / 2
                if mid_t == ts[i]:
                    result[i] = mids[k]
                    continue
                still.append(i)
                if ts[i] < mid_t:
                    hi[i] = mid_t
                    right[i] = mids[k]
                else:
                    lo[i] = mid_t
                    left[i] = mids[k]
            pending = still
        return result
