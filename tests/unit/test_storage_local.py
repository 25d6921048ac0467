"""Local backend, URL helpers, open_url dispatch and the retry policy."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from batch.errors import (
    CredentialsRefused,
    ObjectNotFound,
    StorageUnreachable,
    UnsupportedOperation,
)
from batch.retry import call_with_retry, policy_from_env
from batch.storage import (
    ObjectInfo,
    StorageSettings,
    Store,
    clear_cache,
    join_url,
    open_url,
    parse_url,
    redact_url,
)
from batch.storage.local import LocalStore


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    src = tmp_path / "src" / "clip.bin"
    src.parent.mkdir()
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # spans several copy chunks
    return src


# --- URLs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://bkt/a/b.mp4", ("s3", "bkt", "a/b.mp4")),
        ("S3://bkt", ("s3", "bkt", "")),
        ("b2://bkt/dir/", ("b2", "bkt", "dir/")),
        ("https://h:8080/p/x.mp4?sig=1", ("https", "h:8080", "p/x.mp4?sig=1")),
        ("file:///data/in.mp4", ("file", "", "/data/in.mp4")),
        ("file://localhost/data/in.mp4", ("file", "", "/data/in.mp4")),
        ("out/x.mp4", ("file", "", "out/x.mp4")),
        ("/abs/x.mp4", ("file", "", "/abs/x.mp4")),
    ],
)
def test_parse_url(url: str, expected: tuple[str, str, str]) -> None:
    assert parse_url(url) == expected


@pytest.mark.parametrize("url", ["gs://bkt/x", "s3:///key", "file://otherhost/x", ""])
def test_parse_url_rejects(url: str) -> None:
    with pytest.raises(UnsupportedOperation) as info:
        parse_url(url)
    assert info.value.hint


def test_join_url() -> None:
    assert join_url("s3://b/out/", "x", "y.mp4") == "s3://b/out/x/y.mp4"
    assert join_url("s3://b/out", "/x/", "y/") == "s3://b/out/x/y/"
    assert join_url("s3://b", "", "k") == "s3://b/k"
    assert join_url("out", "a.mp4") == "out/a.mp4"


def test_redact_url_hides_query_and_userinfo() -> None:
    url = "https://user:pw@h.example/v.mp4?X-Amz-Signature=abc123"
    shown = redact_url(url)
    assert "pw" not in shown and "abc123" not in shown
    assert shown.startswith("https://***@h.example/v.mp4")
    assert redact_url("s3://b/k?odd#name") == "s3://b/k?odd#name"


# --- open_url --------------------------------------------------------------------


def test_open_url_picks_backend_and_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    clear_cache()
    local = open_url("/tmp/x")
    assert isinstance(local, LocalStore) and local is open_url("file:///y")
    s3 = open_url("s3://bkt/k")
    assert s3.scheme == "s3" and s3 is open_url("s3://bkt/other")
    assert open_url("s3://bkt/k", StorageSettings(region="eu-west-1")) is not s3
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "rotated")
    assert open_url("s3://bkt/k") is not s3  # new credentials, new client
    assert open_url("https://h/x").scheme == "https"
    assert open_url("http://h/x").writable is False
    assert isinstance(s3, Store)
    clear_cache()


def test_import_is_light() -> None:
    code = (
        "import sys, batch.storage\n"
        "heavy = [m for m in ('boto3', 'botocore', 'b2sdk', 'requests') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


# --- local backend -----------------------------------------------------------------


def test_round_trip_with_sha256(tmp_path: Path, payload: Path) -> None:
    store = open_url(str(tmp_path))
    url = f"file://{tmp_path}/bucket/deep/dir/clip.bin"
    up = store.upload(payload, url)
    assert up == ObjectInfo(url=url, size=payload.stat().st_size, sha256=sha256_of(payload))
    assert (tmp_path / "bucket/deep/dir/clip.bin").read_bytes() == payload.read_bytes()

    dest = tmp_path / "down" / "again" / "clip.bin"
    down = store.download(url, dest)
    assert down.sha256 == sha256_of(payload) == sha256_of(dest)
    assert down.size == dest.stat().st_size == payload.stat().st_size
    assert store.stat(url).size == payload.stat().st_size


def test_no_partial_files_left(tmp_path: Path, payload: Path) -> None:
    store = LocalStore()
    store.upload(payload, str(tmp_path / "out" / "a.bin"))
    store.write_bytes(str(tmp_path / "out" / "b.json"), b"{}")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.bin", "b.json"]


def test_list_exists_delete(tmp_path: Path) -> None:
    store = LocalStore()
    base = f"file://{tmp_path}/out/"
    for name, data in [("b.txt", b"bb"), ("a/z.txt", b"z"), ("a/y.txt", b"yyy")]:
        store.write_bytes(base + name, data)
    (tmp_path / "outside.txt").write_text("not under the prefix")
    listed = store.list(base)
    assert [o.url for o in listed] == [
        base + "a/y.txt",
        base + "a/z.txt",
        base + "b.txt",
    ]
    assert [o.size for o in listed] == [3, 1, 2]
    assert store.list(f"file://{tmp_path}/out") == listed  # missing slash: same folder
    assert store.list(f"file://{tmp_path}/nothing/") == []

    assert store.exists(base + "b.txt")
    store.delete(base + "b.txt")
    assert not store.exists(base + "b.txt")
    store.delete(base + "b.txt")  # deleting twice is fine
    assert store.read_bytes(base + "a/y.txt") == b"yyy"


def test_write_bytes_replaces_atomically(tmp_path: Path) -> None:
    store = LocalStore()
    url = str(tmp_path / "status.json")
    store.write_bytes(url, b"old")
    info = store.write_bytes(url, b"new!")
    assert info.size == 4 and info.sha256 == hashlib.sha256(b"new!").hexdigest()
    assert Path(url).read_bytes() == b"new!"


def test_missing_object_names_url(tmp_path: Path) -> None:
    store = LocalStore()
    url = f"file://{tmp_path}/nope.mp4"
    for call in (
        lambda: store.stat(url),
        lambda: store.download(url, tmp_path / "d.mp4"),
        lambda: store.read_bytes(url),
    ):
        with pytest.raises(ObjectNotFound) as info:
            call()
        assert url in str(info.value) and info.value.hint
    assert not (tmp_path / "d.mp4").exists()
    with pytest.raises(ObjectNotFound):
        store.upload(tmp_path / "missing-src.bin", str(tmp_path / "dst.bin"))
    with pytest.raises(ObjectNotFound):
        store.stat(str(tmp_path))  # a directory is not an object


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_permission_denied(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(CredentialsRefused):
        LocalStore().write_bytes(str(locked / "x"), b"x")


# --- retry policy -------------------------------------------------------------------


def test_retry_is_bounded_and_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_RETRY_ATTEMPTS", "4")
    monkeypatch.setenv("STORAGE_RETRY_MAX_WAIT_S", "0")
    calls: list[int] = []

    def down() -> None:
        calls.append(1)
        raise StorageUnreachable("down", hint="h", url="s3://b/k")

    with pytest.raises(StorageUnreachable) as info:
        call_with_retry(down)
    assert len(calls) == 4 and info.value.fields["attempts"] == 4

    calls.clear()

    def refused() -> None:
        calls.append(1)
        raise CredentialsRefused("no", hint="h")

    with pytest.raises(CredentialsRefused):
        call_with_retry(refused)
    assert len(calls) == 1  # not retryable: one call only

    calls.clear()

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise StorageUnreachable("blip")
        return "ok"

    assert call_with_retry(flaky) == "ok" and len(calls) == 3


def test_retry_policy_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STORAGE_RETRY_ATTEMPTS", "STORAGE_RETRY_MAX_WAIT_S"):
        monkeypatch.delenv(name, raising=False)
    policy = policy_from_env()
    assert policy.attempts == 5 and policy.max_wait_s == 30.0
    monkeypatch.setenv("STORAGE_RETRY_ATTEMPTS", "0")
    assert policy_from_env().attempts == 1
