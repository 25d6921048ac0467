"""Chunked checkpoints in the bucket: identical frames, resume after SIGKILL, damaged parts, workers.

Frames are compared decoded (ffmpeg framemd5 of the video stream) with a
lossless encoder (FFV1), so "identical" means bit for bit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from child_env import s3_child_env
from clips import framemd5, make_clip

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STAGES = "[{interpolate: {factor: 2}}, {upscale: {scale: 2}}]"


@pytest.fixture(scope="module")
def clip(clip_dir: Path) -> Path:
    """4 s at 30 fps with audio: four chunks of one second."""
    return make_clip(clip_dir / "chunky.mp4", size="320x240", frames=120)


def config(tmp: Path, inputs: str, output: str, *, chunk_s: float, keep_parts: bool = False) -> Path:
    cfg = tmp / f"job-{chunk_s}-{keep_parts}.yaml"
    cfg.write_text(
        f"job_id: chunks\ninputs: [{inputs}]\nstages: {STAGES}\nencode: {{codec: ffv1, container: mkv}}\n"
        f"output: {{url: {output}, keep_parts: {str(keep_parts).lower()}}}\n"
        f"limits: {{chunk_s: {chunk_s}, heartbeat_s: 0.2}}\n"
    )
    return cfg


def run(cfg: Path, state: Path, env: dict[str, str] | None = None, *extra: str) -> subprocess.Popen:
    args = [
        sys.executable,
        str(ROOT / "run_with_config_batch_sync.py"),
        "--no-watchdog",
        "--config",
        str(cfg),
    ]
    return subprocess.Popen(
        [*args, "--state-dir", str(state), *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def finish(proc: subprocess.Popen) -> int:
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err.decode()[-3000:]
    return proc.returncode


@pytest.fixture(scope="module")
def single_pass(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The reference: the same job in one pass (a chunk longer than the clip)."""
    tmp = tmp_path_factory.mktemp("single")
    finish(run(config(tmp, str(clip), f"{tmp}/out/", chunk_s=60), tmp / "state"))
    return framemd5(tmp / "out" / "chunky" / "chunky.mkv")


def test_chunked_equals_single_pass_and_leaves_no_parts(
    clip: Path, single_pass: list[str], tmp_path: Path
) -> None:
    finish(run(config(tmp_path, str(clip), f"{tmp_path}/out/", chunk_s=1), tmp_path / "state"))
    out = tmp_path / "out" / "chunky"
    assert framemd5(out / "chunky.mkv") == single_pass
    assert len(single_pass) == 240
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    entry = manifest["inputs"][0]
    assert entry["chunks"] == {"count": 4, "chunk_frames": 30, "reused": 0, "processed": 4}
    assert entry["media_out"]["frame_count"] == 240
    assert not (out / "parts").exists() or not any((out / "parts").iterdir())  # no stray parts


def test_workers_two_equals_workers_one(clip: Path, single_pass: list[str], tmp_path: Path) -> None:
    finish(
        run(
            config(tmp_path, str(clip), f"{tmp_path}/out/", chunk_s=1),
            tmp_path / "state",
            None,
            "--workers",
            "2",
        )
    )
    assert framemd5(tmp_path / "out" / "chunky" / "chunky.mkv") == single_pass


def bucket_keys(client, bucket: str, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_sigkill_then_resume_redoes_at_most_one_chunk(
    s3_server, s3_prefix, clip: Path, single_pass: list[str], tmp_path: Path
) -> None:
    client = s3_server.client()
    bucket, _, key = s3_prefix.removeprefix("s3://").partition("/")
    cfg = config(tmp_path, str(clip), f"{s3_prefix}out/", chunk_s=1)
    env = s3_child_env(s3_server)
    first = run(cfg, tmp_path / "s1", env)
    records = f"{key}out/chunky/parts/"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if sum(k.endswith(".json") for k in bucket_keys(client, bucket, records)) >= 2:
            break
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=30)
    checkpointed = sum(k.endswith(".json") for k in bucket_keys(client, bucket, records))
    assert 2 <= checkpointed < 4, "the kill should land mid-job"

    finish(run(cfg, tmp_path / "s2", env))
    manifest = json.loads(client.get_object(Bucket=bucket, Key=f"{key}out/manifest.json")["Body"].read())
    chunks = manifest["inputs"][0]["chunks"]
    # every checkpointed chunk is reused: the only work lost is the chunk that was in flight
    assert chunks["reused"] == checkpointed and chunks["processed"] == 4 - checkpointed
    got = tmp_path / "final.mkv"
    client.download_file(bucket, f"{key}out/chunky/chunky.mkv", str(got))
    assert framemd5(got) == single_pass
    assert bucket_keys(client, bucket, records) == []  # no stray parts


def test_damaged_parts_are_redone_not_trusted(
    s3_server, s3_prefix, clip: Path, single_pass: list[str], tmp_path: Path
) -> None:
    client = s3_server.client()
    bucket, _, key = s3_prefix.removeprefix("s3://").partition("/")
    cfg = config(tmp_path, str(clip), f"{s3_prefix}out/", chunk_s=1, keep_parts=True)
    env = s3_child_env(s3_server)
    finish(run(cfg, tmp_path / "s1", env))
    parts = f"{key}out/chunky/parts/"
    body = client.get_object(Bucket=bucket, Key=f"{parts}part-00001.mkv")["Body"].read()
    client.put_object(Bucket=bucket, Key=f"{parts}part-00001.mkv", Body=body[: len(body) // 2])  # truncated
    other = client.get_object(Bucket=bucket, Key=f"{parts}part-00002.mkv")["Body"].read()
    client.put_object(Bucket=bucket, Key=f"{parts}part-00002.mkv", Body=other[:-1] + bytes([other[-1] ^ 1]))
    client.delete_object(Bucket=bucket, Key=f"{key}out/chunky/output.json")  # not done: redo from parts

    finish(run(cfg, tmp_path / "s2", env))
    manifest = json.loads(client.get_object(Bucket=bucket, Key=f"{key}out/manifest.json")["Body"].read())
    assert manifest["inputs"][0]["chunks"] == {"count": 4, "chunk_frames": 30, "reused": 2, "processed": 2}
    got = tmp_path / "final.mkv"
    client.download_file(bucket, f"{key}out/chunky/chunky.mkv", str(got))
    assert framemd5(got) == single_pass

    # a third run finds the final output verified and skips the input
    finish(run(cfg, tmp_path / "s3", env))
    manifest = json.loads(client.get_object(Bucket=bucket, Key=f"{key}out/manifest.json")["Body"].read())
    entry = manifest["inputs"][0]
    assert entry["status"] == "succeeded" and entry["chunks"] is None
    assert any("skipped" in n for n in entry["notes"])


def test_sigterm_with_two_workers_exits_quickly_with_a_partial_manifest(clip: Path, tmp_path: Path) -> None:
    cfg = config(tmp_path, str(clip), f"{tmp_path}/out/", chunk_s=1)
    proc = run(cfg, tmp_path / "state", None, "--workers", "2")
    status = tmp_path / "state" / "status.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if json.loads(status.read_text()).get("frames_done", 0) > 10:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert time.monotonic() - sent < 20
    assert proc.returncode == 1
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["status"] == "partial" and manifest["inputs"][0]["status"] == "cancelled"
