"""Local disk: room checked before the big writes, a clear error when it runs out.

A rented instance's disk is sized at launch and cannot grow. Two things keep
a batch from filling it: the free space is checked before each download and
each join (the error names what was needed and what was left), and local
copies kept for the watchdog are dropped, oldest first, when the next input
needs their room (their uploads were verified by checksum when they were made).
A write that still hits ENOSPC becomes :class:`DiskFull`, never an "internal
error".
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from batch.errors import DiskFull

log = logging.getLogger("batch.disk")

# Left free for logs, state files and manifests, which must still be writable at the end.
RESERVE_BYTES = int(os.environ.get("BATCH_DISK_RESERVE_BYTES") or 256 << 20)
_FAKE_FREE_ENV = "BATCH_TEST_DISK_FREE_BYTES"  # tests only: a disk this small (see batch/faults.py)


def human(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover


def free_bytes(path: Path) -> int:
    """Free bytes on the file system that holds ``path`` (its nearest existing parent)."""
    fake = os.environ.get(_FAKE_FREE_ENV)
    if fake:
        return int(fake)
    probe = Path(path).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def require(path: Path, need: int, what: str, *, make_room: Callable[[int], int] | None = None) -> None:
    """Raise DiskFull unless ``need`` bytes (plus the reserve) fit at ``path``.

    ``make_room(short)`` may free up to ``short`` bytes (returns how many it freed) before giving up.
    """
    free = free_bytes(path)
    short = need + RESERVE_BYTES - free
    if short > 0 and make_room is not None:
        freed = make_room(short)
        if freed:
            log.info("freed %s of kept local copies for %s", human(freed), what)
            free = free_bytes(path) if not os.environ.get(_FAKE_FREE_ENV) else free + freed
            short = need + RESERVE_BYTES - free
    if short > 0:
        raise DiskFull(
            f"not enough disk for {what}: it needs {human(need)} (+{human(RESERVE_BYTES)} reserve) "
            f"at {path}, and {human(max(free, 0))} is free",
            hint="rent an instance with a larger disk (vast.ai: --disk; RunPod: containerDiskInGb), "
            "or split the batch (--shard I/N)",
            needed_bytes=need,
            free_bytes=max(free, 0),
        )


def is_out_of_space(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


@contextmanager
def named_when_full(where: Path, what: str) -> Iterator[None]:
    """Turn ENOSPC/EDQUOT inside the block into DiskFull naming ``what`` and the space left."""
    try:
        yield
    except OSError as e:
        if not is_out_of_space(e):
            raise
        raise filled_up(where, what) from e


def filled_up(where: Path, what: str) -> DiskFull:
    """The disk filled up during ``what``: the error, with the space left at ``where``."""
    try:
        free = free_bytes(where)
    except OSError:
        free = 0
    return DiskFull(
        f"the disk filled up during {what} at {where} ({human(free)} free)",
        hint="rent an instance with a larger disk (vast.ai: --disk; RunPod: containerDiskInGb), "
        "or split the batch (--shard I/N)",
        free_bytes=free,
    )


def full_in_stderr(stderr: str, where: Path, what: str) -> DiskFull | None:
    """DiskFull when ffmpeg's stderr says it ran out of space writing ``what`` (its exit code alone
    would read as an encoder problem)."""
    return filled_up(where, what) if says_out_of_space(stderr) else None


def says_out_of_space(stderr: str) -> bool:
    """ffmpeg's words (strerror) for ENOSPC and EDQUOT."""
    return "No space left on device" in stderr or "Disk quota exceeded" in stderr


def evict_oldest(root: Path) -> Callable[[int], int]:
    """A ``make_room`` that deletes files under ``root``, oldest first, until enough is freed."""

    def make_room(short: int) -> int:
        try:
            files = sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.stat().st_mtime)
        except OSError:
            return 0
        freed = 0
        for p in files:
            if freed >= short:
                break
            try:
                size = p.stat().st_size
                p.unlink()
            except OSError:
                continue
            freed += size
            log.warning("dropped the kept local copy %s (verified at upload) to make room", p.name)
        return freed

    return make_room
