"""Job progress: one tracker, read by the heartbeat and shown to the user.

Shown as batch.console decides (``BATCH_PROGRESS``, else whether stderr is a
terminal): in bars mode a tqdm bar for each input's frames (frames, fps, ETA)
and for each download and upload (bytes, rate, ETA), with log lines printed
above the bar; in lines mode a log line at most every ``log_every_s`` seconds
per bar, and never a carriage return. Either way each phase starts with a log
line and each transfer and input ends with one that sums it up.

Nothing here may fail the job: a display that cannot write stops showing.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from batch import console
from batch.storage.base import BytesProgress

log = logging.getLogger("batch")


class _SafeStream:
    """stderr for tqdm: a write that fails (the reader is gone) is dropped, not raised."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.encoding = getattr(stream, "encoding", None) or "utf-8"

    def write(self, text: str) -> int:
        with contextlib.suppress(OSError, ValueError):
            self._stream.write(text)
        return len(text)

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()

    def isatty(self) -> bool:
        return False  # asked by tqdm for colour: none is used

    def fileno(self) -> int:
        return int(self._stream.fileno())


_streams: dict[int, _SafeStream] = {}


def _stderr() -> _SafeStream:
    """One wrapper per stderr: tqdm wipes a bar before a log line only when both name the same file."""
    stream = sys.stderr
    if id(stream) not in _streams:
        _streams[id(stream)] = _SafeStream(stream)
    return _streams[id(stream)]


class _BarHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each log line above the bars (tqdm wipes them, prints the line, draws them again)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)


def show_logs_above_bars() -> None:
    """Bars mode: the log handlers that write to stderr go through tqdm, so no line lands inside a bar."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if not isinstance(handler, logging.StreamHandler) or isinstance(
            handler, logging.FileHandler | _BarHandler
        ):
            continue
        if handler.stream in (sys.stderr, sys.__stderr__):
            bar_handler = _BarHandler(_stderr())
            bar_handler.setFormatter(handler.formatter)
            bar_handler.setLevel(handler.level)
            root.removeHandler(handler)
            root.addHandler(bar_handler)


def _make_bar(**kwargs: Any) -> Any:
    """A tqdm bar on stderr, redrawn at most 4 times a second, no wider than COLUMNS."""
    from tqdm import tqdm

    class Bar(tqdm):  # type: ignore[type-arg]
        @property
        def format_dict(self) -> Any:
            d = super().format_dict
            rate = d.get("rate") or (d["n"] / d["elapsed"] if d.get("elapsed") else None)
            d["fps"] = f"{rate:.1f}" if rate else "?"
            return d

    width = console.columns()
    return Bar(file=_stderr(), mininterval=0.25, ncols=width - 1, leave=False, **kwargs)


FRAME_BAR = "{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} frames, {fps} fps, ETA {remaining}"


def _mib(n: float) -> str:
    """A byte count for a person: 512 B, 3.4 KiB, 12.0 MiB, 1.5 GiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


@dataclass
class Tracker:
    job_id: str
    input_count: int
    log_every_s: float = 5.0
    mode: console.Mode = field(default_factory=lambda: console.progress_mode(sys.stderr))
    phase: str = "starting"
    input_index: int = 0  # 1-based while an input is in progress
    input_url: str | None = None
    frames_done: int = 0
    frames_total: int = 0
    started_at: float = field(default_factory=time.time)
    progress_at: float = field(default_factory=time.time)  # last time a frame or phase moved
    _input_started: float = field(default_factory=time.monotonic)
    _processing_started: float = field(default_factory=time.monotonic)
    _last_log: float = 0.0
    _bar: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _bar_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def prefix(self) -> str:
        return f"[{self.input_index}/{self.input_count}]"

    def start_input(self, index: int, url: str) -> None:
        with self._lock:
            self.input_index, self.input_url = index, url
            self.frames_done, self.frames_total = 0, 0
            self._input_started = time.monotonic()
        self.set_phase("downloading")

    def set_phase(self, phase: str, detail: str | None = None) -> None:
        """A new phase: the heartbeat shows it, the log says it (``detail``, else the input)."""
        with self._lock:
            if self.phase == "processing" and phase != "processing":
                self._summarise_frames()
            self.phase = phase
            self.progress_at = time.time()
            if phase == "processing":
                self._processing_started = self._last_log = time.monotonic()
        self._close_bar()
        if detail is None:
            log.info("%s %s %s", self.prefix, phase, self.input_url or "")
        else:
            log.info("%s %s: %s", self.prefix, phase, detail)

    def _summarise_frames(self) -> None:
        if self.frames_done:
            took = max(time.monotonic() - self._processing_started, 1e-6)
            log.info(
                "%s %d frames in %.1f s (%.1f fps)",
                self.prefix,
                self.frames_done,
                took,
                self.frames_done / took,
            )

    def frames(self, done: int, total: int) -> None:
        with self._lock:
            if done != self.frames_done:
                self.progress_at = time.time()
            self.frames_done, self.frames_total = done, total
        if self.mode == console.BARS:
            self._show(done, total, desc=self.prefix, bar_format=FRAME_BAR)
            return
        now = time.monotonic()
        if now - self._last_log >= self.log_every_s:
            self._last_log = now
            snap = self.snapshot()
            eta = f"{snap['eta_s']:.0f} s" if snap["eta_s"] is not None else "?"
            log.info(
                "%s %d/%d frames, %.1f fps, ETA %s", self.prefix, done, total, snap["fps"], eta
            )  # fmt: skip

    @contextlib.contextmanager
    def transfer(self, verb: str, name: str) -> Iterator[BytesProgress]:
        """Around one download or upload: a bytes bar or a line now and then, and a line at the end.

        ``verb`` is ``download`` or ``upload``; the callback it yields goes to the store.
        """
        started = time.monotonic()
        last = [started]
        moved = [0]

        def progress(done: int, total: int | None) -> None:
            if done != moved[0]:
                with self._lock:
                    self.progress_at = time.time()  # bytes moving: the watchdog's stall clock restarts
            moved[0] = done
            if self.mode == console.BARS:
                self._show(done, total, desc=f"{self.prefix} {verb} {name}", unit="B", unit_scale=True,
                           unit_divisor=1024)  # fmt: skip
                return
            now = time.monotonic()
            if now - last[0] >= self.log_every_s:
                last[0] = now
                rate = done / max(now - started, 1e-6)
                of = f" of {_mib(total)}" if total else ""
                eta = f", ETA {(total - done) / rate:.0f} s" if total and rate > 0 else ""
                log.info("%s %s %s: %s%s, %s/s%s", self.prefix, verb, name, _mib(done), of, _mib(rate), eta)

        try:
            yield progress
        finally:
            self._close_bar()
        took = max(time.monotonic() - started, 1e-6)
        size, rate = _mib(moved[0]), _mib(moved[0] / took)
        log.info("%s %sed %s: %s in %.1f s (%s/s)", self.prefix, verb, name, size, took, rate)

    def _show(self, done: int, total: int | None, **kwargs: Any) -> None:
        """Move the bar (made on first use); a bar that fails is dropped for the rest of the phase."""
        with self._bar_lock:
            try:
                if self._bar is None:
                    self._bar = _make_bar(total=total, **kwargs)
                if total is not None and self._bar.total != total:
                    self._bar.total = total
                self._bar.update(done - self._bar.n)
            except Exception:
                log.debug("progress bar", exc_info=True)
                self.mode = console.LINES

    def _close_bar(self) -> None:
        with self._bar_lock:
            bar, self._bar = self._bar, None
            if bar is not None:
                with contextlib.suppress(Exception):
                    bar.close()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            elapsed = max(time.monotonic() - self._processing_started, 1e-6)
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
