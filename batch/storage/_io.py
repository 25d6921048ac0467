"""Local-file helpers shared by the backends: hashing and atomic writes."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from batch.disk import is_out_of_space, named_when_full
from batch.storage.base import BytesProgress, tell

CHUNK = 1024 * 1024
PARTIAL_SUFFIX = ".batch-partial"


def file_digests(path: Path, *names: str) -> tuple[int, dict[str, str]]:
    """Read ``path`` once; return its size and a hex digest per algorithm name."""
    hashers = {n: hashlib.new(n) for n in names}
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            size += len(chunk)
            for h in hashers.values():
                h.update(chunk)
    return size, {n: h.hexdigest() for n, h in hashers.items()}


class HashingWriter:
    """A write-only, non-seekable stream that hashes what passes through.

    SDKs that see ``seekable() == False`` write strictly in order, so the
    digests are of the object's bytes in order.
    """

    def __init__(
        self, target: BinaryIO, *names: str, progress: BytesProgress | None = None, total: int | None = None
    ) -> None:
        self._target = target
        self._hashers = {n: hashlib.new(n) for n in names or ("sha256",)}
        self.size = 0
        self.progress = progress  # told the size after each write
        self.total = total  # the size expected, when known (told with it)

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        for h in self._hashers.values():
            h.update(view)
        self.size += len(view)
        self._target.write(view)
        tell(self.progress, self.size, self.total)
        return len(view)

    def hexdigest(self, name: str = "sha256") -> str:
        return self._hashers[name].hexdigest()

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self._target.flush()


@contextmanager
def atomic_output(dest: Path) -> Iterator[BinaryIO]:
    """Open a temp file next to ``dest``; rename it over ``dest`` on success.

    Parent directories are created. On any exception the temp file is removed
    and ``dest`` is left as it was.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=PARTIAL_SUFFIX, dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if is_out_of_space(e):  # not a storage fault: retrying the download cannot help
            with named_when_full(dest.parent, f"the write of {dest.name}"):
                raise
        raise


def copy_hashed(
    src: BinaryIO, dest: Path, progress: BytesProgress | None = None, total: int | None = None
) -> HashingWriter:
    """Stream ``src`` into ``dest`` atomically; return the writer (size, sha256)."""
    with atomic_output(dest) as out:
        writer = HashingWriter(out, "sha256", progress=progress, total=total)
        while chunk := src.read(CHUNK):
            writer.write(chunk)
    return writer
