"""scripts/status.py against a real job's output, local and in SeaweedFS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from child_env import s3_child_env
from PIL import Image

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=180
    )


def test_status_of_a_finished_job_in_the_bucket(s3_server, s3_prefix, small_clip, tmp_path) -> None:
    env = s3_child_env(s3_server)
    cfg = tmp_path / "job.yaml"
    cfg.write_text(
        f"job_id: st\ninputs: [{small_clip}, {tmp_path / 'gone.mp4'}]\n"
        "stages: [{interpolate: {factor: 2}}]\n"
        f"encode: {{codec: libx264, preset: ultrafast}}\noutput: {s3_prefix}out/\n"
    )
    job = run(
        [
            "run_with_config_batch_sync.py",
            "--no-watchdog",
            "--config",
            str(cfg),
            "--state-dir",
            str(tmp_path),
        ],
        env,
    )
    assert job.returncode == 1, job.stderr

    shown = run(["scripts/status.py", f"{s3_prefix}out/"], env)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert "job st: partial (exit 1)" in text
    assert (
        "small.mp4" in text and "30->60" in text and "interpolate:blend" in text and "encode:libx264" in text
    )
    assert "-> small/small.mp4" in text and "-> small/preview.jpg" in text
    assert "object_not_found" in text and "fix:" in text

    raw = run(["scripts/status.py", f"{s3_prefix}out/", "--json"], env)
    data = json.loads(raw.stdout)
    assert data["status"]["phase"] == "partial" and len(data["manifests"]) == 1
    assert not data["stale_manifests"]

    # the preview is a real image: one row per sampled instant, source and result side by side
    bucket, _, key = s3_prefix.removeprefix("s3://").partition("/")
    got = tmp_path / "preview.jpg"
    s3_server.client().download_file(bucket, f"{key}out/small/preview.jpg", str(got))
    with Image.open(got) as im:
        assert im.format == "JPEG" and im.height > 3 * 270 and im.width > 2 * 320


def test_status_of_an_empty_prefix_and_an_unreachable_store(s3_server, tmp_path, closed_port) -> None:
    assert run(["scripts/status.py", str(tmp_path / "nothing")]).returncode == 2
    env = s3_child_env(s3_server, AWS_ENDPOINT_URL=f"http://127.0.0.1:{closed_port}")
    down = run(["scripts/status.py", "s3://bucket/out/"], env)
    assert down.returncode == 3 and "error:" in down.stderr
