"""One input list per sharded run, fixed by the first shard to start.

Shards take inputs by position in the expanded list. If every shard listed the
input prefix on its own, an object added or removed between two listings
would shift the positions, and an input could belong to no shard. So the
first shard to start writes the expanded list to
``<output>/inputs.<run id>.json`` with the store's create-only write; every
shard, and every restart of one, reads that snapshot instead of listing again.
The merge then checks that each position of the snapshot is covered exactly
once (see :func:`batch.shards.coverage_errors`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from typing import Any

from batch.errors import BatchError, ObjectNotFound, StorageError
from batch.manifest import utc_now
from batch.storage import Store, join_url, redact_url

log = logging.getLogger("batch")

SCHEMA = "batch-inputs/1"


def snapshot_name(run_id: str | None) -> str:
    """``inputs.<run id>.json``; runs without an id share ``inputs.unnamed.json`` (set BATCH_RUN_ID)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", run_id or "")[:100] or "unnamed"
    return f"inputs.{safe}.json"


def encode(items: list[str | BatchError], run_id: str | None) -> bytes:
    entries: list[dict[str, Any]] = [
        {"url": item} if isinstance(item, str) else {"error": item.to_dict()} for item in items
    ]
    body = {"schema": SCHEMA, "run_id": run_id, "created_at": utc_now(), "inputs": entries}
    return (json.dumps(body, indent=2) + "\n").encode()


def decode(data: bytes) -> list[str | BatchError]:
    """The snapshot's list; an entry that was an error comes back as one (its type kept in the message)."""
    body = json.loads(data)
    if not isinstance(body, dict) or body.get("schema") != SCHEMA or not isinstance(body.get("inputs"), list):
        raise ValueError("not an input snapshot")
    out: list[str | BatchError] = []
    for entry in body["inputs"]:
        if isinstance(entry.get("url"), str):
            out.append(entry["url"])
            continue
        err = entry.get("error") or {}
        kind = ObjectNotFound if err.get("type") == "object_not_found" else StorageError
        out.append(kind(str(err.get("message", "input listing failed")), hint=err.get("hint")))
    return out


def fixed_inputs(
    store: Store, output: str, run_id: str | None, expand: Any
) -> tuple[list[str | BatchError], str]:
    """The run's input list (the snapshot's, else ``expand()``'s, saved first) and its sha256.

    ``expand`` lists the inputs; it is called only when no snapshot exists yet.
    """
    url = join_url(output, snapshot_name(run_id))
    try:
        data = store.read_bytes(url)
        log.info("inputs: the run's snapshot %s", redact_url(url))
        return decode(data), hashlib.sha256(data).hexdigest()
    except ObjectNotFound:
        pass
    except ValueError as e:
        raise StorageError(
            f"{redact_url(url)} is not an input snapshot ({e})",
            hint="delete it, or give this run another BATCH_RUN_ID",
            url=redact_url(url),
        ) from e
    data = encode(expand(), run_id)
    create = getattr(store, "create_bytes", None)
    if create is not None:
        if create(url, data, "application/json") is None:  # another shard was first: take its list
            data = store.read_bytes(url)
            log.info("inputs: another shard's snapshot %s", redact_url(url))
        else:
            log.info("inputs: wrote the run's snapshot %s", redact_url(url))
    else:  # no create-only write here (B2): the first writer wins in all but a near tie
        store.write_bytes(url, data, "application/json")
        data = store.read_bytes(url)
    return decode(data), hashlib.sha256(data).hexdigest()
