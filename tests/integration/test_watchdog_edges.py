"""Edges of the shutdown promise that the fault matrix does not cover.

* PID 1 given a config that would crash or hang a YAML parser, with no
  --state-dir (so the job id must come from a parser with limits in a child).
* A watchdog started with --manifest-url next to an earlier run's manifest.
* Budgets on the monotonic clock: a wall clock moved by days does not end a run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from child_env import s3_child_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

HOSTILE = {
    "deep_nesting": "a: " + "[" * 20000 + "]" * 20000 + "\n",
    "alias_bomb": "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
              f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
              f"*{chr(97 + i)}]\n" for i in range(9)),  # 9^10 values once expanded
    "too_big": "job_id: big\n" + "# padding\n" * 300_000,
    "binary": "\x00\x01\x02\xff garbage",
    "not_a_mapping": "- just\n- a list\n",
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_pid1_survives_a_hostile_config_and_still_shuts_down(kind: str, tmp_path: Path) -> None:
    cfg = tmp_path / "job.yaml"
    cfg.write_bytes(HOSTILE[kind].encode("utf-8", errors="surrogateescape"))
    state_root = tmp_path / "state-root"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CONFIG_URL", "VAST_", "RUNPOD_"))
    }
    env.update(STATE_DIR=str(state_root), SHUTDOWN_RETRY_BASE_WAIT_S="0.05")
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run_with_config_batch_sync.py"), "--config", str(cfg), "--dry-run"],
        env=env,
        capture_output=True,
        timeout=120,
    )
    took = time.monotonic() - t0
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 2, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert took < 60  # an alias bomb must not hang PID 1
    manifests = list(state_root.rglob("manifest.json"))
    assert len(manifests) == 1, sorted(p.name for p in state_root.rglob("*"))
    failure = json.loads(manifests[0].read_text())
    assert failure["status"] == "failed" and failure["exit_code"] == 2
    assert failure["errors"] and failure["errors"][0]["type"].startswith("config")
    stopped = manifests[0].parent / "STOPPED"
    lines = stopped.read_text().splitlines()
    assert len(lines) == 1 and "action=stop reason=config_invalid" in lines[0], lines


def _monitor(state: Path, server, *extra: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, str(ROOT / "monitor.py"), "--state-dir", str(state), "--dry-run", *extra],
        env=s3_child_env(server, SHUTDOWN_RETRY_BASE_WAIT_S="0.05"),
        capture_output=True,
        timeout=timeout,
    )


def _put_manifest(server, prefix: str, manifest: dict) -> str:
    bucket, _, key = prefix.removeprefix("s3://").partition("/")
    server.client().put_object(
        Bucket=bucket, Key=f"{key}out/manifest.json", Body=json.dumps(manifest).encode()
    )
    return f"{prefix}out/manifest.json"


OLD = {
    "job_id": "old",
    "launch_id": "earlier-launch",
    "status": "succeeded",
    "exit_code": 0,
    "started_at": "2026-01-01T00:00:00Z",
    "finished_at": "2026-01-01T01:00:00Z",
    "inputs": [],
    "errors": [],
}


def test_manifest_url_with_a_launch_id_ignores_an_earlier_runs_manifest(
    s3_server, s3_prefix, tmp_path
) -> None:
    url = _put_manifest(s3_server, s3_prefix, OLD)
    state = tmp_path / "state"
    state.mkdir()
    # no runner, no manifest of this launch: only the runtime limit ends the wait
    (state / "watchdog.json").write_text(json.dumps({"started_at": time.time()}))
    proc = _monitor(state, s3_server, "--manifest-url", url, "--launch-id", "this-launch", "--poll", "0.1",
                    "--max-runtime", "3")  # fmt: skip
    err = proc.stderr.decode()
    assert proc.returncode == 0, err[-3000:]
    lines = (state / "STOPPED").read_text().splitlines()
    assert len(lines) == 1 and "reason=max_runtime_exceeded" in lines[0], (lines, err[-2000:])
    assert "action=destroy" not in lines[0]  # an earlier run's success never counts as this one's


def test_manifest_url_without_a_launch_id_waits_for_a_new_manifest(s3_server, s3_prefix, tmp_path) -> None:
    url = _put_manifest(s3_server, s3_prefix, OLD)
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "monitor.py"), "--state-dir", str(state), "--dry-run",
         "--manifest-url", url, "--poll", "0.1", "--max-runtime", "30",
         "--confirm", "1", "--interval", "0.1"],
        env=s3_child_env(s3_server, SHUTDOWN_RETRY_BASE_WAIT_S="0.05"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    time.sleep(3)
    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]  # the old one did not end the wait
    assert not (state / "STOPPED").exists()
    new = {**OLD, "job_id": "new", "launch_id": "other", "started_at": "2026-12-03T00:00:00Z",
           "finished_at": "2026-12-03T00:10:00Z"}  # fmt: skip
    _put_manifest(s3_server, s3_prefix, new)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()[-3000:]
    lines = (state / "STOPPED").read_text().splitlines()
    assert len(lines) == 1 and "action=destroy reason=verified" in lines[0], lines


def test_a_wall_clock_days_ahead_does_not_end_a_run_over_budget(s3_server, s3_prefix, tmp_path) -> None:
    """A restarted watchdog whose state says it started 10 days ago by the wall clock, but moments ago
    by this boot's monotonic clock (an NTP jump), is not over max_runtime."""
    from batch.watchdog.watch import _boot_id

    if _boot_id() is None:
        pytest.skip("no /proc boot id: the monotonic clock cannot be tied to this boot")
    url = _put_manifest(s3_server, s3_prefix, OLD)
    state = tmp_path / "state"
    state.mkdir()
    (state / "watchdog.json").write_text(
        json.dumps(
            {"started_at": time.time() - 10 * 86400, "started_mono": time.monotonic(), "boot_id": _boot_id()}
        )
    )
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "monitor.py"), "--state-dir", str(state), "--dry-run",
         "--manifest-url", url, "--launch-id", "this", "--poll", "0.1", "--max-runtime", "3600"],
        env=s3_child_env(s3_server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        time.sleep(4)
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        assert not (state / "STOPPED").exists()
    finally:
        proc.kill()
        proc.communicate()


def test_an_input_larger_than_the_free_disk_fails_by_name_and_the_rest_run(
    s3_server, s3_prefix, small_clip, tmp_path
) -> None:
    """The disk is made small by BATCH_TEST_DISK_FREE_BYTES (a tmpfs needs root and a mount)."""
    bucket, _, key = s3_prefix.removeprefix("s3://").partition("/")
    client = s3_server.client()
    client.upload_file(str(small_clip), bucket, f"{key}in/big.mp4")
    local = tmp_path / "local.mp4"
    local.write_bytes(small_clip.read_bytes())  # a local input needs no download: it still runs
    cfg = tmp_path / "job.yaml"
    cfg.write_text(
        f"job_id: disk\ninputs: [{s3_prefix}in/big.mp4, {local}]\n"
        "encode: {codec: libx264, preset: ultrafast}\n"
        f"output: {s3_prefix}out/\nwatchdog: {{confirm: 1, interval_s: 0.3}}\n"
    )
    state = tmp_path / "state"
    free = small_clip.stat().st_size // 2
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run_with_config_batch_sync.py"), "--config", str(cfg), "--dry-run",
         "--state-dir", str(state)],
        env=s3_child_env(s3_server, BATCH_TEST_DISK_FREE_BYTES=str(free), BATCH_DISK_RESERVE_BYTES="0"),
        capture_output=True,
        timeout=180,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr.decode()[-3000:]
    manifest = json.loads(client.get_object(Bucket=bucket, Key=f"{key}out/manifest.json")["Body"].read())
    big, small = manifest["inputs"]
    assert small["status"] == "succeeded"
    assert big["status"] == "failed" and big["error"]["type"] == "disk_full"
    assert f"{free} B is free" in big["error"]["message"] or "KiB is free" in big["error"]["message"]
    assert big["error"]["needed_bytes"] == small_clip.stat().st_size
    lines = (state / "STOPPED").read_text().splitlines()
    assert len(lines) == 1 and "action=stop reason=verified" in lines[0]
