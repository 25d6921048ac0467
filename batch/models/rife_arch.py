"""RIFE's IFNet, written for this project from the published architecture.

Two families, both loading the official ``flownet.pkl`` state dicts (keys
without the ``module.`` prefix; training-only tensors are ignored):

* 4.x (``IFNet4``): an optional feature encoder ("Head") per frame, then a
  coarse-to-fine stack of IFBlocks, each a stride-4 conv encoder, eight
  residual convs with a learnt per-channel scale, and a transposed conv plus
  pixel shuffle that predicts 4 flow channels, a blend-mask logit and (4.10+)
  8 feature channels passed to the next block. The timestep is an input
  channel, so any t in (0, 1) is one forward pass.
* 3.x HDv3 (``IFNet3``): three IFBlocks with PReLU convs, each run on the
  pair and on the swapped pair and averaged; no timestep input (t = 1/2 only).

The layout of each version (block widths, encoder channels, flow pyramid) is
read from the state dict's shapes, see :func:`batch.models.rife.detect`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

_GRIDS: dict[tuple[str, int, int], torch.Tensor] = {}


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward-warp ``image`` by ``flow`` (pixels, x then y), border padding.

    Coordinates and sampling are fp32 whatever the model's dtype: in fp16 the
    normalised grid near +-1 has steps of 2^-11, about a pixel at 4K.
    """
    n, _, h, w = flow.shape
    key = (str(flow.device), h, w)
    grid = _GRIDS.get(key)
    if grid is None:
        xs = torch.linspace(-1.0, 1.0, w, device=flow.device).view(1, 1, 1, w).expand(1, 1, h, w)
        ys = torch.linspace(-1.0, 1.0, h, device=flow.device).view(1, 1, h, 1).expand(1, 1, h, w)
        grid = _GRIDS[key] = torch.cat([xs, ys], 1)
    flow = flow.float()
    norm = torch.cat(
        [flow[:, 0:1] / ((image.shape[3] - 1.0) / 2.0), flow[:, 1:2] / ((image.shape[2] - 1.0) / 2.0)], 1
    )
    coords = (grid.expand(n, -1, -1, -1) + norm).permute(0, 2, 3, 1)
    out = F.grid_sample(image.float(), coords, mode="bilinear", padding_mode="border", align_corners=True)
    return out.to(image.dtype)


def _resize(x: torch.Tensor, factor: float) -> torch.Tensor:
    if factor == 1:
        return x
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


# --- 4.x ---------------------------------------------------------------------------------


def _conv_lrelu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=True), nn.LeakyReLU(0.2, True))


class ResConv(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 1, 1)
        self.beta = nn.Parameter(torch.ones((1, c, 1, 1)), requires_grad=True)
        self.relu = nn.LeakyReLU(0.2, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x) * self.beta + x)


class IFBlock4(nn.Module):
    def __init__(self, in_planes: int, c: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(_conv_lrelu(in_planes, c // 2, 2), _conv_lrelu(c // 2, c, 2))
        self.convblock = nn.Sequential(*(ResConv(c) for _ in range(8)))
        self.lastconv = nn.Sequential(nn.ConvTranspose2d(c, 4 * out_channels, 4, 2, 1), nn.PixelShuffle(2))

    def forward(
        self, x: torch.Tensor, flow: torch.Tensor | None, scale: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = _resize(x, 1.0 / scale)
        if flow is not None:  # the flow is kept in fp32; the block reads it in its own dtype
            x = torch.cat((x, (_resize(flow, 1.0 / scale) / scale).to(x.dtype)), 1)
        out = _resize(self.lastconv(self.convblock(self.conv0(x))), scale)
        return out[:, :4] * scale, out[:, 4:5], out[:, 5:]


class Head(nn.Module):
    """Per-frame feature encoder of 4.13+ (``encode.cnn0..cnn3``)."""

    def __init__(self, width: int, out: int) -> None:
        super().__init__()
        self.cnn0 = nn.Conv2d(3, width, 3, 2, 1)
        self.cnn1 = nn.Conv2d(width, width, 3, 1, 1)
        self.cnn2 = nn.Conv2d(width, width, 3, 1, 1)
        self.cnn3 = nn.ConvTranspose2d(width, out, 4, 2, 1)
        self.relu = nn.LeakyReLU(0.2, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.cnn0(x))
        x = self.relu(self.cnn1(x))
        x = self.relu(self.cnn2(x))
        return self.cnn3(x)


@dataclass(frozen=True)
class Layout4:
    """What distinguishes one 4.x version from another."""

    widths: tuple[int, ...]
    in_planes: tuple[int, ...]
    scales: tuple[int, ...]  # flow pyramid, coarse to fine, at flow_scale 1
    head: tuple[int, int] | None  # (width, output channels) of the encoder
    block_out: int  # channels a block predicts: 6 (4.0-4.9) or 13 (flow, mask, 8 features)

    @property
    def accumulate_mask(self) -> bool:
        return self.block_out == 6  # before 4.10 the mask adds up over blocks; later it is replaced


class IFNet4(nn.Module):
    def __init__(self, layout: Layout4) -> None:
        super().__init__()
        self.layout = layout
        if layout.head is not None:
            self.encode = Head(*layout.head)
        for i, (cin, c) in enumerate(zip(layout.in_planes, layout.widths, strict=True)):
            self.add_module(f"block{i}", IFBlock4(cin, c, layout.block_out))

    def forward(
        self,
        img0: torch.Tensor,
        img1: torch.Tensor,
        t: torch.Tensor,
        flow_scale: float = 1.0,
        f0: torch.Tensor | None = None,
        f1: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Frames at times ``t`` (shape (N,), 0 < t < 1) between ``img0`` and ``img1`` (N, 3, H, W).

        ``f0``/``f1``: the encoder's features of the two frames, when the caller
        already has them (each source frame is encoded once, for both pairs it
        belongs to); computed here otherwise. The flow (and 4.0-4.9's mask)
        adds up in fp32 whatever the model's dtype: in fp16/bf16 the sum of
        five refinements would move in steps of a pixel at large motion.
        """
        n, _, h, w = img0.shape
        timestep = t.view(n, 1, 1, 1).to(img0.dtype).expand(n, 1, h, w)
        feats: list[torch.Tensor] = []  # the two frames' encoder features (4.13+), none before
        if self.layout.head is not None:
            feats = [self.encode(img0) if f0 is None else f0, self.encode(img1) if f1 is None else f1]
        flow = mask = feat = None
        warped0, warped1 = img0, img1
        for i, level in enumerate(self.layout.scales):
            block: IFBlock4 = getattr(self, f"block{i}")
            scale = level / flow_scale
            if flow is None:
                flow, mask, feat = block(torch.cat([img0, img1, *feats, timestep], 1), None, scale)
                flow, mask = flow.float(), mask.float()
            else:
                assert mask is not None and feat is not None
                parts = [warped0, warped1]
                if feats:
                    parts += [warp(feats[0], flow[:, :2]), warp(feats[1], flow[:, 2:4])]
                parts += [timestep, mask.to(img0.dtype)] + ([] if self.layout.accumulate_mask else [feat])
                d_flow, d_mask, feat = block(torch.cat(parts, 1), flow, scale)
                flow = flow + d_flow.float()
                mask = mask + d_mask.float() if self.layout.accumulate_mask else d_mask.float()
            warped0, warped1 = warp(img0, flow[:, :2]), warp(img1, flow[:, 2:4])
        assert mask is not None
        weight = torch.sigmoid(mask).to(img0.dtype)
        return warped0 * weight + warped1 * (1 - weight)


# --- 3.x HDv3 -------------------------------------------------------------------------------


def _conv_prelu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=True), nn.PReLU(cout))


class IFBlock3(nn.Module):
    def __init__(self, in_planes: int, c: int) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(_conv_prelu(in_planes, c // 2, 2), _conv_prelu(c // 2, c, 2))
        for i in range(4):
            self.add_module(f"convblock{i}", nn.Sequential(_conv_prelu(c, c), _conv_prelu(c, c)))
        self.conv1 = nn.Sequential(
            nn.ConvTranspose2d(c, c // 2, 4, 2, 1), nn.PReLU(c // 2), nn.ConvTranspose2d(c // 2, 4, 4, 2, 1)
        )
        self.conv2 = nn.Sequential(
            nn.ConvTranspose2d(c, c // 2, 4, 2, 1), nn.PReLU(c // 2), nn.ConvTranspose2d(c // 2, 1, 4, 2, 1)
        )

    def forward(self, x: torch.Tensor, flow: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        x = _resize(x, 1.0 / scale)
        x = torch.cat((x, (_resize(flow, 1.0 / scale) / scale).to(x.dtype)), 1)
        feat = self.conv0(x)
        for i in range(4):
            feat = getattr(self, f"convblock{i}")(feat) + feat
        return _resize(self.conv1(feat), scale) * scale, _resize(self.conv2(feat), scale)


class IFNet3(nn.Module):
    scales = (4, 2, 1)

    def __init__(self, width: int, in_planes: int = 11) -> None:
        super().__init__()
        for i in range(3):
            self.add_module(f"block{i}", IFBlock3(in_planes, width))

    def forward(self, img0: torch.Tensor, img1: torch.Tensor, flow_scale: float = 1.0) -> torch.Tensor:
        """The midpoint frame between ``img0`` and ``img1``: HDv3 has no timestep input.

        Flow and mask add up in fp32 whatever the model's dtype (see IFNet4.forward).
        """
        flow = torch.zeros_like(img0[:, :1], dtype=torch.float32).expand(-1, 4, -1, -1)
        mask = torch.zeros_like(img0[:, :1], dtype=torch.float32)
        warped0, warped1 = img0, img1
        for i, level in enumerate(self.scales):
            block: IFBlock3 = getattr(self, f"block{i}")
            scale = level / flow_scale
            m = mask.to(img0.dtype)
            f_a, m_a = block(torch.cat((warped0, warped1, m), 1), flow, scale)
            swapped = torch.cat((flow[:, 2:4], flow[:, :2]), 1)
            f_b, m_b = block(torch.cat((warped1, warped0, -m), 1), swapped, scale)
            flow = flow + ((f_a + torch.cat((f_b[:, 2:4], f_b[:, :2]), 1)) / 2).float()
            mask = mask + ((m_a - m_b) / 2).float()
            warped0, warped1 = warp(img0, flow[:, :2]), warp(img1, flow[:, 2:4])
        weight = torch.sigmoid(mask).to(img0.dtype)
        return warped0 * weight + warped1 * (1 - weight)
