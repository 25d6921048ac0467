"""A local (file://) output is read back whole, whatever its size: over 16 MiB it had been checked by
size alone, so bytes changed in place passed as verified (outside review). Real files, LocalStore."""

from __future__ import annotations

import hashlib
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
