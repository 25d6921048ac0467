"""The names the programs share (batch.contracts) are the ones the docs give users.

docs/manifest.md and docs/watchdog.md are what an operator reads to find a
file in the state dir or an object at the output prefix; a rename in
batch.contracts without the docs (or the other way round) fails here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from batch import contracts as c

DOCS = Path(__file__).resolve().parents[2] / "docs"
MANIFEST_DOC = (DOCS / "manifest.md").read_text()
WATCHDOG_DOC = (DOCS / "watchdog.md").read_text()
DEPLOY_DOC = (DOCS / "deploy.md").read_text()


def _state_dir_files() -> set[str]:
    """The backticked names in docs/watchdog.md's "Files in the state dir:" paragraph."""
    m = re.search(r"Files in the state dir:(.*?)(?:\n\n|\Z)", WATCHDOG_DOC, re.S)
    assert m, "docs/watchdog.md lost its 'Files in the state dir:' paragraph"
    return set(re.findall(r"`([^`]+)`", m.group(1)))


def test_the_state_dir_files_are_the_documented_ones() -> None:
    documented = _state_dir_files()
    assert documented == {*c.PER_RUN_FILES, c.KEPT_OUTPUTS + "/"}


@pytest.mark.parametrize(
    ("built", "doc"),
    [
        (c.manifest_url("<output>"), MANIFEST_DOC),
        (str(c.state_file(Path("<state dir>"), c.MANIFEST)), MANIFEST_DOC),
        (c.manifest_archive_url("<output>", c.MANIFEST, "<its finished_at>"), MANIFEST_DOC),
        (c.status_url("<output>"), MANIFEST_DOC),
        (str(c.state_file(Path("<state dir>"), c.STATUS)), MANIFEST_DOC),
        (c.shard_manifest_name("I", "N"), MANIFEST_DOC),  # type: ignore[arg-type]
        (c.shard_status_name("I", "N"), MANIFEST_DOC),  # type: ignore[arg-type]
        (c.join_url("<output>", c.output_record_key("<stem>")), MANIFEST_DOC),
        (c.join_url("<output>", c.REPORT_PAGE), MANIFEST_DOC),
        (c.join_url("<output>", c.report_data_name()), MANIFEST_DOC),
        (c.join_url("<state dir>", c.RUNNER_LOG), WATCHDOG_DOC),
        (c.join_url("<state dir>", c.RUNNER_EXIT), WATCHDOG_DOC),
        (c.join_url("<state dir>", c.STOPPED_SENTINEL), WATCHDOG_DOC),
        (f"{c.PREVIOUS_RUNS}/<time>/", WATCHDOG_DOC),
        (f"{c.MANIFEST_ARCHIVE}/<name>.<its finished_at>.json", WATCHDOG_DOC),
        (c.previous_output_url("", "<this run's start>", "<key>"), WATCHDOG_DOC),
        (c.parts_url("", "<stem>"), WATCHDOG_DOC),
        (f"{c.STOPPING_LINE} <utc time> provider=<p>", WATCHDOG_DOC),
        (f"`{c.LAUNCH_ID_ENV}`", WATCHDOG_DOC),
        (f"<output>/{c.INPUT_SNAPSHOT_PREFIX}<BATCH_RUN_ID>.<job hash>.json", DEPLOY_DOC),
    ],
)
def test_a_built_path_is_written_so_in_the_docs(built: str, doc: str) -> None:
    assert built in doc


def test_the_names_are_the_documented_strings() -> None:
    """Spelled out once: a test from outside that does not trust the module it checks."""
    assert (c.MANIFEST, c.UNPUBLISHED_MANIFEST, c.STATUS) == (
        "manifest.json",
        "manifest.unpublished.json",
        "status.json",
    )
    assert (c.RUNNER_LOG, c.RUNNER_PID, c.RUNNER_EXIT, c.WATCHDOG_STATE, c.WATCHDOG_LOG, c.MONITOR_PID) == (
        "runner.log",
        "runner.pid",
        "runner.exit",
        "watchdog.json",
        "watchdog.log",
        "monitor.pid",
    )
    assert c.manifest_url("s3://b/out/") == "s3://b/out/manifest.json"
    assert (
        c.manifest_url("s3://b/out", c.shard_manifest_name(1, 3)) == "s3://b/out/manifest.shard-1-of-3.json"
    )
    assert c.status_url("s3://b/out") == "s3://b/out/status.json"
    assert c.manifest_archive_url("s3://b/out", "manifest.shard-0-of-2.json", "20261203T040830Z") == (
        "s3://b/out/manifests/manifest.shard-0-of-2.20261203T040830Z.json"
    )
    assert c.parts_url("s3://b/out/", "clip") == "s3://b/out/clip/parts/"
    assert (c.REPORT_PAGE, c.report_data_name()) == ("report.html", "report-data.json")
    assert c.report_data_name(c.shard_manifest_name(0, 2)) == "report-data.shard-0-of-2.json"
    assert c.previous_output_url("s3://b/out", "T", "clip/x.mp4") == "s3://b/out/previous/T/clip/x.mp4"
    assert c.state_file(Path("/s"), c.RUNNER_PID) == Path("/s/runner.pid")
    assert re.fullmatch(r"inputs\.r_1\.[0-9a-f]{8}\.json", c.input_snapshot_name("r/1", "job", ["a"]))


def test_contracts_imports_only_the_standard_library() -> None:
    """PID 1 imports it: no third-party package, and of the project only batch.shard_env, which
    itself imports only the standard library."""
    import sys

    from batch import shard_env

    def imported(module: object) -> set[str]:
        tree = ast.parse(Path(module.__file__).read_text())  # type: ignore[attr-defined]
        return {
            node.module if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
            if not (isinstance(node, ast.ImportFrom) and node.module == "__future__")
        }

    stdlib = set(sys.stdlib_module_names)
    assert {m.split(".")[0] for m in imported(c) - {"batch.shard_env"}} <= stdlib, imported(c)
    assert {m.split(".")[0] for m in imported(shard_env)} <= stdlib, imported(shard_env)
