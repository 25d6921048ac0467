"""docker-compose.yml against the Compose Specification's JSON schema, and the flow it describes.

The schema is vendored in tests/data/compose-spec.json from a PyPI package
(see tests/data/README.md); jsonschema validates with draft 2020-12, the
schema's own dialect. The rest checks that the three services fit together:
s3 serves the bucket and keys the others use, seed uploads what the runner's
CONFIG_URL and config point at, and the runner is a dry run with its state
dir on a volume. tests/integration/test_compose_flow.py runs the flow.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from jsonschema import Draft202012Validator

from batch.job.runner import load_config

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"  # tests/data/README.md
CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def load_seed_module() -> Any:
    spec = importlib.util.spec_from_file_location("compose_seed", ROOT / "scripts" / "compose_seed.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def in_repo(container_path: str) -> Path:
    """A path under /app in the image is the same path in the repository (COPY . /app)."""
    assert container_path.startswith("/app/"), container_path
    return ROOT / container_path.removeprefix("/app/")


def test_schema_is_the_vendored_file() -> None:
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256


def test_compose_file_is_valid(compose: dict[str, Any], validator: Draft202012Validator) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


@pytest.mark.parametrize(
    "break_it",
    [
        lambda c: c["services"]["runner"].__setitem__("depend_on", {}),  # misspelt key
        lambda c: c["services"]["seed"]["depends_on"]["s3"].__setitem__("condition", "service_done"),
        lambda c: c["services"]["s3"].__setitem__("healthcheck", {"test": ["CMD", "true"], "every": "2s"}),
    ],
)
def test_schema_catches_mistakes(compose: dict[str, Any], validator: Draft202012Validator, break_it) -> None:
    """Control: the validator is strict enough to see a typo."""
    broken = copy.deepcopy(compose)
    break_it(broken)
    assert list(validator.iter_errors(broken))


def test_services_start_in_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"s3", "seed", "runner"}
    assert "depends_on" not in services["s3"]
    assert services["seed"]["depends_on"] == {"s3": {"condition": "service_healthy"}}
    assert services["runner"]["depends_on"] == {
        "s3": {"condition": "service_healthy"},
        "seed": {"condition": "service_completed_successfully"},
    }
    assert services["s3"]["healthcheck"]["test"][0] == "CMD"


def test_s3_is_a_pinned_seaweedfs_with_keys_and_bucket(compose: dict[str, Any]) -> None:
    s3 = compose["services"]["s3"]
    assert re.fullmatch(r"chrislusf/seaweedfs:\d+\.\d+", s3["image"]), s3["image"]
    assert s3["command"][0] == "mini" and "-dir=/data" in s3["command"]
    assert any(v.endswith(":/data") for v in s3["volumes"])
    env = s3["environment"]
    assert all(env.get(k) for k in (*CREDENTIALS, "S3_BUCKET"))
    assert all(p.startswith("127.0.0.1:") for p in s3.get("ports", []))  # never on every interface
    health = " ".join(s3["healthcheck"]["test"])
    assert re.search(r"http://127\.0\.0\.1:8333/healthz", health), health


def test_seed_and_runner_run_the_image_built_here(compose: dict[str, Any]) -> None:
    seed, runner = compose["services"]["seed"], compose["services"]["runner"]
    assert seed["build"] == runner["build"] == "."
    assert seed["image"] == runner["image"]
    assert (ROOT / "Dockerfile").is_file()
    assert "entrypoint" not in runner  # the image's own ENTRYPOINT: the supervising runner


def test_runner_is_a_dry_run_reading_its_config_from_the_bucket(compose: dict[str, Any]) -> None:
    s3, runner = compose["services"]["s3"], compose["services"]["runner"]
    assert runner["command"] == ["--dry-run", "--state-dir", "/state"]
    assert any(v.split(":")[1] == "/state" for v in runner["volumes"])
    env = runner["environment"]
    assert env["CONFIG_URL"] == f"s3://{s3['environment']['S3_BUCKET']}/jobs/compose.yaml"
    endpoint = urlsplit(env["AWS_ENDPOINT_URL"])
    assert (endpoint.hostname, endpoint.port) == ("s3", 8333)
    for key in CREDENTIALS:
        assert env[key] == s3["environment"][key]
    assert compose["services"]["seed"]["environment"]["AWS_ENDPOINT_URL"] == env["AWS_ENDPOINT_URL"]


def test_seed_uploads_what_the_runner_reads(compose: dict[str, Any]) -> None:
    seed, runner = compose["services"]["seed"], compose["services"]["runner"]
    assert seed["entrypoint"] == ["python", "/app/scripts/compose_seed.py"]
    assert in_repo(seed["entrypoint"][1]).is_file()
    args = load_seed_module().parse_args(seed["command"])  # the script's own parser accepts them
    assert args.bucket == compose["services"]["s3"]["environment"]["S3_BUCKET"]
    seeded = {f"s3://{args.bucket}/{key}": in_repo(str(path)) for path, key in args.uploads}
    for local in seeded.values():
        assert local.is_file(), local

    config_url = runner["environment"]["CONFIG_URL"]
    assert config_url in seeded
    cfg = load_config(str(seeded[config_url]))  # the uploaded config is a valid job
    assert set(cfg.inputs) <= set(seeded), "every input of the compose job is seeded"
    assert cfg.output.startswith(f"s3://{args.bucket}/")
    assert cfg.instance.provider == "local" and cfg.storage.endpoint_url is None  # endpoint from the env
    assert cfg.encode.codec == "libx264"  # runs without a GPU
