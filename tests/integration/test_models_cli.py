"""``python -m batch.models fetch``: weights from the S3 server into WEIGHTS_DIR, checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from child_env import s3_child_env
from model_weights import sha256_of, write_rife4

from batch.storage import open_url

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def fetch(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "batch.models", "fetch", *args],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
    )  # fmt: skip


def test_fetch_from_s3_checks_and_caches(tmp_path: Path, s3_env, s3_prefix: str) -> None:
    local = tmp_path / "flownet.pkl"
    sha = write_rife4(local, "4.6")
    url = f"{s3_prefix}weights/flownet.pkl"
    open_url(url).upload(local, url)
    weights = tmp_path / "weights"
    env = s3_child_env(s3_env, WEIGHTS_DIR=str(weights), PYTHONPATH=str(ROOT))

    ok = fetch("--url", url, "--sha256", sha, "--kind", "rife", env=env)
    assert ok.returncode == 0, ok.stderr
    cached = weights / "sha256" / sha / "flownet.pkl"
    assert sha256_of(cached) == sha and "sha256 checked" in ok.stdout
    assert not [p for p in cached.parent.iterdir() if p.name.endswith(".partial")]

    wrong = fetch("--url", url, "--sha256", "1" * 64, "--kind", "rife", env=env)
    assert wrong.returncode == 2
    assert f"have sha256 {sha}, expected {'1' * 64}" in wrong.stderr
    assert not (weights / "sha256" / ("1" * 64)).exists() or not any(
        (weights / "sha256" / ("1" * 64)).iterdir()
    )

    missing = fetch("--url", f"{s3_prefix}weights/nope.pkl", "--sha256", sha, env=env)
    assert missing.returncode == 3 and "could not be fetched" in missing.stderr
    assert s3_env.secret_key not in missing.stderr + wrong.stderr

    unknown = fetch("rife-9", env=env)
    assert unknown.returncode == 2 and "unknown model 'rife-9'" in unknown.stderr
