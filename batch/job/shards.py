"""Several instances on one job: each takes a fixed share of the inputs.

``--shard I/N`` (or ``SHARD_INDEX`` and ``SHARD_COUNT``, or SkyPilot's
``SKYPILOT_JOB_RANK`` and ``SKYPILOT_NUM_JOBS``; I counts from 0) gives shard I
the inputs whose position in the run's input list is I modulo N; that list is
fixed once per run by the first shard to start (:mod:`batch.job.input_snapshot`).
Output names are decided over the whole list first, so they do not depend on
the sharding. Each shard writes ``manifest.shard-I-of-N.json`` and
``status.shard-I-of-N.json``; whichever shard finds all N shard manifests
present writes the merged ``manifest.json``, after checking that every input
of the list was run by exactly one shard (else ``partial`` with the gaps). The
merge is deterministic (the same shard manifests give the same bytes), and it
is written with the store's create-only write where the store has one, so two
shards finishing together cannot leave a half-merged manifest.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from batch.contracts import (
    manifest_url,
    run_id_from_env,
    shard_manifest_name,
    shard_spec_from_env,
    shard_status_name,
)
from batch.errors import EXIT_CONFIG, EXIT_INPUT_FAILED, EXIT_INTERNAL, EXIT_OK, EXIT_STORAGE, ConfigError
from batch.job.manifest import SCHEMA, archive_previous
from batch.storage import Store

log = logging.getLogger("batch")

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_EXIT_PRECEDENCE = (EXIT_INTERNAL, EXIT_CONFIG, EXIT_STORAGE, EXIT_INPUT_FAILED, EXIT_OK)


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"`` with 0 <= I < N. Raises ConfigError."""
        m = _SPEC.match(text or "")
        if not m or int(m.group(2)) < 1 or not 0 <= int(m.group(1)) < int(m.group(2)):
            raise ConfigError(
                f"bad shard {text!r}", hint="give --shard I/N with 0 <= I < N, e.g. --shard 0/4"
            )
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Shard | None:
        spec = shard_spec_from_env(env)
        return None if spec is None else cls.parse(spec)

    @property
    def manifest_name(self) -> str:
        return shard_manifest_name(self.index, self.count)

    @property
    def status_name(self) -> str:
        return shard_status_name(self.index, self.count)

    def owns(self, position: int) -> bool:
        """Whether the input at ``position`` (0-based, in the expanded list) is this shard's."""
        return position % self.count == self.index

    def to_dict(self) -> dict[str, Any]:
        """``run_id`` ties the shards of one run together (BATCH_RUN_ID, else SkyPilot's task id)."""
        return {"index": self.index, "count": self.count, "run_id": run_id()}


def run_id() -> str | None:
    return run_id_from_env()


def merged_manifest(shards: list[dict[str, Any]]) -> dict[str, Any]:
    """One manifest from every shard's, the same bytes whoever builds it."""
    shards = sorted(shards, key=lambda m: (m.get("shard") or {}).get("index", -1))
    inputs = sorted((r for m in shards for r in m.get("inputs") or []), key=lambda r: r["index"])
    codes = {m.get("exit_code", EXIT_INTERNAL) for m in shards}
    exit_code = next(c for c in _EXIT_PRECEDENCE if c in codes or c == EXIT_OK)
    # a shard with nothing to do (more shards than inputs) and no error is not a failure
    statuses = {m.get("status") for m in shards if m.get("inputs") or m.get("errors")} or {"succeeded"}
    status = "succeeded" if statuses == {"succeeded"} else "failed" if statuses == {"failed"} else "partial"
    gaps = coverage_errors(shards, inputs)
    if gaps:  # an input no shard ran (or two did): never "succeeded"
        status = "failed" if status == "failed" else "partial"
        exit_code = next(c for c in _EXIT_PRECEDENCE if c in codes | {EXIT_INPUT_FAILED})
    counts: dict[str, int] = {}
    for r in inputs:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return {
        "schema": SCHEMA,
        "job_id": shards[0]["job_id"],
        "status": status,
        "exit_code": exit_code,
        "dry_run": shards[0].get("dry_run"),
        "started_at": min(m["started_at"] for m in shards),
        "finished_at": max(m["finished_at"] for m in shards),
        "shards": [
            {
                **(m.get("shard") or {}),
                "status": m.get("status"),
                "finished_at": m.get("finished_at"),
                "host": (m.get("runner") or {}).get("host"),
            }
            for m in shards
        ],
        "counts": counts,
        "errors": [e for m in shards for e in m.get("errors") or []] + gaps,
        "inputs": inputs,
        "config": shards[0].get("config"),
    }


def coverage_errors(shards: list[dict[str, Any]], inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Errors unless every position of the run's input snapshot was run by exactly one shard."""
    # a shard that died before it read the list (its manifest is the watchdog's) has no list
    lists = {
        (sh.get("inputs_total"), sh.get("inputs_sha256"))
        for sh in ((m.get("shard") or {}) for m in shards)
        if sh.get("inputs_total") is not None
    }
    if not lists:  # shard manifests from before the snapshot: nothing to check against
        return []
    if len(lists) != 1:
        return [{
            "type": "inputs_not_covered",
            "message": "the shards ran different input lists; which inputs ran is not known",
            "hint": "run the shards again with one BATCH_RUN_ID (they then share one input snapshot)",
            "lists": sorted(str(x) for x in lists),
        }]  # fmt: skip
    ((total, _digest),) = lists
    if not isinstance(total, int):
        return [{
            "type": "inputs_not_covered",
            "message": f"a shard manifest gives inputs_total {total!r}, not a count",
            "hint": "the shard manifests were edited or damaged; run the shards again",
        }]  # fmt: skip
    seen: dict[int, int] = {}
    for r in inputs:
        seen[r["index"]] = seen.get(r["index"], 0) + 1
    missing = [i for i in range(1, total + 1) if i not in seen]
    twice = sorted(i for i, n in seen.items() if n > 1)
    extra = sorted(i for i in seen if not 1 <= i <= total)
    if not (missing or twice or extra):
        return []
    said = f"of the run's {total} inputs, {len(missing)} were run by no shard"
    said += f", {len(twice)} by two" if twice else ""
    said += f", {len(extra)} are not in its list" if extra else ""
    return [{
        "type": "inputs_not_covered",
        "message": said,
        "hint": "run the missing shards again (the same BATCH_RUN_ID reuses the snapshot and the done parts)",
        "missing": missing, "twice": twice, "extra": extra,
    }]  # fmt: skip


def merge_if_complete(store: Store, output: str, shard: Shard, job_id: str) -> str:
    """Write ``manifest.json`` when every shard's manifest is in. Returns what happened."""
    found = []
    for i in range(shard.count):
        url = manifest_url(output, Shard(i, shard.count).manifest_name)
        try:
            data = json.loads(store.read_bytes(url))
        except Exception:  # absent or unreadable: that shard is not done
            continue
        # only this run's shards: an earlier run of the same job left manifests with another run id
        if data.get("job_id") == job_id and (data.get("shard") or {}).get("run_id") == run_id():
            found.append(data)
    if len(found) < shard.count:
        return f"waiting for {shard.count - len(found)} of {shard.count} shards"
    body = (json.dumps(merged_manifest(found), indent=2) + "\n").encode()
    url = manifest_url(output)
    create = getattr(store, "create_bytes", None)
    if create is not None and create(url, body, "application/json") is not None:
        return "merged"
    try:
        existing = store.read_bytes(url)
    except Exception:
        existing = None
    if existing == body:
        return "already merged by another shard"
    archive_previous(store, output, existing)  # an earlier run's manifest: kept, then replaced
    store.write_bytes(url, body, "application/json")
    return "merged (replaced an earlier run's manifest)"
