"""Shard selection and the deterministic merge of shard manifests (local store)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batch.errors import ConfigError
from batch.job.manifest import Manifest
from batch.job.shards import Shard, merge_if_complete, merged_manifest
from batch.storage import open_url


@pytest.mark.parametrize("text", ["", "1", "2/2", "-1/2", "a/b", "0/0"])
def test_bad_shard_specs(text: str) -> None:
    with pytest.raises(ConfigError, match="bad shard"):
        Shard.parse(text)


def test_shards_split_inputs_exactly_once() -> None:
    shards = [Shard.parse(f"{i}/3") for i in range(3)]
    owners = [[s.index for s in shards if s.owns(p)] for p in range(10)]
    assert all(len(o) == 1 for o in owners)
    assert Shard.from_env({"SHARD_INDEX": "1", "SHARD_COUNT": "3"}) == Shard(1, 3)
    assert Shard.from_env({}) is None
    # half a setting is refused, not taken for "unsharded"; an empty pair falls through to SkyPilot's
    for half in ({"SHARD_INDEX": "1"}, {"SKYPILOT_JOB_RANK": "1"}):
        with pytest.raises(ConfigError):
            Shard.from_env(half)
    sky = {"SHARD_INDEX": "", "SHARD_COUNT": "", "SKYPILOT_JOB_RANK": "0", "SKYPILOT_NUM_JOBS": "2"}
    assert Shard.from_env(sky) == Shard(0, 2)
    assert Shard(1, 3).manifest_name == "manifest.shard-1-of-3.json"


def shard_manifest(index: int, count: int, inputs: list[int], status: str = "succeeded") -> bytes:
    m = Manifest(job_id="j", config={"x": 1}, dry_run=True, shard={"index": index, "count": count})
    data = json.loads(m.to_json())
    data["status"] = status
    data["exit_code"] = 0 if status == "succeeded" else 1
    data["finished_at"] = f"2026-11-23T10:00:0{index}Z"
    data["inputs"] = [{"index": i, "status": "succeeded", "outputs": []} for i in inputs]
    return json.dumps(data).encode()


def test_merge_waits_for_every_shard_then_writes_once(tmp_path: Path) -> None:
    out = f"{tmp_path}/out/"
    store = open_url(out)
    store.write_bytes(out + "manifest.shard-1-of-2.json", shard_manifest(1, 2, [2, 4]))
    assert merge_if_complete(store, out, Shard(1, 2), "j") == "waiting for 1 of 2 shards"
    assert not (tmp_path / "out" / "manifest.json").exists()
    store.write_bytes(out + "manifest.shard-0-of-2.json", shard_manifest(0, 2, [1, 3, 5], "partial"))
    assert merge_if_complete(store, out, Shard(0, 2), "j") == "merged"
    assert merge_if_complete(store, out, Shard(1, 2), "j") == "already merged by another shard"
    merged = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [r["index"] for r in merged["inputs"]] == [1, 2, 3, 4, 5]
    assert merged["status"] == "partial" and merged["exit_code"] == 1
    assert [s["index"] for s in merged["shards"]] == [0, 1]
    assert merged["finished_at"] == "2026-11-23T10:00:01Z"


def test_an_earlier_runs_merged_manifest_is_archived_not_lost(tmp_path: Path) -> None:
    out = f"{tmp_path}/out/"
    store = open_url(out)
    store.write_bytes(out + "manifest.json", json.dumps({"finished_at": "2026-01-01T00:00:00Z"}).encode())
    for i in range(2):
        store.write_bytes(out + f"manifest.shard-{i}-of-2.json", shard_manifest(i, 2, [i + 1]))
    assert merge_if_complete(store, out, Shard(0, 2), "j") == "merged (replaced an earlier run's manifest)"
    assert (tmp_path / "out" / "manifests" / "manifest.20260101T000000Z.json").exists()


def test_merge_is_the_same_bytes_whoever_builds_it() -> None:
    a = [json.loads(shard_manifest(0, 2, [1])), json.loads(shard_manifest(1, 2, [2]))]
    assert merged_manifest(a) == merged_manifest(list(reversed(a)))


def test_shards_of_an_earlier_run_are_not_merged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = f"{tmp_path}/out/"
    store = open_url(out)
    monkeypatch.setenv("BATCH_RUN_ID", "run-1")
    old = json.loads(shard_manifest(1, 2, [2]))
    old["shard"]["run_id"] = "run-1"
    store.write_bytes(out + "manifest.shard-1-of-2.json", json.dumps(old).encode())
    monkeypatch.setenv("BATCH_RUN_ID", "run-2")  # a new run: its shard 0 finishes first
    new = json.loads(shard_manifest(0, 2, [1]))
    new["shard"]["run_id"] = "run-2"
    store.write_bytes(out + "manifest.shard-0-of-2.json", json.dumps(new).encode())
    assert merge_if_complete(store, out, Shard(0, 2), "j") == "waiting for 1 of 2 shards"
    assert Shard(0, 2).to_dict()["run_id"] == "run-2"
