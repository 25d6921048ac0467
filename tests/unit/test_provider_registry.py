"""The provider registry is the one place provider names live: every other list of names
(config, watchdog CLI, detection, docs, launch scripts) must agree with it, and a name
that is not there gets one clear error listing the known ones."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from batch.config import InstanceConfig
from batch.config_rules import choice
from batch.errors import ConfigError, UnknownProvider
from batch.providers import PROVIDERS, REGISTRY, ProviderRegistry, ProviderSpec, detect_provider, provider_for
from batch.providers.base import Provider
from batch.providers.local import LocalProvider
from batch.watchdog import cli

ROOT = Path(__file__).resolve().parents[2]
#: an environment in which every provider can be built and can act
FULL_ENV = {
    "CONTAINER_ID": "4242",
    "CONTAINER_API_KEY": "vast-secret",
    "RUNPOD_POD_ID": "pod-1",
    "RUNPOD_API_KEY": "rp-secret",
    "SKYPILOT_TASK_ID": "sky-1",
}


# --- unknown names ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["aws", "Vast", " vast", "", "AUTO", "vast.ai", "local\n"])
@pytest.mark.parametrize("dry_run", [False, True])
def test_an_unknown_name_is_one_clear_error_listing_every_known_name(
    name: str, dry_run: bool, tmp_path: Path
) -> None:
    with pytest.raises(UnknownProvider) as info:
        provider_for(name, dry_run=dry_run, state_dir=tmp_path, env=FULL_ENV)
    err = info.value
    assert isinstance(err, ConfigError) and isinstance(err, ValueError)  # old callers catch ValueError
    assert f"unknown instance provider {name!r}" in err.message
    listed = err.message.split("expected one of ", 1)[1].split(", ")
    assert listed == list(PROVIDERS)
    assert not (tmp_path / "STOPPED").exists()


def test_a_non_string_name_is_the_same_error(tmp_path: Path) -> None:
    with pytest.raises(UnknownProvider):
        provider_for(["vast"], dry_run=False, state_dir=tmp_path, env=FULL_ENV)  # type: ignore[arg-type]


def test_registry_refuses_duplicate_names_auto_and_a_missing_fallback() -> None:
    spec = REGISTRY.get("local")
    with pytest.raises(ValueError, match="unique"):
        ProviderRegistry((spec, spec), fallback="local")
    with pytest.raises(ValueError, match="auto"):
        ProviderRegistry((spec, ProviderSpec("auto", "x", spec.build, True, True)), fallback="local")
    with pytest.raises(ValueError, match="fallback"):
        ProviderRegistry((spec,), fallback="vast")


# --- every list of names agrees with the registry --------------------------------------------


def test_choices_are_auto_and_the_registry_names() -> None:
    assert REGISTRY.choices == ("auto", *REGISTRY.names) == PROVIDERS
    assert len(set(PROVIDERS)) == len(PROVIDERS)


def test_config_accepts_exactly_the_registry_names() -> None:
    rule = InstanceConfig.field_named("provider").rule
    assert isinstance(rule, choice) and rule.choices == PROVIDERS
    for name in PROVIDERS:
        assert InstanceConfig(provider=name).provider == name
    with pytest.raises(ValueError, match="provider"):
        InstanceConfig(provider="aws")


def test_watchdog_cli_names_exactly_the_registry_names() -> None:
    action = next(a for a in cli.build_parser()._actions if "--provider" in a.option_strings)
    assert action.help is not None
    listed = re.search(r"\(([^)]*)\)", action.help)
    assert listed and tuple(listed.group(1).split(", ")) == PROVIDERS
    assert action.choices is None  # a bad name must not stop the watchdog from starting


def test_watchdog_cli_falls_back_from_an_unknown_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    p = cli._provider("aws", dry_run=True, state_dir=tmp_path, command=None)
    assert isinstance(p, LocalProvider)
    assert "expected one of " + ", ".join(PROVIDERS) in caplog.text


def test_detect_returns_only_registry_names_and_finds_every_detectable_one() -> None:
    assert detect_provider({}) == REGISTRY.fallback
    detectable = [s for s in REGISTRY if s.instance_env]
    assert {s.name for s in detectable} == {"vast", "runpod", "skypilot"}
    for spec in detectable:
        assert spec.instance_env is not None
        env = {spec.instance_env: "id-1"} | ({spec.key_env[0]: "k"} if spec.key_env else {})
        assert detect_provider(env) == spec.name
        if spec.detect_needs_key:
            assert detect_provider({spec.instance_env: "id-1"}) == REGISTRY.fallback
    assert detect_provider(FULL_ENV) == "skypilot"  # SkyPilot manages teardown, even on vast.ai or RunPod
    assert detect_provider(FULL_ENV) in REGISTRY.names


@pytest.mark.parametrize("spec", list(REGISTRY), ids=lambda s: s.name)
def test_each_spec_builds_its_provider_and_its_data_matches_what_it_does(
    spec: ProviderSpec, tmp_path: Path
) -> None:
    p = provider_for(spec.name, dry_run=False, state_dir=tmp_path, command="true", env=FULL_ENV)
    assert isinstance(p, Provider)
    assert p.name == spec.name
    assert (p.unsupported("stop") is None) is spec.can_stop
    assert (p.unsupported("destroy") is None) is spec.can_destroy
    assert p.unsupported("keep") is None
    for secret in (FULL_ENV[k] for k in spec.key_env if k in FULL_ENV):
        assert secret not in repr(p)


@pytest.mark.parametrize("spec", [s for s in REGISTRY if s.can_launch], ids=lambda s: s.name)
def test_each_launcher_script_exists_and_reads_the_declared_key(spec: ProviderSpec) -> None:
    assert spec.launcher and spec.launch_key_env
    text = (ROOT / spec.launcher).read_text()
    assert spec.launch_key_env in text


def test_docs_list_exactly_the_registry_names() -> None:
    config_md = (ROOT / "docs" / "config.md").read_text()
    row = next(line for line in config_md.splitlines() if line.startswith("| `instance.provider`"))
    assert tuple(re.findall(r"`([a-z]+)`", row.split("|")[2])) == PROVIDERS
    watchdog_md = (ROOT / "docs" / "watchdog.md").read_text()
    table = watchdog_md.split("| provider | detected by |", 1)[1].split("\n\n", 1)[0]
    names = re.findall(r"^\| `([a-z]+)` \|", table, flags=re.M)
    assert sorted(names) == sorted(REGISTRY.names)


# --- imports stay light --------------------------------------------------------------------------


def test_the_watchdog_and_every_provider_module_import_no_sdk() -> None:
    code = (
        "import sys\n"
        "import batch.watchdog.supervisor, batch.watchdog.watch, batch.watchdog.cli\n"
        "import batch.providers, batch.providers.registry, batch.providers.base, batch.providers.launch\n"
        "import batch.providers.vast, batch.providers.vast.api, batch.providers.runpod.api\n"
        "import batch.providers.runpod, batch.providers.command, batch.providers.local\n"
        "import batch.providers.skypilot\n"
        "from batch.providers import provider_for\n"
        "env = {'CONTAINER_ID': '1', 'CONTAINER_API_KEY': 'k', 'RUNPOD_POD_ID': 'p', 'RUNPOD_API_KEY': 'k'}\n"
        "for name in ('vast', 'runpod', 'auto'):\n"
        "    provider_for(name, dry_run=False, state_dir='unused', env=env)\n"
        "heavy = ('runpod', 'requests', 'vastai', 'urllib3', 'numpy', 'PIL', 'torch')\n"
        "loaded = [m for m in heavy if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_the_registry_imports_no_provider_module() -> None:
    code = (
        "import sys, batch.config, batch.providers\n"
        "mine = [m for m in sys.modules if m.startswith('batch.providers.')]\n"
        "loaded = [m for m in mine if m != 'batch.providers.registry']\n"
        "loaded += [m for m in ('batch.storage', 'batch.watchdog') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)
