"""PID 1's plain scan for the job id (batch.plain_yaml.scan_job_id) gives the id the YAML reading gives,
or says it is not sure; PID 1 then asks its child, as before the scan."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from batch.config_loader import load_config_text
from batch.contracts import JOB_ID_PATTERN
from batch.errors import ConfigError
from batch.job_id import job_id_of
from batch.plain_yaml import scan_job_id
from batch.watchdog import supervisor

REFUSED = object()  # YAML cannot read the text: PID 1's child says "unknown", the runner refuses it


def _yaml_id(text: str) -> object:
    try:
        return job_id_of(load_config_text(text))
    except ConfigError:
        return REFUSED


def _holds(text: str) -> None:
    guess = scan_job_id(text)
    if guess is None:
        return
    assert JOB_ID_PATTERN.fullmatch(guess), (text, guess)
    assert _yaml_id(text) in (guess, REFUSED), (text, guess, _yaml_id(text))


ODD_VALUES = [
    "yes", "No", "ON", "off", "null", "Null", "true", "y", "n", "1_000", "0x1f", "12", "1.5", "2024-01-02",
    "1e3", ".inf", "~", "x#y", "'q'", '"d"', "*a", "a:b", "nan", "NaN", "a b", "&a x", "!!str s",
]  # fmt: skip
BEFORE = [
    "", "inputs: [a.mp4]\n", "# job id below\n", "stages: [\n", "note: |\n  job_id: q\n", "x: 'a\n",
    "? job_id\n: z\n", "<<: {job_id: m}\n", "{\n", "%YAML 1.1\n---\n", "---\n", "- a\n",
]  # fmt: skip
AFTER = [
    "", "output: out/\n", "  more\n", "\n  more\n", "# c\n  more\n", "]\n", "job_id: b\n", '"job_id": c\n',
    "job_id : d\n", "inputs: [a.mp4]\n...\n", "\tx: 1\n", "'job_id': e\n", "---\njob_id: f\n",
]  # fmt: skip


_values = st.one_of(
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,12}", fullmatch=True),
    st.sampled_from(ODD_VALUES),
)


@settings(max_examples=500, deadline=None)
@example("jobA", "", "", "  more\n", False)  # a plain scalar that goes on: "jobA more"
@example("jobA", "", " # c", '"job_id": other\n', False)  # the key again, quoted: YAML takes the last
@example("jobA", "note: |\n  x\n", "", "", False)
@example("jobA", "", "", "job_id: b\n", False)
@given(
    value=_values,
    before=st.sampled_from(BEFORE),
    comment=st.sampled_from(["", " # the id", "  ", " #", "#x", "\u00a0", " \u3000"]),
    after=st.sampled_from(AFTER),
    crlf=st.booleans(),
)
def test_the_scan_finds_what_yaml_reads_or_says_it_is_not_sure(
    value: str, before: str, comment: str, after: str, crlf: bool
) -> None:
    text = before + f"job_id: {value}{comment}\n" + after
    if crlf:
        text = text.replace("\n", "\r\n")
    _holds(text)


@settings(max_examples=400, deadline=None)
@given(st.text(st.sampled_from("job_id:[]-'\" #\n\r\t{},./abc1?&*!|>%~\u00a0"), max_size=60))
def test_any_text_is_scanned_to_yaml_s_answer_or_none(text: str) -> None:
    _holds("job_id: a1" + text)
    _holds(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("job_id: bench-cmd\ninputs: [a.mp4]\noutput: out/\n", "bench-cmd"),
        ("# my job\njob_id: run_2024.12  # today\ninputs:\n  - a.mp4\n", "run_2024.12"),
        ("job_id: Clip7\r\ninputs: [a.mp4]\r\n", "Clip7"),
    ],
)
def test_the_common_shapes_need_no_child(text: str, expected: str) -> None:
    assert scan_job_id(text) == expected == _yaml_id(text)


@pytest.mark.parametrize(
    "text",
    [
        "inputs: [a.mp4]\n",  # no id: the default id is a digest of the whole config (YAML)
        "inputs: [a.mp4]\njob_id: a\n",  # after a flow collection, which may span lines
        "job_id: 2024-12-05\n",  # a date to YAML
        "job_id: yes\n",
        "job_id: 0x1F\n",
        "job_id: a\n  b\n",
        "job_id: ../etc\n",
        "job_id: a\njob_id: b\n",
        "output: s3://b/job_id/\njob_id: a\n",
    ],
)
def test_shapes_left_to_yaml(text: str) -> None:
    assert scan_job_id(text) is None


def test_pid1_names_the_state_dir_without_its_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "job.yaml"
    cfg.write_text("job_id: scanned-1\ninputs: [a.mp4]\noutput: out/\n")
    monkeypatch.delenv("STATE_DIR", raising=False)

    def no_child(_url: str) -> str:
        raise AssertionError("the child was started for a config the scan is sure of")

    monkeypatch.setattr(supervisor, "_job_id_from_child", no_child)
    assert supervisor.state_dir_for(str(cfg), None) == Path("state/scanned-1")
    assert supervisor.state_dir_for("file://" + str(cfg), None, "1/3") == Path("state/scanned-1.shard-1-of-3")


def test_a_config_read_that_hangs_is_left_to_the_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hung network mount must not hold PID 1: after SCAN_WAIT_S the child (with its timeout) reads it."""
    cfg = tmp_path / "job.yaml"
    cfg.write_text("job_id: slow-mount\ninputs: [a.mp4]\noutput: out/\n")
    monkeypatch.delenv("STATE_DIR", raising=False)
    release = threading.Event()
    monkeypatch.setattr(supervisor, "local_config_text", lambda _url: release.wait(30) and None)
    monkeypatch.setattr(supervisor, "SCAN_WAIT_S", 0.3)
    started = time.monotonic()
    try:
        named = supervisor.state_dir_for(str(cfg), None)
    finally:
        release.set()
    assert named == Path("state/slow-mount")  # the child's answer
    assert time.monotonic() - started < 20
