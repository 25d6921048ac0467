"""An input fetched from a bucket is named as in the bucket in every error and in the report
(outside review: a truncated s3:// or https:// input was called "source.mp4", the name of the
runner's local copy). SeaweedFS on loopback, the Runner in this process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clips import make_clip

from batch.config import parse_config
from batch.job.runner import Runner, RunOptions
from batch.storage import open_url

pytestmark = pytest.mark.integration


def test_a_truncated_remote_input_is_named_as_in_the_bucket(s3_prefix: str, tmp_path: Path) -> None:
    whole = make_clip(tmp_path / "whole.mp4", frames=30)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    store = open_url(s3_prefix)
    store.upload(cut, s3_prefix + "in/holiday clip.mp4")
    cfg = parse_config(
        f"job_id: names\ninputs: ['{s3_prefix}in/holiday clip.mp4']\noutput: {tmp_path}/out/\n"
        "encode: {codec: libx264, preset: ultrafast}"
    )
    assert Runner(cfg, RunOptions(state_dir=tmp_path / "state")).run() != 0
    (record,) = json.loads((tmp_path / "state" / "manifest.json").read_text())["inputs"]
    assert record["error"]["type"] == "video_truncated"
    assert "holiday clip.mp4" in record["error"]["message"] and "source" not in record["error"]["message"]
