"""Weight files with random values in the official layouts, written independently of batch.models.

The shapes below come from the published architectures (RIFE's IFNet_HDv3
files per version, basicsr's RRDBNet and SRVGGNetCompact), not from this
project's modules, so loading them checks our architecture against theirs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

# version: (encoder width, encoder out, block widths, block-0 extra inputs, block output channels)
RIFE4 = {
    "4.6": (None, 0, (192, 128, 96, 64), 6),
    "4.22": (32, 8, (256, 192, 96, 48), 13),
    "4.22-lite": (16, 4, (192, 128, 64, 32), 13),
    "4.25": (16, 4, (192, 128, 96, 64, 32), 13),
    "4.25-lite": (16, 4, (192, 128, 96, 64, 24), 13),
}


def rife4_shapes(version: str) -> dict[str, tuple[int, ...]]:
    head_w, head_out, widths, out_ch = RIFE4[version]
    shapes: dict[str, tuple[int, ...]] = {}
    if head_w is not None:
        for i, (cin, cout) in enumerate(((3, head_w), (head_w, head_w), (head_w, head_w))):
            shapes[f"encode.cnn{i}.weight"] = (cout, cin, 3, 3)
            shapes[f"encode.cnn{i}.bias"] = (cout,)
        shapes["encode.cnn3.weight"] = (head_w, head_out, 4, 4)  # ConvTranspose2d: (in, out, k, k)
        shapes["encode.cnn3.bias"] = (head_out,)
    feat = (
        out_ch - 5 if out_ch == 13 else 0
    )  # features a block passes on (4.10+; 4.6's 6th channel is unused)
    for b, c in enumerate(widths):
        cin = 7 + 2 * head_out if b == 0 else 8 + 4 + 2 * head_out + feat
        shapes[f"block{b}.conv0.0.0.weight"] = (c // 2, cin, 3, 3)
        shapes[f"block{b}.conv0.0.0.bias"] = (c // 2,)
        shapes[f"block{b}.conv0.1.0.weight"] = (c, c // 2, 3, 3)
        shapes[f"block{b}.conv0.1.0.bias"] = (c,)
        for r in range(8):
            shapes[f"block{b}.convblock.{r}.conv.weight"] = (c, c, 3, 3)
            shapes[f"block{b}.convblock.{r}.conv.bias"] = (c,)
            shapes[f"block{b}.convblock.{r}.beta"] = (1, c, 1, 1)
        shapes[f"block{b}.lastconv.0.weight"] = (c, 4 * out_ch, 4, 4)
        shapes[f"block{b}.lastconv.0.bias"] = (4 * out_ch,)
    return shapes


def _random(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in shapes.items():
        fan_in = max(1, int(torch.tensor(shape[1:]).prod().item())) if len(shape) > 1 else 1
        if k.endswith("beta"):
            out[k] = torch.ones(shape)
        elif len(shape) == 1 and "bias" not in k:  # PReLU slopes
            out[k] = torch.full(shape, 0.25)
        else:
            out[k] = torch.randn(shape, generator=g) * (0.5 / fan_in**0.5)
    return out


def write_rife4(path: Path, version: str, seed: int = 0) -> str:
    """A flownet.pkl as the official ones are: DDP ``module.`` prefixes, training-only tensors."""
    sd = {f"module.{k}": v for k, v in _random(rife4_shapes(version), seed).items()}
    sd["module.teacher.conv0.0.0.weight"] = torch.zeros(4, 4, 3, 3)  # training only: must be ignored
    sd["module.caltime.0.weight"] = torch.zeros(2)
    torch.save(sd, path)
    return sha256_of(path)


def realesrgan_rrdb_shapes(nf: int = 16, gc: int = 32, blocks: int = 2) -> dict[str, tuple[int, ...]]:
    """basicsr RRDBNet x4 (RealESRGAN_x4plus layout), small."""
    s: dict[str, tuple[int, ...]] = {"conv_first.weight": (nf, 3, 3, 3), "conv_first.bias": (nf,)}
    for b in range(blocks):
        for r in (1, 2, 3):
            for k in range(1, 6):
                cout = gc if k < 5 else nf
                s[f"body.{b}.rdb{r}.conv{k}.weight"] = (cout, nf + (k - 1) * gc, 3, 3)
                s[f"body.{b}.rdb{r}.conv{k}.bias"] = (cout,)
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        s[f"{name}.weight"], s[f"{name}.bias"] = (nf, nf, 3, 3), (nf,)
    s["conv_last.weight"], s["conv_last.bias"] = (3, nf, 3, 3), (3,)
    return s


def compact_shapes(nf: int = 16, convs: int = 4, scale: int = 4) -> dict[str, tuple[int, ...]]:
    """SRVGGNetCompact (realesr-animevideov3 layout), small: conv, PReLU, ..., conv to 3*scale^2."""
    s: dict[str, tuple[int, ...]] = {
        "body.0.weight": (nf, 3, 3, 3),
        "body.0.bias": (nf,),
        "body.1.weight": (nf,),
    }
    for k in range(convs):
        i = 2 + 2 * k
        s[f"body.{i}.weight"], s[f"body.{i}.bias"], s[f"body.{i + 1}.weight"] = (nf, nf, 3, 3), (nf,), (nf,)
    last = 2 + 2 * convs
    s[f"body.{last}.weight"], s[f"body.{last}.bias"] = (3 * scale * scale, nf, 3, 3), (3 * scale * scale,)
    return s


def write_sr(path: Path, shapes: dict[str, tuple[int, ...]], wrapper: str, seed: int = 0) -> str:
    """Real-ESRGAN releases wrap the weights: ``params_ema`` (RRDB) or ``params`` (compact)."""
    torch.save({wrapper: _random(shapes, seed)}, path)
    return sha256_of(path)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
