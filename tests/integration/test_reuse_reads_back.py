"""A rerun reuses an earlier output only when the bucket holds the bytes its record names.

A store that keeps no sha256 (local files) was checked by size alone: an output changed in place
(same size) was skipped as "verified" and the manifest named a sha256 the file did not have
(outside review). Real ffmpeg, the Runner in this process, local and S3 (SeaweedFS) outputs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from clips import make_clip

from batch.config import parse_config
from batch.job.runner import Runner, RunOptions
from batch.storage import join_url, open_url

pytestmark = pytest.mark.integration


def _run(output: str, clip: Path, state: Path) -> dict[str, Any]:
    text = f"job_id: reuse\ninputs: [{clip}]\noutput: {output}\nencode: {{codec: ffv1, container: mkv}}\n"
    Runner(parse_config(text), RunOptions(state_dir=state)).run()
    return json.loads((state / "manifest.json").read_text())


@pytest.mark.parametrize("where", ["local", "s3"])
def test_an_output_changed_in_place_is_made_again(where: str, tmp_path: Path, request: Any) -> None:
    output = f"{tmp_path}/out/" if where == "local" else request.getfixturevalue("s3_prefix") + "out/"
    store = open_url(output)
    clip = make_clip(tmp_path / "in.mp4", frames=12)
    first = _run(output, clip, tmp_path / "s1")
    (video,) = [o for o in first["inputs"][0]["outputs"] if o["kind"] == "video"]
    url = join_url(output, video["key"])
    good = store.read_bytes(url)
    again = _run(output, clip, tmp_path / "s2")  # unchanged: reused
    assert any("skipped" in n for n in again["inputs"][0]["notes"])
    damaged = tmp_path / "damaged"
    damaged.write_bytes(good[:5000] + bytes(b ^ 0xFF for b in good[5000:5004]) + good[5004:])
    store.upload(damaged, url)  # the same size, other bytes
    third = _run(output, clip, tmp_path / "s3")
    record = third["inputs"][0]
    assert record["status"] == "succeeded" and not any("skipped" in n for n in record["notes"])
    (remade,) = [o for o in record["outputs"] if o["kind"] == "video"]
    assert hashlib.sha256(store.read_bytes(url)).hexdigest() == remade["sha256"]
    assert store.read_bytes(url) != damaged.read_bytes()
