"""The output disk fills as the manifest is written: the state dir's manifest keeps every input's
record and its error (an outside review found it blank, `inputs: []`, because a full disk is not a
storage error), and the unpublished manifest is kept for the watchdog to publish."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from clips import make_clip

from batch.config import parse_config
from batch.contracts import UNPUBLISHED_MANIFEST
from batch.errors import DiskFull
from batch.job import runner as runner_module
from batch.job.runner import Runner, RunOptions

pytestmark = pytest.mark.integration


def test_a_full_disk_at_the_manifest_keeps_the_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=8)

    def full(*args: Any, **kwargs: Any) -> Any:  # what the local store raises on ENOSPC
        raise DiskFull("disk filled up during the write of manifest.json", hint="free space", free_bytes=0)

    monkeypatch.setattr(runner_module, "publish", full)
    text = f"job_id: full\ninputs: [{clip}]\noutput: {tmp_path}/out/\nencode: {{codec: ffv1, container: mkv}}"
    cfg = parse_config(text)
    code = Runner(cfg, RunOptions(state_dir=tmp_path / "state")).run()
    assert code != 0
    kept = json.loads((tmp_path / "state" / "manifest.json").read_text())
    assert [r["status"] for r in kept["inputs"]] == ["succeeded"]
    assert any(e["type"] == "disk_full" for e in kept["errors"]), kept["errors"]
    unpublished = json.loads((tmp_path / "state" / UNPUBLISHED_MANIFEST).read_text())
    assert [r["status"] for r in unpublished["inputs"]] == ["succeeded"]
