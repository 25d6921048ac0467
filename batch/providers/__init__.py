"""Rented machines, one package per cloud: launch them (laptop side), stop or destroy them (watchdog side).

==============  ======================================================================
``vast/``       vast.ai: ``api.py`` (base URL, key, error mapping), ``launch.py``, ``stop.py``
``runpod/``     RunPod: ``api.py`` (the runpod SDK, key, error mapping), ``launch.py``, ``stop.py``
``command.py``  any other host: the shell command ``instance.command``
``local.py``    calls nothing, writes ``<state dir>/STOPPED`` (every dry run)
``skypilot.py`` SkyPilot managed jobs: teardown left to SkyPilot, declared unsupported
``base.py``     the Provider protocol, ShutdownResult, the STOPPING line
``registry.py`` the provider names and what each supports, as data; provider_for, detect_provider
``launch.py``   what the launchers share: the instance's env, masking, the Console
==============  ======================================================================

``provider_for(name, dry_run=..., state_dir=...)`` returns a
:class:`~batch.providers.base.Provider` for one of :data:`PROVIDERS`
(``auto``: whichever :func:`detect_provider` finds in the environment). A dry
run always gets :class:`~batch.providers.local.LocalProvider`.

Importing this package imports the registry only: no provider module, no
SDK (neither runpod nor requests), so the config and the watchdog can use
the names cheaply. Providers raise only :class:`batch.errors.ControlPlaneError`
subclasses: ControlPlaneUnavailable (retried, then raised), ControlPlaneRefused,
and ControlPlaneError itself; the launchers also MissingSetting and
NoOfferMatches. An unknown name is :class:`batch.errors.UnknownProvider`.
"""

from __future__ import annotations

from batch.providers.registry import (
    AUTO,
    PROVIDERS,
    REGISTRY,
    ProviderRegistry,
    ProviderSpec,
    detect_provider,
    provider_for,
)

__all__ = [
    "AUTO",
    "PROVIDERS",
    "REGISTRY",
    "ProviderRegistry",
    "ProviderSpec",
    "detect_provider",
    "provider_for",
]
