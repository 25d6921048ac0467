"""S3 backend against a real SeaweedFS server (fixture s3_server)."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import pytest

from batch.errors import (
    CredentialsRefused,
    ObjectNotFound,
    StorageUnreachable,
    UnsupportedOperation,
)
from batch.storage import StorageSettings, open_url, parse_url
from batch.storage.s3 import S3Store
from batch.storage.s3_config import MIB

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fast_retries")]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def test_round_trip_sha256_and_size(s3_prefix: str, tmp_path: Path) -> None:
    src = make_file(tmp_path / "in.bin", 300_001)
    url = s3_prefix + "videos/in.bin"
    store = open_url(url)
    up = store.upload(src, url, content_type="video/mp4")
    assert up.size == 300_001 and up.sha256 == sha256_of(src)
    assert up.etag

    info = store.stat(url)
    assert info.size == 300_001
    assert info.sha256 == sha256_of(src)  # recorded as object metadata

    dest = tmp_path / "out" / "copy.bin"
    down = store.download(url, dest)
    assert dest.read_bytes() == src.read_bytes()
    assert down.sha256 == sha256_of(src) and down.size == 300_001
    assert store.read_bytes(url) == src.read_bytes()


def test_list_exists_delete(s3_prefix: str) -> None:
    store = open_url(s3_prefix)
    for name, data in [("b.txt", b"bb"), ("a/z.txt", b"z"), ("a/y.txt", b"yyy")]:
        info = store.write_bytes(s3_prefix + name, data, content_type="text/plain")
        assert info.sha256 == hashlib.sha256(data).hexdigest()
    store.write_bytes(s3_prefix.rstrip("/") + "-sibling/x.txt", b"not under the prefix")

    listed = store.list(s3_prefix)
    assert [o.url for o in listed] == [
        s3_prefix + "a/y.txt",
        s3_prefix + "a/z.txt",
        s3_prefix + "b.txt",
    ]
    assert [o.size for o in listed] == [3, 1, 2]
    assert store.list(s3_prefix.rstrip("/")) == listed  # prefix without slash
    assert [o.url for o in store.list(s3_prefix + "a/")] == [
        s3_prefix + "a/y.txt",
        s3_prefix + "a/z.txt",
    ]

    assert store.exists(s3_prefix + "b.txt")
    store.delete(s3_prefix + "b.txt")
    assert not store.exists(s3_prefix + "b.txt")
    store.delete(s3_prefix + "b.txt")  # already gone: fine
    assert [o.url for o in store.list(s3_prefix)][-1] == s3_prefix + "a/z.txt"


def test_missing_object_and_bucket(s3_prefix: str, tmp_path: Path) -> None:
    url = s3_prefix + "does-not-exist.mp4"
    store = open_url(url)
    for call in (
        lambda: store.stat(url),
        lambda: store.download(url, tmp_path / "x.mp4"),
        lambda: store.read_bytes(url),
    ):
        with pytest.raises(ObjectNotFound) as info:
            call()
        assert url in str(info.value)
        assert "bucket and key" in str(info.value)
        assert info.value.fields["attempts"] == 1  # not retried
    assert not (tmp_path / "x.mp4").exists()
    assert not store.exists(url)

    with pytest.raises(ObjectNotFound) as info:
        store.list("s3://no-such-bucket-batch/")
    assert "no-such-bucket-batch" in str(info.value)
    with pytest.raises(UnsupportedOperation):
        store.stat(s3_prefix)  # a prefix is not an object


def test_unreachable_endpoint_is_retried_then_raised(
    s3_env: Any, monkeypatch: pytest.MonkeyPatch, fast_retries: int, closed_port: int
) -> None:
    endpoint = f"http://127.0.0.1:{closed_port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    store = open_url("s3://any-bucket/key.bin")
    calls: list[str] = []
    store.client.meta.events.register(  # type: ignore[attr-defined]
        "before-send.s3", lambda request, **_: calls.append(request.url)
    )
    started = time.monotonic()
    with pytest.raises(StorageUnreachable) as info:
        store.stat("s3://any-bucket/key.bin")
    assert time.monotonic() - started < 10
    err = info.value
    assert err.fields["attempts"] == fast_retries
    assert len(calls) == fast_retries  # botocore itself does not retry
    assert endpoint in str(err) and "s3://any-bucket/key.bin" in str(err)
    assert "AWS_ENDPOINT_URL" in str(err)


def test_wrong_secret_is_refused_without_leaking(
    s3_env: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    wrong = "wrong-secret-" + os.urandom(8).hex()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    url = f"s3://{s3_env.bucket}/refused/x.bin"
    store = open_url(url)
    src = make_file(tmp_path / "x.bin", 1000)
    root = f"s3://{s3_env.bucket}/"
    for named, call in (
        (url, lambda: store.stat(url)),
        (url, lambda: store.upload(src, url)),
        (root, lambda: store.list(root)),
    ):
        with pytest.raises(CredentialsRefused) as info:
            call()
        err = info.value
        text = str(err) + repr(err.to_dict())
        assert wrong not in text and s3_env.secret_key not in text
        assert "AWS_SECRET_ACCESS_KEY" in text and named in text
        assert err.fields["status"] == 403 and err.fields["attempts"] == 1


def test_unknown_access_key_is_refused(s3_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "nobody")
    with pytest.raises(CredentialsRefused) as info:
        open_url(f"s3://{s3_env.bucket}/").list(f"s3://{s3_env.bucket}/")
    assert info.value.fields["error_code"] == "InvalidAccessKeyId"


def _record_headers(client: Any) -> list[dict[str, str]]:
    sent: list[dict[str, str]] = []

    def hook(request: Any, **_: Any) -> None:
        sent.append({k.lower(): str(v) for k, v in request.headers.items()})

    client.meta.events.register("before-send.s3", hook)
    return sent


def test_when_required_checksums_in_effect(s3_env: Any, s3_prefix: str, tmp_path: Path) -> None:
    """Our client sends no flexible checksums, even for multipart uploads; the
    object's bytes are exactly the file's (no aws-chunked trailer inside)."""
    settings = StorageSettings(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    store = open_url(s3_prefix, settings)
    assert isinstance(store, S3Store)
    config = store.client.meta.config
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    assert config.s3["addressing_style"] == "path"

    sent = _record_headers(store.client)
    src = make_file(tmp_path / "big.bin", 11 * MIB + 123)
    url = s3_prefix + "multipart.bin"
    up = store.upload(src, url)
    assert up.sha256 == sha256_of(src)
    assert up.etag and up.etag.endswith("-3")  # three parts: multipart really ran
    assert len(sent) >= 5  # create, 3 parts, complete (+ head)
    for headers in sent:
        assert not any(k.startswith("x-amz-checksum-") for k in headers), headers
        assert "x-amz-sdk-checksum-algorithm" not in headers
        assert "aws-chunked" not in headers.get("content-encoding", "")
        assert "x-amz-trailer" not in headers

    plain = parse_url(url)
    raw = s3_env.client().get_object(Bucket=plain[1], Key=plain[2])["Body"].read()
    assert raw == src.read_bytes()
    head = store.client.head_object(Bucket=plain[1], Key=plain[2], ChecksumMode="ENABLED")
    assert not [k for k in head if k.startswith("Checksum")]  # none was sent, none stored


def test_default_client_would_send_checksums(s3_env: Any, s3_prefix: str) -> None:
    """Control for the test above: botocore's defaults do send a CRC32 that
    SeaweedFS stores, so its absence above is due to our settings."""
    client = s3_env.client()
    sent = _record_headers(client)
    _scheme, bucket, key = parse_url(s3_prefix + "default.bin")
    client.put_object(Bucket=bucket, Key=key, Body=b"x" * 100)
    assert any("x-amz-checksum-crc32" in h or "x-amz-trailer" in h for h in sent)
    head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert "ChecksumCRC32" in head


@pytest.mark.parametrize("size", [300_001, 11 * MIB], ids=["one-call", "multipart"])
def test_copy_is_server_side_keeps_the_sha256_and_is_verified(
    s3_prefix: str, tmp_path: Path, size: int
) -> None:
    src = make_file(tmp_path / "in.bin", size)
    url, copy_url = s3_prefix + "out/v.mp4", s3_prefix + "out/previous/t/v.mp4"
    store = S3Store(StorageSettings(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB))
    store.upload(src, url)
    info = store.copy(url, copy_url)
    assert info.size == size and store.stat(copy_url).sha256 == sha256_of(src)
    assert hashlib.sha256(store.read_bytes(copy_url)).hexdigest() == sha256_of(src)
    with pytest.raises(ObjectNotFound):
        store.copy(s3_prefix + "out/none.mp4", s3_prefix + "out/x.mp4")
