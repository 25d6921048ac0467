"""The watchdog's exit-path matrix, end to end through the entrypoint.

Every case runs the real entrypoint (supervisor, runner, monitor.py) against
the real SeaweedFS server and ends with one STOPPING line in the dry-run
sentinel, the right action and reason, and a manifest in the bucket where
the bucket is up.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from child_env import s3_child_env
from clips import SLOW_STAGES, make_clip

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FAST = "watchdog: {confirm: 2, interval_s: 0.5, upload_timeout_s: 3}"


class Job:
    """One run of the entrypoint with a config written for the test."""

    def __init__(
        self, tmp: Path, server, prefix: str, body: str, *, dry_run: bool = True, **env: str
    ) -> None:
        self.tmp, self.server, self.prefix = tmp, server, prefix
        self.state = tmp / "state"
        self.config = tmp / "job.yaml"
        self.config.write_text(body)
        args = [sys.executable, str(ROOT / "run_with_config_batch_sync.py"), "--config", str(self.config)]
        args += ["--state-dir", str(self.state)] + (["--dry-run"] if dry_run else [])
        self.proc = subprocess.Popen(
            args, env=s3_child_env(server, **env), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    def wait(self, timeout: float = 120) -> int:
        self.stdout, self.stderr = self.proc.communicate(timeout=timeout)
        return self.proc.returncode

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError("condition not reached in time")

    def status(self) -> dict:
        try:
            return json.loads((self.state / "status.json").read_text())
        except (OSError, ValueError):
            return {}

    def stopped_lines(self) -> list[str]:
        path = self.state / "STOPPED"
        return path.read_text().splitlines() if path.exists() else []

    def shutdown(self) -> dict:
        return json.loads((self.state / "watchdog.json").read_text())["shutdown"]

    def bucket_manifest(self) -> dict | None:
        bucket, _, key = self.prefix.removeprefix("s3://").partition("/")
        try:
            body = self.server.client().get_object(Bucket=bucket, Key=f"{key}out/manifest.json")["Body"]
        except Exception:
            return None
        return json.loads(body.read())


def body(prefix: str, inputs: list[Path | str], extra: str = "") -> str:
    return (
        f"job_id: wd\ninputs: {json.dumps([str(i) for i in inputs])}\n"
        f"encode: {{codec: libx264, preset: ultrafast}}\noutput: {prefix}out/\n{FAST}\n{extra}\n"
    )


def assert_one_stop(job: Job, action: str, reason: str) -> None:
    lines = job.stopped_lines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("STOPPING INSTANCE ")
    assert f"provider=local action={action} reason={reason}" in lines[0]
    shutdown = job.shutdown()
    assert (shutdown["action"], shutdown["reason"]) == (action, reason)
    assert f"action={action} reason={reason}" in job.stderr.decode()


def test_success_verifies_then_destroys(s3_server, s3_prefix, small_clip, tmp_path) -> None:
    job = Job(tmp_path, s3_server, s3_prefix, body(s3_prefix, [small_clip]))
    assert job.wait() == 0, job.stderr.decode()[-3000:]
    assert_one_stop(job, "destroy", "verified")
    manifest = job.bucket_manifest()
    assert manifest and manifest["status"] == "succeeded"
    watch = json.loads((job.state / "watchdog.json").read_text())
    assert watch["checks_done"] >= 2 and watch["objects"][0]["passes"] == 2
    assert not (job.state / "outputs").exists()  # local copies dropped once verified


def test_one_failed_input_verifies_then_stops(s3_server, s3_prefix, small_clip, tmp_path) -> None:
    job = Job(tmp_path, s3_server, s3_prefix, body(s3_prefix, [small_clip, tmp_path / "missing.mp4"]))
    assert job.wait() == 1
    assert_one_stop(job, "stop", "verified")
    assert job.bucket_manifest()["status"] == "partial"


def test_bad_config_still_shuts_down(s3_server, s3_prefix, tmp_path) -> None:
    job = Job(tmp_path, s3_server, s3_prefix, "inputs: [a.mp4\noutput: nowhere\n")
    assert job.wait() == 2
    assert_one_stop(job, "stop", "config_invalid")


def test_runner_killed_mid_job(s3_server, s3_prefix, clip_dir, tmp_path) -> None:
    slow = make_clip(clip_dir / "wd-slow.mp4", size="640x360", frames=600, audio=False)
    job = Job(tmp_path, s3_server, s3_prefix, body(s3_prefix, [slow], f"stages: {SLOW_STAGES}"))
    job.wait_for(lambda: job.status().get("frames_done", 0) > 5)
    os.kill(int((job.state / "runner.pid").read_text()), signal.SIGKILL)
    assert job.wait() == 4
    assert_one_stop(job, "stop", "runner_exited_without_manifest")
    manifest = job.bucket_manifest()
    error = manifest["errors"][0]
    assert manifest["status"] == "failed" and error["type"] == "runner_exited"
    assert error["signal"] == "SIGKILL" and "processing" in error["log_tail"]


def test_hung_runner_is_stopped(s3_server, s3_prefix, clip_dir, tmp_path) -> None:
    clip = make_clip(clip_dir / "wd-hang.mp4", frames=60, audio=False)
    job = Job(
        tmp_path, s3_server, s3_prefix, body(s3_prefix, [clip], "limits: {stall_s: 2, heartbeat_s: 0.2}"),
        BATCH_TEST_HANG_AT_FRAME="5",
    )  # fmt: skip
    assert job.wait() == 1  # the runner was stopped and recorded the input as cancelled
    assert_one_stop(job, "stop", "stalled")
    manifest = job.bucket_manifest()
    assert manifest["status"] == "partial" and manifest["inputs"][0]["status"] == "cancelled"


def test_over_budget_runner_is_stopped(s3_server, s3_prefix, clip_dir, tmp_path) -> None:
    slow = make_clip(clip_dir / "wd-slow.mp4", size="640x360", frames=600, audio=False)
    extra = f"stages: {SLOW_STAGES}\nlimits: {{max_runtime_s: 3}}"
    # the ladder's own run-time estimate would fail the stage first (tests/unit/test_rife.py covers
    # it); pushed out here so the watchdog's budget is what stops this runner
    job = Job(tmp_path, s3_server, s3_prefix, body(s3_prefix, [slow], extra), BATCH_ESTIMATE_AFTER_S="1000")
    assert job.wait() == 1
    assert_one_stop(job, "stop", "max_runtime_exceeded")
    assert job.bucket_manifest()["inputs"][0]["status"] == "cancelled"


def test_bucket_down_when_the_manifest_is_due(
    s3_server, s3_prefix, small_clip, tmp_path, closed_port
) -> None:
    job = Job(
        tmp_path, s3_server, s3_prefix, body(s3_prefix, [small_clip]),
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{closed_port}",
    )  # fmt: skip
    assert job.wait() == 3
    assert_one_stop(job, "stop", "bucket_unreachable")
    assert json.loads((job.state / "manifest.json").read_text())["exit_code"] == 3


def test_object_deleted_after_upload_is_uploaded_again(s3_server, s3_prefix, small_clip, tmp_path) -> None:
    job = Job(
        tmp_path, s3_server, s3_prefix,
        body(s3_prefix, [small_clip]).replace(FAST, "watchdog: {confirm: 3, interval_s: 1}"),
    )  # fmt: skip
    job.wait_for(lambda: job.bucket_manifest() is not None)
    bucket, _, key = s3_prefix.removeprefix("s3://").partition("/")
    s3_server.client().delete_object(Bucket=bucket, Key=f"{key}out/small/small.mp4")
    assert job.wait() == 0
    assert_one_stop(job, "destroy", "verified")
    watch = json.loads((job.state / "watchdog.json").read_text())
    video = next(o for o in watch["objects"] if o["key"] == "small/small.mp4")
    assert video["reuploads"] == 1
    head = s3_server.client().head_object(Bucket=bucket, Key=f"{key}out/small/small.mp4")
    assert head["ContentLength"] == job.bucket_manifest()["inputs"][0]["outputs"][0]["size"]


SLOW_CHECKS = "watchdog: {confirm: 3, interval_s: 1, upload_timeout_s: T}"


@pytest.mark.parametrize("damage", ["garbage", "deleted"])
def test_a_manifest_damaged_after_the_runner_is_put_back(
    damage: str, s3_server, s3_prefix, small_clip, tmp_path
) -> None:
    """The manifest itself is verified: replaced by garbage or deleted once the runner had put it up,
    it had passed as "verified" and the instance was destroyed with no manifest in the bucket
    (outside review). Either the checks put it back, or (damaged before the watchdog read it) the
    watchdog publishes the runner's local copy; both end verified with this run's manifest there."""
    job = Job(
        tmp_path, s3_server, s3_prefix,
        body(s3_prefix, [small_clip]).replace(FAST, SLOW_CHECKS.replace("T", "5")),
    )  # fmt: skip
    job.wait_for(lambda: job.bucket_manifest() is not None)
    bucket, _, key = s3_prefix.removeprefix("s3://").partition("/")
    if damage == "garbage":
        s3_server.client().put_object(Bucket=bucket, Key=f"{key}out/manifest.json", Body=b"GARBAGE{{{")
    else:
        s3_server.client().delete_object(Bucket=bucket, Key=f"{key}out/manifest.json")
    assert job.wait() == 0, job.stderr.decode()[-2000:]
    assert_one_stop(job, "destroy", "verified")
    there = job.bucket_manifest()
    local = json.loads((job.state / "manifest.json").read_text())
    assert there is not None and there["launch_id"] == local["launch_id"] and there["status"] == "succeeded"


def test_an_upload_that_cannot_be_verified_is_failed_in_the_manifest_and_the_exit_code(
    s3_server, s3_prefix, small_clip, tmp_path
) -> None:
    """The output deleted from the bucket and its kept copy gone: verification_failed, as before, and
    now the bucket's manifest says so (it had stayed "succeeded", exit 0)."""
    job = Job(
        tmp_path, s3_server, s3_prefix,
        body(s3_prefix, [small_clip]).replace(FAST, SLOW_CHECKS.replace("T", "3")),
    )  # fmt: skip
    job.wait_for(lambda: job.bucket_manifest() is not None)
    shutil.rmtree(job.state / "outputs", ignore_errors=True)
    bucket, _, key = s3_prefix.removeprefix("s3://").partition("/")
    s3_server.client().delete_object(Bucket=bucket, Key=f"{key}out/small/small.mp4")
    assert job.wait() == 3, job.stderr.decode()[-2000:]
    assert_one_stop(job, "stop", "verification_failed")
    there = job.bucket_manifest()
    assert there is not None and there["status"] == "failed" and there["exit_code"] == 3
    assert any(
        e["type"] == "upload_verification_failed" and "small/small.mp4" in e["message"]
        for e in there["errors"]
    )


# --- real control-plane SDKs against local fakes (mocked: the cloud APIs) ------------------


def test_vast_destroy_retried_after_500(s3_server, s3_prefix, small_clip, tmp_path, vast_fake) -> None:
    vast_fake.script("destroy", 500, 200)
    job = Job(
        tmp_path, s3_server, s3_prefix, body(s3_prefix, [small_clip]), dry_run=False, **vast_fake.env("777")
    )
    assert job.wait() == 0, job.stderr.decode()[-2000:]
    calls = vast_fake.calls("destroy")
    assert len(calls) == 2  # one 500, then the one that worked; never a third
    assert all(c.method == "DELETE" and c.path == "/api/v0/instances/777/" for c in calls)
    assert all(c.auth == f"Bearer {vast_fake.api_key}" for c in calls)
    assert vast_fake.calls("stop") == []
    assert job.shutdown()["action"] == "destroy" and job.shutdown()["reason"] == "verified"
    assert vast_fake.api_key not in job.stderr.decode()
    assert not (job.state / "STOPPED").exists()


def test_vast_stop_retried_after_429(s3_server, s3_prefix, small_clip, tmp_path, vast_fake) -> None:
    vast_fake.script("stop", 429, 429, 200)
    inputs = [small_clip, tmp_path / "missing.mp4"]  # a failed input: on_failure = stop
    job = Job(tmp_path, s3_server, s3_prefix, body(s3_prefix, inputs), dry_run=False, **vast_fake.env("778"))
    assert job.wait() == 1
    calls = vast_fake.calls("stop")
    assert len(calls) == 3 and all(c.method == "PUT" and c.body == {"state": "stopped"} for c in calls)
    assert vast_fake.calls("destroy") == []


def test_runpod_terminate_on_success(s3_server, s3_prefix, small_clip, tmp_path, runpod_fake) -> None:
    job = Job(
        tmp_path,
        s3_server,
        s3_prefix,
        body(s3_prefix, [small_clip]),
        dry_run=False,
        **runpod_fake.env("pod-9"),
    )
    assert job.wait() == 0, job.stderr.decode()[-2000:]
    assert len(runpod_fake.calls("podTerminate")) == 1
    assert runpod_fake.calls("podStop") == []
    assert job.shutdown()["provider"] == "runpod"


def test_dry_run_never_contacts_a_control_plane(
    s3_server, s3_prefix, small_clip, tmp_path, vast_fake, runpod_fake
) -> None:
    env = {**vast_fake.env("1"), **runpod_fake.env("p")}
    job = Job(tmp_path, s3_server, s3_prefix, body(s3_prefix, [small_clip]), dry_run=True, **env)
    assert job.wait() == 0
    assert vast_fake.requests == [] and runpod_fake.requests == []
    assert_one_stop(job, "destroy", "verified")


def _signalled_mid_job(
    sig: signal.Signals, instance: str, s3_server, s3_prefix, clip_dir, tmp_path, vast_fake
) -> Job:
    """A slow job on vast.ai instance ``instance`` (the fake), sent ``sig`` once frames move."""
    slow = make_clip(clip_dir / "wd-slow.mp4", size="640x360", frames=600, audio=False)
    job = Job(
        tmp_path, s3_server, s3_prefix, body(s3_prefix, [slow], f"stages: {SLOW_STAGES}"),
        dry_run=False, **vast_fake.env(instance),
    )  # fmt: skip
    job.wait_for(lambda: job.status().get("frames_done", 0) > 5)
    job.proc.send_signal(sig)
    return job


def test_sigterm_from_the_provider_uploads_partial_and_calls_nothing(
    s3_server, s3_prefix, clip_dir, tmp_path, vast_fake
) -> None:
    # what `docker stop` sends to the entrypoint
    job = _signalled_mid_job(signal.SIGTERM, "779", s3_server, s3_prefix, clip_dir, tmp_path, vast_fake)
    assert job.wait(timeout=60) == 1
    assert vast_fake.requests == []
    assert job.shutdown()["reason"] == "provider_stopping"
    manifest = job.bucket_manifest()
    assert manifest["status"] == "partial" and manifest["inputs"][0]["status"] == "cancelled"


def test_ctrl_c_ends_the_job_and_the_instance_is_stopped(
    s3_server, s3_prefix, clip_dir, tmp_path, vast_fake
) -> None:
    """A Ctrl-C (SIGINT) is a person ending the job, not the provider stopping the machine: it had been
    taken for the latter, so nothing stopped the instance (outside review). Now the watchdog verifies
    the partial upload and stops it as after any failure (instance.on_failure: stop)."""
    job = _signalled_mid_job(signal.SIGINT, "781", s3_server, s3_prefix, clip_dir, tmp_path, vast_fake)
    assert job.wait(timeout=90) != 0
    assert len(vast_fake.calls("stop")) == 1 and vast_fake.calls("destroy") == []
    assert job.shutdown()["reason"] != "provider_stopping"
    manifest = job.bucket_manifest()
    assert manifest["status"] == "partial" and manifest["inputs"][0]["status"] == "cancelled"


def test_a_killed_watchdog_restarts_and_shuts_down_once(
    s3_server, s3_prefix, clip_dir, tmp_path, vast_fake
) -> None:
    clip = make_clip(clip_dir / "wd-mid.mp4", size="640x360", frames=150, audio=False)
    job = Job(
        tmp_path, s3_server, s3_prefix, body(s3_prefix, [clip], "stages: [{upscale: {scale: 2}}]"),
        dry_run=False, **vast_fake.env("780"),
    )  # fmt: skip
    job.wait_for(lambda: job.status().get("frames_done", 0) > 5)
    first = int((job.state / "monitor.pid").read_text())
    os.kill(first, signal.SIGKILL)
    assert job.wait() == 0, job.stderr.decode()[-2000:]
    assert int((job.state / "monitor.pid").read_text()) != first
    assert len(vast_fake.calls("destroy")) == 1


def test_sigterm_during_verification_calls_no_control_plane(
    s3_server, s3_prefix, small_clip, tmp_path, vast_fake
) -> None:
    slow_checks = body(s3_prefix, [small_clip]).replace(FAST, "watchdog: {confirm: 4, interval_s: 1}")
    job = Job(tmp_path, s3_server, s3_prefix, slow_checks, dry_run=False, **vast_fake.env("781"))

    def verifying() -> bool:
        try:
            return json.loads((job.state / "watchdog.json").read_text())["phase"] == "verifying"
        except (OSError, ValueError, KeyError):
            return False

    job.wait_for(verifying)
    job.proc.send_signal(signal.SIGTERM)  # the provider stops the container mid-verification
    job.wait(timeout=60)
    assert vast_fake.requests == []
    assert job.shutdown()["reason"] == "provider_stopping"


def test_a_watchdog_bug_still_ends_in_a_shutdown(tmp_path, monkeypatch) -> None:
    from batch.providers.local import LocalProvider
    from batch.watchdog.watch import Watchdog, WatchdogSettings

    settings = WatchdogSettings(
        state_dir=tmp_path, provider=LocalProvider(tmp_path), output=None, runner_pid=None
    )
    dog = Watchdog(settings)

    def broken() -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(dog, "_watch", broken)
    assert dog.run() == 0
    assert "reason=watchdog_error" in (tmp_path / "STOPPED").read_text()
