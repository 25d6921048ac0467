"""The provider names, in one place: name -> how to build it and what it can do, as data.

Everything that names a provider reads it from here: :func:`provider_for`
and :func:`detect_provider` (this module), the config's
``instance.provider`` (:mod:`batch.config`), the watchdog's ``--provider``
(:mod:`batch.watchdog.cli`). A new cloud is a package beside
``vast/`` and ``runpod/`` plus one :class:`ProviderSpec` in :data:`REGISTRY`.

This module imports no provider implementation and no SDK at import time
(the config validates against it, the watchdog starts with it); each
provider's module is imported when the provider is built.

Errors: :class:`batch.errors.UnknownProvider` (a ConfigError and a
ValueError) for a name not in the registry, listing the known names.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from batch.errors import UnknownProvider

if TYPE_CHECKING:
    from batch.providers.base import Provider

AUTO = "auto"


@dataclass(frozen=True)
class BuildArgs:
    """What a provider may be built from: the environment, the config's command, the state dir."""

    env: Mapping[str, str]
    state_dir: str | os.PathLike[str]
    command: str | None = None


@dataclass(frozen=True)
class ProviderSpec:
    """One provider: its name, how it is built, and what it supports (as data).

    ``instance_env`` names the variable the host sets on the instance (how
    :func:`detect_provider` recognises it); ``detect_needs_key`` says a key
    from ``key_env`` must be set too. ``detect_rank`` orders detection
    (lowest first). ``launch_key_env`` is the key a laptop's launcher reads
    (None: no launcher).
    """

    name: str
    summary: str
    build: Callable[[BuildArgs], Provider]
    can_stop: bool
    can_destroy: bool
    instance_env: str | None = None
    key_env: tuple[str, ...] = ()
    detect_needs_key: bool = False
    detect_rank: int = 100
    launch_key_env: str | None = None
    launcher: str | None = None  # the laptop's script

    @property
    def can_launch(self) -> bool:
        return self.launcher is not None

    def detected_in(self, env: Mapping[str, str]) -> bool:
        """Does ``env`` look like an instance of this provider? Empty values count as unset."""
        if not self.instance_env or not env.get(self.instance_env):
            return False
        return not self.detect_needs_key or any(env.get(k) for k in self.key_env)


class ProviderRegistry:
    """The known providers, in the order they are listed to users."""

    def __init__(self, specs: tuple[ProviderSpec, ...], *, fallback: str) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names) or AUTO in names:
            raise ValueError(f"provider names must be unique and not {AUTO!r}: {names}")
        if fallback not in names:
            raise ValueError(f"fallback provider {fallback!r} is not registered")
        self._specs = {s.name: s for s in specs}
        self.fallback = fallback

    def __iter__(self) -> Iterator[ProviderSpec]:
        return iter(self._specs.values())

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    @property
    def names(self) -> tuple[str, ...]:
        """The provider names, without ``auto``."""
        return tuple(self._specs)

    @property
    def choices(self) -> tuple[str, ...]:
        """What a config or a command line may say: ``auto`` and every name."""
        return (AUTO, *self._specs)

    def get(self, name: str) -> ProviderSpec:
        """The spec for ``name``; raises UnknownProvider listing the known names."""
        try:
            return self._specs[name]
        except (KeyError, TypeError):
            raise UnknownProvider(
                f"unknown instance provider {name!r}; expected one of {', '.join(self.choices)}",
                hint=f"set instance.provider (or --provider) to one of {', '.join(self.choices)}",
            ) from None

    def detect(self, env: Mapping[str, str] | None = None) -> str:
        """The provider whose variables ``env`` (default ``os.environ``) holds, else the fallback."""
        env = os.environ if env is None else env
        for spec in sorted(self, key=lambda s: s.detect_rank):
            if spec.detected_in(env):
                return spec.name
        return self.fallback

    def provider_for(
        self,
        name: str,
        *,
        dry_run: bool,
        state_dir: str | os.PathLike[str],
        command: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Provider:
        """The provider for ``name`` (``auto``: :meth:`detect`); a dry run gets the local one.

        ``dry_run=True`` returns a LocalProvider for every valid name, so a dry
        run never calls a control plane. Raises UnknownProvider (a ValueError)
        for a name not registered, dry run or not.
        """
        if name != AUTO:
            self.get(name)
        env = os.environ if env is None else env
        resolved = self.detect(env) if name == AUTO else name
        if dry_run and resolved != self.fallback:
            from batch.providers.local import LocalProvider

            return LocalProvider(state_dir, stands_in_for=resolved)
        return self.get(resolved).build(BuildArgs(env=env, state_dir=state_dir, command=command))


# --- the providers ------------------------------------------------------------------------


def _vast(a: BuildArgs) -> Provider:
    from batch.providers.vast.stop import VastProvider

    return VastProvider.from_env(a.env)


def _runpod(a: BuildArgs) -> Provider:
    from batch.providers.runpod.stop import RunPodProvider

    return RunPodProvider.from_env(a.env)


def _command(a: BuildArgs) -> Provider:
    from batch.providers.command import CommandProvider

    return CommandProvider(a.command, env=a.env)


def _local(a: BuildArgs) -> Provider:
    from batch.providers.local import LocalProvider

    return LocalProvider(a.state_dir)


def _skypilot(a: BuildArgs) -> Provider:
    from batch.providers.skypilot import SkyPilotProvider

    return SkyPilotProvider()


REGISTRY = ProviderRegistry(
    (
        ProviderSpec(
            "vast",
            "vast.ai, REST API (CONTAINER_ID, CONTAINER_API_KEY)",
            _vast,
            can_stop=True,
            can_destroy=True,
            instance_env="CONTAINER_ID",
            key_env=("CONTAINER_API_KEY", "VAST_API_KEY"),
            detect_needs_key=True,
            detect_rank=1,
            launch_key_env="VAST_API_KEY",
            launcher="scripts/launch_vast.py",
        ),
        ProviderSpec(
            "runpod",
            "RunPod, runpod SDK (RUNPOD_POD_ID, RUNPOD_API_KEY)",
            _runpod,
            can_stop=True,
            can_destroy=True,
            instance_env="RUNPOD_POD_ID",
            key_env=("RUNPOD_API_KEY",),
            detect_rank=2,
            launch_key_env="RUNPOD_API_KEY",
            launcher="scripts/launch_runpod.py",
        ),
        ProviderSpec(
            "command",
            "any other host: the shell command instance.command",
            _command,
            can_stop=True,
            can_destroy=True,
        ),
        ProviderSpec(
            "local",
            "calls nothing: writes the STOPPING line to <state dir>/STOPPED (every dry run)",
            _local,
            can_stop=True,
            can_destroy=True,
        ),
        ProviderSpec(
            "skypilot",
            "SkyPilot managed jobs: teardown left to SkyPilot (autostop/autodown)",
            _skypilot,
            can_stop=False,
            can_destroy=False,
            instance_env="SKYPILOT_TASK_ID",
            detect_rank=0,  # SkyPilot manages teardown, even on vast.ai or RunPod
        ),
    ),
    fallback="local",
)

#: ``auto`` and every provider name: what a config or a command line may say
PROVIDERS: tuple[str, ...] = REGISTRY.choices


def detect_provider(env: Mapping[str, str] | None = None) -> str:
    """``skypilot``, ``vast``, ``runpod`` or ``local``, from the variables each host sets.

    SkyPilot: ``SKYPILOT_TASK_ID`` (it manages teardown, even on vast.ai or
    RunPod); vast.ai: ``CONTAINER_ID`` and a key (``CONTAINER_API_KEY`` or
    ``VAST_API_KEY``); RunPod: ``RUNPOD_POD_ID``. Empty values count as unset.
    """
    return REGISTRY.detect(env)


def provider_for(
    name: str,
    *,
    dry_run: bool,
    state_dir: str | os.PathLike[str],
    command: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Provider:
    """:meth:`ProviderRegistry.provider_for` of the default :data:`REGISTRY`."""
    return REGISTRY.provider_for(name, dry_run=dry_run, state_dir=state_dir, command=command, env=env)
