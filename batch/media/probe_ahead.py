"""An ffprobe started before it is asked for, so that it runs while the process imports.

The runner spends ~0.5 s importing the config model and its modules before it can probe
the first input; a local input's probe (~0.14 s) can run on the other core meanwhile.
The answer is used only for the same command on the same, unchanged file: anything else
runs ffprobe afresh, so a wrong guess costs CPU, never a wrong fact.

Its output goes to unnamed files, not pipes: a pipe holds 64 KiB, and the packet list of any
input longer than ~10 s filled it, stopping ffprobe until the runner, still importing, read it
(a 5 min input's probe then ran after the imports instead of during them).
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
    __slots__ = ("command", "err", "identity", "out", "proc")

    def __init__(
        self, command: list[str], identity: Identity, proc: subprocess.Popen[str], out: int, err: int
    ) -> None:
        self.command = command  # the path in it as given; compared through ``key``
        self.identity = identity
        self.proc = proc
        self.out, self.err = out, err  # unnamed files holding what it printed

    def read(self, fd: int) -> str:
        # decoded as subprocess's text mode does (the locale's encoding, universal newlines)
        os.lseek(fd, 0, os.SEEK_SET)
        with open(fd, closefd=False) as f:
            return f.read()

    def close(self) -> None:
        for fd in (self.out, self.err):
            with contextlib.suppress(OSError):
                os.close(fd)


def _unnamed_file() -> int:
    """A file with no name (it goes when closed), in $TMPDIR or else /tmp; OSError when none can be made."""
    error = OSError("no folder for temporary files")
    for folder in dict.fromkeys(f for f in (os.environ.get("TMPDIR"), "/tmp") if f):
        try:
            return _unnamed_file_in(folder)
        except OSError as e:
            error = e
    raise error


def _unnamed_file_in(folder: str) -> int:
    # (what tempfile.TemporaryFile does, without its ~7 ms of imports before the early ffprobe starts)
    try:
        return os.open(folder, getattr(os, "O_TMPFILE", 0) | os.O_RDWR, 0o600)
    except OSError:  # a file system without O_TMPFILE (overlayfs before Linux 6.6): a name, dropped at once
        for _ in range(100):
            name = os.path.join(folder, f".probe-{os.getpid()}-{os.urandom(6).hex()}")
            try:
                fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
            except FileExistsError:
                continue
            os.unlink(name)
            return fd
        raise


# Free space under which an early answer is not trusted: a write to a full disk is lost without a word
# (ffprobe does not check), and a lost line of stderr could hide the damage _data_skipped looks for.
NEARLY_FULL = 16 << 20


def _nearly_full(fd: int) -> bool:
    try:
        st = os.fstatvfs(fd)
    except OSError:
        return True
    return st.f_bavail * st.f_frsize < NEARLY_FULL


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
        out = err = -1
        try:
            out, err = _unnamed_file(), _unnamed_file()
            # ffprobe gets the resolved path: a symlink pointed elsewhere (and back) meanwhile cannot
            # make it read another file than the one whose identity was taken
            proc = subprocess.Popen(list(name), stdout=out, stderr=err, stdin=subprocess.DEVNULL, text=True)
        except OSError:
            for fd in (out, err):
                if fd >= 0:
                    os.close(fd)
            return False
        _started[name] = _Started(command, before, proc, out, err)
    if earlier is not None:  # a run on the file as it was before it changed: never taken
        _stop(earlier)
    return True


def take(command: list[str], path: Path) -> subprocess.CompletedProcess[str] | None:
    """What ``command`` printed, when it was started earlier on this very file; else None.

    An answer is given once. The file must be the one it was when the run started, before
    and after the run (its device, inode, size and modification time). A run killed, one that
    kept no word of its answer, or one whose files lie on a nearly full disk (a lost write is
    silent) is no answer either: the caller's own run then says what there is to say.
    """
    with _lock:
        started = _started.pop(key(command, path), None)
    if started is None:
        return None
    try:
        started.proc.wait()
        if identity(path) != started.identity:
            return None
        if any(_nearly_full(fd) for fd in (started.out, started.err)):
            return None  # its answer may have lost a line to a full disk: asked again through pipes
        out, err = started.read(started.out), started.read(started.err)
        code = started.proc.returncode
        if code < 0 or not (err if code else out).strip():
            return None  # killed, or no word of its answer kept
    except (OSError, ValueError):  # ValueError: not text in the locale's encoding
        return None
    finally:
        started.close()
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
        started.proc.wait(timeout=5)
    started.close()


atexit.register(discard)
