"""Every store tells a transfer's bytes to the progress callback, and a callback that fails fails nothing.

Real stores: the local disk, SeaweedFS (s3, multipart included), b2sdk's
simulator (b2), a local HTTP server (http).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from batch.storage import StorageSettings, open_url
from batch.storage.s3 import S3Store
from batch.storage.s3_config import MIB

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fast_retries")]


class Seen:
    """What a store told: (done, total) pairs, from any thread."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[int, int | None]] = []
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, done: int, total: int | None) -> None:
        with self.lock:
            self.calls.append((done, total))
        if self.fail:
            raise RuntimeError("a progress display that breaks")

    def check(self, size: int) -> None:
        assert self.calls, "never told"
        assert self.calls[-1] == (size, size) or max(d for d, _ in self.calls) == size, self.calls[-5:]
        assert all(0 <= d <= size and t in (size, None) for d, t in self.calls), self.calls[-5:]


def blob(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


@pytest.mark.parametrize("fail", [False, True], ids=["told", "display-raises"])
def test_local_store(tmp_path: Path, fail: bool) -> None:
    src = blob(tmp_path / "a.bin", 3 * MIB + 7)
    store = open_url(f"file://{tmp_path}/out/")
    up, down = Seen(fail), Seen(fail)
    store.upload(src, f"file://{tmp_path}/out/a.bin", progress=up)
    got = store.download(f"file://{tmp_path}/out/a.bin", tmp_path / "b.bin", progress=down)
    up.check(src.stat().st_size)
    down.check(src.stat().st_size)
    assert got.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()


@pytest.mark.parametrize("size", [300_001, 11 * MIB], ids=["one-call", "multipart"])
def test_s3_store(s3_prefix: str, tmp_path: Path, size: int) -> None:
    src = blob(tmp_path / "a.bin", size)
    store = S3Store(StorageSettings(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB))
    up, down = Seen(fail=True), Seen()
    store.upload(src, s3_prefix + "a.bin", progress=up)
    got = store.download(s3_prefix + "a.bin", tmp_path / "b.bin", progress=down)
    up.check(size)
    down.check(size)
    assert got.size == size and (tmp_path / "b.bin").read_bytes() == src.read_bytes()


def test_b2_store(b2_api: Any, tmp_path: Path) -> None:
    src = blob(tmp_path / "a.bin", 200_003)
    url = f"b2://{b2_api.bucket_name}/a.bin"
    store = open_url(url)
    up, down = Seen(), Seen(fail=True)
    store.upload(src, url, progress=up)
    store.download(url, tmp_path / "b.bin", progress=down)
    up.check(200_003)
    down.check(200_003)
    assert (tmp_path / "b.bin").read_bytes() == src.read_bytes()


def test_http_store(http_server: Any, tmp_path: Path) -> None:
    blob(http_server.root / "a.bin", 2 * MIB + 1)
    down = Seen()
    open_url(f"{http_server.base_url}/a.bin").download(
        f"{http_server.base_url}/a.bin", tmp_path / "b.bin", progress=down
    )
    down.check(2 * MIB + 1)
    assert len(down.calls) > 1  # told as the bytes came, not once at the end
