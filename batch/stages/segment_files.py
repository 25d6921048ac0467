"""The files the ``segment`` stage writes: masks.parquet (COCO RLE rows) and overlay.mp4.

masks.parquet (the schema is in docs/manifest.md): one row per frame and
object, zstd, row groups of ROW_GROUP_ROWS rows, DATA_PAGE_BYTES data pages,
written a row group at a time to a hidden partial file renamed at the end.
overlay.mp4: the frames with each object's mask blended in its colour,
libx264 through an ffmpeg pipe.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from batch.media.pipes import widen
from batch.media.writer import setsar

ROW_GROUP_ROWS = 10_000  # rows per Parquet row group (frames x objects); ~1-10 MB of RLE text
DATA_PAGE_BYTES = 1 << 20  # 1 MiB data pages
MASKS_FILE = "masks.parquet"
OVERLAY_FILE = "overlay.mp4"
OVERLAY_CRF = 20
OVERLAY_ALPHA = 0.5
# distinct colours (RGB) for object 0, 1, 2 ... in id order
PALETTE = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
)
SCORE_DOC = (
    "mean sigmoid of SAM2's mask logits over the mask's pixels; 0 for an empty mask; "
    "null where the object is not tracked (before its prompt frame)"
)

# One object's result on one frame: (rle counts, area, bbox [x, y, w, h], score)
Result = tuple[str, int, list[float], float]


def encode(mask: np.ndarray, score: float) -> Result:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    area = int(mask_utils.area(rle))
    bbox = [float(v) for v in mask_utils.toBbox(rle)]
    return rle["counts"].decode("ascii"), area, bbox, score


class MasksFile:
    """masks.parquet, written a row group at a time to a hidden partial file, renamed at the end."""

    def __init__(self, path: Path, height: int, width: int, meta: dict[str, Any]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq
        from pycocotools import mask as mask_utils

        self.path = path
        self.partial = path.with_name(f".{path.name}.partial")
        self.size = [height, width]
        empty = mask_utils.encode(np.zeros((height, width), dtype=np.uint8, order="F"))
        self.empty: Result = (empty["counts"].decode("ascii"), 0, [0.0, 0.0, 0.0, 0.0], 0.0)
        self.schema = pa.schema(
            [
                ("frame", pa.int32()),
                ("time_s", pa.float64()),
                ("object_id", pa.int32()),
                ("rle_counts", pa.string()),
                ("rle_size", pa.list_(pa.int32())),
                ("bbox", pa.list_(pa.float32())),
                ("area", pa.int64()),
                ("score", pa.float32()),
            ],
            metadata={"batch.segment": json.dumps(meta)},
        )
        self.writer = pq.ParquetWriter(
            self.partial, self.schema, compression="zstd", data_page_size=DATA_PAGE_BYTES
        )
        self.columns: dict[str, list[Any]] = {name: [] for name in self.schema.names}

    def add(self, frame: int, time_s: float, obj_id: int, result: Result | None) -> None:
        counts, area, bbox, score = result if result is not None else self.empty
        c = self.columns
        c["frame"].append(frame)
        c["time_s"].append(time_s)
        c["object_id"].append(obj_id)
        c["rle_counts"].append(counts)
        c["rle_size"].append(self.size)
        c["bbox"].append(bbox)
        c["area"].append(area)
        c["score"].append(None if result is None else score)
        if len(c["frame"]) >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if not self.columns["frame"]:
            return
        table = pa.table(self.columns, schema=self.schema)
        self.writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.columns = {name: [] for name in self.schema.names}

    def close(self) -> None:
        self._flush()
        self.writer.close()
        os.replace(self.partial, self.path)

    def abort(self) -> None:
        try:
            self.writer.close()
        finally:
            self.partial.unlink(missing_ok=True)


class Overlay:
    """overlay.mp4: the frames with each object's mask blended in its colour, libx264 via a pipe."""

    def __init__(
        self, path: Path, width: int, height: int, fps: Fraction, sar: Fraction | None = None
    ) -> None:
        self.path = path
        self.partial = path.with_name(f".{path.name}.partial")
        self.size = [height, width]
        self.error: str | None = None
        self.log = tempfile.TemporaryFile()
        cmd = [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "-",
            # 4:2:0 needs even sizes; BT.709 matrix and tags so players show the colours drawn
            # and the frames' pixel aspect (anamorphic sources), as the stage's output has it
            "-vf", f"pad=ceil(iw/2)*2:ceil(ih/2)*2,scale=out_color_matrix=bt709:out_range=tv,format=yuv420p,"
            f"{setsar(sar)}",
            "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", str(OVERLAY_CRF),
            "-movflags", "+faststart", "-f", "mp4", str(self.partial),
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self.log)
        assert self.proc.stdin is not None
        widen(self.proc.stdin.fileno())

    def write(self, frame: np.ndarray, masks: list[tuple[int, str]]) -> None:
        if self.error is not None:
            return
        from pycocotools import mask as mask_utils

        out = frame
        if masks:
            out = frame.astype(np.float32)
            for index, counts in masks:
                m = mask_utils.decode({"size": self.size, "counts": counts.encode("ascii")}).astype(bool)
                colour = np.asarray(PALETTE[index % len(PALETTE)], dtype=np.float32)
                out[m] = out[m] * (1 - OVERLAY_ALPHA) + colour * OVERLAY_ALPHA
            out = (out + 0.5).astype(np.uint8)
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(np.ascontiguousarray(out).tobytes())
        except (BrokenPipeError, OSError):
            self.error = f"ffmpeg stopped reading frames: {self._tail()}"

    def _tail(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace").strip()[-500:] or "(no message)"

    def close(self) -> str | None:
        """None when overlay.mp4 is in place, else why not."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        rc = self.proc.wait()
        if self.error is None and rc != 0:
            self.error = f"ffmpeg exited {rc}: {self._tail()}"
        self.log.close()
        if self.error is not None:
            self.partial.unlink(missing_ok=True)
            return self.error
        os.replace(self.partial, self.path)
        return None

    def abort(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()
        self.partial.unlink(missing_ok=True)
