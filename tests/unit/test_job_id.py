"""PID 1 names the state dir from the job id read without the config model: it must be the id the
runner uses, for every config the runner accepts, and never an unsafe path for one it refuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch.config import parse_config
from batch.contracts import JOB_ID_PATTERN
from batch.errors import ConfigError
from batch.job_id import job_id_of

ROOT = Path(__file__).resolve().parents[2]
ENTRY = str(ROOT / "run_with_config_batch_sync.py")

ids = st.one_of(
    st.none(),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True),
    st.text(max_size=20),  # slashes, dots, spaces, unicode: refused by both
    st.integers(),
    st.lists(st.integers(), max_size=2),
)
extras = st.dictionaries(
    st.sampled_from(["limits", "stages", "encode", "notes", "x"]),
    st.one_of(
        st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2), st.just({})
    ),
    max_size=3,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(job_id=ids, extra=extras, inputs=st.lists(st.sampled_from(["a.mp4", "s3://b/k.mov"]), max_size=2))
def test_the_light_id_is_the_runners_id(job_id: object, extra: dict, inputs: list[str]) -> None:
    data = {"inputs": inputs, "output": "out/", **extra}
    if job_id is not None:
        data["job_id"] = job_id
    text = json.dumps(data)  # YAML reads JSON
    light = job_id_of(json.loads(text))
    try:
        full = parse_config(text).job_id
    except ConfigError:
        full = None
    if full is not None:
        assert light == full
    if light is not None:  # a path segment PID 1 may use: never '..', '/', empty
        assert JOB_ID_PATTERN.match(light)


@pytest.mark.parametrize("data", [None, [], "text", 3])
def test_a_config_that_is_not_a_mapping_has_no_id(data: object) -> None:
    assert job_id_of(data) is None


def test_the_child_imports_no_config_model(tmp_path: Path) -> None:
    """The --print-job-id child PID 1 waits for: the id, and no pydantic (~0.3 s) on the way."""
    cfg = tmp_path / "job.yaml"
    cfg.write_text("job_id: light-1\ninputs: [a.mp4]\noutput: out/\n")
    # -X importtime lists every module the process imports (the entry script exits with os._exit)
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", ENTRY, "--print-job-id"],
        env={"CONFIG_URL": str(cfg), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "light-1"
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line]
    assert "yaml" in imported  # the listing is real: the child reads the config
    assert not [m for m in imported if m.split(".")[0] == "pydantic"], imported


@pytest.mark.parametrize(
    ("text", "out", "code"),
    [
        ("job_id: ../etc\ninputs: [a.mp4]\noutput: out/\n", "", 2),
        ("[unclosed", "", 2),
        ("inputs: [a.mp4]\noutput: out/\n", "job-", 0),
        ("job_id: ok\ninputs: 5\n", "ok", 0),  # invalid otherwise: the runner reports it, in state/ok
    ],
)
def test_the_child_on_odd_configs(tmp_path: Path, text: str, out: str, code: int) -> None:
    cfg = tmp_path / "job.yaml"
    cfg.write_text(text)
    proc = subprocess.run(
        [sys.executable, ENTRY, "--print-job-id"], env={"CONFIG_URL": str(cfg), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert proc.returncode == code and proc.stdout.strip().startswith(out), proc
    assert "Traceback" not in proc.stderr


@settings(max_examples=200, deadline=None)
@given(
    raw=st.one_of(st.binary(max_size=24), st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True))
)
def test_a_binary_job_id_reads_as_the_runner_reads_it(raw: bytes | str) -> None:
    """YAML's ``!!binary`` gives bytes; the config model takes UTF-8 bytes as text (found by review)."""
    import base64

    from batch.config_loader import load_config_text

    blob = raw if isinstance(raw, bytes) else raw.encode()
    encoded = base64.b64encode(blob).decode() or '""'
    text = f"job_id: !!binary {encoded}\ninputs: [a.mp4]\noutput: out/\n"
    try:
        full = parse_config(text).job_id
    except ConfigError:
        full = None
    light = job_id_of(load_config_text(text))
    assert light == full
