"""Pipes wide enough for raw frames.

A Linux pipe holds 16 pages (64 KiB with 4 KiB pages) unless asked for more. A 720p rgb24 frame is
2.7 MB, so every frame crossed the reader's and the writer's pipes in ~42 fills, each a wake-up of
the other side (ffmpeg writes 32 KiB at a time; its raw-video reader takes what the pipe holds).
At 1 MiB the same 300-frame 720p round trip (decode -> rgb24 -> Python -> rgb24 -> ffmpeg) took
0.06-0.10 CPU-s less in Python and 5-7% less wall time (docs/benchmarks.md). 1 MiB is what an
unprivileged process may ask for (``/proc/sys/fs/pipe-max-size``'s default); the kernel may
refuse more, and refuses an unprivileged user (not root) anything once its pipes hold
``pipe-user-pages-soft`` (64 MiB: ~32 reader/writer pairs at once), after which that user's new
pipes get 2 pages. A refused pipe keeps its size, which only costs the wake-ups.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

FRAME_PIPE_BYTES = 1 << 20
_MAX_SIZE_FILE = Path("/proc/sys/fs/pipe-max-size")


def pipe_max_bytes() -> int:
    """The most an unprivileged process may ask a pipe to hold (1 MiB where it cannot be read)."""
    try:
        return int(_MAX_SIZE_FILE.read_text())
    except (OSError, ValueError):
        return FRAME_PIPE_BYTES


def widen(fd: int, want: int = FRAME_PIPE_BYTES) -> int | None:
    """Ask the pipe behind ``fd`` to hold ``want`` bytes (at most the system's unprivileged limit).

    Never shrinks a pipe. Returns the size it now holds, or None where the system has no such
    request (not Linux) or refused it; a refusal leaves the pipe as it was, which still works,
    only slower.
    """
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
    getsize = getattr(fcntl, "F_GETPIPE_SZ", None)
    if setsize is None or getsize is None:
        return None
    try:
        now = int(fcntl.fcntl(fd, getsize))
        target = min(want, pipe_max_bytes())
        if target <= now:  # never narrower: a system limit set below the default is no reason to shrink
            return now
        return int(fcntl.fcntl(fd, setsize, target))
    except OSError:  # EPERM past the user's pipe quota, EBADF (no pipe): the pipe keeps its size
        return None
