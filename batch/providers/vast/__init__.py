"""vast.ai, the whole lifecycle: ``api`` (base URL, key, errors), ``launch`` (laptop), ``stop`` (watchdog)."""

from __future__ import annotations

from batch.providers.vast.launch import VastLauncher
from batch.providers.vast.stop import VastProvider

__all__ = ["VastLauncher", "VastProvider"]
