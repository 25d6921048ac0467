"""Archives are stamped to the second; runs that start or end in the same second must not
overwrite each other's archive (an outside review lost run 1's output and manifest when three
reruns fell in one second).

Against the local store and SeaweedFS (a real S3 server on loopback): what is archived keeps
every earlier version, byte for byte, and archiving the same manifest twice writes nothing new.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from batch.contracts import PER_RUN_FILES, PREVIOUS_RUNS, state_file
from batch.job.manifest import archive_output, archive_previous, key_stamp, publish
from batch.storage import Store, join_url, open_url
from batch.watchdog.supervisor import archive_previous_run

pytestmark = pytest.mark.integration


@pytest.fixture(params=["local", "s3"])
def output(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Store, str]:
    if request.param == "local":
        prefix = str(tmp_path / "out") + "/"
    else:
        prefix = request.getfixturevalue("s3_prefix") + "out/"
    return open_url(prefix), prefix


def manifest(run: int, finished_at: str = "2026-12-04T21:30:55Z") -> bytes:
    return json.dumps({"launch_id": f"run-{run}", "finished_at": finished_at}).encode()


def test_manifests_that_end_in_the_same_second_are_all_kept(output: tuple[Store, str]) -> None:
    store, prefix = output
    for run in range(1, 5):  # each publish archives the one before it, all stamped 21:30:55
        publish(manifest(run), store, prefix)
    stamp = key_stamp("2026-12-04T21:30:55Z")
    names = [f"manifest.{stamp}{s}.json" for s in ("", "-2", "-3")]
    kept = [store.read_bytes(join_url(prefix, "manifests", n)) for n in names]
    assert kept == [manifest(1), manifest(2), manifest(3)]
    assert store.read_bytes(join_url(prefix, "manifest.json")) == manifest(4)
    assert not store.exists(join_url(prefix, "manifests", f"manifest.{stamp}-4.json"))


def test_the_same_manifest_archived_twice_is_written_once(output: tuple[Store, str]) -> None:
    """A publish retried after a failure archives the same earlier manifest again: no copy."""
    store, prefix = output
    archive_previous(store, prefix, manifest(1))
    archive_previous(store, prefix, manifest(1))
    archive_previous(store, prefix, manifest(2))
    listed = sorted(Path(o.url).name for o in store.list(join_url(prefix, "manifests") + "/"))
    stamp = key_stamp("2026-12-04T21:30:55Z")
    assert listed == [f"manifest.{stamp}-2.json", f"manifest.{stamp}.json"]


def test_a_manifest_with_an_odd_finished_at_is_still_archived(output: tuple[Store, str]) -> None:
    store, prefix = output
    for body in (b"[1, 2]", b"not json", json.dumps({"finished_at": 5}).encode()):
        archive_previous(store, prefix, body)
    kept = {store.read_bytes(o.url) for o in store.list(join_url(prefix, "manifests") + "/")}
    assert kept == {b"[1, 2]", b"not json", json.dumps({"finished_at": 5}).encode()}


def test_outputs_replaced_by_runs_that_start_in_the_same_second_are_all_kept(
    output: tuple[Store, str], tmp_path: Path
) -> None:
    store, prefix = output
    key, started = "clip/clip.mp4", "2026-12-04T21:30:55Z"
    assert archive_output(store, prefix, key, started) is None  # nothing there yet
    versions = [f"version {n}".encode() * 100 for n in range(1, 5)]
    stamps = []
    for n, body in enumerate(versions):
        local = tmp_path / f"v{n}"
        local.write_bytes(body)
        if n:  # runs 2, 3, 4 (all started at 21:30:55) each keep the one before
            stamps.append(archive_output(store, prefix, key, started))
        store.upload(local, join_url(prefix, key))
    base = key_stamp(started)
    assert stamps == [base, f"{base}-2", f"{base}-3"]
    kept = [store.read_bytes(join_url(prefix, "previous", s, key)) for s in stamps]
    assert kept == versions[:3]
    assert store.read_bytes(join_url(prefix, key)) == versions[3]


def test_state_records_of_runs_started_in_the_same_second_are_all_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "strftime", lambda fmt, t=None: "20261204T213055Z")
    name = PER_RUN_FILES[0]
    for run in range(1, 4):
        state_file(tmp_path, name).write_text(f"run {run}")
        archive_previous_run(tmp_path)
    folders = sorted(p.name for p in state_file(tmp_path, PREVIOUS_RUNS).iterdir())
    assert folders == ["20261204T213055Z", "20261204T213055Z-2", "20261204T213055Z-3"]
    got = [(state_file(tmp_path, PREVIOUS_RUNS) / f / name).read_text() for f in folders]
    assert got == ["run 1", "run 2", "run 3"]
