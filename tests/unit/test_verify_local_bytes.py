"""A local (file://) output is read back whole, whatever its size: over 16 MiB it had been checked by
size alone, so bytes changed in place passed as verified (outside review). Real files, LocalStore."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from batch.storage.local import LocalStore
from batch.watchdog.verify import REREAD_MAX_BYTES, ObjectCheck, manifest_check, problem_with, reupload


def test_a_large_local_output_changed_in_place_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "big.mp4"
    data = os.urandom(REREAD_MAX_BYTES + 4096)
    path.write_bytes(data)
    check = ObjectCheck("big.mp4", str(path), len(data), hashlib.sha256(data).hexdigest(), None)
    store = LocalStore()
    assert problem_with(store, check) is None
    with path.open("r+b") as f:
        f.seek(len(data) // 2)
        f.write(b"\0" * 64)
    assert problem_with(store, check) == "the bytes read back do not match the manifest's sha256"


def test_the_manifest_is_put_back_from_its_bytes(tmp_path: Path) -> None:
    url = str(tmp_path / "manifest.json")
    good = b'{"status": "succeeded"}\n'
    check = manifest_check(url, "manifest.json", good)
    store = LocalStore()
    assert problem_with(store, check) == "missing from the bucket"
    check.problem = "missing from the bucket"
    assert reupload(store, check, tmp_path / "no-kept-copies") is None
    assert Path(url).read_bytes() == good and problem_with(store, check) is None and check.reuploads == 1


def test_objects_that_passed_every_check_there_was_time_for_are_verified(tmp_path: Path, monkeypatch) -> None:
    """A read-back slower than the rounds (a large local output): the time limit passes with every
    check found good; that is verified, not verification_failed with "None" for each object and the
    manifest amended to failed (outside review: rc 3, stop instead of destroy)."""
    import time

    from batch.providers.local import LocalProvider
    from batch.watchdog import verify, watch

    out = tmp_path / "out"
    (out / "v").mkdir(parents=True)
    data = b"x" * 1000
    (out / "v" / "v.mp4").write_bytes(data)
    entry = {"key": "v/v.mp4", "url": str(out / "v" / "v.mp4"), "size": len(data),
             "sha256": hashlib.sha256(data).hexdigest()}  # fmt: skip
    manifest = {"status": "succeeded", "inputs": [{"outputs": [entry]}]}
    slow = verify.problem_with

    def slow_check(store, obj):  # type: ignore[no-untyped-def]
        time.sleep(0.15)
        return slow(store, obj)

    monkeypatch.setattr(watch, "problem_with", slow_check)
    settings = watch.WatchdogSettings(
        state_dir=tmp_path / "state", provider=LocalProvider(tmp_path / "state"), output=f"{out}/",
        dry_run=True, confirm=3, interval_s=0.01, upload_timeout_s=0.05,
    )  # fmt: skip
    (tmp_path / "state").mkdir()
    wd = watch.Watchdog(settings)
    wd._verify_and_shut_down(manifest)
    record = json.loads((tmp_path / "state" / "watchdog.json").read_text())["shutdown"]
    assert (record["action"], record["reason"]) == ("destroy", "verified"), record
