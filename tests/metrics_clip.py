"""A synthetic clip with known defects at known frames, for the analyze stage's tests.

Grey frames (R = G = B) drawn with numpy, encoded losslessly (x264 qp 0,
yuv420p), 30 fps, 320x240. Frame ranges (end exclusive):

  0-30    a moving texture            (reference)
  30-60   the same, blurred           -> blurry
  60-90   moving texture
  90-120  fading to dark and back     -> underexposed in the middle (95-115)
  120-150 moving texture
  150-180 each frame shown twice      -> duplicate pairs
  180-225 one frame held for 1.5 s    -> idle, one duplicate group
  225-255 moving texture
  255-285 a different scene           -> one hard cut at 255
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

W, H, FPS, FRAMES = 320, 240, 30, 285
BLURRY = range(30, 60)
DARK_CORE = range(95, 115)
DARK_RAMP = range(90, 120)
REPEATED = range(150, 180)
STILL = range(180, 225)
CUT = 255


def _texture(seed: int, size: tuple[int, int]) -> np.ndarray:
    """Soft blobs (what a camera sees) with fine grain on top (what blur removes)."""
    rng = np.random.default_rng(seed)
    blobs = rng.integers(50, 206, size=(size[1] // 24, size[0] // 24), dtype=np.uint8)
    soft = np.asarray(Image.fromarray(blobs).resize(size, Image.Resampling.BICUBIC), dtype=np.float32)
    grain = rng.normal(0, 12, size=(size[1], size[0]))
    return np.clip(soft + grain, 0, 255).astype(np.uint8)


def frames() -> list[np.ndarray]:
    scene_a = _texture(1, (W + 3 * FRAMES, H))
    # the other scene: broad bright and dark bands under its own grain
    bands = np.where((np.arange(W + 3 * FRAMES) // 40) % 2 == 0, 60, 200)[None, :].repeat(H, axis=0)
    scene_b = np.clip(bands + _texture(7, (W + 3 * FRAMES, H)).astype(int) - 128, 0, 255).astype(np.uint8)
    out = []
    for n in range(FRAMES):
        pos = n
        if n in REPEATED:
            pos = REPEATED.start + (n - REPEATED.start) // 2 * 2  # each image twice
        if n in STILL:
            pos = STILL.start
        elif n >= STILL.stop:
            pos = n - len(STILL) + 1  # the held frame was a pause: the pan goes on from there
        scene = scene_b if n >= CUT else scene_a
        img = scene[:, 3 * pos : 3 * pos + W].astype(np.float32)
        if n in BLURRY:
            img = np.asarray(
                Image.fromarray(img.astype(np.uint8)).filter(ImageFilter.GaussianBlur(4)), dtype=np.float32
            )
        if n in DARK_RAMP:
            depth = min(n - DARK_RAMP.start + 1, DARK_RAMP.stop - n, 5) / 5  # 5-frame fades
            img = img * (1 - 0.85 * depth)
        grey = np.clip(img + 0.5, 0, 255).astype(np.uint8)
        out.append(np.repeat(grey[:, :, None], 3, axis=2))
    return out


def make(path: Path) -> Path:
    cmd = [
        "ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}",
        "-framerate", str(FPS), "-i", "pipe:0", "-c:v", "libx264", "-qp", "0", "-preset", "ultrafast",
        "-pix_fmt", "yuv420p", str(path),
    ]  # fmt: skip
    data = b"".join(f.tobytes() for f in frames())
    subprocess.run(cmd, input=data, check=True)
    return path
