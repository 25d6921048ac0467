"""The exit-path x fault matrix: the shutdown guarantee under faults in the watchdog's own path.

Every cell runs the real entrypoint (supervisor, watchdog, runner) against
the real SeaweedFS server: a runner fate (success, a failed input, killed,
hung, a broken config) crossed with a fault injected into the watchdog's
path only. Faults that can be made for real are: the watchdog's own store
refusing its key or unreachable (``BATCH_TEST_WATCHDOG_ENV`` gives the
watchdog, and only it, a wrong secret or a closed port). Faults that cannot
be made on demand are injected by the hooks in batch/faults.py (mocked: a
full disk under the state dir, a provider SDK raising, a crash at the exact
instant between the provider call and its record, bugs in the watchdog).

Each cell must end in exactly one shutdown, with the expected action and
reason, and on the success path no shutdown before every object passed its
checks. docs/watchdog.md lists the matrix.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from child_env import s3_child_env
from run_state import stopped_lines, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FAST = "watchdog: {confirm: 2, interval_s: 0.3, upload_timeout_s: 2}"
QUICK_RETRIES = {"SHUTDOWN_RETRY_BASE_WAIT_S": "0.05", "CONTROL_PLANE_RETRY_ATTEMPTS": "2"}


class Run:
    """One run of the entrypoint with a test config and environment."""

    def __init__(self, tmp: Path, server, config: str, *, dry_run: bool = True, **env: str) -> None:
        self.state = tmp / "state"
        (tmp / "job.yaml").write_text(config)
        args = [
            sys.executable,
            str(ROOT / "run_with_config_batch_sync.py"),
            "--config",
            str(tmp / "job.yaml"),
        ]
        args += ["--state-dir", str(self.state)] + (["--dry-run"] if dry_run else [])
        self.proc = subprocess.Popen(
            args,
            env=s3_child_env(server, **QUICK_RETRIES, **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.stderr = ""

    def wait(self, timeout: float = 120) -> int:
        _, err = self.proc.communicate(timeout=timeout)
        self.stderr = err.decode(errors="replace")
        return self.proc.returncode

    def status(self) -> dict:
        try:
            return json.loads((self.state / "status.json").read_text())
        except (OSError, ValueError):
            return {}

    def sentinel(self) -> list[str]:
        return stopped_lines(self.state)

    def record(self) -> dict | None:
        try:
            return json.loads((self.state / "watchdog.json").read_text())
        except (OSError, ValueError):
            return None

    def stopping_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if "STOPPING INSTANCE" in line]


def config(prefix: str, inputs: list[Path | str], extra: str = "") -> str:
    return (
        f"job_id: fm\ninputs: {json.dumps([str(i) for i in inputs])}\n"
        f"encode: {{codec: libx264, preset: ultrafast}}\noutput: {prefix}out/\n{FAST}\n{extra}\n"
    )


# --- the runner's fates ------------------------------------------------------------------

FATES = {
    # name: (how to make it, expected action and reason when the watchdog is healthy)
    "success": ("destroy", "verified"),
    "input_failed": ("stop", "verified"),
    "killed": ("stop", "runner_exited_without_manifest"),
    "hung": ("stop", "stalled"),
    "config_invalid": ("stop", "config_invalid"),
}


def start(fate: str, tmp: Path, server, prefix: str, clip: Path, *, dry_run: bool = True, **env: str) -> Run:
    if fate == "success":
        return Run(tmp, server, config(prefix, [clip]), dry_run=dry_run, **env)
    if fate == "input_failed":
        return Run(tmp, server, config(prefix, [clip, tmp / "missing.mp4"]), dry_run=dry_run, **env)
    if fate == "killed":
        run = Run(tmp, server, config(prefix, [clip]), dry_run=dry_run, BATCH_TEST_HANG_AT_FRAME="3", **env)
        # a watchdog with a bug in its loop stops the runner before frame 3: then there is nothing to kill
        wait_until(
            lambda: (
                (run.status().get("frames_done", 0) >= 3 and (run.state / "runner.pid").exists())
                or bool((run.record() or {}).get("shutdown"))
            )
        )
        if not (run.record() or {}).get("shutdown"):
            os.kill(int((run.state / "runner.pid").read_text()), signal.SIGKILL)
        return run
    if fate == "hung":
        extra = "limits: {stall_s: 1.5, heartbeat_s: 0.2}"
        return Run(
            tmp, server, config(prefix, [clip], extra), dry_run=dry_run, BATCH_TEST_HANG_AT_FRAME="3", **env
        )
    assert fate == "config_invalid"
    return Run(tmp, server, "inputs: [a.mp4\noutput: nowhere\n", dry_run=dry_run, **env)


# --- faults in the watchdog's own path ------------------------------------------------------


def fault_env(fault: str, closed_port: int) -> dict[str, str]:
    return {
        "none": {},
        # real faults: the watchdog's store refuses its key / does not answer
        "storage_refused": {"BATCH_TEST_WATCHDOG_ENV": json.dumps({"AWS_SECRET_ACCESS_KEY": "wrong-secret"})},
        "storage_unreachable": {
            "BATCH_TEST_WATCHDOG_ENV": json.dumps({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port}"})
        },
        # injected (batch/faults.py)
        "disk_full": {"BATCH_TEST_WATCHDOG_ENOSPC": "1"},
        "provider_raises_3": {"BATCH_TEST_PROVIDER_RAISES": "3"},
        "killed_before_confirmed": {"BATCH_TEST_EXIT_AFTER_PROVIDER_CALL": "1"},
        "bug_in_watch": {"BATCH_TEST_WATCHDOG_BUG": "watch"},
        "bug_in_watch_and_fail": {"BATCH_TEST_WATCHDOG_BUG": "watch,fail"},
        "bug_in_settings": {"BATCH_TEST_WATCHDOG_BUG": "settings"},
        "cannot_start": {"BATCH_TEST_WATCHDOG_BUG": "start"},
    }[fault]


def expected(fate: str, fault: str) -> tuple[str, str]:
    action, reason = FATES[fate]
    if fault in ("storage_refused", "storage_unreachable") and fate != "config_invalid":
        return "stop", "bucket_unreachable"  # nothing can be verified or uploaded: never "verified"
    if fault in ("bug_in_watch", "bug_in_watch_and_fail"):
        return "stop", "watchdog_error"
    if fault == "bug_in_settings" and fate != "config_invalid":
        return "stop", "watchdog_error"  # no config: no bucket to verify, so never "verified"
    if fault == "cannot_start":
        return "stop", "watchdog_failed"  # PID 1's last resort
    return action, reason


CELLS = [(fate, fault) for fate in ("success", "killed") for fault in (
    "none", "storage_refused", "storage_unreachable", "disk_full", "provider_raises_3",
    "killed_before_confirmed", "bug_in_watch", "bug_in_watch_and_fail", "bug_in_settings", "cannot_start",
)] + [(fate, fault) for fate in ("input_failed", "hung", "config_invalid") for fault in (
    "none", "storage_unreachable", "disk_full", "bug_in_watch_and_fail", "cannot_start",
)]  # fmt: skip


@pytest.mark.parametrize(("fate", "fault"), CELLS, ids=[f"{a}-{b}" for a, b in CELLS])
def test_cell(fate, fault, s3_server, s3_prefix, small_clip, tmp_path, closed_port) -> None:
    run = start(fate, tmp_path, s3_server, s3_prefix, small_clip, **fault_env(fault, closed_port))
    run.wait()
    action, reason = expected(fate, fault)
    lines = run.sentinel()
    calls = 2 if fault == "killed_before_confirmed" else 1  # at least once: the call was not recorded
    assert len(lines) == calls, (lines, run.stderr[-3000:])
    assert all(f"provider=local action={action} reason={reason}" in line for line in lines), lines
    assert len({line for line in run.stopping_lines() if "reason=" in line}) >= 1
    record = run.record()
    if fault == "disk_full":  # nothing could be written under the state dir but the "cloud" call
        assert record is None or record.get("shutdown") is None or record["shutdown"]["status"] == "confirmed"
        return
    assert record is not None and record["shutdown"]["status"] == "confirmed", record
    assert (record["shutdown"]["action"], record["shutdown"]["reason"]) == (action, reason)
    if fault == "provider_raises_3":
        assert record["shutdown"]["attempts"] == 4
    if fault == "killed_before_confirmed":
        assert record["shutdown"]["attempts"] == 2
    if fault == "bug_in_watch_and_fail":
        assert "the failure path failed too" in record["shutdown"]["detail"]
    if reason == "verified":  # never before every object passed its checks
        assert record["objects"] and all(o["passes"] == 2 for o in record["objects"])


# --- real control-plane SDKs against local fakes (mocked: the cloud APIs) ------------------


def test_vast_failing_past_the_sdk_retries_is_retried_until_it_confirms(
    s3_server, s3_prefix, small_clip, tmp_path, vast_fake
) -> None:
    vast_fake.script("destroy", *([500] * 6), 200)  # three rounds of the SDK's two attempts, then ok
    run = start("success", tmp_path, s3_server, s3_prefix, small_clip, dry_run=False, **vast_fake.env("901"))
    assert run.wait() == 0, run.stderr[-3000:]
    assert len(vast_fake.calls("destroy")) == 7
    record = run.record()["shutdown"]
    assert (record["status"], record["reason"], record["attempts"]) == ("confirmed", "verified", 4)


def test_vast_never_confirming_gives_up_within_the_budget_and_says_so(
    s3_server, s3_prefix, small_clip, tmp_path, vast_fake
) -> None:
    vast_fake.script("destroy", *([503] * 200))
    run = start(
        "success", tmp_path, s3_server, s3_prefix, small_clip, dry_run=False,
        SHUTDOWN_BUDGET_S="1.5", **vast_fake.env("902"),
    )  # fmt: skip
    run.wait()
    record = run.record()["shutdown"]
    assert record["status"] == "gave_up" and record["reason"] == "verified"
    assert "no confirmation after" in record["result"] and "stop the instance by hand" in record["result"]
    assert len(vast_fake.calls("destroy")) >= 2
    assert int((run.state / "monitor.pid").read_text())  # one watchdog: a final record is not restarted


def test_vast_killed_between_requested_and_confirmed_is_finished_by_the_restart(
    s3_server, s3_prefix, small_clip, tmp_path, vast_fake
) -> None:
    run = start(
        "success", tmp_path, s3_server, s3_prefix, small_clip, dry_run=False,
        BATCH_TEST_EXIT_AFTER_PROVIDER_CALL="1", **vast_fake.env("903"),
    )  # fmt: skip
    assert run.wait() == 0, run.stderr[-3000:]
    record = run.record()["shutdown"]
    assert (record["status"], record["attempts"]) == ("confirmed", 2)
    assert len(vast_fake.calls("destroy")) == 2  # repeated once: it was never recorded as confirmed
    assert vast_fake.calls("stop") == []


def test_a_key_that_breaks_the_http_library_is_retried_then_reported(
    s3_server, s3_prefix, small_clip, tmp_path, vast_fake
) -> None:
    env = {**vast_fake.env("904"), "CONTAINER_API_KEY": "abc\ndef"}  # requests refuses the header
    run = start(
        "success", tmp_path, s3_server, s3_prefix, small_clip, dry_run=False, SHUTDOWN_BUDGET_S="1", **env
    )
    run.wait()
    record = run.record()["shutdown"]
    assert record["status"] == "gave_up" and record["attempts"] >= 2
    assert "abc" not in json.dumps(record)  # the key stays out of the record


def test_pid1_last_resort_stops_the_vast_instance_when_the_watchdog_cannot_start(
    s3_server, s3_prefix, small_clip, tmp_path, vast_fake
) -> None:
    run = start(
        "success", tmp_path, s3_server, s3_prefix, small_clip, dry_run=False,
        BATCH_TEST_WATCHDOG_BUG="start", **vast_fake.env("905"),
    )  # fmt: skip
    run.wait()
    assert len(vast_fake.calls("stop")) == 1 and vast_fake.calls("destroy") == []
    record = run.record()["shutdown"]
    assert (record["status"], record["reason"], record["provider"]) == (
        "confirmed",
        "watchdog_failed",
        "vast",
    )
    assert "last resort" in run.stderr


def test_an_outage_at_the_final_publish_still_verifies_and_destroys(
    s3_server, s3_prefix, small_clip, tmp_path
) -> None:
    run = start("success", tmp_path, s3_server, s3_prefix, small_clip, BATCH_TEST_PUBLISH_FAILS="1")
    assert run.wait() == 3  # what the runner saw
    assert run.sentinel() == [line for line in run.sentinel() if "action=destroy reason=verified" in line]
    assert len(run.sentinel()) == 1
    bucket, _, key = s3_prefix.removeprefix("s3://").partition("/")
    body = s3_server.client().get_object(Bucket=bucket, Key=f"{key}out/manifest.json")["Body"].read()
    manifest = json.loads(body)
    assert manifest["status"] == "succeeded" and "published by the watchdog" in manifest["watchdog"]["note"]
