"""Read-only ``http://`` and ``https://`` sources via requests.

``stat`` uses HEAD and falls back to a streamed GET when the server does not
allow HEAD (405/501) or sends no Content-Length. ``download`` streams to a
temp file with sha256 and checks the byte count against Content-Length when
the body is not content-encoded. A connection cut mid-body (reset, or fewer
bytes than Content-Length) is retried under the storage retry policy, resumed
with ``Range``/``If-Range`` where the server allows it, else from the start.
Listing and writing raise UnsupportedOperation.

Errors: ObjectNotFound (404, 410), CredentialsRefused (401, 403),
StorageUnreachable (connection errors, timeouts, 5xx, 429; retried),
StorageError (other statuses). Messages show the URL without its query
string or user info, which may hold secrets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from batch import disk
from batch.errors import (
    CredentialsRefused,
    ObjectNotFound,
    StorageError,
    StorageUnreachable,
    UnsupportedOperation,
)
from batch.retry import call_with_retry
from batch.storage._io import CHUNK, HashingWriter, atomic_output
from batch.storage.base import BytesProgress, ObjectInfo, exists_by_stat, tell
from batch.storage.urls import redact_url

TIMEOUT = (10, 120)  # connect, read (seconds)


def check_status(status: int, url: str) -> None:
    """Raise our error for a failing HTTP status; return for 2xx/3xx."""
    shown = redact_url(url)
    if status < 400:
        return
    if status in (404, 410):
        raise ObjectNotFound(
            f"HTTP {status} for {shown}",
            hint="check the URL (host and path)",
            url=shown,
            status=status,
        )
    if status in (401, 403):
        raise CredentialsRefused(
            f"HTTP {status} for {shown}: access refused",
            hint="check that the URL is public or its signature/token is valid and not expired",
            url=shown,
            status=status,
        )
    if status >= 500 or status in (408, 429):
        raise StorageUnreachable(
            f"HTTP {status} for {shown}",
            hint="the server failed or is busy; check that it is running and retry later",
            url=shown,
            status=status,
        )
    raise StorageError(f"HTTP {status} for {shown}", hint="check the URL", url=shown, status=status)


class _Body:
    """A download in progress: the bytes so far (hashed in order) and what a resume needs."""

    def __init__(
        self, out: Any, room: Callable[[int], None] | None = None, progress: BytesProgress | None = None
    ) -> None:
        self.out = out
        self.room = room  # checks the disk can take the length the server announced
        self.progress = progress
        self.restart()

    def restart(self) -> None:
        self.out.seek(0)
        self.out.truncate()
        self.writer = HashingWriter(self.out, "sha256", progress=self._tell)
        self.total: int | None = None
        self.validator: str | None = None
        self.ranges = False

    def _tell(self, done: int, _total: int | None) -> None:
        tell(self.progress, done, self.total)  # the length is known once the response came

    def position(self) -> tuple[int, int | None]:
        return self.writer.size, self.total

    def can_resume(self) -> bool:
        return (
            self.ranges
            and self.validator is not None
            and self.total is not None
            and 0 < self.writer.size < self.total
        )


def _validator(resp: Any) -> str | None:
    """What ``If-Range`` may carry: a strong ETag, else Last-Modified."""
    etag: str | None = resp.headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    modified: str | None = resp.headers.get("Last-Modified")
    return modified


def _range_start(resp: Any) -> tuple[int, int | None] | None:
    """``(first byte, total)`` from ``Content-Range: bytes FIRST-LAST/TOTAL``."""
    value = resp.headers.get("Content-Range", "")
    unit, _, rest = value.strip().partition(" ")
    span, _, total = rest.partition("/")
    first = span.partition("-")[0]
    if unit.lower() != "bytes" or not first.isdigit():
        return None
    return int(first), int(total) if total.isdigit() else None


class HttpStore:
    """The read-only ``http``/``https`` backend (one requests.Session per store)."""

    writable = False

    def __init__(self, scheme: str = "https") -> None:
        self.scheme = scheme
        self._session: Any = None
        self._lock = threading.Lock()

    @property
    def session(self) -> Any:
        with self._lock:
            if self._session is None:
                import requests

                self._session = requests.Session()
            return self._session

    @contextmanager
    def _errors(self, url: str) -> Iterator[None]:
        import requests

        try:
            yield
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            shown = redact_url(url)
            raise StorageUnreachable(
                f"cannot reach {shown} ({type(exc).__name__})",
                hint="check the host name and that the server is running and reachable",
                url=shown,
            ) from exc
        except requests.RequestException as exc:
            shown = redact_url(url)
            raise StorageError(
                f"HTTP request for {shown} failed ({type(exc).__name__})",
                hint="check the URL",
                url=shown,
            ) from exc

    @staticmethod
    def _info(url: str, resp: Any, size: int, sha256: str | None = None) -> ObjectInfo:
        etag = resp.headers.get("ETag")
        return ObjectInfo(
            url=redact_url(url),
            size=size,
            sha256=sha256,
            etag=etag.strip('"') if etag else None,
        )

    @staticmethod
    def _length(resp: Any) -> int | None:
        value = resp.headers.get("Content-Length")
        if value is None or resp.headers.get("Content-Encoding"):
            return None
        try:
            return int(value)
        except ValueError:
            return None

    def _stat_once(self, url: str) -> ObjectInfo:
        with self._errors(url):
            resp = self.session.head(url, timeout=TIMEOUT, allow_redirects=True)
            resp.close()
            if resp.status_code not in (405, 501):
                check_status(resp.status_code, url)
                size = self._length(resp)
                if size is not None:
                    return self._info(url, resp, size)
            # HEAD refused or no length: count the body of a streamed GET.
            with self.session.get(url, timeout=TIMEOUT, stream=True) as resp:
                check_status(resp.status_code, url)
                size = self._length(resp)
                if size is None:
                    size = sum(len(c) for c in resp.iter_content(CHUNK))
                return self._info(url, resp, size)

    def stat(self, url: str) -> ObjectInfo:
        """Size and ETag. Raises ObjectNotFound, CredentialsRefused, StorageUnreachable."""
        return call_with_retry(self._stat_once, url)

    def exists(self, url: str) -> bool:
        return exists_by_stat(self, url)

    def _fetch(self, url: str, body: _Body) -> ObjectInfo:
        """One GET into ``body``: a ranged resume when the last answer allowed one, else from the start."""
        import requests

        shown = redact_url(url)
        headers = {}
        resume = body.can_resume()
        if resume:
            headers["Range"] = f"bytes={body.writer.size}-"
            headers["If-Range"] = body.validator or ""
        with (
            self._errors(url),
            self.session.get(url, timeout=TIMEOUT, stream=True, headers=headers) as resp,
        ):
            if resume and resp.status_code == 416:
                at = body.writer.size
                body.restart()
                raise StorageUnreachable(
                    f"{shown} refused to resume at byte {at}",
                    hint="retry; the download starts again from the beginning",
                    url=shown,
                )
            check_status(resp.status_code, url)
            if resp.status_code == 206 and not (resume and _range_start(resp) == body.position()):
                body.restart()  # a partial answer that does not continue ours: start over, no ranges
                raise StorageUnreachable(
                    f"{shown} answered a range that does not continue the download",
                    hint="retry; the download starts again from the beginning",
                    url=shown,
                )
            if resp.status_code != 206:
                body.restart()
                body.total = self._length(resp)
                if body.total is not None and body.room is not None:
                    body.room(body.total)  # DiskFull before a byte is written: not retried
                body.validator = _validator(resp)
                body.ranges = resp.headers.get("Accept-Ranges", "").strip().lower() == "bytes"
            cut = (requests.exceptions.ChunkedEncodingError, requests.ConnectionError, requests.Timeout)
            try:
                for chunk in resp.iter_content(CHUNK):
                    body.writer.write(chunk)
            except cut as exc:
                raise StorageUnreachable(
                    f"download of {shown} was cut after {body.writer.size} of "
                    f"{body.total if body.total is not None else 'unknown'} bytes ({type(exc).__name__})",
                    hint="the connection was cut; retried (resuming where the server allows ranges)",
                    url=shown,
                    received=body.writer.size,
                    expected=body.total,
                ) from exc
        if body.total is not None and body.writer.size != body.total:
            raise StorageUnreachable(
                f"download of {shown} ended after {body.writer.size} of {body.total} bytes",
                hint="the connection was cut; retried (resuming where the server allows ranges)",
                url=shown,
                received=body.writer.size,
                expected=body.total,
            )
        return self._info(url, resp, body.writer.size, body.writer.hexdigest())

    def download(self, url: str, dest: Path, progress: BytesProgress | None = None) -> ObjectInfo:
        """Stream to ``dest`` (atomic) with sha256. Raises as :meth:`stat`.

        A connection cut mid-body is retried under the storage retry policy:
        resumed with ``Range``/``If-Range`` when the server sent
        ``Accept-Ranges: bytes``, a length and a validator (strong ETag or
        Last-Modified), else downloaded again from the start.
        """
        where = Path(dest).parent

        def room(size: int) -> None:
            disk.require(where, size, "the download")

        with atomic_output(Path(dest)) as out:
            return call_with_retry(self._fetch, url, _Body(out, room, progress))

    def read_bytes(self, url: str) -> bytes:
        import io

        buf = io.BytesIO()
        call_with_retry(self._fetch, url, _Body(buf))
        return buf.getvalue()

    def _read_only(self, op: str, url: str) -> NoReturn:
        shown = redact_url(url)
        raise UnsupportedOperation(
            f"cannot {op} {shown}: http(s) sources are read-only",
            hint="write to an s3://, b2:// or file:// URL instead",
            url=shown,
        )

    def list(self, prefix_url: str) -> list[ObjectInfo]:
        """Always raises UnsupportedOperation: HTTP has no listing."""
        raise UnsupportedOperation(
            f"cannot list {redact_url(prefix_url)}: http(s) has no listing",
            hint="name each input URL in the config, or use an s3:// or b2:// prefix",
            url=redact_url(prefix_url),
        )

    def upload(
        self, src: Path, url: str, content_type: str | None = None, progress: BytesProgress | None = None
    ) -> ObjectInfo:
        self._read_only("upload to", url)

    def write_bytes(self, url: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        self._read_only("write", url)

    def copy(self, src_url: str, url: str) -> ObjectInfo:
        self._read_only("copy to", url)

    def delete(self, url: str) -> None:
        self._read_only("delete", url)
