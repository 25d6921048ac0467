"""The storage interface every backend implements.

URLs are the only addresses the rest of the runner knows. A backend is picked
by scheme (see ``batch.storage.open_url``); keys inside a URL never start with
a slash. Credentials come from the environment only and never appear in an
error message or a log line.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from batch.errors import UploadVerificationFailed


@dataclass(frozen=True)
class ObjectInfo:
    """What a store says about one object.

    ``sha256`` is the hex digest computed by this process while transferring
    (None when the object was only listed). ``store_checksum`` is the store's
    own integrity value where it offers one, e.g. ``{"type": "s3-etag",
    "value": "..."}``, ``{"type": "crc64nvme", ...}`` or ``{"type": "sha1", ...}``.
    """

    url: str
    size: int
    sha256: str | None = None
    etag: str | None = None
    store_checksum: dict[str, str] = field(default_factory=dict)


# Told the bytes moved so far in the current attempt and the total when known (a retry starts again
# at 0). Called from the transfer's threads; it must be quick, and what it raises is ignored.
BytesProgress = Callable[[int, int | None], None]


def tell(progress: BytesProgress | None, done: int, total: int | None) -> None:
    """Report to ``progress``: a display never fails a transfer."""
    if progress is None:
        return
    with contextlib.suppress(Exception):  # what a display raises is not the transfer's fault
        progress(done, total)


@runtime_checkable
class Store(Protocol):
    """One backend: ``file``, ``s3``, ``b2`` or ``http``."""

    scheme: str
    writable: bool

    def stat(self, url: str) -> ObjectInfo:
        """Size and checksums of one object. Raises ObjectNotFound."""
        ...

    def list(self, prefix_url: str) -> list[ObjectInfo]:
        """Every object under a prefix (recursive), sorted by URL."""
        ...

    def download(self, url: str, dest: Path, progress: BytesProgress | None = None) -> ObjectInfo:
        """Copy an object to a local file; ``sha256`` computed on the way."""
        ...

    def upload(
        self, src: Path, url: str, content_type: str | None = None, progress: BytesProgress | None = None
    ) -> ObjectInfo:
        """Copy a local file up, then verify size (and store checksum)."""
        ...

    def read_bytes(self, url: str) -> bytes: ...

    def write_bytes(self, url: str, data: bytes, content_type: str | None = None) -> ObjectInfo: ...

    def copy(self, src_url: str, url: str) -> ObjectInfo:
        """Copy an object within the store (server side where it can), then verify the size."""
        ...

    def delete(self, url: str) -> None:
        """Remove an object; a missing object is not an error."""
        ...

    def exists(self, url: str) -> bool: ...


def exists_by_stat(store: Store, url: str) -> bool:
    """``exists`` for a store whose ``stat`` raises ObjectNotFound for a missing object.

    Raises what ``stat`` raises otherwise (CredentialsRefused, StorageUnreachable).
    """
    from batch.errors import ObjectNotFound

    try:
        store.stat(url)
    except ObjectNotFound:
        return False
    return True


def connection_cut(exc: BaseException) -> BaseException | None:
    """A connection cut (reset, timeout, broken stream) anywhere behind ``exc``, or None.

    Walks ``__cause__``, ``__context__`` and ``last_exception`` (s3transfer
    retries cuts itself, then raises RetriesExceededError around the last
    one). SDK errors that say "cut" in their own classes are mapped by each
    backend; this catches what comes through raw: ``ConnectionResetError``,
    urllib3's ProtocolError, requests' ChunkedEncodingError.
    """
    import builtins

    kinds: tuple[type[BaseException], ...] = (builtins.ConnectionError, TimeoutError)
    try:
        import requests
        from urllib3.exceptions import ProtocolError

        kinds += (ProtocolError, requests.ConnectionError, requests.Timeout)
        kinds += (requests.exceptions.ChunkedEncodingError,)
    except ImportError:  # pragma: no cover - both come with the runner's requirements
        pass
    return find_cause(exc, kinds)


def find_cause(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> BaseException | None:
    """The first exception of ``kinds`` in ``exc``'s chain (causes, contexts, retry wrappers)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        cur = todo.pop(0)
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, kinds):
            return cur
        todo += [getattr(cur, "last_exception", None), cur.__cause__, cur.__context__]
    return None


def check_copy(landed: ObjectInfo, source: ObjectInfo, src_url: str) -> ObjectInfo:
    """A server-side copy landed whole (its size), or UploadVerificationFailed."""
    if landed.size != source.size:
        raise UploadVerificationFailed(
            f"the copy {landed.url} has {landed.size} bytes, {src_url} has {source.size}",
            hint="retry the copy",
            url=landed.url,
        )
    return landed
