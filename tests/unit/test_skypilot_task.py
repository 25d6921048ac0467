"""configs/skypilot.yaml, loaded by SkyPilot's own parser (sky.Task.from_yaml).

SkyPilot lives in .venv-tools (its pins clash with the runpod SDK's), so the
parser runs in a child process there; `scripts/setup.sh --dev` installs it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from batch.job.shards import Shard
from batch.providers import detect_provider

ROOT = Path(__file__).resolve().parents[2]
TOOLS_PYTHON = ROOT / ".venv-tools" / "bin" / "python"

LOAD = """
import json, sys, sky, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
try:
    sky.Task.from_yaml_config(cfg)
    needs_run_id = False
except ValueError as e:
    needs_run_id = "BATCH_RUN_ID" in str(e)
task = sky.Task.from_yaml_config(cfg, env_overrides=[("BATCH_RUN_ID", "run-7")])
checks = {}
for res in task.resources:  # SkyPilot's own feature check, as at launch; no credentials needed
    wanted = task.get_required_cloud_features() | res.get_required_cloud_features()
    try:
        res.cloud.check_features_are_supported(res, wanted)
        checks[str(res.cloud)] = "ok"
    except Exception as e:
        checks[str(res.cloud)] = f"{type(e).__name__}: {e}"
print(json.dumps({
    "num_nodes": task.num_nodes, "run": task.run, "envs": task.envs, "needs_run_id": needs_run_id,
    "checks": checks, "accelerators": [r.accelerators for r in task.resources],
    "image_id": [list((r.image_id or {}).values()) for r in task.resources],
    "job_recovery": [r.job_recovery for r in task.resources],
}))
"""


@pytest.fixture(scope="module")
def task() -> dict:
    if not TOOLS_PYTHON.exists():
        pytest.fail("SkyPilot is not installed: run `bash scripts/setup.sh --dev`")
    out = subprocess.run(
        [str(TOOLS_PYTHON), "-c", LOAD, str(ROOT / "configs" / "skypilot.yaml")],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_skypilots_feature_check_accepts_the_task_on_vast_and_runpod(task: dict) -> None:
    assert task["checks"] == {"Vast": "ok", "RunPod": "ok"}, task["checks"]
    assert task["num_nodes"] == 1  # N jobs of one node each: vast.ai and RunPod have no multi-node


def test_the_task_runs_the_image_with_recovery_and_no_secret_in_it(task: dict) -> None:
    assert all(ids[0].startswith("docker:") for ids in task["image_id"])
    assert all(r["strategy"] == "FAILOVER" for r in task["job_recovery"])
    assert task["envs"]["CONFIG_URL"].startswith("s3://")
    assert "AWS_SECRET_ACCESS_KEY" not in task["envs"]  # a secret, given at launch
    assert task["needs_run_id"]  # one BATCH_RUN_ID per run is required at launch


def test_each_job_takes_its_shard_from_its_job_rank(task: dict) -> None:
    assert "run_with_config_batch_sync.py" in task["run"]
    assert '--shard "${SKYPILOT_JOB_RANK:-0}/${SKYPILOT_NUM_JOBS:-1}"' in task["run"]
    # what the run line expands to for job 2 of 4 is a shard the runner accepts
    assert Shard.parse("2/4") == Shard(2, 4)


def test_the_job_rank_is_taken_from_the_environment_too() -> None:
    env = {"SKYPILOT_JOB_RANK": "2", "SKYPILOT_NUM_JOBS": "4"}
    assert Shard.from_env(env) == Shard(2, 4)
    assert Shard.from_env({**env, "SHARD_INDEX": "1", "SHARD_COUNT": "3"}) == Shard(1, 3)  # ours first
    assert Shard.from_env({}) is None


def test_under_skypilot_teardown_is_left_to_skypilot() -> None:
    assert detect_provider(
        {"SKYPILOT_TASK_ID": "sky-2026-x", "CONTAINER_ID": "1", "CONTAINER_API_KEY": "k"}
    ) == ("skypilot")
