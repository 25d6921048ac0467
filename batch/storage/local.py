"""Local files: ``file:///abs/path`` URLs and bare paths.

Writes go to a temp file in the destination directory and are renamed into
place, so a reader never sees half a file. Parent directories are created.
Errors: ObjectNotFound (missing file), CredentialsRefused (permission
denied), StorageError (other OS errors such as a full disk),
UploadVerificationFailed (size changed while copying).
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from batch.errors import (
    CredentialsRefused,
    ObjectNotFound,
    StorageError,
    UploadVerificationFailed,
)
from batch.storage._io import PARTIAL_SUFFIX, HashingWriter, atomic_output, copy_hashed
from batch.storage.base import BytesProgress, ObjectInfo
from batch.storage.urls import as_prefix, join_url, parse_url

T = TypeVar("T")


def local_path(url: str) -> Path:
    """The filesystem path a ``file://`` URL or bare path names."""
    _scheme, _bucket, key = parse_url(url)
    return Path(key)


@contextmanager
def _os_errors(url: str) -> Iterator[None]:
    """Turn OSError into our error types, naming the URL."""
    try:
        yield
    except FileNotFoundError as exc:
        raise ObjectNotFound(
            f"no such file: {url}", hint="check the path", url=url, path=exc.filename
        ) from exc
    except PermissionError as exc:
        raise CredentialsRefused(
            f"permission denied for {url}",
            hint="check the file permissions and the user the runner runs as",
            url=url,
            path=exc.filename,
        ) from exc
    except IsADirectoryError as exc:
        raise ObjectNotFound(
            f"{url} is a directory, not a file",
            hint="end the URL with / to name a prefix, or name a file",
            url=url,
        ) from exc
    except OSError as exc:
        hint = "free disk space" if exc.errno == errno.ENOSPC else "check the path and the disk"
        raise StorageError(
            f"local I/O failed for {url}: {exc.strerror}",
            hint=hint,
            url=url,
            errno=exc.errno,
        ) from exc


class LocalStore:
    """The ``file`` backend; stateless, one instance serves every path."""

    scheme = "file"
    writable = True

    def _guard(self, url: str, fn: Callable[[], T]) -> T:
        with _os_errors(url):
            return fn()

    def stat(self, url: str) -> ObjectInfo:
        """Size of one file. Raises ObjectNotFound for a missing file or a directory."""
        path = local_path(url)
        with _os_errors(url):
            st = path.stat()
        if not path.is_file():
            raise ObjectNotFound(f"{url} is not a regular file", hint="check the path", url=url)
        return ObjectInfo(url=url, size=st.st_size)

    def list(self, prefix_url: str) -> list[ObjectInfo]:
        """Every file under a directory (recursive), sorted by URL; [] if it is missing."""
        prefix_url = as_prefix(prefix_url)
        root = local_path(prefix_url)
        if not root.is_dir():
            return []
        out: list[ObjectInfo] = []
        with _os_errors(prefix_url):
            for dirpath, _dirs, files in os.walk(root):
                for name in files:
                    if name.endswith(PARTIAL_SUFFIX):
                        continue
                    full = Path(dirpath) / name
                    rel = full.relative_to(root).as_posix()
                    out.append(ObjectInfo(url=join_url(prefix_url, rel), size=full.stat().st_size))
        return sorted(out, key=lambda o: o.url)

    def _copy(
        self,
        src: Path,
        dest: Path,
        src_url: str,
        dest_url: str,
        result_url: str,
        progress: BytesProgress | None = None,
    ) -> ObjectInfo:
        with _os_errors(src_url):
            expected = src.stat().st_size
        with _os_errors(src_url), open(src, "rb") as fin, _os_errors(dest_url):
            writer = copy_hashed(fin, dest, progress, expected)
        if writer.size != expected:
            raise UploadVerificationFailed(
                f"copied {writer.size} bytes but {src_url} has {expected}",
                hint="the source changed while it was copied; retry when it is complete",
                url=dest_url,
            )
        with _os_errors(dest_url):
            landed = dest.stat().st_size
        if landed != writer.size:
            raise UploadVerificationFailed(
                f"{dest_url} has {landed} bytes after writing {writer.size}",
                hint="check the disk",
                url=dest_url,
            )
        return ObjectInfo(url=result_url, size=writer.size, sha256=writer.hexdigest())

    def download(self, url: str, dest: Path, progress: BytesProgress | None = None) -> ObjectInfo:
        """Copy the file to ``dest``. Raises ObjectNotFound."""
        src = local_path(url)
        if not src.is_file() and src.exists():
            self.stat(url)  # raises the clear "not a regular file" error
        return self._copy(src, Path(dest), url, str(dest), url, progress)

    def upload(
        self, src: Path, url: str, content_type: str | None = None, progress: BytesProgress | None = None
    ) -> ObjectInfo:
        """Copy a local file to the URL's path, atomically. Raises ObjectNotFound for ``src``."""
        return self._copy(Path(src), local_path(url), str(src), url, url, progress)

    def copy(self, src_url: str, url: str) -> ObjectInfo:
        """Copy one file to another path, atomically, verified by size."""
        self.stat(src_url)  # ObjectNotFound for a missing file or a directory
        return self._copy(local_path(src_url), local_path(url), src_url, url, url)

    def read_bytes(self, url: str) -> bytes:
        """The whole file. Raises ObjectNotFound."""
        return self._guard(url, local_path(url).read_bytes)

    def write_bytes(self, url: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        """Write ``data`` atomically, creating parent directories."""
        with _os_errors(url), atomic_output(local_path(url)) as out:
            writer = HashingWriter(out, "sha256")
            writer.write(data)
        return ObjectInfo(url=url, size=writer.size, sha256=writer.hexdigest())

    def create_bytes(self, url: str, data: bytes, content_type: str | None = None) -> ObjectInfo | None:
        """Write only if the file does not exist (an exclusive create); None when it does."""
        path = local_path(url)
        with _os_errors(url):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PARTIAL_SUFFIX, dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                os.chmod(tmp, 0o644)
                try:  # a hard link never replaces: the name appears whole, or not at all
                    os.link(tmp, path)
                except FileExistsError:
                    return None
            finally:
                os.unlink(tmp)
        return ObjectInfo(url=url, size=len(data), sha256=hashlib.sha256(data).hexdigest())

    def delete(self, url: str) -> None:
        """Remove the file; a missing file is not an error."""
        self._guard(url, lambda: local_path(url).unlink(missing_ok=True))

    def exists(self, url: str) -> bool:
        return local_path(url).is_file()
