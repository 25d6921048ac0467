"""The entrypoint against real stores: SeaweedFS S3, b2sdk's RawSimulator, HTTP.

Checks that every output named in the manifest is in the bucket with the size
and sha256 the manifest gives, and that unreachable or refusing stores end
the job with exit code 3, a failure manifest, and no secret in any output.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from child_env import s3_child_env
from clips import count_frames

from batch.job.runner import RunOptions, run_job

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ENCODE = "encode: {codec: libx264, preset: ultrafast}"


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "run_with_config_batch_sync.py"), "--no-watchdog", *args],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=240,
    )  # fmt: skip


def split(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key


def test_s3_config_inputs_and_outputs_end_to_end(
    s3_server, s3_prefix: str, small_clip: Path, tmp_path: Path
) -> None:
    client = s3_server.client()
    bucket, prefix = split(s3_prefix)
    client.upload_file(str(small_clip), bucket, f"{prefix}in/clip.mp4")
    config = (
        f"job_id: s3-e2e\ninputs: [{s3_prefix}in/, {s3_prefix}in/absent.mp4]\n"
        f"stages: [{{interpolate: {{factor: 2}}}}]\n{ENCODE}\noutput: {s3_prefix}out/\n"
    )
    client.put_object(Bucket=bucket, Key=f"{prefix}job.yaml", Body=config.encode())

    proc = run_cli(
        ["--config", f"{s3_prefix}job.yaml", "--dry-run", "--state-dir", str(tmp_path / "state")],
        s3_child_env(s3_server),
    )
    assert proc.returncode == 1, proc.stderr  # the absent input fails, the other succeeds
    manifest = json.loads(client.get_object(Bucket=bucket, Key=f"{prefix}out/manifest.json")["Body"].read())
    assert [r["status"] for r in manifest["inputs"]] == ["succeeded", "failed"]
    assert manifest["inputs"][1]["error"]["type"] == "object_not_found"
    assert "absent.mp4" in manifest["inputs"][1]["error"]["message"]

    entry = manifest["inputs"][0]
    assert entry["source"]["sha256"] == hashlib.sha256(small_clip.read_bytes()).hexdigest()
    out = entry["outputs"][0]
    assert out["key"] == "clip/clip.mp4"
    local = tmp_path / "got.mp4"
    client.download_file(bucket, f"{prefix}out/clip/clip.mp4", str(local))
    # a user can verify the output from the manifest alone
    assert local.stat().st_size == out["size"]
    assert hashlib.sha256(local.read_bytes()).hexdigest() == out["sha256"]
    assert count_frames(local) == 60
    status = json.loads(client.get_object(Bucket=bucket, Key=f"{prefix}out/status.json")["Body"].read())
    assert status["schema"] == "batch-status/1" and status["phase"] == "partial"


def test_unreachable_endpoint_exits_3_with_a_failure_manifest(
    s3_server, small_clip: Path, tmp_path: Path, closed_port: int
) -> None:
    cfg = tmp_path / "job.yaml"
    cfg.write_text(f"job_id: unreachable\ninputs: [{small_clip}]\n{ENCODE}\noutput: s3://bucket/out/\n")
    env = s3_child_env(s3_server, AWS_ENDPOINT_URL=f"http://127.0.0.1:{closed_port}")
    proc = run_cli(["--config", str(cfg), "--state-dir", str(tmp_path / "state")], env)
    assert proc.returncode == 3, proc.stderr
    assert f"127.0.0.1:{closed_port}" in proc.stderr
    manifest = json.loads((tmp_path / "state" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["exit_code"] == 3
    assert {e["type"] for e in manifest["errors"]} == {"storage_unreachable"}


def test_refused_credentials_exit_3_and_never_print_the_secret(
    s3_server, s3_prefix: str, small_clip: Path, tmp_path: Path
) -> None:
    secret = "WRONG-secret-value-1234567890"
    cfg = tmp_path / "job.yaml"
    cfg.write_text(f"job_id: refused\ninputs: [{small_clip}]\n{ENCODE}\noutput: {s3_prefix}out/\n")
    proc = run_cli(
        ["--config", str(cfg), "--state-dir", str(tmp_path / "state")],
        s3_child_env(s3_server, AWS_SECRET_ACCESS_KEY=secret),
    )
    assert proc.returncode == 3, proc.stderr
    manifest_text = (tmp_path / "state" / "manifest.json").read_text()
    assert "credentials_refused" in manifest_text
    for text in (proc.stdout, proc.stderr, manifest_text):
        assert secret not in text
        assert s3_server.secret_key not in text


def test_missing_s3_input_object(s3_server, s3_prefix: str, tmp_path: Path) -> None:
    cfg = tmp_path / "job.yaml"
    cfg.write_text(f"inputs: [{s3_prefix}nothing-here/]\n{ENCODE}\noutput: {tmp_path / 'o'}\n")
    proc = run_cli(["--config", str(cfg), "--state-dir", str(tmp_path / "s")], s3_child_env(s3_server))
    assert proc.returncode == 1
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["inputs"][0]["error"]["type"] == "object_not_found"
    assert "no videos under" in manifest["inputs"][0]["error"]["message"]


def test_b2_input_and_output(b2_api, small_clip: Path, tmp_path: Path) -> None:
    b2_api.bucket.upload_local_file(str(small_clip), "in/clip.mp4")
    cfg = tmp_path / "job.yaml"
    cfg.write_text(
        f"job_id: b2-job\ninputs: [b2://{b2_api.bucket_name}/in/clip.mp4]\n{ENCODE}\n"
        f"output: b2://{b2_api.bucket_name}/out/\n"
    )
    code = run_job(str(cfg), RunOptions(dry_run=True, state_dir=tmp_path / "state"))
    assert code == 0
    names = {fv.file_name for fv, _ in b2_api.bucket.ls(recursive=True)}
    assert {"out/clip/clip.mp4", "out/manifest.json", "out/status.json"} <= names
    manifest = json.loads((tmp_path / "state" / "manifest.json").read_text())
    out = manifest["inputs"][0]["outputs"][0]
    local = tmp_path / "got.mp4"
    b2_api.bucket.download_file_by_name("out/clip/clip.mp4").save_to(str(local))
    assert hashlib.sha256(local.read_bytes()).hexdigest() == out["sha256"]
    assert out["store_checksum"]  # B2's own SHA1 is recorded


def test_http_config_and_input(http_server, small_clip: Path, tmp_path: Path) -> None:
    (http_server.root / "clip.mp4").write_bytes(small_clip.read_bytes())
    signed = f"{http_server.base_url}/clip.mp4?X-Amz-Signature=sekrit"
    (http_server.root / "job.yaml").write_text(f"inputs: ['{signed}']\n{ENCODE}\noutput: {tmp_path / 'o'}\n")
    code = run_job(f"{http_server.base_url}/job.yaml", RunOptions(state_dir=tmp_path / "s"))
    assert code == 0
    manifest_text = (tmp_path / "o" / "manifest.json").read_text()
    assert "sekrit" not in manifest_text  # presigned query strings are redacted
    assert count_frames(tmp_path / "o" / "clip" / "clip.mp4") == 30
