"""scripts/launch_vast.py and scripts/launch_runpod.py as subprocesses against the fake
control planes: what reaches the search and the create, which offer is chosen, that
secrets never reach the terminal, that --dry-run sends nothing, and the failures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fakes.control_planes import FakeRunPod, FakeVast
from fixtures_control_planes import RUNPOD_KEY, VAST_KEY

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "ghcr.io/example/gpu-batch-runner:1.2.3"
CONFIG_URL = "s3://jobs-bucket/jobs/job.yaml"
CREDS = {
    "AWS_ACCESS_KEY_ID": "AKIAFAKEACCESS7Q2W",
    "AWS_SECRET_ACCESS_KEY": "fake-aws-secret-Zq9Xw3Lm8",
    "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEFAKEsession/Tok3n+Qx7==",  # temporary credentials need it
    "AWS_ENDPOINT_URL": "https://s3.fake-endpoint.example",
    "AWS_REGION": "eu-fake-7",
    "B2_APPLICATION_KEY_ID": "fakeb2keyid4242",
    "B2_APPLICATION_KEY": "fake-b2-secret-K0mP5vR",
}
SECRETS = [*CREDS.values(), VAST_KEY, RUNPOD_KEY]


def run(script: str, env: dict[str, str], *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "B2_", "CONFIG_URL", "RUNPOD_", "VAST_"))
    }
    full = base | {"HOME": str(home), "CONFIG_URL": CONFIG_URL} | CREDS | env
    cmd = [sys.executable, str(ROOT / "scripts" / script), "--image", IMAGE, *args]
    return subprocess.run(cmd, env=full, capture_output=True, text=True, timeout=120, cwd=ROOT)


def assert_no_secrets(result: subprocess.CompletedProcess[str], *extra: str) -> None:
    out = result.stdout + result.stderr
    for secret in (*SECRETS, *extra):
        assert secret not in out, f"secret {secret[:6]}... printed"


# --- vast.ai -------------------------------------------------------------------------------


@pytest.fixture
def vast(vast_fake: FakeVast) -> FakeVast:
    """Offers: 102 is the cheapest that meets the standard filters below, 101 leads vast's score."""
    f = vast_fake
    f.add_offer(101, dph_total=0.55, score=300.0)
    f.add_offer(102, dph_total=0.35, score=100.0, geolocation="Canada, CA")
    f.add_offer(103, dph_total=0.10, gpu_name="RTX 3090")
    f.add_offer(104, dph_total=0.20, reliability=0.90)
    f.add_offer(105, dph_total=0.25, gpu_ram=16376)
    f.add_offer(106, dph_total=0.30, cuda_max_good=11.8)
    f.add_offer(107, dph_total=0.32, disk_space=20.0)
    f.add_offer(108, dph_total=0.90)
    f.add_offer(109, dph_total=0.15, num_gpus=2)
    f.add_offer(110, dph_total=0.12, rentable=False)
    return f


FILTERS = (
    "--gpu", "RTX_4090", "--num-gpus", "1", "--min-vram", "24", "--max-price", "0.6", "--disk", "60",
    "--min-reliability", "0.98", "--min-cuda", "12.4",
)  # fmt: skip


def vast_env(fake: FakeVast, key: str | None = VAST_KEY) -> dict[str, str]:
    return {"VAST_URL": fake.url} | ({"VAST_API_KEY": key} if key else {})


def test_vast_filters_reach_the_search_and_the_cheapest_match_is_created(
    vast: FakeVast, tmp_path: Path
) -> None:
    r = run("launch_vast.py", vast_env(vast), *FILTERS, "--output-prefix", "s3://out/job/", home=tmp_path)
    assert r.returncode == 0, r.stderr
    search, create = vast.requests
    assert (search.method, search.path, search.endpoint) == ("POST", "/api/v0/bundles/", "search")
    q = search.body
    assert q["gpu_name"] == {"eq": "RTX 4090"} and q["num_gpus"] == {"eq": 1}
    assert q["gpu_ram"] == {"gte": 24000} and q["dph_total"] == {"lte": 0.6}
    assert q["disk_space"] == {"gte": 60} and q["reliability"] == {"gte": 0.98}
    assert q["cuda_max_good"] == {"gte": 12.4} and q["rentable"] == {"eq": True}
    assert q["type"] == "on-demand" and q["order"] == [["dph_total", "asc"]] and q["allocated_storage"] == 60
    assert (create.method, create.path) == ("PUT", "/api/v0/asks/102/")
    body = create.body
    assert body["image"] == IMAGE and body["disk"] == 60 and body["runtype"] == "args"
    assert body["env"] == {"CONFIG_URL": CONFIG_URL, **CREDS}
    assert "price" not in body and "onstart" not in body
    assert search.auth == create.auth == f"Bearer {VAST_KEY}"
    assert all(VAST_KEY not in req.path for req in vast.requests)
    assert vast.created["9000001"]["offer_id"] == 102
    assert "offer 102" in r.stdout and "$0.350/h" in r.stdout and "Canada, CA" in r.stdout
    assert "instance 9000001" in r.stdout and "scripts/status.py s3://out/job/" in r.stdout
    assert "AWS_SECRET_ACCESS_KEY=***" in r.stdout and "AWS_SESSION_TOKEN=***" in r.stdout
    assert_no_secrets(r)


def test_vast_score_order_takes_vasts_first_matching_offer(vast: FakeVast, tmp_path: Path) -> None:
    r = run("launch_vast.py", vast_env(vast), *FILTERS, "--order", "score", home=tmp_path)
    assert r.returncode == 0, r.stderr
    assert vast.calls("search")[0].body["order"] == [["score", "desc"]]
    assert vast.calls("create")[0].path == "/api/v0/asks/101/"
    assert "vast.ai score order" in r.stdout


def test_vast_offers_that_break_a_filter_are_not_chosen_even_when_returned(
    vast: FakeVast, tmp_path: Path
) -> None:
    vast.script("search", (200, {"offers": vast.offers}))  # a server that ignored every filter
    r = run("launch_vast.py", vast_env(vast), *FILTERS, home=tmp_path)
    assert r.returncode == 0, r.stderr
    assert vast.calls("create")[0].path == "/api/v0/asks/102/"


def test_vast_bid_searches_interruptible_offers_and_sends_the_bid(vast: FakeVast, tmp_path: Path) -> None:
    r = run("launch_vast.py", vast_env(vast), *FILTERS, "--bid", "0.25", home=tmp_path)
    assert r.returncode == 0, r.stderr
    q = vast.calls("search")[0].body
    assert q["type"] == "bid" and q["min_bid"] == {"lte": 0.25}
    assert vast.calls("create")[0].body["price"] == 0.25
    assert "interruptible" in r.stdout


@pytest.mark.parametrize("key", [VAST_KEY, None])
def test_vast_dry_run_sends_nothing_and_masks_secrets(
    vast: FakeVast, tmp_path: Path, key: str | None
) -> None:
    signed = CONFIG_URL + "?X-Amz-Signature=fakesig0123456789"
    r = run(
        "launch_vast.py", vast_env(vast, key) | {"CONFIG_URL": signed}, *FILTERS, "--dry-run", home=tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert vast.requests == []
    assert f"POST {vast.url}/api/v0/bundles/" in r.stdout and "PUT " in r.stdout
    assert '"runtype": "args"' in r.stdout and '"gpu_name"' in r.stdout
    assert "Authorization: Bearer ***" in r.stdout
    assert (
        '"AWS_SECRET_ACCESS_KEY": "***"' in r.stdout
        and '"AWS_SESSION_TOKEN": "***"' in r.stdout
        and '"CONFIG_URL": "s3://jobs-bucket/jobs/job.yaml?***"' in r.stdout
    )
    assert "nothing sent" in r.stdout
    assert_no_secrets(r, "fakesig0123456789")


def test_vast_no_matching_offer_exits_3_naming_the_filters(vast: FakeVast, tmp_path: Path) -> None:
    r = run("launch_vast.py", vast_env(vast), "--gpu", "H100_SXM", "--max-price", "0.1", home=tmp_path)
    assert r.returncode == 3
    assert (
        "no vast.ai offer matches" in r.stderr and "gpu=H100 SXM" in r.stderr and "price<=$0.1/h" in r.stderr
    )
    assert vast.calls("create") == []
    assert_no_secrets(r)


def test_vast_refused_key_exits_4(vast: FakeVast, tmp_path: Path) -> None:
    wrong = "wrong-vast-key-5551234"
    r = run("launch_vast.py", vast_env(vast, wrong), *FILTERS, home=tmp_path)
    assert r.returncode == 4
    assert "key refused" in r.stderr and "VAST_API_KEY" in r.stderr
    assert len(vast.requests) == 1 and vast.calls("create") == []
    assert_no_secrets(r, wrong)


def test_vast_missing_key_exits_2_before_any_request(vast: FakeVast, tmp_path: Path) -> None:
    r = run("launch_vast.py", vast_env(vast, None), *FILTERS, home=tmp_path)
    assert r.returncode == 2 and "VAST_API_KEY" in r.stderr
    assert vast.requests == []


def test_vast_missing_config_url_exits_2(vast: FakeVast, tmp_path: Path) -> None:
    r = run("launch_vast.py", vast_env(vast) | {"CONFIG_URL": ""}, *FILTERS, home=tmp_path)
    assert r.returncode == 2 and "CONFIG_URL" in r.stderr
    assert vast.requests == []


def test_vast_unreachable_control_plane_exits_5(tmp_path: Path, closed_port: int) -> None:
    env = {"VAST_URL": f"http://127.0.0.1:{closed_port}", "VAST_API_KEY": VAST_KEY}
    r = run("launch_vast.py", env, *FILTERS, home=tmp_path)
    assert r.returncode == 5 and "no answer from" in r.stderr
    assert_no_secrets(r)


def test_vast_failed_create_is_not_retried(vast: FakeVast, tmp_path: Path) -> None:
    vast.script("create", 500)
    r = run("launch_vast.py", vast_env(vast), *FILTERS, home=tmp_path)
    assert r.returncode == 5 and "create instance: HTTP 500" in r.stderr
    assert len(vast.calls("create")) == 1


# --- RunPod --------------------------------------------------------------------------------


@pytest.fixture
def runpod(runpod_fake: FakeRunPod) -> FakeRunPod:
    f = runpod_fake
    f.add_gpu_type("NVIDIA GeForce RTX 4090", "RTX 4090", 24, securePrice=0.69, communityPrice=0.44)
    f.add_gpu_type("NVIDIA GeForce RTX 3090", "RTX 3090", 24, securePrice=0.43, communityPrice=0.22)
    f.add_gpu_type("NVIDIA A40", "A40", 48, securePrice=0.40, communityCloud=False)
    f.add_gpu_type("NVIDIA A100 80GB PCIe", "A100 PCIe", 80, securePrice=1.64, communityPrice=1.19)
    f.add_gpu_type("NVIDIA A100-SXM4-80GB", "A100 SXM", 80, securePrice=1.89, communityCloud=False)
    f.add_gpu_type("NVIDIA A100-SXM4-40GB", "A100 SXM 40GB", 40, securePrice=1.20)
    return f


def runpod_env(fake: FakeRunPod, key: str | None = RUNPOD_KEY) -> dict[str, str]:
    return {"RUNPOD_API_BASE_URL": fake.url} | ({"RUNPOD_API_KEY": key} if key else {})


RP_FILTERS = ("--gpu", "A100", "--min-vram", "60", "--cloud", "SECURE", "--max-price", "2", "--disk", "60")


def test_runpod_picks_the_cheapest_matching_type_and_creates_the_pod(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    r = run("launch_runpod.py", runpod_env(runpod), *RP_FILTERS, "--min-cuda", "12.4", home=tmp_path)
    assert r.returncode == 0, r.stderr
    endpoints = [req.endpoint for req in runpod.requests]
    assert endpoints[0] == "gpuTypes" and endpoints[-1] == "podFindAndDeployOnDemand"
    priced = {req.body["query"].split('id: "')[1].split('"')[0] for req in runpod.calls("gpuTypes")[1:]}
    assert priced == {"NVIDIA A100 80GB PCIe", "NVIDIA A100-SXM4-80GB"}  # 40GB and the non-A100s left out
    [(pod_id, pod)] = runpod.deployed.items()
    assert pod["gpuTypeId"] == "NVIDIA A100 80GB PCIe" and pod["cloudType"] == "SECURE"
    assert pod["imageName"] == IMAGE and pod["containerDiskInGb"] == "60" and pod["gpuCount"] == "1"
    assert pod["env"] == {"CONFIG_URL": CONFIG_URL, **CREDS}
    assert pod["dockerArgs"] == "" and "startSsh" not in pod and "ports" not in pod
    assert (
        pod["allowedCudaVersions"].startswith('["12.4", "12.5"') and "12.3" not in pod["allowedCudaVersions"]
    )
    assert all(req.auth == f"Bearer {RUNPOD_KEY}" for req in runpod.requests)
    assert "A100 80GB PCIe" in r.stdout and "$1.640/h" in r.stdout and f"pod {pod_id}" in r.stdout
    assert "scripts/status.py" in r.stdout and "B2_APPLICATION_KEY=***" in r.stdout
    assert "AWS_SESSION_TOKEN=***" in r.stdout
    assert_no_secrets(r)


def test_runpod_community_cloud_price_and_model_match(runpod: FakeRunPod, tmp_path: Path) -> None:
    r = run(
        "launch_runpod.py", runpod_env(runpod), "--gpu", "rtx_4090", "--cloud", "COMMUNITY", home=tmp_path
    )
    assert r.returncode == 0, r.stderr
    [pod] = runpod.deployed.values()
    assert pod["gpuTypeId"] == "NVIDIA GeForce RTX 4090" and pod["cloudType"] == "COMMUNITY"
    assert "$0.440/h" in r.stdout


def test_runpod_price_cap_counts_every_gpu(runpod: FakeRunPod, tmp_path: Path) -> None:
    args = ("--gpu", "A100", "--min-vram", "60", "--cloud", "SECURE", "--gpu-count", "2", "--max-price", "3")
    r = run("launch_runpod.py", runpod_env(runpod), *args, home=tmp_path)
    assert r.returncode == 3  # 2 x $1.64 > $3
    assert "no RunPod GPU type matches" in r.stderr and "price<=$3/h" in r.stderr and "x2" in r.stderr
    assert runpod.calls("podFindAndDeployOnDemand") == []
    assert_no_secrets(r)


@pytest.mark.parametrize("key", [RUNPOD_KEY, None])
def test_runpod_dry_run_sends_nothing_and_masks_secrets(runpod: FakeRunPod, tmp_path: Path, key: Any) -> None:
    r = run("launch_runpod.py", runpod_env(runpod, key), *RP_FILTERS, "--dry-run", home=tmp_path)
    assert r.returncode == 0, r.stderr
    assert runpod.requests == []
    assert "runpod.create_pod(" in r.stdout and "start_ssh=False" in r.stdout and "ports=None" in r.stdout
    assert f"image_name='{IMAGE}'" in r.stdout and "'AWS_SECRET_ACCESS_KEY': '***'" in r.stdout
    assert "'AWS_SESSION_TOKEN': '***'" in r.stdout
    assert "nothing sent" in r.stdout
    assert_no_secrets(r)


def test_runpod_refused_key_exits_4(runpod: FakeRunPod, tmp_path: Path) -> None:
    wrong = "rpa_WRONGKEY99887766"
    r = run("launch_runpod.py", runpod_env(runpod, wrong), *RP_FILTERS, home=tmp_path)
    assert r.returncode == 4 and "key refused" in r.stderr and "RUNPOD_API_KEY" in r.stderr
    assert runpod.calls("podFindAndDeployOnDemand") == []
    assert_no_secrets(r, wrong)


def test_runpod_missing_key_exits_2_before_any_request(runpod: FakeRunPod, tmp_path: Path) -> None:
    r = run("launch_runpod.py", runpod_env(runpod, None), *RP_FILTERS, home=tmp_path)
    assert r.returncode == 2 and "RUNPOD_API_KEY" in r.stderr
    assert runpod.requests == []


def test_runpod_unreachable_control_plane_exits_5(tmp_path: Path, closed_port: int) -> None:
    env = {"RUNPOD_API_BASE_URL": f"http://127.0.0.1:{closed_port}", "RUNPOD_API_KEY": RUNPOD_KEY}
    r = run("launch_runpod.py", env, *RP_FILTERS, home=tmp_path)
    assert r.returncode == 5 and "no answer from" in r.stderr
    assert_no_secrets(r)


def test_runpod_no_free_machine_exits_5_with_runpods_message(runpod: FakeRunPod, tmp_path: Path) -> None:
    runpod.gpu_types[3]["available"] = False  # the A100 PCIe: priced, then no machine to deploy on
    r = run("launch_runpod.py", runpod_env(runpod), *RP_FILTERS, home=tmp_path)
    assert r.returncode == 5 and "no longer any instances available" in r.stderr
    assert runpod.deployed == {}
    assert_no_secrets(r)


def test_runpod_value_the_sdk_cannot_escape_is_refused_unsent(runpod: FakeRunPod, tmp_path: Path) -> None:
    bad = 'fake"secret\\with-quote'
    r = run(
        "launch_runpod.py", runpod_env(runpod) | {"AWS_SECRET_ACCESS_KEY": bad}, *RP_FILTERS, home=tmp_path
    )
    assert r.returncode == 2 and "AWS_SECRET_ACCESS_KEY" in r.stderr
    assert runpod.requests == []
    assert bad not in r.stdout + r.stderr
