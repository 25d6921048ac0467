"""What PID 1 tells its watchdog through a pipe, so that the disk is not needed for it.

The supervisor writes one line per fact on the watchdog's stdin (names in
:mod:`batch.contracts`): the runner's pid once it started, its exit record once
it ended. A restarted watchdog hears everything again. Imports nothing heavy.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from typing import IO, Any

from batch.contracts import NEWS_RUNNER_EXIT, NEWS_RUNNER_PID


class SupervisorNews:
    """What PID 1 says on this process's stdin: the runner's pid and its exit, one line each.

    A pipe needs no disk: a full or unwritable state dir must not make a
    running runner look gone (or a gone one look running).
    """

    def __init__(self, stream: IO[str] | None) -> None:
        self.pid: int | None = None
        self.exit: dict[str, Any] | None = None
        self.heard = threading.Event()  # set at each line: the watch loop wakes at once, not at its next poll
        self.supervisor = os.getppid()
        if stream is not None:
            threading.Thread(target=self._read, args=(stream,), name="supervisor-news", daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        with contextlib.suppress(Exception):  # a closed or odd stdin: the files are still there
            for line in stream:
                word, _, rest = line.strip().partition(" ")
                if word == NEWS_RUNNER_PID and rest.isdigit():
                    self.pid = int(rest)
                elif word == NEWS_RUNNER_EXIT:
                    with contextlib.suppress(ValueError):
                        found = json.loads(rest)
                        self.exit = found if isinstance(found, dict) else {"code": None, "signal": None}
                self.heard.set()

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``; return early when PID 1 says something."""
        if self.heard.wait(seconds):
            self.heard.clear()

    def supervisor_alive(self) -> bool:
        return os.getppid() == self.supervisor and pid_alive(self.supervisor)


def pid_alive(pid: int) -> bool:
    """True while the process runs; a zombie (exited, not yet reaped) counts as gone."""
    if pid <= 0:  # never os.kill(-1, ...): that would mean every process
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
