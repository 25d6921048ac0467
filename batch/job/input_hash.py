"""A local input's sha256, computed beside the work when nothing waits for it.

A local input used to be hashed before its transcode could start: about a second a GB (1.0 GB/s
with the CPU's SHA extensions on the development VM), all of it time a rented GPU waits. The hash
is needed first only to decide whether an earlier run's output can be reused (the settings'
fingerprint holds it) or to find the reusable parts of a chunked input; otherwise it runs on its
own thread while the input is processed, and the runner waits for it before anything is uploaded.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from batch.errors import InputChanged, InputUnreadable
from batch.media.probe_ahead import Identity, identity

CHUNK = 1 << 20


def sha256_file(path: Path, stop: threading.Event | None = None) -> str | None:
    """The file's sha256 (hex); None when ``stop`` was set before the end."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            if stop is not None and stop.is_set():
                return None
            h.update(chunk)  # (hashlib lets go of the GIL for chunks this size)
    return h.hexdigest()


class BackgroundHash:
    """``sha256_file(path)`` on a daemon thread: ``result()`` waits for it, ``cancel()`` stops it.

    Daemon and cancellable: a stop (SIGTERM) or a failed input never waits for a long file's hash.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        # the file whose bytes the hash stands for; None: gone already, and the read says so
        self.before: Identity | None = identity(path)
        self._stop = threading.Event()
        self._done = threading.Event()
        self._value: str | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(path,), name="input-hash", daemon=True)
        self._thread.start()

    def _run(self, path: Path) -> None:
        try:
            self._value = sha256_file(path, self._stop)
        except BaseException as e:  # raised where the result is asked for
            self._error = e
        finally:
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def result(self) -> str:
        """The hash of the file as it still is: raises InputUnreadable (it could not be read),
        InputChanged (it was written to since the hash began: the hash, the probe and the output
        could each have read other bytes), or RuntimeError when cancelled."""
        self._done.wait()
        if isinstance(self._error, OSError):
            raise InputUnreadable(
                f"{self.path.name} could not be read to its end: {self._error}",
                hint="check the disk or mount the input is on, then run the job again",
            ) from self._error
        if self._error is not None:
            raise self._error
        if self._value is None:
            raise RuntimeError("the input's hash was cancelled")
        self.unchanged()
        return self._value

    def unchanged(self) -> None:
        """Raises InputChanged when the file is no longer the one the hash began on, told apart as the
        early probe does: by size and modification time, not the change time (some network and FUSE
        mounts make one up at each stat, and a job must not fail for that)."""
        now = identity(self.path)
        if now is None or now != self.before:
            raise InputChanged(
                f"{self.path.name} changed while the job read it (its size or modification time moved)",
                hint="run the job again once the file is complete; nothing may write to an input a job reads",
            )

    def finished(self) -> str | None:
        """The hash if it is done and succeeded, without waiting; else None."""
        return self._value if self._done.is_set() else None

    def cancel(self) -> None:
        self._stop.set()
