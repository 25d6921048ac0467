"""Confirm from the bucket that every object a manifest lists landed intact.

Each object is checked by size, by the sha256 recorded with it at upload,
by the store's own checksum where it offers one, and, for small files, by
reading the bytes back. An object that is missing or wrong is uploaded again
from the local copy the runner kept, and its count of good checks restarts.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch.errors import ObjectNotFound
from batch.storage import Store, join_url, parse_url
from batch.storage.local import local_path

log = logging.getLogger("batch.watchdog.watch")

REREAD_MAX_BYTES = 16 * 1024 * 1024  # small objects are read back and hashed


@dataclass
class ObjectCheck:
    key: str  # relative to the output prefix
    url: str
    size: int
    sha256: str | None
    store_checksum: dict[str, str] | None
    passes: int = 0
    reuploads: int = 0
    problem: str | None = None
    data: bytes | None = None  # the bytes to put back (the manifest itself), else the kept local copy

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "passes": self.passes, "reuploads": self.reuploads, "problem": self.problem}


def manifest_check(url: str, name: str, data: bytes) -> ObjectCheck:
    """The manifest itself, as this run published it: a manifest replaced or deleted after the
    runner's end is put back (the outputs' checks alone had let a garbage one pass as verified)."""
    digest = hashlib.sha256(data).hexdigest()
    return ObjectCheck(key=name, url=url, size=len(data), sha256=digest, store_checksum=None, data=data)


def objects_in(manifest: dict[str, Any], output: str) -> list[ObjectCheck]:
    """Every output object the manifest lists (the manifest itself: :func:`manifest_check`)."""
    checks = []
    for entry in manifest.get("inputs") or []:
        for out in entry.get("outputs") or []:
            checks.append(
                ObjectCheck(
                    key=out["key"],
                    url=out.get("url") or join_url(output, out["key"]),
                    size=int(out["size"]),
                    sha256=out.get("sha256"),
                    store_checksum=out.get("store_checksum"),
                )
            )
    return checks


def problem_with(store: Store, obj: ObjectCheck) -> str | None:
    """None when the object in the bucket matches the manifest, else what is wrong.

    Raises StorageUnreachable / CredentialsRefused: the caller decides to wait.
    """
    try:
        info = store.stat(obj.url)
    except ObjectNotFound:
        return "missing from the bucket"
    if info.size != obj.size:
        return f"size {info.size} in the bucket, {obj.size} in the manifest"
    if obj.sha256 and info.sha256 and info.sha256 != obj.sha256:
        return "the sha256 recorded with the object differs from the manifest's"
    if obj.store_checksum and info.store_checksum:
        same_type = obj.store_checksum.get("type") == info.store_checksum.get("type")
        if same_type and obj.store_checksum.get("value") != info.store_checksum.get("value"):
            return f"the store's {info.store_checksum.get('type')} checksum changed"
    if obj.sha256 and parse_url(obj.url)[0] == "file":  # a local disk: every byte, whatever the size
        try:
            same = _local_sha256(local_path(obj.url)) == obj.sha256
        except OSError as e:
            return f"could not be read back: {e.strerror}"
        return None if same else "the bytes read back do not match the manifest's sha256"
    small = obj.sha256 and obj.size <= REREAD_MAX_BYTES
    if small and hashlib.sha256(store.read_bytes(obj.url)).hexdigest() != obj.sha256:
        return "the bytes read back do not match the manifest's sha256"
    return None


_hashed: dict[tuple[str, int, int, int], str] = {}  # (path, inode, size, mtime_ns) -> sha256


def _local_sha256(path: Path) -> str:
    """A local file's sha256, read once while it stays the same file (each check round of a large
    output would read it again: rounds that outlast the verification's time limit)."""
    st = path.stat()
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _hashed:
        with path.open("rb") as f:
            _hashed[key] = hashlib.file_digest(f, "sha256").hexdigest()
    return _hashed[key]


def reupload(store: Store, obj: ObjectCheck, local_outputs: Path) -> str | None:
    """Upload the kept local copy again. None on success, else why it could not."""
    if obj.data is not None:
        store.write_bytes(obj.url, obj.data, "application/json")
        obj.reuploads += 1
        obj.passes = 0
        log.warning("put %s back after: %s", obj.key, obj.problem)
        return None
    local = local_outputs / obj.key
    if not local.is_file():
        return f"no local copy at {local} to upload again"
    with local.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    if obj.sha256 and digest != obj.sha256:
        return f"the local copy at {local} does not match the manifest either"
    store.upload(local, obj.url)
    obj.reuploads += 1
    obj.passes = 0
    log.warning("re-uploaded %s after: %s", obj.key, obj.problem)
    return None
