"""Choosing a provider: detect_provider, provider_for, lazy SDK imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from batch.providers import PROVIDERS, detect_provider, provider_for
from batch.providers.base import Provider
from batch.providers.command import CommandProvider
from batch.providers.local import LocalProvider
from batch.providers.runpod import RunPodProvider
from batch.providers.skypilot import SkyPilotProvider
from batch.providers.vast import VastProvider

VAST_ENV = {"CONTAINER_ID": "4242", "CONTAINER_API_KEY": "vast-secret"}
RUNPOD_ENV = {"RUNPOD_POD_ID": "pod-1", "RUNPOD_API_KEY": "rp-secret"}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "local"),
        (VAST_ENV, "vast"),
        ({"CONTAINER_ID": "4242", "VAST_API_KEY": "k"}, "vast"),
        ({"CONTAINER_ID": "4242"}, "local"),  # an id without a key is not enough
        ({"CONTAINER_ID": "", "CONTAINER_API_KEY": "k"}, "local"),
        (RUNPOD_ENV, "runpod"),
        ({"RUNPOD_POD_ID": "pod-1"}, "runpod"),
        ({**VAST_ENV, **RUNPOD_ENV}, "vast"),
    ],
)
def test_detect_provider(env: dict[str, str], expected: str) -> None:
    assert detect_provider(env) == expected


def test_detect_provider_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CONTAINER_ID", "CONTAINER_API_KEY", "VAST_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RUNPOD_POD_ID", "pod-9")
    assert detect_provider() == "runpod"


@pytest.mark.parametrize(
    ("name", "env", "cls"),
    [
        ("vast", VAST_ENV, VastProvider),
        ("runpod", RUNPOD_ENV, RunPodProvider),
        ("auto", VAST_ENV, VastProvider),
        ("auto", RUNPOD_ENV, RunPodProvider),
        ("auto", {}, LocalProvider),
        ("local", VAST_ENV, LocalProvider),
        ("skypilot", VAST_ENV, SkyPilotProvider),
        ("command", {}, CommandProvider),
    ],
)
def test_provider_for_real_runs(name: str, env: dict[str, str], cls: type, tmp_path: Path) -> None:
    p = provider_for(name, dry_run=False, state_dir=tmp_path, command="true", env=env)
    assert isinstance(p, cls)
    assert isinstance(p, Provider)
    assert p.unsupported("keep") is None


@pytest.mark.parametrize("name", PROVIDERS)
def test_dry_run_is_always_local(name: str, tmp_path: Path) -> None:
    env = {**VAST_ENV, **RUNPOD_ENV}
    p = provider_for(name, dry_run=True, state_dir=tmp_path, command="true", env=env)
    assert isinstance(p, LocalProvider)
    assert p.sentinel == tmp_path / "STOPPED"


def test_dry_run_says_what_a_real_run_would_use(tmp_path: Path) -> None:
    p = provider_for("auto", dry_run=True, state_dir=tmp_path, env=VAST_ENV)
    assert isinstance(p, LocalProvider) and p.stands_in_for == "vast"


def test_unknown_provider_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown instance provider 'aws'"):
        provider_for("aws", dry_run=False, state_dir=tmp_path, env={})
    with pytest.raises(ValueError):  # a typo is caught by a dry run too
        provider_for("aws", dry_run=True, state_dir=tmp_path, env={})


def test_command_without_command_explains(tmp_path: Path) -> None:
    p = provider_for("command", dry_run=False, state_dir=tmp_path, env={})
    assert "instance.command" in (p.unsupported("stop") or "")
    assert "instance.command" in (p.unsupported("destroy") or "")
    assert p.unsupported("keep") is None


def test_missing_credentials_are_declared(tmp_path: Path) -> None:
    vast = provider_for("vast", dry_run=False, state_dir=tmp_path, env={"CONTAINER_ID": "1"})
    assert "CONTAINER_API_KEY" in (vast.unsupported("destroy") or "")
    assert "CONTAINER_ID" in (VastProvider.from_env({"VAST_API_KEY": "k"}).unsupported("stop") or "")
    assert VastProvider.from_env({"CONTAINER_ID": "1", "VAST_API_KEY": "k"}).unsupported("stop") is None
    runpod = provider_for("runpod", dry_run=False, state_dir=tmp_path, env={"RUNPOD_POD_ID": "p"})
    assert "RUNPOD_API_KEY" in (runpod.unsupported("stop") or "")
    assert "RUNPOD_POD_ID" in (RunPodProvider.from_env({}).unsupported("destroy") or "")


def test_vast_base_url_from_env() -> None:
    p = VastProvider.from_env({**VAST_ENV, "VAST_URL": "http://127.0.0.1:9/"})
    assert p.url == "http://127.0.0.1:9/api/v0/instances/4242/"
    assert VastProvider.from_env(VAST_ENV).base_url == "https://console.vast.ai"


def test_keys_stay_out_of_repr() -> None:
    assert "vast-secret" not in repr(VastProvider.from_env(VAST_ENV))
    assert "rp-secret" not in repr(RunPodProvider.from_env(RUNPOD_ENV))
    assert "tok123" not in repr(CommandProvider("curl -H 'X: tok123' http://x"))


def test_importing_the_package_loads_no_sdk() -> None:
    code = (
        "import sys, batch.providers\n"
        "loaded = [m for m in ('runpod', 'requests', 'vastai', 'urllib3') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
