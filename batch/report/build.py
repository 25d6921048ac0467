"""The job's part of the page: the images per input, gathered while its files are still on disk.

Each image is made on its own and may fail on its own (a note says so); nothing
here raises: an output that was made and checked is never failed by its page.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from batch.report.data import Image, ReportData, sniff_mime

log = logging.getLogger("batch.report")

STILLS = (0.25, 0.5, 0.75)  # where the overlay stills are taken, as shares of the video's duration
STILL_WIDTH = 640
FFMPEG_TIMEOUT_S = 60.0


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

    def _plot(self, index: int, metrics: Path) -> None:
        from batch.report.plots import analyze_plot  # matplotlib only when there is something to plot

        self.data.add(index, Image("analyze: metrics over time", "image/png", analyze_plot(metrics)))

    def _stills(self, index: int, overlay: Path) -> None:
        for t, jpeg in overlay_stills(overlay):
            self.data.add(index, Image(f"segment: mask overlay at {t:.2f} s", "image/jpeg", jpeg))
