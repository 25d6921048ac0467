"""The run's input list is fixed once; the merge says when an input ran on no shard (or two)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batch.errors import (
    CredentialsRefused,
    ObjectNotFound,
    StorageError,
    StorageUnreachable,
    UnsupportedOperation,
)
from batch.job.input_snapshot import decode, encode, fixed_inputs, snapshot_name
from batch.job.shards import coverage_errors, merged_manifest
from batch.storage.local import LocalStore


def test_the_first_shard_writes_the_list_and_every_later_one_reads_it(tmp_path: Path) -> None:
    out = f"{tmp_path}/out/"
    calls: list[int] = []

    def expand(items: list) -> object:
        def run() -> list:
            calls.append(1)
            return items

        return run

    first, d1 = fixed_inputs(LocalStore(), out, "run-1", expand(["s3://b/a.mp4", "s3://b/b.mp4"]))
    # the prefix changed meanwhile: a later shard (or a restart) still gets the first list
    later, d2 = fixed_inputs(
        LocalStore(), out, "run-1", expand(["s3://b/a.mp4", "s3://b/new.mp4", "s3://b/b.mp4"])
    )
    assert first == later == ["s3://b/a.mp4", "s3://b/b.mp4"] and d1 == d2 and len(calls) == 1
    # another run lists afresh
    other, d3 = fixed_inputs(LocalStore(), out, "run-2", expand(["s3://b/c.mp4"]))
    assert other == ["s3://b/c.mp4"] and d3 != d1 and len(calls) == 2


def test_a_shard_that_loses_the_race_takes_the_winners_list(tmp_path: Path) -> None:
    out = f"{tmp_path}/out/"
    store = LocalStore()
    winner = encode(["s3://b/x.mp4"], "r")

    def expand() -> list:  # while this shard listed, another wrote its snapshot
        store.write_bytes(f"{out}{snapshot_name('r')}", winner)  # job "" and no configured inputs
        return ["s3://b/y.mp4"]

    got, _ = fixed_inputs(store, out, "r", expand)
    assert got == ["s3://b/x.mp4"]


def test_listing_errors_survive_the_round_trip() -> None:
    err = ObjectNotFound("no videos under s3://b/in/", hint="upload inputs there")
    back = decode(encode(["s3://b/a.mp4", err], None))
    assert back[0] == "s3://b/a.mp4" and isinstance(back[1], ObjectNotFound) and "no videos" in str(back[1])
    assert snapshot_name(None).startswith("inputs.unnamed.") and snapshot_name("a/b c").startswith(
        "inputs.a_b_c."
    )


def _shard(i: int, n: int, indexes: list[int], total: int = 3, digest: str = "d") -> dict:
    return {
        "job_id": "j", "status": "succeeded", "exit_code": 0, "started_at": "t0", "finished_at": "t1",
        "runner": {"host": "h"}, "errors": [],
        "shard": {"index": i, "count": n, "run_id": "r", "inputs_total": total, "inputs_sha256": digest},
        "inputs": [{"index": k, "status": "succeeded"} for k in indexes],
    }  # fmt: skip


def test_every_input_covered_once_is_succeeded() -> None:
    merged = merged_manifest([_shard(0, 2, [1, 3]), _shard(1, 2, [2])])
    assert merged["status"] == "succeeded" and merged["exit_code"] == 0 and merged["errors"] == []


def test_an_input_no_shard_ran_is_never_succeeded() -> None:
    merged = merged_manifest([_shard(0, 2, [1]), _shard(1, 2, [2])])
    assert merged["status"] == "partial" and merged["exit_code"] == 1
    (gap,) = merged["errors"]
    assert gap["type"] == "inputs_not_covered" and gap["missing"] == [3]


def test_an_input_run_twice_or_shards_on_different_lists_are_reported() -> None:
    twice = coverage_errors(
        [_shard(0, 2, [1, 2]), _shard(1, 2, [2, 3])], [{"index": k} for k in (1, 2, 2, 3)]
    )
    assert twice and twice[0]["twice"] == [2]
    apart = merged_manifest([_shard(0, 2, [1, 3]), _shard(1, 2, [2], digest="other")])
    assert apart["status"] == "partial" and "different input lists" in json.dumps(apart["errors"])


def test_another_job_or_other_configured_inputs_never_take_the_list(tmp_path: Path) -> None:
    out = f"{tmp_path}/out/"
    a, _ = fixed_inputs(
        LocalStore(), out, "r", lambda: ["s3://b/x/1.mp4"], job_id="x", config_inputs=["s3://b/x/"]
    )
    b, _ = fixed_inputs(
        LocalStore(), out, "r", lambda: ["s3://b/y/1.mp4"], job_id="y", config_inputs=["s3://b/y/"]
    )
    c, _ = fixed_inputs(
        LocalStore(), out, "r", lambda: ["s3://b/z/1.mp4"], job_id="x", config_inputs=["s3://b/z/"]
    )
    assert (a, b, c) == (["s3://b/x/1.mp4"], ["s3://b/y/1.mp4"], ["s3://b/z/1.mp4"])


def test_a_listing_that_failed_is_not_frozen_into_the_snapshot(tmp_path: Path) -> None:
    out = f"{tmp_path}/out/"
    down = ObjectNotFound("no videos under s3://b/in/", hint="upload inputs there")
    first, _ = fixed_inputs(LocalStore(), out, "r", lambda: [down])
    assert isinstance(first[0], ObjectNotFound)
    later, _ = fixed_inputs(LocalStore(), out, "r", lambda: ["s3://b/in/a.mp4"])
    assert later == ["s3://b/in/a.mp4"]  # listed again, then saved


def test_a_presigned_configured_url_is_stored_by_reference_not_by_value(tmp_path: Path) -> None:
    secret = "https://h.example/v.mp4?X-Amz-Signature=deadbeefsecret&X-Amz-Credential=AKIAXX"
    out = f"{tmp_path}/out/"
    got, _ = fixed_inputs(LocalStore(), out, "r", lambda: [secret], config_inputs=[secret])
    assert got == [secret]
    (snap,) = (tmp_path / "out").glob("inputs.r.*.json")
    assert "deadbeefsecret" not in snap.read_text() and "AKIAXX" not in snap.read_text()
    again, _ = fixed_inputs(LocalStore(), out, "r", lambda: [], config_inputs=[secret])
    assert again == [secret]


@pytest.mark.parametrize(
    "body",
    [
        '{"schema": "batch-inputs/1", "inputs": ["a.mp4"]}',
        '{"schema": "batch-inputs/1", "inputs": [{"url": null}]}',
        "[]",
        "{}",
    ],
)  # fmt: skip
def test_a_malformed_snapshot_is_a_storage_error_not_a_bug(tmp_path: Path, body: str) -> None:
    out = f"{tmp_path}/out/"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / snapshot_name("r")).write_text(body)
    with pytest.raises(StorageError, match="not a valid input snapshot"):
        fixed_inputs(LocalStore(), out, "r", lambda: ["s3://b/a.mp4"])


def test_error_types_and_exit_codes_survive_the_round_trip() -> None:
    for err in (
        UnsupportedOperation("x", hint="h", url="u"),
        CredentialsRefused("y"),
        StorageUnreachable("z"),
    ):
        (back,) = decode(encode([err], "r"))
        assert type(back) is type(err) and back.exit_code == err.exit_code and back.to_dict() == err.to_dict()
