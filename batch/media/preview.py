"""A preview image per output, made from the frames that already flow through the pipeline.

So a user sees what they got without downloading the video. Rows sit at a
quarter, half and three quarters in. Without a rate change a row is source |
result at the same frame. When a stage changes the rate, a row shows a made
frame between its two source neighbours (source before | made | source after),
because at source instants interpolation changed nothing worth looking at.

Below the rows, the middle row again at full size (a centre crop, pixel for
pixel). For a rate change a blend of the same two source frames stands beside
the made frame, so a model's work can be told from a cross-fade; for a size
change the source crop is enlarged by nearest neighbour to the result's scale.

Frames are caught as they pass (``PreviewTap``): no second decode, no seek
into a long GOP. Only a frame the pipeline never saw (a chunk reused from the
bucket) is read back from the file, one ffmpeg seek each (the full-size row
is then left out).
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
from typing import TYPE_CHECKING

from batch.media.colour import KR_KB, ColourPlan
from batch.media.layout import FrameLayout, to_8bit

if TYPE_CHECKING:
    import numpy as np  # imported where frames are converted: a job with no stages needs none
    from PIL import Image  # imported where images are made, after ffmpeg has started (warm_imports)

log = logging.getLogger(__name__)

ROW_HEIGHT = 270
GAP = 6
CAPTION = 22
INSTANTS = (0.25, 0.5, 0.75)
CROP = (480, 270)  # the full-size row's window, at most

Box = tuple[int, int, int, int]  # x, y, width, height in a frame's pixels


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


def crop_boxes(layout_in: FrameLayout, layout_out: FrameLayout) -> tuple[Box, Box]:
    """The full-size row's windows: the output's centre, and the same region of the source."""
    ow = max(2, min(CROP[0], layout_out.width) // 2 * 2)
    oh = max(2, min(CROP[1], layout_out.height) // 2 * 2)
    ox, oy = (layout_out.width - ow) // 4 * 2, (layout_out.height - oh) // 4 * 2  # even: 4:2:0 planes
    sx, sy = layout_in.width / layout_out.width, layout_in.height / layout_out.height
    iw = min(layout_in.width, max(2, round(ow * sx) // 2 * 2))
    ih = min(layout_in.height, max(2, round(oh * sy) // 2 * 2))
    ix = max(0, min(round(ox * sx) // 2 * 2, layout_in.width - iw))
    iy = max(0, min(round(oy * sy) // 2 * 2, layout_in.height - ih))
    return (ix, iy, iw, ih), (ox, oy, ow, oh)


def _planes(frame: np.ndarray, layout: FrameLayout, box: Box) -> tuple[np.ndarray, ...]:
    """The Y, U and V planes of a flat planar frame, cut to ``box`` (subsampled chroma at half the size),
    in 8-bit levels."""
    x0, y0, bw, bh = box
    out = []
    for plane in layout.split(frame)[:3]:
        sx = 2 if plane.shape[1] < layout.width else 1
        sy = 2 if plane.shape[0] < layout.height else 1
        cut = plane[y0 // sy : (y0 + bh + sy - 1) // sy, x0 // sx : (x0 + bw + sx - 1) // sx]
        out.append(to_8bit(cut, layout.max_value))
    return tuple(out)


def thumbnail(
    frame: np.ndarray,
    layout: FrameLayout,
    colour: ColourPlan,
    height: int = ROW_HEIGHT,
    box: Box | None = None,
    sar: Fraction | None = None,
) -> Image.Image:
    """A frame (or its ``box``) as RGB, ``height`` high, converted with the source's matrix and range;
    ``sar``: its pixels' aspect (anamorphic: drawn at the shape it is shown at)."""
    import numpy as np
    from PIL import Image

    w, h = layout.width, layout.height
    box = box or (0, 0, w, h)
    x0, y0, bw, bh = box
    size = (shown_width(bw, bh, height, sar), height)
    if layout.packed:
        channels = layout.shape[2]
        rgb_box = frame.reshape(h, w, channels)[y0 : y0 + bh, x0 : x0 + bw, :3]
        rgb_box = np.ascontiguousarray(to_8bit(rgb_box, layout.max_value))
        return Image.fromarray(rgb_box).resize(size, Image.Resampling.BOX)
    # resize each plane in C first, so the float maths runs on the small image only
    y, u, v = (
        np.asarray(Image.fromarray(np.ascontiguousarray(p)).resize(size, Image.Resampling.BOX), np.float32)
        for p in _planes(frame, layout, box)
    )
    if colour.range == "pc":
        u, v = u - 128.0, v - 128.0
    else:
        y, u, v = (y - 16.0) * (255 / 219), (u - 128.0) * (255 / 224), (v - 128.0) * (255 / 224)
    kr, kb = KR_KB.get(colour.matrix, KR_KB["bt709"])
    r = y + 2 * (1 - kr) * v
    b = y + 2 * (1 - kb) * u
    g = (y - kr * r - kb * b) / (1 - kr - kb)
    rgb = np.clip(np.stack([r, g, b], axis=-1) + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(rgb)


# The widest a row's image is drawn, in row heights: a picture shown wider (a broken or hostile pixel
# aspect, 2000:1) is drawn at this; its width had failed the transcode's grabs or taken gigabytes.
WIDEST_SHOWN = 8


def shown_width(width: int, height: int, row_height: int, sar: Fraction | None = None) -> int:
    """The width of an image ``row_height`` high of a ``width`` x ``height`` picture as it is shown
    (at most WIDEST_SHOWN row heights)."""
    return max(2, min(WIDEST_SHOWN * row_height, round(width * (sar or 1) * row_height / height)))


@dataclass
class PreviewTap:
    """Catches the frames a preview needs as they pass; safe to share between chunk workers."""

    rows: list[Row]
    layout_in: FrameLayout
    layout_out: FrameLayout
    colour: ColourPlan
    # the pixels' aspects in and out (anamorphic: the rows' images drawn as shown; the crop row is
    # drawn pixel for pixel, to show the details each pixel holds)
    sar_in: Fraction | None = None
    sar_out: Fraction | None = None
    source_seen: dict[int, Image.Image] = field(default_factory=dict)
    output_seen: dict[int, Image.Image] = field(default_factory=dict)
    source_crops: dict[int, Image.Image] = field(default_factory=dict)  # the full-size row
    output_crops: dict[int, Image.Image] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def crop_row(self) -> Row | None:
        return self.rows[len(self.rows) // 2] if self.rows else None

    def caught(self, index: int, small: Image.Image, crop: Image.Image | None = None) -> None:
        """A frame caught outside the pipeline, source and output alike (no stages: the direct transcode)."""
        with self._lock:
            self.source_seen[index] = self.output_seen[index] = small
            if crop is not None:
                self.source_crops[index] = self.output_crops[index] = crop

    def caught_source(self, index: int, small: Image.Image, crop: Image.Image | None = None) -> None:
        """A source frame caught outside the pipeline (stages in the direct transcode's graph)."""
        with self._lock:
            self.source_seen[index] = small
            if crop is not None:
                self.source_crops[index] = crop

    def caught_output(self, index: int, small: Image.Image, crop: Image.Image | None = None) -> None:
        """An output frame caught outside the pipeline (stages in the direct transcode's graph)."""
        with self._lock:
            self.output_seen[index] = small
            if crop is not None:
                self.output_crops[index] = crop

    def thumbnail_size(self, made: bool = False) -> tuple[int, int]:
        """The size of a row's image of a whole source frame, or output frame where ``made`` (as
        :func:`thumbnail` makes them)."""
        layout, sar = (self.layout_out, self.sar_out) if made else (self.layout_in, self.sar_in)
        return shown_width(layout.width, layout.height, ROW_HEIGHT, sar), ROW_HEIGHT

    def watch_source(self, frames: Iterator[np.ndarray], start: int = 0) -> Iterator[np.ndarray]:
        crops = set(self.crop_row.source) if self.crop_row else set()
        box = crop_boxes(self.layout_in, self.layout_out)[0]
        wanted = {i for r in self.rows for i in r.source}
        return self._watch(frames, start, wanted, self.layout_in, crops, box, source=True, sar=self.sar_in)

    def watch_output(self, frames: Iterator[np.ndarray], start: int = 0) -> Iterator[np.ndarray]:
        crops = {self.crop_row.output} if self.crop_row else set()
        box = crop_boxes(self.layout_in, self.layout_out)[1]
        wanted = {r.output for r in self.rows}
        return self._watch(frames, start, wanted, self.layout_out, crops, box, source=False, sar=self.sar_out)

    def _watch(
        self,
        frames: Iterator[np.ndarray],
        start: int,
        wanted: set[int],
        layout: FrameLayout,
        crops: set[int],
        box: Box,
        *,
        source: bool,
        sar: Fraction | None,
    ) -> Iterator[np.ndarray]:
        import numpy as np

        seen, cut = (self.source_seen, self.source_crops) if source else (self.output_seen, self.output_crops)
        for k, frame in enumerate(frames, start):
            if k in wanted and k not in seen:
                try:
                    pixels = np.asarray(frame)
                    small = thumbnail(pixels, layout, self.colour, sar=sar)
                    crop = thumbnail(pixels, layout, self.colour, box[3], box) if k in crops else None
                except Exception:  # the preview is a courtesy: it never fails the job
                    log.warning("preview: frame %d not caught; read back later", k, exc_info=True)
                else:
                    with self._lock:
                        seen[k] = small
                        if crop is not None:
                            cut[k] = crop
            yield frame


def frame_at(path: Path, seconds: float, height: int = ROW_HEIGHT) -> Image.Image | None:
    """One frame at ``seconds``, scaled to ``height`` at the shape it is shown at; None if it cannot be
    read. Anamorphic frames are first made square at 4x ``height`` (at most WIDEST_SHOWN heights wide),
    square ones pass as they are; then ``-2`` rounds with exact integers, as before the aspect was
    counted (a width from ``dar`` in floating point rounded 298x180's 447.0 down to 446)."""
    from PIL import Image

    cmd = [
        "ffmpeg", "-v", "error", "-nostdin", "-ss", f"{seconds:.6f}", "-i", str(path), "-frames:v", "1",
        "-vf", f"scale=w='if(eq(sar,1),iw,max(8,min(iw*sar*{4 * height}/ih,{WIDEST_SHOWN * 4 * height})))'"
        f":h='if(eq(sar,1),ih,{4 * height})',scale=-2:{height}",
        "-f", "image2pipe", "-c:v", "png", "pipe:1",
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
    start_s: float = 0.0  # the video's start time in both files (the writer keeps the source's)

    def at(self, index: int, fps: Fraction) -> float:
        """Where an accurate input seek lands on frame ``index``: half a frame before it.

        ffmpeg drops every frame before the seek point, so seeking to the frame's
        own time (or past it) would return the next one; the reader seeks the same way.
        """
        return max(0.0, self.start_s + (index - 0.5) / float(fps))


def _fill_gaps(tap: PreviewTap, files: Files) -> None:
    for r in tap.rows:
        for i in r.source:
            if i not in tap.source_seen and (im := frame_at(files.source, files.at(i, files.fps_in))):
                tap.source_seen[i] = im
        if r.output not in tap.output_seen and (
            im := frame_at(files.result, files.at(r.output, files.fps_out))
        ):
            tap.output_seen[r.output] = im


def _blend(a: Image.Image, b: Image.Image) -> Image.Image:
    from PIL import Image

    return Image.blend(a, b.resize(a.size), 0.5)


def _full_size_row(tap: PreviewTap) -> list[Image.Image]:
    """The middle row at full size; empty when its frames came back from the files (no crops)."""
    from PIL import Image

    row = tap.crop_row
    if row is None or row.output not in tap.output_crops:
        return []
    src = [tap.source_crops.get(i) for i in row.source]
    made = tap.output_crops[row.output]
    if any(s is None for s in src):
        return []
    cells = [s for s in src if s is not None]
    if len(cells) == 2:
        return [cells[0], made, cells[1], _blend(cells[0], cells[1])]
    return [cells[0].resize(made.size, Image.Resampling.NEAREST), made]


def make_preview(
    tap: PreviewTap, dest: Path, labels: tuple[str, str], files: Files | None = None
) -> Path | None:
    """Write a JPEG grid to ``dest``, a caption over each column; None when no row has its frames."""
    from PIL import Image, ImageDraw

    if files is not None:
        _fill_gaps(tap, files)
    rows: list[list[Image.Image]] = []
    for r in tap.rows:
        src = [tap.source_seen.get(i) for i in r.source]
        out = tap.output_seen.get(r.output)
        if out is None or any(s is None for s in src):
            continue
        cells = [s for s in src if s is not None]
        rows.append(
            [cells[0], out, cells[1], _blend(cells[0], cells[1])] if len(cells) == 2 else [cells[0], out]
        )
    if not rows:
        return None
    full = _full_size_row(tap)
    columns = max(len(r) for r in [*rows, full])
    widths = [max(r[c].width for r in [*rows, full] if c < len(r)) for c in range(columns)]
    width = sum(widths) + GAP * (columns - 1)
    tops = [CAPTION + i * (ROW_HEIGHT + GAP) for i in range(len(rows))]
    height = tops[-1] + ROW_HEIGHT
    if full:
        tops.append(height + GAP + CAPTION)
        height = tops[-1] + max(im.height for im in full)
    canvas = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(canvas)
    rate_change = columns == 4
    captions = (
        [labels[0], f"made: {labels[1]}", "next source frame", "blend of the two (for comparison)"]
        if rate_change
        else [labels[0], labels[1]]
    )
    x = 0
    for c in range(columns):
        draw.text((x + 4, 5), captions[c], fill=(235, 235, 235))
        for top, row in zip(tops, [*rows, full] if full else rows, strict=True):
            if c < len(row):
                canvas.paste(row[c], (x, top))
        x += widths[c] + GAP
    if full:
        what = "full size, centre crop" + ("" if rate_change else " (source enlarged, nearest neighbour)")
        draw.text((4, tops[-1] - CAPTION + 5), what, fill=(235, 235, 235))
    dest.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(dest, "JPEG", quality=85)
    return dest
