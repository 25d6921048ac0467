"""Free-space checks, eviction of kept copies, and ENOSPC named as a full disk."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from batch import disk
from batch.errors import DiskFull
from batch.storage._io import atomic_output


def test_require_names_the_need_and_the_space_left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCH_TEST_DISK_FREE_BYTES", str(300 << 20))
    monkeypatch.setattr(disk, "RESERVE_BYTES", 64 << 20)
    disk.require(tmp_path / "not" / "yet", 200 << 20, "the download")  # fits
    with pytest.raises(DiskFull) as got:
        disk.require(tmp_path, 1 << 30, "the download")
    msg = str(got.value)
    assert "the download" in msg and "1.0 GiB" in msg and "300.0 MiB is free" in msg and "--disk" in msg
    assert got.value.to_dict()["type"] == "disk_full" and got.value.exit_code == 1


def test_require_drops_kept_copies_oldest_first_before_giving_up(tmp_path: Path, monkeypatch) -> None:
    kept = tmp_path / "outputs"
    for i, name in enumerate(["old", "mid", "new"]):
        p = kept / name / "v.mp4"
        p.parent.mkdir(parents=True)
        p.write_bytes(b"x" * 1000)
        os.utime(p, (time.time() - 100 + i, time.time() - 100 + i))
    monkeypatch.setenv("BATCH_TEST_DISK_FREE_BYTES", "5000")
    monkeypatch.setattr(disk, "RESERVE_BYTES", 0)
    disk.require(tmp_path, 6500, "the join", make_room=disk.evict_oldest(kept))
    left = sorted(p.parent.name for p in kept.rglob("*.mp4"))
    assert left == ["new"]  # two dropped (1500 short), the newest kept
    with pytest.raises(DiskFull):  # nothing left to drop that would be enough
        disk.require(tmp_path, 10**9, "the join", make_room=disk.evict_oldest(kept))


def test_real_free_space_is_read_from_the_nearest_existing_parent(tmp_path: Path) -> None:
    assert disk.free_bytes(tmp_path / "a" / "b" / "c") == disk.free_bytes(tmp_path) > 0


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_enospc_in_an_atomic_write_is_a_disk_full_error_and_leaves_nothing(tmp_path: Path, code: int) -> None:
    dest = tmp_path / "source.mp4"
    with pytest.raises(DiskFull) as got, atomic_output(dest) as f:
        f.write(b"abc")
        raise OSError(code, os.strerror(code))
    assert "source.mp4" in str(got.value) and isinstance(got.value.__cause__, OSError)
    assert list(tmp_path.iterdir()) == []


def test_other_os_errors_pass_through_unchanged(tmp_path: Path) -> None:
    with pytest.raises(PermissionError), atomic_output(tmp_path / "x") as f:
        f.write(b"abc")
        raise PermissionError(errno.EACCES, "denied")


def test_dev_full_is_named(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    with pytest.raises(DiskFull), disk.named_when_full(tmp_path, "a write"), open("/dev/full", "wb") as f:
        f.write(b"x" * 4096)
        f.flush()


def test_an_http_download_larger_than_the_free_disk_fails_before_writing(
    http_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The length the server announces is checked before a byte is written; not retried."""
    from batch.storage import open_url

    (http_server.root / "big.mp4").write_bytes(b"v" * 50_000)
    monkeypatch.setenv("BATCH_TEST_DISK_FREE_BYTES", "20000")
    monkeypatch.setattr(disk, "RESERVE_BYTES", 0)
    dest = tmp_path / "work" / "source.mp4"
    url = f"{http_server.base_url}/big.mp4"
    with pytest.raises(DiskFull) as got:
        open_url(url).download(url, dest)
    assert "48.8 KiB" in str(got.value) and "19.5 KiB is free" in str(got.value)
    assert list(dest.parent.iterdir()) == []
    gets = [h for h in http_server.hits if "big.mp4" in str(h)]
    assert len(gets) == 1  # a full disk is not a network fault: no retry
