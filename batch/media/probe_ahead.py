"""An ffprobe started before it is asked for, so that it runs while the process imports.

The runner spends ~0.5 s importing the config model and its modules before it can probe
the first input; a local input's probe (~0.14 s) can run on the other core meanwhile.
The answer is used only for the same command on the same, unchanged file: anything else
runs ffprobe afresh, so a wrong guess costs CPU, never a wrong fact.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import threading

TYPE_CHECKING = False  # (the typing module: ~5 ms before the early ffprobe could start)


if TYPE_CHECKING:  # (pathlib, dataclasses: not loaded before the early ffprobe starts)
    from pathlib import Path

Identity = tuple[int, int, int, int]


class _Started:
    __slots__ = ("command", "identity", "proc")

    def __init__(self, command: list[str], identity: Identity, proc: subprocess.Popen[str]) -> None:
        self.command = command  # the path in it as given; compared through ``key``
        self.identity = identity
        self.proc = proc


_lock = threading.Lock()
_started: dict[tuple[str, ...], _Started] = {}


def identity(path: Path | str) -> Identity | None:
    """Which file, at which size and time: a replaced or rewritten file reads differently."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def key(command: list[str], path: Path | str) -> tuple[str, ...]:
    """The command with its file, its last argument, named by real path (``./a.mp4`` and ``a.mp4`` are
    one file). Only the last: an input named ``error`` or ``ffprobe`` must not rewrite the options."""
    real = os.path.realpath(path)
    if not command or os.path.realpath(command[-1]) != real:
        return tuple(command)
    return (*command[:-1], real)


def start(command: list[str], path: Path | str) -> bool:
    """Run ``command`` (whose last argument names ``path``) now; False when it could not start."""
    before = identity(path)
    if before is None:
        return False
    name = key(command, path)
    with _lock:
        earlier = _started.get(name)
        if earlier is not None and earlier.identity == before:
            return True  # the same file listed twice in a row: one run answers the first ask
        try:
            # ffprobe gets the resolved path: a symlink pointed elsewhere (and back) meanwhile cannot
            # make it read another file than the one whose identity was taken
            proc = subprocess.Popen(
                list(name),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
            )
        except OSError:
            return False
        _started[name] = _Started(command, before, proc)
    if earlier is not None:  # a run on the file as it was before it changed: never taken
        _stop(earlier)
    return True


def take(command: list[str], path: Path) -> subprocess.CompletedProcess[str] | None:
    """What ``command`` printed, when it was started earlier on this very file; else None.

    An answer is given once. The file must be the one it was when the run started, before
    and after the run (its device, inode, size and modification time).
    """
    with _lock:
        started = _started.pop(key(command, path), None)
    if started is None:
        return None
    out, err = started.proc.communicate()
    if identity(path) != started.identity:
        return None
    return subprocess.CompletedProcess(started.command, started.proc.returncode, out, err)


def discard(keep: Path | None = None) -> None:
    """Stop and reap what was started and never taken (a guess that did not match, an input that
    failed before its probe); ``keep``: a file whose run is still wanted (the next input's)."""
    wanted = os.path.realpath(keep) if keep is not None else None
    with _lock:
        left = [_started.pop(k) for k in [k for k in _started if wanted is None or wanted not in k]]
    for started in left:
        _stop(started)


def _stop(started: _Started) -> None:
    with contextlib.suppress(OSError):
        started.proc.kill()
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        started.proc.communicate(timeout=5)


atexit.register(discard)
