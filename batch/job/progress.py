"""Job progress: one tracker, read by the heartbeat and shown to the user.

On a terminal a tqdm bar shows frames, fps and ETA; otherwise (logs of a
rented instance) one line every ``log_every_s`` seconds.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("batch")


@dataclass
class Tracker:
    job_id: str
    input_count: int
    log_every_s: float = 5.0
    phase: str = "starting"
    input_index: int = 0  # 1-based while an input is in progress
    input_url: str | None = None
    frames_done: int = 0
    frames_total: int = 0
    started_at: float = field(default_factory=time.time)
    progress_at: float = field(default_factory=time.time)  # last time a frame or phase moved
    _input_started: float = field(default_factory=time.monotonic)
    _last_log: float = 0.0
    _bar: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start_input(self, index: int, url: str) -> None:
        with self._lock:
            self.input_index, self.input_url = index, url
            self.frames_done, self.frames_total = 0, 0
            self._input_started = time.monotonic()
        self.set_phase("downloading")

    def set_phase(self, phase: str) -> None:
        with self._lock:
            self.phase = phase
            self.progress_at = time.time()
        if phase != "processing":
            self._close_bar()
        log.info("[%d/%d] %s %s", self.input_index, self.input_count, phase, self.input_url or "")

    def frames(self, done: int, total: int) -> None:
        with self._lock:
            if done != self.frames_done:
                self.progress_at = time.time()
            self.frames_done, self.frames_total = done, total
        if sys.stderr.isatty():
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(total=total, unit="frame", desc=f"[{self.input_index}/{self.input_count}]")
            self._bar.update(done - self._bar.n)
            return
        now = time.monotonic()
        if now - self._last_log >= self.log_every_s:
            self._last_log = now
            snap = self.snapshot()
            log.info(
                "[%d/%d] %d/%d frames, %.1f fps, eta %s s",
                self.input_index, self.input_count, done, total, snap["fps"], snap["eta_s"],
            )  # fmt: skip

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            elapsed = max(time.monotonic() - self._input_started, 1e-6)
            fps = self.frames_done / elapsed if self.phase == "processing" else 0.0
            remaining = max(self.frames_total - self.frames_done, 0)
            eta = round(remaining / fps, 1) if fps > 0 else None
            return {
                "schema": "batch-status/1",
                "job_id": self.job_id,
                "phase": self.phase,
                "input_index": self.input_index,
                "input_count": self.input_count,
                "input": self.input_url,
                "frames_done": self.frames_done,
                "frames_total": self.frames_total,
                "fps": round(fps, 2),
                "eta_s": eta,
                "started_at": _iso(self.started_at),
                "progress_at": round(self.progress_at, 3),  # epoch seconds; the watchdog's stall clock
                "updated_at": _iso(time.time()),
            }


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
