"""How progress is shown to a person: bars on a terminal, plain log lines anywhere else.

One rule for every program (PID 1, the runner, the watchdog):

* ``BATCH_PROGRESS=bars`` or ``lines`` decides outright. PID 1 sets it for its
  children from its own stderr, because theirs are pipes to PID 1;
* else ``TERM=dumb`` means lines;
* else bars when the stream is a terminal, lines when it is not (CI, ``docker
  logs``, a pipe, a file).

Bars are redrawn in place with carriage returns and carry no colour and no
escape codes (``NO_COLOR`` holds as it is). In lines mode nothing here writes
a carriage return.

Standard library only: PID 1 and the watchdog import it.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Mapping
from typing import IO, Literal

from batch.contracts import PROGRESS_ENV

Mode = Literal["bars", "lines"]
BARS: Mode = "bars"
LINES: Mode = "lines"
CHOICES = ("bars", "lines", "auto")


def forced_mode(env: Mapping[str, str] | None = None) -> Mode | None:
    """``BATCH_PROGRESS`` when it says bars or lines; None for auto, unset or anything else."""
    value = (os.environ if env is None else env).get(PROGRESS_ENV, "").strip().lower()
    if value == "bars":
        return BARS
    if value == "lines":
        return LINES
    return None


def bad_setting(env: Mapping[str, str] | None = None) -> str | None:
    """A sentence about a ``BATCH_PROGRESS`` value that is none of the choices, else None."""
    value = (os.environ if env is None else env).get(PROGRESS_ENV)
    if value is None or value.strip().lower() in (*CHOICES, ""):
        return None
    return f"{PROGRESS_ENV}={value!r} is not bars, lines or auto; using auto (fix: one of those three)"


def progress_mode(stream: IO[str] | IO[bytes] | int | None, env: Mapping[str, str] | None = None) -> Mode:
    """Bars or lines for output written to ``stream`` (a file object or a descriptor)."""
    forced = forced_mode(env)
    if forced is not None:
        return forced
    if (os.environ if env is None else env).get("TERM", "").strip().lower() == "dumb":
        return LINES
    return BARS if is_terminal(stream) else LINES


def is_terminal(stream: IO[str] | IO[bytes] | int | None) -> bool:
    """True for a terminal; False for anything else, a closed or missing stream included."""
    if stream is None:
        return False
    try:
        fd = stream if isinstance(stream, int) else stream.fileno()
        return os.isatty(fd)
    except (OSError, ValueError, AttributeError):
        return False


def columns(env: Mapping[str, str] | None = None, default: int = 100) -> int:
    """The terminal's width as ``COLUMNS`` says (PID 1 passes its own), within 20..400."""
    try:
        width = int((os.environ if env is None else env).get("COLUMNS", ""))
    except ValueError:
        return default
    return min(max(width, 20), 400)


class StatusLine:
    """One line rewritten in place (bars mode) and wiped when done; silent in lines mode.

    Writing never raises: a terminal or pipe that is gone only ends the line.
    """

    def __init__(self, stream: IO[str], mode: Mode, width: int | None = None) -> None:
        self.stream = stream
        self.mode = mode
        self.width = (width or columns()) - 1  # the last column would wrap on some terminals
        self._shown = 0
        self._dead = False

    def show(self, text: str) -> None:
        if self.mode != BARS:
            return
        text = text.replace("\r", " ").replace("\n", " ")[: self.width]
        self._write("\r" + text + " " * max(self._shown - len(text), 0))
        self._shown = len(text)

    def clear(self) -> None:
        if self.mode == BARS and self._shown:
            self._write("\r" + " " * self._shown + "\r")
            self._shown = 0

    def _write(self, text: str) -> None:
        if self._dead:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self._dead = True


def countdown(seconds: float, label: str, line: StatusLine, sleep: float = 1.0) -> None:
    """Wait ``seconds``; in bars mode show ``label in N s`` counting down, then wipe it."""
    end = time.monotonic() + max(seconds, 0.0)
    try:
        while (left := end - time.monotonic()) > 0:
            line.show(f"{label} in {math.ceil(left)} s")
            time.sleep(min(sleep, left))
    finally:
        line.clear()


# C0 controls but the tab and the line feed, DEL, C1 controls and the Unicode line separators: what a
# file name can carry to make a log line lie (a carriage return, an escape sequence, a fake new line)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class LineSafeFormatter(logging.Formatter):
    """Log lines whose names cannot forge others: control characters are written as ``\\xNN`` and
    every line after a message's first is indented, so none of them reads as a record of its own."""

    def format(self, record: logging.LogRecord) -> str:
        text = _CONTROL.sub(_escaped, super().format(record))
        return text.replace("\n", "\n    ")


def log_to_stderr(stream: IO[str], level: int, prefix: str = "") -> None:
    """Every program's log format: ``<time> <LEVEL> <prefix><message>`` on ``stream``."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        LineSafeFormatter(f"%(asctime)s %(levelname)s {prefix}%(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    root = logging.getLogger()
    if not root.handlers:  # as logging.basicConfig: the first setting stands
        root.addHandler(handler)
        root.setLevel(level)
