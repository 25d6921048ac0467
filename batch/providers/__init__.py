"""Stop or destroy the rented machine this job runs on.

``provider_for(name, dry_run=..., state_dir=...)`` returns a
:class:`~batch.providers.base.Provider`:

============  =================================================================
``vast``      :class:`VastProvider`, REST API (``CONTAINER_ID``, ``CONTAINER_API_KEY``)
``runpod``    :class:`RunPodProvider`, runpod SDK (``RUNPOD_POD_ID``, ``RUNPOD_API_KEY``)
``command``   :class:`CommandProvider`, the shell command ``instance.command``
``local``     :class:`LocalProvider`, writes ``<state dir>/STOPPED``, calls nothing
``skypilot``  :class:`SkyPilotProvider`, leaves teardown to SkyPilot
``auto``      whichever :func:`detect_provider` finds in the environment
============  =================================================================

A dry run always gets :class:`LocalProvider`. SDKs are imported lazily:
importing this package imports neither runpod nor requests.

Providers raise only :class:`batch.errors.ControlPlaneError` subclasses:
ControlPlaneUnavailable (retried, then raised), ControlPlaneRefused, and
ControlPlaneError itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from batch.providers.base import Action, Provider, ShutdownResult, stopping_line
from batch.providers.command import CommandProvider
from batch.providers.local import LocalProvider
from batch.providers.runpod.stop import RunPodProvider
from batch.providers.skypilot import SkyPilotProvider
from batch.providers.vast.stop import VastProvider

__all__ = [
    "PROVIDERS",
    "Action",
    "CommandProvider",
    "LocalProvider",
    "Provider",
    "RunPodProvider",
    "ShutdownResult",
    "SkyPilotProvider",
    "VastProvider",
    "detect_provider",
    "provider_for",
    "stopping_line",
]

PROVIDERS = ("auto", "vast", "runpod", "command", "local", "skypilot")


def detect_provider(env: Mapping[str, str] | None = None) -> str:
    """``skypilot``, ``vast``, ``runpod`` or ``local``, from the variables each host sets.

    SkyPilot: ``SKYPILOT_TASK_ID`` (it manages teardown, even on vast.ai or
    RunPod); vast.ai: ``CONTAINER_ID`` and a key (``CONTAINER_API_KEY`` or
    ``VAST_API_KEY``); RunPod: ``RUNPOD_POD_ID``. Empty values count as unset.
    """
    env = os.environ if env is None else env
    if env.get("SKYPILOT_TASK_ID"):
        return "skypilot"
    if env.get("CONTAINER_ID") and (env.get("CONTAINER_API_KEY") or env.get("VAST_API_KEY")):
        return "vast"
    if env.get("RUNPOD_POD_ID"):
        return "runpod"
    return "local"


def provider_for(
    name: str,
    *,
    dry_run: bool,
    state_dir: str | os.PathLike[str],
    command: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Provider:
    """The provider for ``instance.provider`` = ``name``.

    ``dry_run=True`` returns a LocalProvider for every valid name, so a dry
    run never calls a control plane. ``command`` without a command gives a
    provider whose ``unsupported()`` says so. Raises ValueError for a name not
    in :data:`PROVIDERS`. Keys are read from ``env`` (default ``os.environ``).
    """
    if name not in PROVIDERS:
        raise ValueError(f"unknown instance provider {name!r}; expected one of {', '.join(PROVIDERS)}")
    env = os.environ if env is None else env
    resolved = detect_provider(env) if name == "auto" else name
    if dry_run or resolved == "local":
        return LocalProvider(state_dir, stands_in_for=None if resolved == "local" else resolved)
    if resolved == "vast":
        return VastProvider.from_env(env)
    if resolved == "runpod":
        return RunPodProvider.from_env(env)
    if resolved == "command":
        return CommandProvider(command, env=env)
    return SkyPilotProvider()
