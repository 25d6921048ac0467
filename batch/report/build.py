"""The job's part of the page: the images per input, gathered while its files are still on disk.

Each image is made on its own and may fail on its own (a note says so); nothing
here raises: an output that was made and checked is never failed by its page.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from batch.contracts import join_url
from batch.report.data import Image, ReportData, sniff_mime
from batch.storage import Store

log = logging.getLogger("batch.report")

STILLS = (0.25, 0.5, 0.75)  # where the overlay stills are taken, as shares of the video's duration
STILL_WIDTH = 640
FFMPEG_TIMEOUT_S = 60.0
OVERLAY_FETCH_MAX_BYTES = 256 << 20  # an overlay in the bucket larger than this is not fetched for stills


def overlay_stills(video: Path, shares: tuple[float, ...] = STILLS) -> list[tuple[float, bytes]]:
    """JPEG stills of ``video`` at ``shares`` of its duration: [(time_s, jpeg)], one ffmpeg seek each."""
    probed = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(video)],
        capture_output=True, text=True, timeout=FFMPEG_TIMEOUT_S, check=True,
    )  # fmt: skip
    duration = float(probed.stdout.strip())
    stills = []
    for share in shares:
        t = duration * share
        cmd = ["ffmpeg", "-v", "error", "-nostdin", "-ss", f"{t:.3f}", "-i", str(video), "-frames:v", "1"]
        cmd += [
            "-vf",
            f"scale='min({STILL_WIDTH},iw)':-2",
            "-f",
            "image2pipe",
            "-c:v",
            "mjpeg",
            "-q:v",
            "4",
            "-",
        ]
        got = subprocess.run(cmd, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=True)
        if sniff_mime(got.stdout) == "image/jpeg":
            stills.append((t, got.stdout))
    return stills


class Collector:
    """The sidecar the job uploads: images per input index, and notes on what could not be made."""

    def __init__(self) -> None:
        self.data = ReportData()

    def _try(self, index: int, what: str, make: Callable[[], object]) -> None:
        try:
            make()
        except Exception as e:
            log.warning("input %d: no %s for the report (%s: %s)", index, what, type(e).__name__, e)
            self.data.notes.append(f"input {index}: no {what} ({type(e).__name__}: {e})")

    def add_input(self, index: int, preview: Path | None, files: Mapping[str, Path]) -> None:
        """``preview``: the preview JPEG; ``files``: the stage files on disk, by output kind."""
        if preview is not None:
            caption = "preview: source and result side by side (a made frame between its source neighbours)"
            path = preview
            self._try(
                index,
                "preview",
                lambda: self.data.add(index, Image(caption, "image/jpeg", path.read_bytes())),
            )
        metrics = files.get("metrics")
        if metrics is not None:
            self._try(index, "metrics plot", lambda: self._plot(index, metrics))
        overlay = files.get("overlay")
        if overlay is not None:
            self._try(index, "overlay stills", lambda: self._stills(index, overlay))

    def add_from_bucket(self, store: Store, output: str, index: int, outputs: list[dict[str, Any]]) -> None:
        """The images of an input made by an earlier run (reused), from its outputs in the bucket.

        Previews are read back, metrics plotted, stills taken from overlays up to
        OVERLAY_FETCH_MAX_BYTES. Never raises; what could not be made is a note.
        """
        with tempfile.TemporaryDirectory(prefix="report-") as tmp:
            local: dict[str, Path] = {}
            for out in outputs if isinstance(outputs, list) else []:
                out = out if isinstance(out, dict) else {}
                kind, key, size = out.get("kind"), out.get("key"), out.get("size")
                if kind not in ("preview", "metrics", "overlay") or not isinstance(key, str):
                    continue
                if kind == "overlay" and not (isinstance(size, int) and size <= OVERLAY_FETCH_MAX_BYTES):
                    self.data.notes.append(f"input {index}: {key} not fetched for stills (too large)")
                    continue
                path = Path(tmp) / f"{kind}{PurePosixPath(key).suffix[:16]}"
                try:
                    store.download(join_url(output, key), path)
                    local[str(kind)] = path
                except Exception as e:
                    self.data.notes.append(f"input {index}: {key} could not be read ({type(e).__name__})")
            self.add_input(index, local.pop("preview", None), local)

    def _plot(self, index: int, metrics: Path) -> None:
        from batch.report.plots import analyze_plot  # matplotlib only when there is something to plot

        self.data.add(index, Image("analyze: metrics over time", "image/png", analyze_plot(metrics)))

    def _stills(self, index: int, overlay: Path) -> None:
        for t, jpeg in overlay_stills(overlay):
            self.data.add(index, Image(f"segment: mask overlay at {t:.2f} s", "image/jpeg", jpeg))


def from_bucket(store: Store, output: str, manifest: Mapping[str, Any]) -> ReportData:
    """The images of a job whose sidecar is missing (an older run), made from its outputs in the bucket.

    For ``scripts/status.py --html``. Never raises; what could not be made is a note.
    """
    collector = Collector()
    for entry in manifest.get("inputs") or []:
        index = entry.get("index") if isinstance(entry, dict) else None
        if isinstance(index, int):
            collector.add_from_bucket(store, output, index, entry.get("outputs") or [])
    return collector.data
