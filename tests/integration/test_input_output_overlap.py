"""A source never replaced by its own output (outside review: an input at <output>/v/v.mp4 was
overwritten by its output, and every rerun re-encoded the last output again). The config refuses
the plain case; the runner refuses the one config cannot see (a -2 name given to inputs sharing a
stem). Inputs with odd paths fail as inputs, not as internal errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from clips import make_clip

from batch.config import parse_config
from batch.errors import ConfigError
from batch.job.runner import Runner, RunOptions

pytestmark = pytest.mark.integration


def test_the_config_refuses_an_input_where_its_output_goes(tmp_path: Path) -> None:
    (tmp_path / "out" / "v").mkdir(parents=True)
    clip = make_clip(tmp_path / "out" / "v" / "v.mp4", frames=4)
    with pytest.raises(ConfigError, match=r"inputs\.0 .* is where its own output would be written"):
        parse_config(f"inputs: [{clip}]\noutput: {tmp_path}/out/\nencode: {{codec: libx264}}")
    # the same folder with another container writes v/v.mkv beside it: allowed
    parse_config(f"inputs: [{clip}]\noutput: {tmp_path}/out/\nencode: {{codec: ffv1, container: mkv}}")


def test_the_runner_refuses_an_input_that_resolves_to_its_output(tmp_path: Path) -> None:
    """A link named link.mp4 to <output>/link/link.mp4: the config compares names, the runner files."""
    (tmp_path / "out" / "link").mkdir(parents=True)
    target = make_clip(tmp_path / "out" / "link" / "link.mp4", frames=4)
    other = make_clip(tmp_path / "other.mp4", frames=4)
    link = tmp_path / "link.mp4"
    link.symlink_to(target)
    before = hashlib.sha256(target.read_bytes()).hexdigest()
    cfg = parse_config(
        f"job_id: over\ninputs: [{other}, {link}]\noutput: {tmp_path}/out/\n"
        "encode: {codec: libx264, preset: ultrafast}"
    )
    Runner(cfg, RunOptions(state_dir=tmp_path / "state")).run()
    records = json.loads((tmp_path / "state" / "manifest.json").read_text())["inputs"]
    assert records[0]["status"] == "succeeded"
    assert records[1]["status"] == "failed"
    assert "is where its own output would be written" in records[1]["error"]["message"]
    assert hashlib.sha256(target.read_bytes()).hexdigest() == before


def test_an_input_name_too_long_for_the_file_system_is_an_input_error(tmp_path: Path) -> None:
    cfg = parse_config(
        f"job_id: long\ninputs: [{tmp_path}/{'x' * 300}.mp4]\noutput: {tmp_path}/out/\n"
        "encode: {codec: libx264}"
    )
    assert Runner(cfg, RunOptions(state_dir=tmp_path / "state")).run() == 1
    (record,) = json.loads((tmp_path / "state" / "manifest.json").read_text())["inputs"]
    assert record["error"]["type"] == "object_not_found" and "cannot be opened" in record["error"]["message"]
