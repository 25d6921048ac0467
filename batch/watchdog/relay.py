"""PID 1's side of what a person sees: its children's output to the terminal, clean lines to the logs.

The runner and the watchdog write to pipes that PID 1 drains at once, always:
a child never waits on the terminal. What came through goes

* to ``<state dir>/runner.log`` (the runner's) as plain lines: a bar redrawn
  with carriage returns leaves only its last state, escape codes are dropped;
* to PID 1's own stderr through one :class:`TerminalSink`, as it came in bars
  mode, cleaned like the log in lines mode.

The sink is the only writer of the terminal. Its thread may block for ever on
a terminal that stopped reading (Ctrl-S, a pipe nobody drains) or fail on one
that is gone (a closed ssh session): callers only queue, what does not fit is
dropped, and nobody waits for that thread. Standard library only.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import re
import threading
from pathlib import Path
from typing import IO

from batch.console import BARS, Mode

QUEUE_LIMIT = 4 << 20  # bytes waiting for the terminal before new ones are dropped
LINE_LIMIT = 64 << 10  # one log line's bytes at most (a stream without newlines is cut)
READ_SIZE = 64 << 10

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), and two-byte escapes
_ESCAPES = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?")
_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")  # what is left after \r handling (tab kept)


def _visible(segment: bytes) -> bytes:
    return _CONTROL.sub(b"", _ESCAPES.sub(b"", segment))


class LogCleaner:
    """Bytes as a terminal would get them in, plain lines out (no ``\\r``, no escape codes).

    Of a line redrawn with ``\\r`` only its last non-blank state is kept: a
    bar leaves its final state, a bar wiped with spaces leaves nothing, a log
    line written over a wiped bar leaves the log line. Memory stays bounded
    however long a bar runs.
    """

    def __init__(self) -> None:
        self._kept = b""  # the last non-blank state of the line so far
        self._current = b""  # what came after the last \r

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        parts = data.split(b"\n")
        for i, part in enumerate(parts):
            self._add(part)
            if i < len(parts) - 1:
                out.append(self._take())
            elif len(self._current) > LINE_LIMIT:
                out.append(self._take())  # a line without end: cut it
        return b"".join(line + b"\n" for line in out if line)

    def end(self) -> bytes:
        """The unfinished line, if it shows anything."""
        line = self._take()
        return line + b"\n" if line else b""

    def _add(self, part: bytes) -> None:
        segments = part.split(b"\r")
        if len(segments) > 1:
            for seg in [self._current, *segments[:-1]]:
                shown = _visible(seg)
                if shown.strip():
                    self._kept = seg
                elif shown:  # spaces written over it: the line was wiped
                    self._kept = b""
            self._current = segments[-1]
        else:
            self._current += part

    def _take(self) -> bytes:
        line = self._current if _visible(self._current).strip() else self._kept
        self._kept, self._current = b"", b""
        return _visible(line).rstrip()


class TerminalSink:
    """Writes to one descriptor from its own thread; :meth:`put` never blocks and never raises.

    Also a text stream (``write``/``flush``) for PID 1's own log handler.
    """

    def __init__(self, fd: int, mode: Mode, limit: int = QUEUE_LIMIT) -> None:
        self.mode = mode
        self.limit = limit
        self.dropped = 0  # bytes not shown because the terminal did not keep up
        self.dead = False  # the terminal is gone: nothing more is written
        self._queue: collections.deque[bytes] = collections.deque()
        self._queued = 0
        self._busy = False  # a write is under way
        self._ready = threading.Condition()
        try:
            self._fd = os.dup(fd)
        except OSError:
            self._fd = -1
            self.dead = True
            return
        threading.Thread(target=self._drain, name="terminal", daemon=True).start()

    def put(self, data: bytes) -> None:
        if self.dead or not data:
            return
        with self._ready:
            if self._queued + len(data) > self.limit:
                self.dropped += len(data)
                return
            self._queue.append(data)
            self._queued += len(data)
            self._ready.notify()

    def write(self, text: str) -> int:  # for logging.StreamHandler
        self.put(text.encode(errors="replace"))
        return len(text)

    def flush(self) -> None:
        pass

    def wait_empty(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for what is queued to be written (PID 1's last lines at exit)."""
        with self._ready:
            return self._ready.wait_for(lambda: self.dead or not (self._queue or self._busy), timeout)

    def _drain(self) -> None:
        reported = 0
        while True:
            with self._ready:
                self._busy = False
                self._ready.notify_all()
                while not self._queue:
                    self._ready.wait()
                data = self._queue.popleft()
                self._queued -= len(data)
                self._busy = True
                dropped = self.dropped
            if dropped > reported:  # said once the terminal takes output again
                note = f"\n[{dropped - reported} bytes of output not shown: the terminal fell behind; "
                data = (note + "the logs in the state dir have them]\n").encode() + data
                reported = dropped
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view) :]
            except OSError:  # EIO (terminal hung up), EPIPE, EBADF: the terminal is gone for good
                with self._ready:
                    self.dead = True
                    self._queue.clear()
                    self._queued = 0
                    self._ready.notify_all()
                return
            except Exception:  # never lets this thread take anything down
                continue


def pump(stream: IO[bytes], sink: TerminalSink | None, log_path: Path | None) -> threading.Thread:
    """Drain ``stream`` until it ends: clean lines to ``log_path``, the rest to ``sink``.

    Reads whatever is there (a bar's redraw has no newline) and always keeps
    reading: a full pipe would stop the child that writes to it.
    """

    def run() -> None:
        fd = stream.fileno()
        out: IO[bytes] | None = None
        if log_path is not None:
            try:
                out = log_path.open("ab")
            except OSError:
                out = None
        cleaner, shown = LogCleaner(), LogCleaner()
        while True:
            try:
                data = os.read(fd, READ_SIZE)
            except OSError:
                data = b""
            try:
                if sink is not None:
                    sink.put(data if sink.mode == BARS else (shown.feed(data) if data else shown.end()))
                if out is not None:
                    clean = cleaner.feed(data) if data else cleaner.end()
                    try:
                        out.write(clean)
                        out.flush()
                    except OSError:  # a full disk: the log stops, the job does not
                        out = None
            except Exception:  # a bug in here must not stop the draining
                logging.getLogger("batch").debug("relay", exc_info=True)
            if not data:
                break
        if out is not None:
            with contextlib.suppress(OSError):
                out.close()

    thread = threading.Thread(target=run, name="relay", daemon=True)
    thread.start()
    return thread
