"""S3 and S3-compatible stores (SeaweedFS, MinIO, B2's S3 API) via boto3.

Endpoint: ``StorageSettings.endpoint_url``, else ``AWS_ENDPOINT_URL_S3`` /
``AWS_ENDPOINT_URL``, else AWS. Region: settings, else ``AWS_REGION`` /
``AWS_DEFAULT_REGION``, else ``us-east-1``. Credentials: boto3's default
chain (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` ...).

For any endpoint other than AWS the client uses path-style addressing and
``request_checksum_calculation`` / ``response_checksum_validation`` =
``when_required``: third-party stores have rejected, or stored inside the
object, the checksums that botocore >= 1.36 sends by default.

Uploads hash the file (sha256) before sending, store it as metadata
``sha256``, then HeadObject and compare size and that metadata (with
``ChecksumMode=ENABLED`` on AWS). Downloads hash while streaming and compare
with the recorded ``sha256`` when there is one. ``stat`` reports that
recorded sha256.

botocore's own retries are off (one attempt); :mod:`batch.retry` is
the only policy. Errors: StorageUnreachable (connection, timeout, 5xx, 429),
CredentialsRefused (401/403, bad key or signature, no credentials),
ObjectNotFound (404, NoSuchKey, NoSuchBucket), UploadVerificationFailed,
UnsupportedOperation (a prefix URL where an object is needed, bad names),
StorageError (anything else the store answered).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from batch.errors import (
    ObjectNotFound,
    StorageError,
    StorageUnreachable,
    UnsupportedOperation,
    UploadVerificationFailed,
)
from batch.retry import call_with_retry
from batch.storage._io import HashingWriter, atomic_output, file_digests
from batch.storage.base import BytesProgress, ObjectInfo, check_copy, exists_by_stat, tell
from batch.storage.s3_config import (
    StorageSettings,
    client_config,
    is_aws_endpoint,
    map_error,
    resolve_endpoint,
    resolve_region,
)
from batch.storage.urls import as_prefix, parse_url

CHECKSUM_KEYS = ("CRC64NVME", "CRC32", "CRC32C", "SHA256", "SHA1")


class S3Store:
    """The ``s3`` backend. One boto3 client per store, built on first use."""

    scheme = "s3"
    writable = True

    def __init__(self, settings: StorageSettings | None = None) -> None:
        self.settings = settings or StorageSettings()
        self.endpoint_url = resolve_endpoint(self.settings)
        self.region = resolve_region(self.settings)
        self.is_aws = is_aws_endpoint(self.endpoint_url)
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The boto3 S3 client (thread-safe, shared by every call)."""
        with self._lock:
            if self._client is None:
                import boto3.session

                self._client = boto3.session.Session().client(
                    "s3",
                    endpoint_url=self.endpoint_url,
                    region_name=self.region,
                    config=client_config(self.endpoint_url, self.region),
                )
            return self._client

    @contextmanager
    def _errors(self, url: str) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            mapped = map_error(exc, url, self.endpoint_url)
            if mapped is exc:
                raise
            raise mapped from exc

    def _transfer_manager(self) -> Any:
        from boto3.s3.transfer import TransferConfig, create_transfer_manager

        config = TransferConfig(
            multipart_threshold=self.settings.multipart_threshold,
            multipart_chunksize=self.settings.multipart_chunksize,
            max_concurrency=8,
            use_threads=True,
        )
        return create_transfer_manager(self.client, config)

    @staticmethod
    def _object(url: str) -> tuple[str, str]:
        _scheme, bucket, key = parse_url(url)
        if not key or key.endswith("/"):
            raise UnsupportedOperation(
                f"{url} names a prefix, not an object",
                hint="name an object key",
                url=url,
            )
        return bucket, key

    def _info(self, url: str, head: dict[str, Any]) -> ObjectInfo:
        etag = str(head.get("ETag", "")).strip('"') or None
        checksum: dict[str, str] = {}
        for algo in CHECKSUM_KEYS:
            if head.get(f"Checksum{algo}"):
                checksum = {"type": algo.lower(), "value": head[f"Checksum{algo}"]}
                if head.get("ChecksumType"):
                    checksum["checksum_type"] = head["ChecksumType"]
                break
        if not checksum and etag:
            checksum = {"type": "s3-etag", "value": etag}
        meta = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}
        return ObjectInfo(
            url=url,
            size=int(head["ContentLength"]),
            sha256=meta.get("sha256"),
            etag=etag,
            store_checksum=checksum,
        )

    def _head(self, url: str) -> ObjectInfo:
        bucket, key = self._object(url)
        extra = {"ChecksumMode": "ENABLED"} if self.is_aws else {}
        with self._errors(url):
            head = self.client.head_object(Bucket=bucket, Key=key, **extra)
        return self._info(url, head)

    def stat(self, url: str) -> ObjectInfo:
        """Size, ETag, store checksum and recorded sha256. Raises ObjectNotFound."""
        return call_with_retry(self._head, url)

    def exists(self, url: str) -> bool:
        return exists_by_stat(self, url)

    def list(self, prefix_url: str) -> list[ObjectInfo]:
        """Objects under the prefix (recursive), sorted. Raises ObjectNotFound for a missing bucket."""
        prefix_url = as_prefix(prefix_url)
        _scheme, bucket, prefix = parse_url(prefix_url)

        def attempt() -> list[ObjectInfo]:
            out = []
            with self._errors(prefix_url):
                pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                for page in pages:
                    for obj in page.get("Contents", []):
                        if obj["Key"].endswith("/"):
                            continue  # folder markers some tools create
                        etag = str(obj.get("ETag", "")).strip('"') or None
                        out.append(
                            ObjectInfo(
                                url=f"s3://{bucket}/{obj['Key']}",
                                size=int(obj["Size"]),
                                etag=etag,
                                store_checksum={"type": "s3-etag", "value": etag} if etag else {},
                            )
                        )
            return sorted(out, key=lambda o: o.url)

        return call_with_retry(attempt)

    def download(self, url: str, dest: Path, progress: BytesProgress | None = None) -> ObjectInfo:
        """Stream the object to ``dest`` (atomic), hashing sha256 on the way.

        Raises ObjectNotFound, StorageUnreachable (also for a short read) and
        StorageError when the bytes do not match the recorded sha256.
        """
        bucket, key = self._object(url)

        def attempt() -> ObjectInfo:
            info = self._head(url)
            with self._errors(url), atomic_output(Path(dest)) as out:
                writer = HashingWriter(out, "sha256", progress=progress, total=info.size)
                with self._transfer_manager() as mgr:
                    mgr.download(bucket, key, writer).result()
                if writer.size != info.size:
                    raise StorageUnreachable(
                        f"download of {url} ended after {writer.size} of {info.size} bytes",
                        hint="retry; the connection was cut or the object changed",
                        url=url,
                    )
                got = writer.hexdigest()
                if info.sha256 and info.sha256 != got:
                    raise StorageError(
                        f"{url} does not match the sha256 recorded when it was uploaded",
                        hint="the stored object is damaged or was replaced; upload it again",
                        url=url,
                        expected_sha256=info.sha256,
                        actual_sha256=got,
                    )
            return ObjectInfo(url, info.size, got, info.etag, info.store_checksum)

        return call_with_retry(attempt)

    def _verify(self, url: str, size: int, sha256: str) -> ObjectInfo:
        info = self._head(url)
        if info.size != size or info.sha256 != sha256:
            raise UploadVerificationFailed(
                f"{url} landed with size {info.size} and sha256 metadata {info.sha256}, "
                f"expected {size} and {sha256}",
                hint="retry the upload; if it persists, check the endpoint's S3 compatibility",
                url=url,
                expected_size=size,
                actual_size=info.size,
            )
        return ObjectInfo(url, size, sha256, info.etag, info.store_checksum)

    def upload(
        self, src: Path, url: str, content_type: str | None = None, progress: BytesProgress | None = None
    ) -> ObjectInfo:
        """Upload (multipart above the threshold), then verify size and sha256 metadata.

        Raises ObjectNotFound (missing ``src``), UploadVerificationFailed,
        CredentialsRefused, StorageUnreachable.
        """
        bucket, key = self._object(url)
        try:
            size, digests = file_digests(Path(src), "sha256")
        except FileNotFoundError as exc:
            raise ObjectNotFound(
                f"no local file {src} to upload to {url}",
                hint="check the path",
                url=url,
            ) from exc
        extra: dict[str, Any] = {"Metadata": {"sha256": digests["sha256"]}}
        if content_type:
            extra["ContentType"] = content_type

        def attempt() -> ObjectInfo:
            subscribers = [_sent(progress, size)] if progress is not None else None
            with self._errors(url), self._transfer_manager() as mgr:
                mgr.upload(str(src), bucket, key, extra_args=extra, subscribers=subscribers).result()
            return self._verify(url, size, digests["sha256"])

        return call_with_retry(attempt)

    def write_bytes(self, url: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        """PutObject then verify, like :meth:`upload`."""
        bucket, key = self._object(url)
        sha256 = hashlib.sha256(data).hexdigest()
        extra: dict[str, Any] = {"Metadata": {"sha256": sha256}}
        if content_type:
            extra["ContentType"] = content_type

        def attempt() -> ObjectInfo:
            with self._errors(url):
                self.client.put_object(Bucket=bucket, Key=key, Body=data, **extra)
            return self._verify(url, len(data), sha256)

        return call_with_retry(attempt)

    def create_bytes(self, url: str, data: bytes, content_type: str | None = None) -> ObjectInfo | None:
        """Write only if no object is at ``url`` (``If-None-Match: *``); None when one is.

        A store that ignores the condition behaves like :meth:`write_bytes`.
        """
        bucket, key = self._object(url)
        sha256 = hashlib.sha256(data).hexdigest()
        extra: dict[str, Any] = {"Metadata": {"sha256": sha256}, "IfNoneMatch": "*"}
        if content_type:
            extra["ContentType"] = content_type

        def attempt() -> ObjectInfo | None:
            from botocore.exceptions import ClientError

            try:
                self.client.put_object(Bucket=bucket, Key=key, Body=data, **extra)
            except ClientError as e:
                status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if status in (409, 412) or e.response.get("Error", {}).get("Code") == "PreconditionFailed":
                    return None
                with self._errors(url):
                    raise
            return self._verify(url, len(data), sha256)

        return call_with_retry(attempt)

    def copy(self, src_url: str, url: str) -> ObjectInfo:
        """Server-side copy (multipart above the threshold), metadata kept; verified by size."""
        src_bucket, src_key = self._object(src_url)
        bucket, key = self._object(url)
        source = self.stat(src_url)

        def attempt() -> ObjectInfo:
            with self._errors(url), self._transfer_manager() as mgr:
                copy_source = {"Bucket": src_bucket, "Key": src_key}
                extra = {"Metadata": {"sha256": source.sha256}, "MetadataDirective": "REPLACE"}
                mgr.copy(copy_source, bucket, key, extra_args=extra if source.sha256 else None).result()
            return check_copy(self._head(url), source, src_url)

        return call_with_retry(attempt)

    def read_bytes(self, url: str) -> bytes:
        """The whole object. Raises ObjectNotFound, StorageUnreachable."""
        bucket, key = self._object(url)

        def attempt() -> bytes:
            with self._errors(url):
                resp = self.client.get_object(Bucket=bucket, Key=key)
                data: bytes = resp["Body"].read()
            if len(data) != int(resp["ContentLength"]):
                raise StorageUnreachable(
                    f"read of {url} ended after {len(data)} bytes",
                    hint="retry",
                    url=url,
                )
            return data

        return call_with_retry(attempt)

    def delete(self, url: str) -> None:
        """Delete the object; a missing object is fine, a missing bucket is ObjectNotFound."""
        bucket, key = self._object(url)

        def attempt() -> None:
            with self._errors(url):
                self.client.delete_object(Bucket=bucket, Key=key)

        call_with_retry(attempt)


def _sent(progress: BytesProgress, size: int) -> Any:
    """An s3transfer subscriber that tells ``progress`` the bytes sent so far (threads add up)."""
    from s3transfer.subscribers import BaseSubscriber  # type: ignore[import-untyped]

    class Sent(BaseSubscriber):  # type: ignore[misc]
        def __init__(self) -> None:
            self.done = 0
            self.lock = threading.Lock()

        def on_progress(self, future: Any, bytes_transferred: int, **kwargs: Any) -> None:
            with self.lock:  # a retried part reports a negative amount first
                self.done = max(self.done + bytes_transferred, 0)
                done = self.done
            tell(progress, done, size)

    return Sent()
