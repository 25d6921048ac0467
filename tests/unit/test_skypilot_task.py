"""configs/skypilot.yaml, loaded by SkyPilot's own parser (sky.Task.from_yaml).

SkyPilot lives in .venv-tools (its pins clash with the runpod SDK's), so the
parser runs in a child process there; `scripts/setup.sh --dev` installs it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from batch.instance import detect_provider
from batch.shards import Shard

ROOT = Path(__file__).resolve().parents[2]
TOOLS_PYTHON = ROOT / ".venv-tools" / "bin" / "python"

LOAD = """
import json, sys, sky
task = sky.Task.from_yaml(sys.argv[1])
res = list(task.resources)[0]
print(json.dumps({
    "num_nodes": task.num_nodes, "run": task.run, "envs": task.envs,
    "cloud": str(res.cloud), "accelerators": res.accelerators,
    "image_id": list((res.image_id or {}).values()), "job_recovery": res.job_recovery,
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


def test_task_runs_the_image_on_several_nodes_with_recovery(task: dict) -> None:
    assert task["num_nodes"] > 1
    assert task["cloud"] in ("Vast", "RunPod")
    assert task["image_id"][0].startswith("docker:")
    assert task["job_recovery"]["strategy"] == "FAILOVER"
    assert task["envs"]["CONFIG_URL"].startswith("s3://")
    assert "AWS_SECRET_ACCESS_KEY" not in task["envs"]  # a secret, given at launch


def test_each_node_takes_its_shard_from_its_rank(task: dict) -> None:
    assert "run_with_config_batch_sync.py" in task["run"]
    assert '--shard "${SKYPILOT_NODE_RANK}/${SKYPILOT_NUM_NODES}"' in task["run"]
    # what the run line expands to on node 2 of 4 is a shard the runner accepts
    assert Shard.parse("2/4") == Shard(2, 4)


def test_under_skypilot_teardown_is_left_to_skypilot() -> None:
    assert detect_provider(
        {"SKYPILOT_TASK_ID": "sky-2026-x", "CONTAINER_ID": "1", "CONTAINER_API_KEY": "k"}
    ) == ("skypilot")
