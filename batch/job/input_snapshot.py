"""One input list per sharded run, fixed by the first shard to start.

Shards take inputs by position in the expanded list. If every shard listed the
input prefix on its own, an object added or removed between two listings
would shift the positions, and an input could belong to no shard. So the
first shard to start writes the expanded list to
``<output>/inputs.<run id>.json`` with the store's create-only write; every
shard, and every restart of one, reads that snapshot instead of listing again.
The merge then checks that each position of the snapshot is covered exactly
once (see :func:`batch.job.shards.coverage_errors`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from batch.contracts import input_snapshot_name as snapshot_name  # the name is the contract's
from batch.errors import BatchError, ObjectNotFound, StorageError
from batch.job.manifest import utc_now
from batch.retry import RetryPolicy, retrying
from batch.storage import Store, join_url, redact_url

log = logging.getLogger("batch")

SCHEMA = "batch-inputs/1"
SHORT_READ = RetryPolicy(attempts=20, base_wait_s=0.1, max_wait_s=0.1, jitter=False)  # 20 reads, 0.1 s apart


def encode(
    items: list[str | BatchError], run_id: str | None, config_inputs: list[str] | None = None
) -> bytes:
    """The list as JSON; a configured URL that carries a secret (a presigned query) is stored as a
    reference to its place in the config, never itself: the snapshot lives in the bucket."""
    config_inputs = config_inputs or []
    entries: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, str):
            entries.append({"error": item.to_dict()})
        elif redact_url(item) != item and item in config_inputs:
            entries.append({"config_input": config_inputs.index(item), "shown": redact_url(item)})
        else:
            entries.append({"url": item})
    body = {"schema": SCHEMA, "run_id": run_id, "created_at": utc_now(), "inputs": entries}
    return (json.dumps(body, indent=2) + "\n").encode()


def _error_class(code: str) -> type[BatchError]:
    todo: list[type[BatchError]] = [BatchError]
    while todo:
        cls = todo.pop()
        if cls.code == code:
            return cls
        todo += cls.__subclasses__()
    return StorageError


def decode(data: bytes, config_inputs: list[str] | None = None) -> list[str | BatchError]:
    """The snapshot's list (errors as the same error types). Raises ValueError when it is not one."""
    body = json.loads(data)
    if not isinstance(body, dict) or body.get("schema") != SCHEMA or not isinstance(body.get("inputs"), list):
        raise ValueError("not an input snapshot")
    config_inputs = config_inputs or []
    out: list[str | BatchError] = []
    for entry in body["inputs"]:
        if not isinstance(entry, dict):
            raise ValueError(f"entry {entry!r} is not an object")
        if isinstance(entry.get("url"), str) and entry["url"]:
            out.append(entry["url"])
        elif isinstance(entry.get("config_input"), int) and 0 <= entry["config_input"] < len(config_inputs):
            out.append(config_inputs[entry["config_input"]])
        elif isinstance(entry.get("error"), dict):
            err = dict(entry["error"])
            kind = _error_class(str(err.pop("type", "")))
            message, hint = str(err.pop("message", "input listing failed")), err.pop("hint", None)
            try:
                out.append(kind(message, hint=hint, **err))
            except TypeError:  # an error type with its own constructor: keep the words
                out.append(StorageError(message, hint=hint))
        else:
            raise ValueError(f"entry {entry!r} names no input")
    return out


def fixed_inputs(
    store: Store,
    output: str,
    run_id: str | None,
    expand: Callable[[], list[str | BatchError]],
    *,
    job_id: str = "",
    config_inputs: list[str] | None = None,
) -> tuple[list[str | BatchError], str]:
    """The run's input list (the snapshot's, else ``expand()``'s, saved first) and its sha256.

    A listing that failed anywhere is used but not saved: the next shard, or a restart, lists
    again rather than inherit a passing outage.
    """
    url = join_url(output, snapshot_name(run_id, job_id, config_inputs))
    data = _read(store, url)
    if data is not None:
        log.info("inputs: the run's snapshot %s", redact_url(url))
        return _decoded(data, url, config_inputs), hashlib.sha256(data).hexdigest()
    items = expand()
    data = encode(items, run_id, config_inputs)
    if any(not isinstance(item, str) for item in items):
        log.warning("inputs: the listing had errors; not saved as the run's snapshot")
        return items, hashlib.sha256(data).hexdigest()
    create = getattr(store, "create_bytes", None)
    if create is not None:
        if create(url, data, "application/json") is None:  # another shard was first: take its list
            data = _read(store, url) or data
            log.info("inputs: another shard's snapshot %s", redact_url(url))
        else:
            log.info("inputs: wrote the run's snapshot %s", redact_url(url))
    else:  # no create-only write here (B2): the last writer in a near tie wins; the merge tells
        store.write_bytes(url, data, "application/json")
        data = _read(store, url) or data
    return _decoded(data, url, config_inputs), hashlib.sha256(data).hexdigest()


def _read(store: Store, url: str) -> bytes | None:
    """The snapshot's bytes, None when absent; a short read (a create still writing) is read again."""
    read: list[bytes] = []
    try:
        for attempt in retrying(SHORT_READ, retry_on=lambda e: isinstance(e, _ShortRead)):
            with attempt:
                try:
                    data = store.read_bytes(url)
                except ObjectNotFound:
                    return None
                read[:] = [data]
                try:
                    json.loads(data)
                except ValueError as e:
                    raise _ShortRead from e
                return data
    except _ShortRead:
        return read[0]  # not JSON after all: _decoded says so
    raise AssertionError("unreachable: tenacity stopped without an outcome")


class _ShortRead(Exception):
    """The snapshot read is not JSON (yet): read it again."""


def _decoded(data: bytes, url: str, config_inputs: list[str] | None) -> list[str | BatchError]:
    try:
        return decode(data, config_inputs)
    except ValueError as e:
        raise StorageError(
            f"{redact_url(url)} is not a valid input snapshot ({e})",
            hint="give this run a new BATCH_RUN_ID (a new snapshot is written), or repair the file",
            url=redact_url(url),
        ) from e
