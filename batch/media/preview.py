"""A preview image per output: frames side by side, source on the left, result on the right.

So a user sees what they got without downloading the video. Frames are
taken at the same instants (a quarter, half and three quarters in) from both
files, scaled to one height, and stacked one instant per row.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROW_HEIGHT = 270
GAP = 6
INSTANTS = (0.25, 0.5, 0.75)


def frame_at(path: Path, seconds: float, height: int = ROW_HEIGHT) -> Image.Image | None:
    """One frame at ``seconds``, scaled to ``height`` (aspect kept); None if it cannot be read."""
    cmd = [
        "ffmpeg", "-v", "error", "-nostdin", "-ss", f"{seconds:.3f}", "-i", str(path),
        "-frames:v", "1", "-vf", f"scale=-2:{height}", "-f", "image2pipe", "-c:v", "png", "pipe:1",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, check=False, timeout=120)
    if proc.returncode != 0 or not proc.stdout:
        return None
    from io import BytesIO

    return Image.open(BytesIO(proc.stdout)).convert("RGB")


CAPTION = 22


def make_preview(
    source: Path, result: Path, duration: float, dest: Path, labels: tuple[str, str] = ("source", "result")
) -> Path | None:
    """Write a JPEG grid to ``dest`` with a caption over each column.

    Returns None when no frame could be read back (the job goes on without it).
    """
    rows: list[tuple[Image.Image, Image.Image]] = []
    for share in INSTANTS:
        t = max(0.0, duration * share)
        left, right = frame_at(source, t), frame_at(result, t)
        if left is not None and right is not None:
            rows.append((left, right))
    if not rows:
        return None
    width = max(a.width for a, _ in rows) + GAP + max(b.width for _, b in rows)
    height = CAPTION + len(rows) * ROW_HEIGHT + (len(rows) - 1) * GAP
    canvas = Image.fromarray(np.full((height, width, 3), 24, dtype=np.uint8))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 5), labels[0], fill=(235, 235, 235))
    draw.text((width - max(b.width for _, b in rows) + 4, 5), labels[1], fill=(235, 235, 235))
    for i, (a, b) in enumerate(rows):
        y = CAPTION + i * (ROW_HEIGHT + GAP)
        canvas.paste(a, (0, y))
        canvas.paste(b, (width - b.width, y))
    dest.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(dest, "JPEG", quality=85)
    return dest
