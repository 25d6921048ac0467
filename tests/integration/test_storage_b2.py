"""B2 backend against b2sdk's own RawSimulator (fixture b2_api)."""

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
    UploadVerificationFailed,
)
from batch.storage import open_url
from batch.storage.b2 import B2Store

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fast_retries")]


def digest(data: bytes, name: str = "sha256") -> str:
    return hashlib.new(name, data).hexdigest()


def test_open_url_uses_injected_api(b2_api: Any) -> None:
    store = open_url(f"b2://{b2_api.bucket_name}/x")
    assert isinstance(store, B2Store) and store.scheme == "b2"
    assert store is open_url(f"b2://{b2_api.bucket_name}/y")


@pytest.mark.parametrize("size", [150, 5_000], ids=["small-file", "large-file"])
def test_round_trip_verifies_sha1(b2_api: Any, tmp_path: Path, size: int) -> None:
    """150 bytes is one part; 5000 bytes is a B2 large file (the simulator's
    part size is 200 bytes), whose SHA1 lives in the large_file_sha1 info."""
    data = os.urandom(size)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    url = f"b2://{b2_api.bucket_name}/out/in.bin"
    store = open_url(url)

    up = store.upload(src, url, content_type="application/octet-stream")
    assert up.size == size and up.sha256 == digest(data)
    assert up.store_checksum == {"type": "sha1", "value": digest(data, "sha1")}

    landed = b2_api.bucket.get_file_info_by_name("out/in.bin")
    assert landed.file_info["sha256"] == digest(data)
    if size > 200:
        assert landed.content_sha1 == "none"  # B2 gives large files no whole-file SHA1
        assert landed.file_info["large_file_sha1"] == digest(data, "sha1")
    else:
        assert landed.content_sha1 == digest(data, "sha1")

    info = store.stat(url)
    assert info.size == size and info.sha256 == digest(data)
    dest = tmp_path / "down" / "copy.bin"
    down = store.download(url, dest)
    assert dest.read_bytes() == data
    assert down.sha256 == digest(data) and down.size == size
    assert store.read_bytes(url) == data


def test_write_bytes_large_records_sha1(b2_api: Any) -> None:
    data = os.urandom(1_000)
    url = f"b2://{b2_api.bucket_name}/manifest.json"
    info = open_url(url).write_bytes(url, data, content_type="application/json")
    assert info.store_checksum["value"] == digest(data, "sha1")
    assert open_url(url).read_bytes(url) == data


def test_list_exists_delete_all_versions(b2_api: Any) -> None:
    base = f"b2://{b2_api.bucket_name}/job/"
    store = open_url(base)
    for name, data in [("b.txt", b"bb"), ("a/z.txt", b"z"), ("a/y.txt", b"yyy")]:
        store.write_bytes(base + name, data)
    store.write_bytes(base + "b.txt", b"bbbb")  # a second version
    store.write_bytes(f"b2://{b2_api.bucket_name}/job-other/x.txt", b"x")

    listed = store.list(base)
    assert [o.url for o in listed] == [
        base + "a/y.txt",
        base + "a/z.txt",
        base + "b.txt",
    ]
    assert [o.size for o in listed] == [3, 1, 4]  # latest version only
    assert store.list(base.rstrip("/")) == listed

    assert len(list(b2_api.bucket.list_file_versions("job/b.txt"))) == 2
    store.delete(base + "b.txt")
    assert list(b2_api.bucket.list_file_versions("job/b.txt")) == []
    assert not store.exists(base + "b.txt")
    store.delete(base + "b.txt")  # already gone: fine
    assert store.exists(base + "a/y.txt")


def test_missing_file_and_bucket(b2_api: Any, tmp_path: Path) -> None:
    url = f"b2://{b2_api.bucket_name}/nope.mp4"
    store = open_url(url)
    for call in (
        lambda: store.stat(url),
        lambda: store.download(url, tmp_path / "nope.mp4"),
    ):
        with pytest.raises(ObjectNotFound) as info:
            call()
        assert url in str(info.value) and "bucket and key" in str(info.value)
    assert not (tmp_path / "nope.mp4").exists()
    with pytest.raises(ObjectNotFound) as info:
        open_url("b2://no-such-bucket/x").stat("b2://no-such-bucket/x")
    assert "b2://no-such-bucket/x" in str(info.value)


def test_transient_upload_errors_are_retried(b2_api: Any, tmp_path: Path) -> None:
    """b2sdk tries an upload 5 times itself; 6 connection errors exhaust one
    store attempt, and our policy's next attempt succeeds."""
    from b2sdk.v2.exception import B2ConnectionError

    b2_api.simulator.set_upload_errors([B2ConnectionError("blip") for _ in range(6)])
    src = tmp_path / "f.bin"
    src.write_bytes(b"hello b2")
    url = f"b2://{b2_api.bucket_name}/retry/f.bin"
    info = open_url(url).upload(src, url)
    assert info.size == 8 and b2_api.simulator.upload_errors == []


def test_persistent_upload_errors_surface_as_unreachable(b2_api: Any, tmp_path: Path) -> None:
    from b2sdk.v2.exception import B2ConnectionError

    b2_api.simulator.set_upload_errors([B2ConnectionError("down") for _ in range(100)])
    src = tmp_path / "f.bin"
    src.write_bytes(b"hello b2")
    url = f"b2://{b2_api.bucket_name}/retry/f.bin"
    with pytest.raises(StorageUnreachable) as info:
        open_url(url).upload(src, url)
    assert info.value.fields["attempts"] == 3 and url in str(info.value)


def test_size_mismatch_fails_verification(
    b2_api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If what landed differs from the local file, upload raises."""
    src = tmp_path / "f.bin"
    src.write_bytes(b"the real content")
    url = f"b2://{b2_api.bucket_name}/verify/f.bin"
    store = open_url(url)

    def lossy_upload(local_file: str, file_name: str, **kwargs: Any) -> Any:
        kwargs.pop("sha1_sum", None)
        return b2_api.bucket.upload_bytes(b"truncated", file_name, file_info=kwargs["file_info"])

    monkeypatch.setattr(b2_api.bucket, "upload_local_file", lossy_upload)
    store._buckets[b2_api.bucket_name] = b2_api.bucket  # type: ignore[attr-defined]
    with pytest.raises(UploadVerificationFailed) as info:
        store.upload(src, url)
    assert url in str(info.value) and info.value.fields["attempts"] == 3


def test_missing_env_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("B2_APPLICATION_KEY_ID", raising=False)
    monkeypatch.delenv("B2_APPLICATION_KEY", raising=False)
    with pytest.raises(CredentialsRefused) as info:
        B2Store().stat("b2://bkt/x")
    assert "B2_APPLICATION_KEY_ID" in str(info.value) and "b2://bkt/x" in str(info.value)


def test_wrong_key_is_refused_without_leaking(monkeypatch: pytest.MonkeyPatch) -> None:
    from b2sdk.v2 import B2HttpApiConfig, RawSimulator

    wrong = "wrong-key-" + os.urandom(8).hex()
    monkeypatch.setenv("B2_APPLICATION_KEY_ID", "account-0")
    monkeypatch.setenv("B2_APPLICATION_KEY", wrong)
    store = B2Store(api_config=B2HttpApiConfig(_raw_api_class=RawSimulator))
    with pytest.raises(CredentialsRefused) as info:
        store.stat("b2://bkt/x")
    text = str(info.value) + repr(info.value.to_dict())
    assert wrong not in text and "B2_APPLICATION_KEY" in text and "b2://bkt/x" in text


@pytest.mark.parametrize("size", [150, 5_000], ids=["small-file", "large-file"])
def test_copy_is_server_side_and_verified(b2_api: Any, tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    store = open_url(f"b2://{b2_api.bucket_name}/a")
    store.upload(src, f"b2://{b2_api.bucket_name}/a/v.mp4")
    info = store.copy(f"b2://{b2_api.bucket_name}/a/v.mp4", f"b2://{b2_api.bucket_name}/previous/t/a/v.mp4")
    assert info.size == size
    assert store.read_bytes(f"b2://{b2_api.bucket_name}/previous/t/a/v.mp4") == data
    with pytest.raises(ObjectNotFound):
        store.copy(f"b2://{b2_api.bucket_name}/a/none.mp4", f"b2://{b2_api.bucket_name}/b.mp4")
