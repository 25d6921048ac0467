"""The watchdog's sign of life to PID 1, down a pipe of its own.

A watchdog that hangs (a deadlock, a SIGSTOP, a read that never returns) stops watching, and while
the runner runs PID 1 would only notice once the runner ended: with the runner hung too, nothing
would ever stop the instance. So the watchdog's watch loop writes one byte (``BEAT``) at most once a
second, and PID 1 kills a watchdog it has not heard from for ``WATCHDOG_SILENCE_S`` (or not at all
within ``WATCHDOG_START_S`` of its start: reading a remote config may take minutes) and starts it
again; the new one carries on from its state (its ``max_runtime_s`` clock included).

The beats come from the watch loop itself, never from a thread of their own, which would beat on
while the loop is stuck. Once the loop is over (a shutdown decided, the runner gone) the watchdog
says ``FINISHING`` and stops beating: from then on PID 1 gives it ``WATCHDOG_FINISH_S`` to end.

Standard library only: PID 1 imports this.
"""

from __future__ import annotations

import contextlib
import os
import time

BEAT = b"."
FINISHING = b"F"
BEAT_EVERY_S = 1.0
BEAT_FD_ARG = "--beat-fd"  # monitor.py's argument naming the pipe's write end


class LifeSign:
    """The watchdog's end: beats while it watches, then one ``FINISHING``. Never raises."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd
        self._last = -BEAT_EVERY_S
        if fd is not None:
            with contextlib.suppress(OSError):
                os.set_blocking(fd, False)  # a PID 1 that stopped reading must never block the watch

    def beat(self) -> None:
        now = time.monotonic()
        if now - self._last >= BEAT_EVERY_S:
            self._last = now
            self._send(BEAT)

    def finishing(self) -> None:
        """The watch is over; no more beats (said once). A full pipe is waited on for a few seconds
        (PID 1 reads it every second): lost, PID 1 would take the silence after it for a hang."""
        for _ in range(50):
            if not self._send(FINISHING):
                break
            time.sleep(0.1)
        self._fd = None

    def _send(self, what: bytes) -> bool:
        """False once sent (or nobody to send to); True while the pipe is full."""
        if self._fd is None:
            return False
        try:
            os.write(self._fd, what)
        except BlockingIOError:  # the pipe is full: for a beat, PID 1 has plenty to read already
            return True
        except OSError:  # PID 1 is gone or closed its end: nobody to tell
            self._fd = None
        return False


class Pulse:
    """PID 1's end: when the watchdog last beat, and whether it said it is finishing."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()  # both non-inheritable: the runner gets neither
        os.set_blocking(self.read_fd, False)
        self.last = time.monotonic()  # silence is counted from its start until the first beat
        self.heard = False  # a first beat came: its start (settings, a remote config) is over
        self.finishing = False

    def sent(self) -> None:
        """The write end went to the watchdog: PID 1 keeps only the read end."""
        with contextlib.suppress(OSError):
            os.close(self.write_fd)

    def silent_for(self) -> float:
        """Seconds since the last beat (0 once it said it is finishing), after reading what came."""
        while True:
            try:
                got = os.read(self.read_fd, 4096)
            except OSError:  # nothing more to read now (EAGAIN), or the end is gone
                break
            if not got:  # every write end closed: it ended; its exit status says the rest
                break
            self.last = time.monotonic()
            self.heard = True
            if FINISHING in got:
                self.finishing = True
        return 0.0 if self.finishing else time.monotonic() - self.last

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.read_fd)
