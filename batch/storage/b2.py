"""Backblaze B2 via b2sdk (``b2sdk.v2``).

Credentials: ``B2_APPLICATION_KEY_ID`` and ``B2_APPLICATION_KEY`` from the
environment; the store authorizes on first use. Tests (or an embedding
program) can hand over a ready B2Api instead:

* ``B2Store(api=my_api)`` uses that API as is;
* ``use_api(my_api)`` makes ``open_url("b2://...")`` build stores on it
  (``use_api(None)`` goes back to env credentials).

Uploads send our sha256 as file info ``sha256`` and the SHA1 b2sdk needs;
after upload the file's size and SHA1 (``contentSha1``, or the
``large_file_sha1`` file info for large files) are read back and compared.
``stat`` reports the recorded ``sha256`` file info. Deleting a name removes
every version of it.

Errors (by b2sdk exception class): ObjectNotFound (FileNotPresent,
NonExistentBucket), CredentialsRefused (Unauthorized, AccessDenied, key
restrictions, missing env), StorageUnreachable (connection, timeouts,
service errors, too many requests), UploadVerificationFailed (SHA1 or size
mismatch), StorageError (anything else B2 answered).
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batch.errors import (
    CredentialsRefused,
    ObjectNotFound,
    StorageError,
    StorageUnreachable,
    UnsupportedOperation,
    UploadVerificationFailed,
)
from batch.retry import call_with_retry
from batch.storage._io import HashingWriter, atomic_output, file_digests
from batch.storage.base import BytesProgress, ObjectInfo, check_copy, connection_cut, exists_by_stat, tell
from batch.storage.urls import as_prefix, parse_url, redact_url

if TYPE_CHECKING:
    from b2sdk.v2 import B2Api, Bucket

_INJECTED: list[Any] = [None]
_CRED_HINT = "check B2_APPLICATION_KEY_ID and B2_APPLICATION_KEY, and that the key may use the bucket"


def use_api(api: B2Api | None) -> None:
    """Make ``open_url("b2://...")`` use this (authorized) B2Api; None resets."""
    _INJECTED[0] = api


def injected_api() -> B2Api | None:
    """The B2Api set by :func:`use_api`, if any."""
    return _INJECTED[0]


def map_error(exc: BaseException, url: str) -> BaseException:
    """Our error type for a b2sdk exception (unknown ones pass through)."""
    from b2sdk.v2 import exception as bx

    url = redact_url(url)  # a b2 URL carries no secret by design; a pasted "key:secret@" is hidden
    name = type(exc).__name__
    if isinstance(exc, (bx.FileNotPresent, bx.NonExistentBucket, bx.BucketIdNotFound)):
        what = "bucket" if isinstance(exc, bx.NonExistentBucket) else "file"
        return ObjectNotFound(
            f"B2 {what} not found: {url}",
            hint="check the bucket and key",
            url=url,
            error=name,
        )
    if isinstance(
        exc,
        (
            bx.Unauthorized,
            bx.AccessDenied,
            bx.NotAllowedByAppKeyError,
            bx.RestrictedBucket,
        ),
    ):
        return CredentialsRefused(
            f"B2 refused access to {url} ({name})", hint=_CRED_HINT, url=url, error=name
        )
    if isinstance(
        exc,
        (
            bx.B2ConnectionError,
            bx.B2RequestTimeout,
            bx.ServiceError,
            bx.RequestTimeout,
            bx.TooManyRequests,
            bx.UnknownHost,
            bx.ConnectionReset,
            bx.BrokenPipe,
            bx.TruncatedOutput,
            bx.MaxRetriesExceeded,
        ),
    ):
        return StorageUnreachable(
            f"cannot reach B2 for {url} ({name})",
            hint="check the network; B2 did not answer or asked to slow down",
            url=url,
            error=name,
        )
    if isinstance(exc, (bx.FileSha1Mismatch, bx.ChecksumMismatch, bx.PartSha1Mismatch)):
        return UploadVerificationFailed(
            f"B2 checksum mismatch for {url} ({name})",
            hint="retry the transfer",
            url=url,
        )
    cut = connection_cut(exc)
    if cut is not None and not isinstance(exc, bx.B2Error):
        return StorageUnreachable(
            f"connection to B2 was cut for {url} ({type(cut).__name__})",
            hint="the connection was cut; retried",
            url=url,
            error=type(cut).__name__,
        )
    if isinstance(exc, bx.B2Error):
        return StorageError(
            f"B2 request for {url} failed ({name})",
            hint="check the bucket and key",
            url=url,
            error=name,
        )
    return exc


@contextmanager
def _errors(url: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        mapped = map_error(exc, url)
        if mapped is exc:
            raise
        raise mapped from exc


class B2Store:
    """The ``b2`` backend. Buckets are looked up by name once and cached."""

    scheme = "b2"
    writable = True

    def __init__(self, api: B2Api | None = None, *, api_config: Any = None) -> None:
        """``api``: an authorized B2Api to use as is. Otherwise one is built
        (with ``api_config`` if given) and authorized from env on first use."""
        self._api = api
        self._api_config = api_config
        self._buckets: dict[str, Bucket] = {}
        self._lock = threading.Lock()

    def _authorized_api(self, url: str) -> B2Api:
        if self._api is not None:
            return self._api
        key_id = os.environ.get("B2_APPLICATION_KEY_ID", "")
        key = os.environ.get("B2_APPLICATION_KEY", "")
        if not key_id or not key:
            raise CredentialsRefused(
                f"no B2 credentials for {url}",
                hint="set B2_APPLICATION_KEY_ID and B2_APPLICATION_KEY",
                url=url,
            )
        from b2sdk.v2 import B2Api, InMemoryAccountInfo

        kwargs = {"api_config": self._api_config} if self._api_config is not None else {}
        api = B2Api(InMemoryAccountInfo(), **kwargs)
        with _errors(url):
            api.authorize_account("production", key_id, key)
        self._api = api
        return api

    def _bucket(self, url: str) -> tuple[Bucket, str]:
        _scheme, name, key = parse_url(url)
        with self._lock:
            bucket = self._buckets.get(name)
            if bucket is None:
                api = self._authorized_api(url)
                with _errors(url):
                    bucket = api.get_bucket_by_name(name)
                self._buckets[name] = bucket
        return bucket, key

    def _object(self, url: str) -> tuple[Bucket, str]:
        bucket, key = self._bucket(url)
        if not key or key.endswith("/"):
            raise UnsupportedOperation(f"{url} names a prefix, not a file", hint="name a file key", url=url)
        return bucket, key

    @staticmethod
    def _info(url: str, version: Any, sha256: str | None = None) -> ObjectInfo:
        sha1 = version.get_content_sha1()
        if sha1 and sha1.startswith("unverified:"):
            sha1 = sha1[len("unverified:") :]
        file_info = version.file_info or {}
        return ObjectInfo(
            url=url,
            size=int(version.size),
            sha256=sha256 if sha256 is not None else file_info.get("sha256"),
            etag=version.id_,
            store_checksum={"type": "sha1", "value": sha1} if sha1 else {},
        )

    def _stat_once(self, url: str) -> ObjectInfo:
        bucket, key = self._object(url)
        with _errors(url):
            version = bucket.get_file_info_by_name(key)
        return self._info(url, version)

    def stat(self, url: str) -> ObjectInfo:
        """Size, SHA1 and recorded sha256 of the latest version. Raises ObjectNotFound."""
        return call_with_retry(self._stat_once, url)

    def exists(self, url: str) -> bool:
        return exists_by_stat(self, url)

    def list(self, prefix_url: str) -> list[ObjectInfo]:
        """Latest versions of files under the prefix (recursive), sorted by URL."""
        prefix_url = as_prefix(prefix_url)

        def attempt() -> list[ObjectInfo]:
            bucket, prefix = self._bucket(prefix_url)
            with _errors(prefix_url):
                found = [
                    self._info(f"b2://{bucket.name}/{v.file_name}", v)
                    for v, _folder in bucket.ls(prefix, latest_only=True, recursive=True)
                ]
            return sorted(found, key=lambda o: o.url)

        return call_with_retry(attempt)

    def _verify(self, url: str, size: int, sha1: str, sha256: str, uploaded: Any) -> ObjectInfo:
        landed = self._stat_once(url)
        got_sha1 = landed.store_checksum.get("value")
        if landed.size != size or got_sha1 != sha1 or landed.etag != uploaded.id_:
            raise UploadVerificationFailed(
                f"{url} landed with size {landed.size} and SHA1 {got_sha1}, expected {size} and {sha1}",
                hint="retry the upload",
                url=url,
                expected_size=size,
                actual_size=landed.size,
            )
        return ObjectInfo(url, size, sha256, landed.etag, landed.store_checksum)

    def upload(
        self, src: Path, url: str, content_type: str | None = None, progress: BytesProgress | None = None
    ) -> ObjectInfo:
        """Upload (large-file API above the part size), then verify size and SHA1."""
        try:
            size, digests = file_digests(Path(src), "sha256", "sha1")
        except FileNotFoundError as exc:
            raise ObjectNotFound(
                f"no local file {src} to upload to {url}",
                hint="check the path",
                url=url,
            ) from exc

        def attempt() -> ObjectInfo:
            bucket, key = self._object(url)
            with _errors(url):
                version = bucket.upload_local_file(
                    str(src),
                    key,
                    content_type=content_type,
                    file_info={"sha256": digests["sha256"]},
                    sha1_sum=digests["sha1"],
                    progress_listener=_listener(progress, size) if progress is not None else None,
                )
            return self._verify(url, size, digests["sha1"], digests["sha256"], version)

        return call_with_retry(attempt)

    def write_bytes(self, url: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        """Upload bytes, then verify like :meth:`upload`."""
        sha1 = hashlib.sha1(data).hexdigest()
        sha256 = hashlib.sha256(data).hexdigest()

        def attempt() -> ObjectInfo:
            bucket, key = self._object(url)
            with _errors(url):
                version = bucket.upload_bytes(
                    data,
                    key,
                    content_type=content_type,
                    file_info={"sha256": sha256},
                    large_file_sha1=sha1,
                )
            return self._verify(url, len(data), sha1, sha256, version)

        return call_with_retry(attempt)

    def _fetch(
        self, url: str, out: Any, progress: BytesProgress | None = None
    ) -> tuple[HashingWriter, ObjectInfo]:
        bucket, key = self._object(url)
        writer = HashingWriter(out, "sha256", progress=progress)
        with _errors(url):
            downloaded = bucket.download_file_by_name(key)
            writer.total = downloaded.download_version.size
            downloaded.save(writer, allow_seeking=False)
        info = self._info(url, downloaded.download_version, sha256=writer.hexdigest())
        if writer.size != info.size:
            raise StorageUnreachable(
                f"download of {url} ended after {writer.size} of {info.size} bytes",
                hint="retry; the connection was cut",
                url=url,
            )
        return writer, info

    def download(self, url: str, dest: Path, progress: BytesProgress | None = None) -> ObjectInfo:
        """Stream the latest version to ``dest`` (atomic), hashing sha256 on the way."""

        def attempt() -> ObjectInfo:
            with atomic_output(Path(dest)) as out:
                _writer, info = self._fetch(url, out, progress)
            return info

        return call_with_retry(attempt)

    def read_bytes(self, url: str) -> bytes:
        def attempt() -> bytes:
            buf = io.BytesIO()
            self._fetch(url, buf)
            return buf.getvalue()

        return call_with_retry(attempt)

    def copy(self, src_url: str, url: str) -> ObjectInfo:
        """Server-side copy of the latest version (B2's copy_file), verified by size."""
        source = self.stat(src_url)

        def attempt() -> ObjectInfo:
            src_bucket, src_key = self._object(src_url)
            bucket, key = self._object(url)
            with _errors(url):
                file_id = src_bucket.get_file_info_by_name(src_key).id_
                # in parts of B2's recommended size above it (a single b2_copy_file stops at 5 GB)
                part = self._authorized_api(url).account_info.get_recommended_part_size()
                bucket.copy(file_id, key, length=source.size, max_part_size=part)
            return check_copy(self._stat_once(url), source, src_url)

        return call_with_retry(attempt)

    def delete(self, url: str) -> None:
        """Delete every version of the file name; a missing file is not an error."""

        def attempt() -> None:
            bucket, key = self._object(url)
            with _errors(url):
                for version in list(bucket.list_file_versions(key)):
                    bucket.delete_file_version(version.id_, version.file_name)

        call_with_retry(attempt)


def _listener(progress: BytesProgress, size: int) -> Any:
    """A b2sdk progress listener that tells ``progress`` the bytes sent so far."""
    from b2sdk.v2 import AbstractProgressListener

    class Sent(AbstractProgressListener):  # type: ignore[misc]
        def set_total_bytes(self, total_byte_count: int) -> None:
            self.total = total_byte_count

        def bytes_completed(self, byte_count: int) -> None:
            tell(progress, byte_count, size)

    return Sent()
