"""RunPod, the whole lifecycle: ``api`` (SDK, key, errors), ``launch`` (laptop), ``stop`` (watchdog).

Nothing here imports the runpod SDK: :func:`batch.providers.runpod.api.call` does, at the first call.
"""

from __future__ import annotations

from batch.providers.runpod.launch import RunPodLauncher
from batch.providers.runpod.stop import RunPodProvider

__all__ = ["RunPodLauncher", "RunPodProvider"]
