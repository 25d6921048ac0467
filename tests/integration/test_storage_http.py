"""Read-only HTTP backend against a local http.server (fixture http_server)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from batch.errors import (
    CredentialsRefused,
    ObjectNotFound,
    StorageUnreachable,
    UnsupportedOperation,
)
from batch.storage import open_url

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fast_retries")]


@pytest.fixture
def served(http_server: Any) -> tuple[str, bytes]:
    data = os.urandom(2 * 1024 * 1024 + 5)
    (http_server.root / "media").mkdir()
    (http_server.root / "media" / "clip.mp4").write_bytes(data)
    (http_server.root / "nohead").mkdir()
    (http_server.root / "nohead" / "clip.mp4").write_bytes(data)
    return http_server.base_url, data


def test_download_streams_with_sha256(served: tuple[str, bytes], tmp_path: Path) -> None:
    base, data = served
    url = f"{base}/media/clip.mp4"
    store = open_url(url)
    assert store.writable is False
    dest = tmp_path / "in" / "clip.mp4"
    info = store.download(url, dest)
    assert dest.read_bytes() == data
    assert info.sha256 == hashlib.sha256(data).hexdigest() and info.size == len(data)
    assert store.read_bytes(url) == data


def test_stat_uses_head(served: tuple[str, bytes], http_server: Any) -> None:
    base, data = served
    url = f"{base}/media/clip.mp4"
    assert open_url(url).stat(url).size == len(data)
    assert http_server.hits == [("HEAD", "/media/clip.mp4")]
    assert open_url(url).exists(url)
    assert not open_url(url).exists(f"{base}/media/other.mp4")


def test_stat_falls_back_to_get_when_head_refused(served: tuple[str, bytes], http_server: Any) -> None:
    base, data = served
    url = f"{base}/nohead/clip.mp4"
    assert open_url(url).stat(url).size == len(data)
    assert [m for m, _ in http_server.hits] == ["HEAD", "GET"]


def test_missing_is_not_found_and_not_retried(served: tuple[str, bytes], http_server: Any) -> None:
    base, _ = served
    url = f"{base}/media/missing.mp4?token=s3cr3t"
    with pytest.raises(ObjectNotFound) as info:
        open_url(url).stat(url)
    text = str(info.value)
    assert f"{base}/media/missing.mp4" in text and info.value.hint
    assert "s3cr3t" not in text  # query strings may hold signatures
    assert info.value.fields["status"] == 404 and len(http_server.hits) == 1


def test_unauthorized_is_credentials_refused(http_server: Any) -> None:
    url = f"{http_server.base_url}/private/x.mp4"
    with pytest.raises(CredentialsRefused) as info:
        open_url(url).download(url, Path("/nonexistent-dir-never-created/x.mp4"))
    assert url in str(info.value) and info.value.fields["status"] == 401


def test_server_error_is_retried_then_unreachable(
    http_server: Any, fast_retries: int, tmp_path: Path
) -> None:
    url = f"{http_server.base_url}/broken/x.mp4"
    with pytest.raises(StorageUnreachable) as info:
        open_url(url).download(url, tmp_path / "dl" / "x.mp4")
    assert info.value.fields["attempts"] == fast_retries
    assert http_server.hits == [("GET", "/broken/x.mp4")] * fast_retries
    assert url in str(info.value)
    assert list((tmp_path / "dl").iterdir()) == []  # no partial file left behind


def test_closed_port_is_unreachable(closed_port: int, fast_retries: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/x.mp4"
    with pytest.raises(StorageUnreachable) as info:
        open_url(url).stat(url)
    assert info.value.fields["attempts"] == fast_retries
    assert url in str(info.value) and "server is running" in str(info.value)


def test_writes_and_listing_are_unsupported(served: tuple[str, bytes], tmp_path: Path) -> None:
    base, _ = served
    url = f"{base}/media/clip.mp4"
    store = open_url(url)
    src = tmp_path / "f"
    src.write_bytes(b"x")
    for call in (
        lambda: store.upload(src, url),
        lambda: store.write_bytes(url, b"x"),
        lambda: store.delete(url),
        lambda: store.list(f"{base}/media/"),
    ):
        with pytest.raises(UnsupportedOperation) as info:
            call()
        assert base in str(info.value) and info.value.hint
