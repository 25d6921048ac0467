"""The shutdown promise at the edges an outside review found: bad operator settings, a state dir
that cannot be written, another launch's records, bad arguments to PID 1, a torn shutdown record.

Each runs the real entrypoint in a dry run with local files (the faults need no bucket); a full
disk for one named file is injected with BATCH_TEST_UNWRITABLE (batch/faults.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from run_state import entrypoint_env, frames_done, stopped_lines, wait_until

from batch.contracts import env_seconds

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ENTRY = str(ROOT / "run_with_config_batch_sync.py")


_env = entrypoint_env


def _config(tmp: Path, clip: Path, extra: str = "") -> Path:
    cfg = tmp / "job.yaml"
    cfg.write_text(
        f"job_id: edges\ninputs: [{clip}]\nencode: {{codec: libx264, preset: ultrafast}}\n"
        f"output: {tmp / 'out'}/\nwatchdog: {{confirm: 1, interval_s: 0.2}}\n{extra}"
    )
    return cfg


def _args(tmp: Path, clip: Path, state: Path) -> list[str]:
    return [
        sys.executable,
        ENTRY,
        "--config",
        str(_config(tmp, clip)),
        "--dry-run",
        "--state-dir",
        str(state),
    ]


@pytest.mark.parametrize("value", ["abc", "nan", "-1", "inf", "0", ""])
def test_env_seconds_ignores_what_is_not_a_positive_finite_number(value: str, monkeypatch) -> None:
    monkeypatch.setenv("X_SECONDS", value)
    assert env_seconds("X_SECONDS", 7.0) == 7.0
    monkeypatch.setenv("X_SECONDS", "2.5")
    assert env_seconds("X_SECONDS", 7.0) == 2.5


OPERATOR_SETTINGS = [
    "SHUTDOWN_BUDGET_S", "SHUTDOWN_RETRY_BASE_WAIT_S", "WATCHDOG_FINISH_S", "WATCHDOG_SILENCE_S",
    "WATCHDOG_START_S",
]  # fmt: skip


@pytest.mark.parametrize("value", ["abc", "0.001"])
@pytest.mark.parametrize("name", OPERATOR_SETTINGS)
def test_a_bad_operator_setting_never_stops_the_shutdown(name: str, value: str, small_clip, tmp_path) -> None:
    """Not a number: ignored; a tiny one: the run still ends verified (a silence limit is raised to its
    floor, so a healthy watchdog is never taken for a hung one)."""
    state = tmp_path / "state"
    proc = subprocess.run(
        _args(tmp_path, small_clip, state),
        env=_env(**{name: value}), capture_output=True, timeout=180,
    )  # fmt: skip
    err = proc.stderr.decode()
    assert proc.returncode == 0 and "Traceback" not in err, err[-3000:]
    lines = stopped_lines(state)
    assert len(lines) == 1 and "action=destroy reason=verified" in lines[0], lines


@pytest.mark.parametrize("files", ["runner.pid", "runner.pid,runner.exit", "manifest.json"])
def test_state_files_that_cannot_be_written_change_nothing(files: str, small_clip, tmp_path) -> None:
    """A runner whose pid file, exit record or local manifest hits a full disk is still watched by
    PID 1's word on the pipe and its manifest in the bucket: verified, destroyed, exit 0."""
    state = tmp_path / "state"
    proc = subprocess.run(
        _args(tmp_path, small_clip, state),
        env=_env(BATCH_TEST_UNWRITABLE=files), capture_output=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    lines = stopped_lines(state)
    assert len(lines) == 1 and "action=destroy reason=verified" in lines[0], (
        lines,
        proc.stderr.decode()[-2000:],
    )
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["status"] == "succeeded"


def test_an_unknown_runner_pid_is_not_a_gone_runner(small_clip, tmp_path) -> None:
    """No pid file and a slow runner: the watchdog waits past its 60 s pid wait would have ended
    (made short here by hanging the runner) and stops only on the stall limit, not 'exited'."""
    state = tmp_path / "state"
    cfg = _config(tmp_path, small_clip, "limits: {stall_s: 4, heartbeat_s: 0.5}\n")
    proc = subprocess.run(
        [sys.executable, ENTRY, "--config", str(cfg), "--dry-run", "--state-dir", str(state)],
        env=_env(BATCH_TEST_UNWRITABLE="runner.pid", BATCH_TEST_HANG_AT_FRAME="3"),
        capture_output=True, timeout=180,
    )  # fmt: skip
    lines = stopped_lines(state)
    assert len(lines) == 1 and "reason=stalled" in lines[0], (lines, proc.stderr.decode()[-3000:])


def test_another_launchs_confirmed_record_does_not_end_this_run(small_clip, tmp_path) -> None:
    """The previous run's records could not be archived (previous/ is a file): its confirmed
    shutdown must not count for this launch."""
    state = tmp_path / "state"
    cfg = _config(tmp_path, small_clip)
    args = [sys.executable, ENTRY, "--config", str(cfg), "--dry-run", "--state-dir", str(state)]
    first = subprocess.run(args, env=_env(), capture_output=True, timeout=180)
    assert first.returncode == 0, first.stderr.decode()[-3000:]
    if (state / "previous").exists():
        subprocess.run(["rm", "-rf", str(state / "previous")], check=True)
    (state / "previous").write_text("not a directory")
    (state / "STOPPED").unlink()
    # first run left watchdog.json (confirmed) in place now that it cannot be archived
    assert json.loads((state / "watchdog.json").read_text())["shutdown"]["status"] == "confirmed"
    cfg.write_text(cfg.read_text().replace("ultrafast", "superfast"))  # redo the input
    second = subprocess.run(args, env=_env(), capture_output=True, timeout=180)
    assert second.returncode == 0, second.stderr.decode()[-3000:]
    lines = stopped_lines(state)
    assert len(lines) == 1 and "action=destroy reason=verified" in lines[0], lines


def test_a_state_dir_that_is_a_file_falls_back_and_still_shuts_down(small_clip, tmp_path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    proc = subprocess.run(
        [sys.executable, ENTRY, "--config", str(_config(tmp_path, small_clip)), "--dry-run"],
        env=_env(STATE_DIR=str(afile)), capture_output=True, timeout=180,
    )  # fmt: skip
    err = proc.stderr.decode()
    assert proc.returncode == 0 and "Traceback" not in err, err[-3000:]
    used = err.split("using ", 1)[1].split(" for this run", 1)[0]
    lines = stopped_lines(Path(used))
    assert len(lines) == 1 and "action=destroy reason=verified" in lines[0], lines


@pytest.mark.parametrize(
    ("args", "env"),
    [
        ([], {}),  # no config at all
        (["--shard", "3/2"], {}),
        (["--shard", "x/2"], {}),
        (["--shard", ""], {}),  # an empty one had run unsharded
        ([], {"SHARD_INDEX": "x", "SHARD_COUNT": "2"}),
        (["--workers", "abc"], {}),
        (["--no-such-flag"], {}),
        ([], {"SKYPILOT_JOB_RANK": "1"}),  # half a shard setting: never "run every input"
        (["--shard", "0/2"], {"BATCH_RUN_ID": ""}),  # a sharded run without a run id
    ],
    ids=[
        "no-config",
        "shard-3-of-2",
        "shard-x",
        "shard-empty",
        "shard-env-x",
        "workers-abc",
        "unknown-flag",
        "half-rank",
        "no-run-id",
    ],
)
def test_bad_arguments_to_pid1_still_shut_down(args, env, small_clip, tmp_path) -> None:
    state = tmp_path / "state"
    cfg = [] if not args and not env else ["--config", str(_config(tmp_path, small_clip))]
    proc = subprocess.run(
        [sys.executable, ENTRY, *cfg, *args, "--dry-run", "--state-dir", str(state)],
        env=_env(**env), capture_output=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "Traceback" not in err, err[-3000:]
    where = state if state.exists() else tmp_path / "state" / "unknown"
    lines = stopped_lines(where)
    assert len(lines) == 1 and "action=stop reason=config_invalid" in lines[0], (lines, err[-2000:])
    assert json.loads((where / "manifest.json").read_text())["status"] == "failed"


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--shard", "3/2"], {}),
        (["--shard", "x/2"], {}),
        ([], {"SHARD_INDEX": "x", "SHARD_COUNT": "2"}),
        ([], {"SKYPILOT_JOB_RANK": "1"}),
        (["--shard", "0/2"], {"BATCH_RUN_ID": ""}),
    ],
    ids=["shard-3-of-2", "shard-x", "shard-env-x", "half-rank", "no-run-id"],
)
def test_a_bad_shard_without_the_watchdog_leaves_a_failure_manifest(args, env, small_clip, tmp_path) -> None:
    """``--no-watchdog`` (no PID 1 to write one): the runner itself leaves the failure manifest in the
    state dir, with the error and its fix, and writes nothing under the output, whose manifest from
    an earlier run stays as it was (before: an error line and exit 2, no manifest anywhere)."""
    state = tmp_path / "state"
    earlier = tmp_path / "out" / "manifest.json"
    earlier.parent.mkdir()
    earlier.write_text('{"status": "succeeded"}')
    proc = subprocess.run(
        [sys.executable, ENTRY, "--config", str(_config(tmp_path, small_clip)), *args, "--no-watchdog",
         "--state-dir", str(state)],
        env=_env(**env), capture_output=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "Traceback" not in err, err[-3000:]
    manifest = json.loads((state / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["job_id"] == "edges"
    (error,) = manifest["errors"]
    assert error["type"] == "config_invalid" and error["hint"], error
    assert error["message"].split()[0] in err  # said once on stderr too
    assert earlier.read_text() == '{"status": "succeeded"}'
    assert sorted(p.name for p in earlier.parent.iterdir()) == ["manifest.json"]


def test_a_torn_shutdown_record_never_becomes_a_destroy(small_clip, tmp_path) -> None:
    """A malformed 'requested destroy/verified' record (no provider) written mid-run and the
    watchdog killed: what follows is a fresh decision, never a destroy of an unverified run."""
    state = tmp_path / "state"
    cfg = _config(tmp_path, small_clip, "limits: {stall_s: 3, heartbeat_s: 0.3}\n")
    proc = subprocess.Popen(
        [sys.executable, ENTRY, "--config", str(cfg), "--dry-run", "--state-dir", str(state)],
        env=_env(BATCH_TEST_HANG_AT_FRAME="3"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    wait_until(
        lambda: (state / "monitor.pid").exists() and (state / "watchdog.json").exists(),
        timeout=90,
        alive=lambda: proc.poll() is None,
    )
    launch = json.loads((state / "watchdog.json").read_text()).get("launch_id")
    torn = {"status": "requested", "action": "destroy", "reason": "verified", "attempts": 0}
    (state / "watchdog.json").write_text(json.dumps({"launch_id": launch, "shutdown": torn}))
    os.kill(int((state / "monitor.pid").read_text()), signal.SIGKILL)
    _, err = proc.communicate(timeout=180)
    lines = stopped_lines(state)
    assert len(lines) == 1 and "action=destroy" not in lines[0], (lines, err.decode()[-3000:])
    assert "Traceback" not in err.decode()


def test_an_unconfirmed_shutdown_makes_pid1_exit_5(small_clip, tmp_path) -> None:
    state = tmp_path / "state"
    proc = subprocess.run(
        _args(tmp_path, small_clip, state),
        env=_env(BATCH_TEST_PROVIDER_RAISES="1000", SHUTDOWN_BUDGET_S="1"), capture_output=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 5, proc.stderr.decode()[-3000:]
    assert json.loads((state / "watchdog.json").read_text())["shutdown"]["status"] == "gave_up"


def test_pid1_imports_nothing_heavy() -> None:
    code = (
        "import sys, batch.cli, batch.watchdog.supervisor\n"
        "heavy = [m for m in ('numpy', 'torch', 'boto3', 'b2sdk', 'requests', 'yaml', 'pydantic', "
        "'batch.job.runner', 'batch.config', 'batch.storage') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_a_shard_that_dies_is_named_in_the_merged_manifest(clip_dir, tmp_path) -> None:
    """Shard 0 of 2 finishes; shard 1's runner is killed mid-input: its watchdog puts up a failure
    manifest for the shard and merges. The run is partial and names the inputs no shard finished."""
    from clips import make_clip

    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(3):
        make_clip(inputs / f"c{i}.mp4", frames=12 + i, audio=False)
    cfg = tmp_path / "job.yaml"
    cfg.write_text(
        f"job_id: dies\ninputs: [{inputs}/]\nencode: {{codec: libx264, preset: ultrafast}}\n"
        f"output: {tmp_path / 'out'}/\nwatchdog: {{confirm: 1, interval_s: 0.2}}\n"
    )

    def shard(i: int, **env: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, ENTRY, "--config", str(cfg), "--dry-run", "--shard", f"{i}/2",
             "--state-dir", str(tmp_path / f"s{i}")],
            env=_env(BATCH_RUN_ID="r-dies", **env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip

    first = shard(0)
    assert first.wait(timeout=180) == 0, first.stderr.read().decode()[-3000:]
    second = shard(1, BATCH_TEST_HANG_AT_FRAME="3")
    state = tmp_path / "s1"
    wait_until(
        lambda: (state / "runner.pid").exists() and frames_done(state) >= 3,
        timeout=120,
        alive=lambda: second.poll() is None,
    )
    os.kill(int((state / "runner.pid").read_text()), signal.SIGKILL)
    _, err = second.communicate(timeout=180)
    merged = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert merged["status"] == "partial" and merged["exit_code"] != 0, err.decode()[-3000:]
    (gap,) = [e for e in merged["errors"] if e["type"] == "inputs_not_covered"]
    assert gap["missing"] == [2]  # position 2 was shard 1's
    assert [r["index"] for r in merged["inputs"]] == [1, 3]


def test_validate_with_a_bad_shard_says_why(small_clip, tmp_path) -> None:
    """``--validate`` checks, writes nothing and says what is wrong (a review found it silent)."""
    proc = subprocess.run(
        [sys.executable, ENTRY, "--config", str(_config(tmp_path, small_clip)), "--shard", "3/2",
         "--validate", "--no-watchdog", "--state-dir", str(tmp_path / "state")],
        env=_env(), capture_output=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2 and "3/2" in proc.stderr.decode() and "fix" in proc.stderr.decode()
    assert not (tmp_path / "state").exists()
