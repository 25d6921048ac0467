"""A preview image per output, made from the frames that already flow through the pipeline.

So a user sees what they got without downloading the video. Rows sit at a
quarter, half and three quarters in. Without a rate change a row is source |
result at the same frame. When a stage changes the rate, a row shows a made
frame between its two source neighbours (source before | made | source after),
because at source instants interpolation changed nothing worth looking at.

Frames are caught as they pass (``PreviewTap``): no second decode, no seek
into a long GOP. Only a frame the pipeline never saw (a chunk reused from the
bucket) is read back from the file, one ffmpeg seek each.
"""

from __future__ import annotations

import logging
import math
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from batch.media.colour import ColourPlan
from batch.media.layout import RGB, FrameLayout

log = logging.getLogger(__name__)

ROW_HEIGHT = 270
GAP = 6
CAPTION = 22
INSTANTS = (0.25, 0.5, 0.75)

# (Kr, Kb) of each swscale matrix name: the same matrix the reader converts with
_KR_KB = {
    "bt709": (0.2126, 0.0722),
    "smpte170m": (0.299, 0.114),
    "bt470": (0.299, 0.114),
    "fcc": (0.30, 0.11),
    "smpte240m": (0.212, 0.087),
    "bt2020": (0.2627, 0.0593),
}


@dataclass(frozen=True)
class Row:
    source: tuple[int, ...]  # source frames shown: one, or the two neighbours of a made frame
    output: int  # the output frame shown


def pick_rows(frames_in: int, frames_out: int, ratio: Fraction) -> list[Row]:
    """The frames each row shows; ``ratio`` is output fps / input fps (output j sits at j / ratio)."""
    if frames_in <= 0 or frames_out <= 0:
        return []
    rows: list[Row] = []
    for share in INSTANTS:
        if ratio == 1:
            k = min(frames_in - 1, int(share * frames_in))
            row = Row((k,), min(k, frames_out - 1))
        else:
            j = min(frames_out - 1, int(share * frames_out))
            if (j / ratio).denominator == 1 and j + 1 < frames_out:
                j += 1  # a made frame, not one that copies a source frame
            pos = j / ratio
            before = min(frames_in - 1, math.floor(pos))
            after = min(frames_in - 1, before + 1)
            row = Row((before,) if before == after or pos == before else (before, after), j)
        if row not in rows:
            rows.append(row)
    return rows


def thumbnail(
    frame: np.ndarray, layout: FrameLayout, colour: ColourPlan, height: int = ROW_HEIGHT
) -> Image.Image:
    """One frame as a small RGB image, converted with the source's own matrix and range."""
    w, h = layout.width, layout.height
    size = (max(2, round(w * height / h)), height)
    if layout.pix_fmt == RGB:
        return Image.fromarray(np.ascontiguousarray(frame.reshape(h, w, 3))).resize(
            size, Image.Resampling.BOX
        )
    cw, ch = (w + 1) // 2, (h + 1) // 2
    planes = (
        frame[: w * h].reshape(h, w),
        frame[w * h : w * h + cw * ch].reshape(ch, cw),
        frame[w * h + cw * ch : w * h + 2 * cw * ch].reshape(ch, cw),
    )
    # resize each plane in C first, so the float maths runs on the thumbnail only
    y, u, v = (np.asarray(Image.fromarray(p).resize(size, Image.Resampling.BOX), np.float32) for p in planes)
    if colour.range == "pc":
        u, v = u - 128.0, v - 128.0
    else:
        y, u, v = (y - 16.0) * (255 / 219), (u - 128.0) * (255 / 224), (v - 128.0) * (255 / 224)
    kr, kb = _KR_KB.get(colour.matrix, _KR_KB["bt709"])
    r = y + 2 * (1 - kr) * v
    b = y + 2 * (1 - kb) * u
    g = (y - kr * r - kb * b) / (1 - kr - kb)
    rgb = np.clip(np.stack([r, g, b], axis=-1) + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(rgb)


@dataclass
class PreviewTap:
    """Catches the frames a preview needs as they pass; safe to share between chunk workers."""

    rows: list[Row]
    layout_in: FrameLayout
    layout_out: FrameLayout
    colour: ColourPlan
    source_seen: dict[int, Image.Image] = field(default_factory=dict)
    output_seen: dict[int, Image.Image] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def watch_source(self, frames: Iterator[np.ndarray], start: int = 0) -> Iterator[np.ndarray]:
        wanted = {i for r in self.rows for i in r.source}
        return self._watch(frames, start, wanted, self.source_seen, self.layout_in)

    def watch_output(self, frames: Iterator[np.ndarray], start: int = 0) -> Iterator[np.ndarray]:
        wanted = {r.output for r in self.rows}
        return self._watch(frames, start, wanted, self.output_seen, self.layout_out)

    def _watch(
        self,
        frames: Iterator[np.ndarray],
        start: int,
        wanted: set[int],
        seen: dict[int, Image.Image],
        layout: FrameLayout,
    ) -> Iterator[np.ndarray]:
        for k, frame in enumerate(frames, start):
            if k in wanted and k not in seen:
                try:
                    small = thumbnail(np.asarray(frame), layout, self.colour)
                except Exception:  # the preview is a courtesy: it never fails the job
                    log.warning(
                        "preview: frame %d could not be made small; read back later", k, exc_info=True
                    )
                else:
                    with self._lock:
                        seen[k] = small
            yield frame


def frame_at(path: Path, seconds: float, height: int = ROW_HEIGHT) -> Image.Image | None:
    """One frame at ``seconds``, scaled to ``height`` (aspect kept); None if it cannot be read."""
    cmd = [
        "ffmpeg", "-v", "error", "-nostdin", "-ss", f"{seconds:.6f}", "-i", str(path),
        "-frames:v", "1", "-vf", f"scale=-2:{height}", "-f", "image2pipe", "-c:v", "png", "pipe:1",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, check=False, timeout=120)
    if proc.returncode != 0 or not proc.stdout:
        return None
    return Image.open(BytesIO(proc.stdout)).convert("RGB")


@dataclass(frozen=True)
class Files:
    """Where to read back a frame the tap did not see, and the rates that place it in time."""

    source: Path
    result: Path
    fps_in: Fraction
    fps_out: Fraction


def _fill_gaps(tap: PreviewTap, files: Files) -> None:
    for r in tap.rows:
        for i in r.source:
            if i not in tap.source_seen and (im := frame_at(files.source, (i + 0.5) / files.fps_in)):
                tap.source_seen[i] = im
        if r.output not in tap.output_seen and (
            im := frame_at(files.result, (r.output + 0.5) / files.fps_out)
        ):
            tap.output_seen[r.output] = im


def make_preview(
    tap: PreviewTap, dest: Path, labels: tuple[str, str], files: Files | None = None
) -> Path | None:
    """Write a JPEG grid to ``dest``, a caption over each column; None when no row has its frames."""
    if files is not None:
        _fill_gaps(tap, files)
    rows: list[list[Image.Image]] = []
    for r in tap.rows:
        src = [tap.source_seen.get(i) for i in r.source]
        out = tap.output_seen.get(r.output)
        if out is None or any(s is None for s in src):
            continue
        cells = [s for s in src if s is not None]
        rows.append([cells[0], out, cells[1]] if len(cells) == 2 else [cells[0], out])
    if not rows:
        return None
    columns = max(len(r) for r in rows)
    widths = [max(r[c].width for r in rows if c < len(r)) for c in range(columns)]
    width = sum(widths) + GAP * (columns - 1)
    height = CAPTION + len(rows) * ROW_HEIGHT + (len(rows) - 1) * GAP
    canvas = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(canvas)
    captions = (
        [labels[0], labels[1]] if columns == 2 else [labels[0], f"made: {labels[1]}", "next source frame"]
    )
    x = 0
    for c in range(columns):
        draw.text((x + 4, 5), captions[c], fill=(235, 235, 235))
        for i, row in enumerate(rows):
            if c < len(row):
                canvas.paste(row[c], (x, CAPTION + i * (ROW_HEIGHT + GAP)))
        x += widths[c] + GAP
    dest.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(dest, "JPEG", quality=85)
    return dest
