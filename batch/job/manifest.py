"""The upload manifest: ``<output>/manifest.json``, written last.

Schema ``batch-manifest/1`` is documented in docs/manifest.md. A user can
verify every output from the manifest alone: each output lists its key, size,
sha256 and the store's own checksum or ETag. A manifest already at the prefix
is archived under ``manifests/`` before it is replaced, never lost.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batch import __version__, faults
from batch.contracts import (
    LAUNCH_ID_ENV,
    MANIFEST,
    manifest_archive_url,
    manifest_url,
    previous_output_url,
    state_file,
)
from batch.errors import BatchError, ObjectNotFound, exit_code_for
from batch.storage import ObjectInfo, Store, join_url

SCHEMA = "batch-manifest/1"


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def output_entry(kind: str, key: str, info: ObjectInfo) -> dict[str, Any]:
    return {
        "kind": kind,
        "key": key,
        "url": info.url,
        "size": info.size,
        "sha256": info.sha256,
        "etag": info.etag,
        "store_checksum": info.store_checksum or None,
    }


@dataclass
class InputRecord:
    """Everything the manifest says about one input."""

    index: int
    source: dict[str, Any]
    status: str = "pending"  # succeeded | failed | cancelled
    media_in: dict[str, Any] | None = None
    media_out: dict[str, Any] | None = None
    stages: list[dict[str, Any]] = field(default_factory=list)
    encode: dict[str, Any] | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    chunks: dict[str, Any] | None = None  # {"count", "chunk_frames", "reused", "processed"}
    dropped_streams: list[dict[str, Any]] = field(default_factory=list)  # {index, type, codec, reason}
    error: BatchError | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "status": self.status,
            "source": self.source,
            "media_in": self.media_in,
            "media_out": self.media_out,
            "stages": self.stages,
            "encode": self.encode,
            "outputs": self.outputs,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "notes": self.notes,
            "chunks": self.chunks,
            "dropped_streams": self.dropped_streams,
            "error": self.error.to_dict() if self.error else None,
        }


@dataclass
class Manifest:
    job_id: str
    config: dict[str, Any] | None
    dry_run: bool
    shard: dict[str, Any] | None = None  # {"index": I, "count": N, "run_id": ...} when sharded
    started_at: str = field(default_factory=utc_now)
    # One run of the entrypoint: the supervisor sets it for the runner and the
    # watchdog, which takes only a manifest with its own run id for this run's.
    launch_id: str = field(default_factory=lambda: os.environ.get(LAUNCH_ID_ENV) or uuid.uuid4().hex)
    inputs: list[InputRecord] = field(default_factory=list)
    job_errors: list[BatchError] = field(default_factory=list)

    @property
    def errors(self) -> list[BatchError]:
        return self.job_errors + [r.error for r in self.inputs if r.error is not None]

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.errors)

    @property
    def status(self) -> str:
        if self.job_errors:
            return "failed"
        if not self.inputs:  # a shard with nothing to do (more shards than inputs) is done, not failed:
            return "succeeded" if self.shard else "failed"  # its instance is destroyed, not kept billing
        done = sum(r.status == "succeeded" for r in self.inputs)
        if done == len(self.inputs):
            return "succeeded"
        return "partial" if done or any(r.status == "cancelled" for r in self.inputs) else "failed"

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for r in self.inputs:
            counts[r.status] = counts.get(r.status, 0) + 1
        return {
            "schema": SCHEMA,
            "job_id": self.job_id,
            "launch_id": self.launch_id,
            "status": self.status,
            "exit_code": self.exit_code,
            "dry_run": self.dry_run,
            "started_at": self.started_at,
            "finished_at": utc_now(),
            "runner": {
                "version": __version__,
                "host": socket.gethostname(),
                "python": platform.python_version(),
            },
            **({"shard": self.shard} if self.shard else {}),
            "counts": counts,
            "errors": [e.to_dict() for e in self.job_errors],
            "inputs": [r.to_dict() for r in self.inputs],
            "config": self.config,
        }

    def to_json(self) -> bytes:
        return (json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n").encode()


def write_local(manifest: Manifest | bytes, state_dir: Path, name: str = MANIFEST) -> Path:
    """Write the manifest to ``<state_dir>/<name>`` (atomically)."""
    data = manifest if isinstance(manifest, bytes) else manifest.to_json()
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_file(state_dir, name)
    faults.unwritable(name)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def key_stamp(utc: str) -> str:
    """``2026-12-03T04:08:30Z`` as ``20261203T040830Z``: a time that reads well in an object key."""
    return utc.replace(":", "").replace("-", "")


def archive_previous(store: Store, output: str, previous: bytes | None, name: str = MANIFEST) -> None:
    """Copy an earlier manifest to ``manifests/<name stem>.<its finished_at>.json``."""
    if previous is None:
        return
    try:
        stamp = json.loads(previous).get("finished_at") or utc_now()
    except (ValueError, AttributeError):
        stamp = utc_now()
    stamp = key_stamp(str(stamp))
    suffix = free_suffix(store, lambda n: manifest_archive_url(output, name, stamp + n), previous)
    if suffix is not None:
        store.write_bytes(manifest_archive_url(output, name, stamp + suffix), previous, "application/json")


def archive_output(store: Store, output: str, key: str, started_at: str) -> str | None:
    """Copy the object at ``key`` (an earlier run's) to ``previous/<run start>[-n]/<key>``, a key that
    holds nothing yet; returns the folder's name, or None when there is nothing at ``key``."""
    url = join_url(output, key)
    try:
        store.stat(url)
    except ObjectNotFound:
        return None
    base = key_stamp(started_at)
    stamp = base + (free_suffix(store, lambda n: previous_output_url(output, base + n, key)) or "")
    store.copy(url, previous_output_url(output, stamp, key))
    return stamp


def free_suffix(store: Store, url_for: Callable[[str], str], same: bytes | None = None) -> str | None:
    """The first of "", "-2", "-3", ... for which ``url_for(suffix)`` holds nothing: archive keys are
    stamped to the second, and two runs can start (or end) in the same second. None when one of
    them already holds ``same`` (archived before: nothing to write)."""
    for n in range(1, 10_000):
        suffix = "" if n == 1 else f"-{n}"
        try:
            if same is None:
                store.stat(url_for(suffix))
            elif store.read_bytes(url_for(suffix)) == same:
                return None
        except ObjectNotFound:
            return suffix
    raise BatchError(f"no free archive key up to {url_for(suffix)}", hint="clear out old archives")


def publish(manifest: Manifest | bytes, store: Store, output: str, name: str = MANIFEST) -> ObjectInfo:
    """Archive any earlier manifest of that name at the prefix, then write this one."""
    data = manifest if isinstance(manifest, bytes) else manifest.to_json()
    url = manifest_url(output, name)
    try:
        previous = store.read_bytes(url)
    except ObjectNotFound:
        previous = None
    archive_previous(store, output, previous, name)
    return store.write_bytes(url, data, content_type="application/json")
