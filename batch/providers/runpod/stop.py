"""RunPod: stop or terminate this pod (the watchdog's side), through :mod:`.api`.

``runpod.stop_pod`` / ``runpod.terminate_pod`` post the ``podStop`` /
``podTerminate`` mutations; :func:`batch.providers.runpod.api.call` sets the
key, maps the errors and imports the SDK (lazily, at the first call).

Errors: ControlPlaneRefused (401, no key; not retried), ControlPlaneUnavailable
(no answer, not JSON, no ``data``, a GraphQL error; retried),
ControlPlaneError. The one exception is terminate answering "pod not found
to terminate": the pod is already gone, which counts as done (matched on the
text because the SDK gives nothing else; dstack does the same).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from batch.providers.base import Action, ShutdownResult, remote_shutdown
from batch.providers.runpod import api

log = logging.getLogger("batch.providers")

DEFAULT_URL = api.DEFAULT_URL
_GONE_TEXT = "not found to terminate"
#: what the watchdog's errors tell the user
HINTS = api.Hints(
    unreachable="the control plane is down or unreachable; stop the pod by hand if this persists",
    refused="check RUNPOD_API_KEY and that the key may manage this pod",
)


class RunPodProvider:
    """Stops or terminates one RunPod pod (``RUNPOD_POD_ID``) with its key."""

    name = "runpod"

    def __init__(self, pod_id: str | None, api_key: str | None) -> None:
        self.pod_id = (pod_id or "").strip()
        self._api_key = (api_key or "").strip()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RunPodProvider:
        """``RUNPOD_POD_ID`` and ``RUNPOD_API_KEY`` (the pod-scoped key RunPod sets)."""
        env = os.environ if env is None else env
        return cls(env.get("RUNPOD_POD_ID"), env.get("RUNPOD_API_KEY"))

    def __repr__(self) -> str:  # the key stays out of logs
        return f"RunPodProvider(pod_id={self.pod_id!r})"

    def unsupported(self, action: Action) -> str | None:
        if action == "keep":
            return None
        if not self.pod_id:
            return "no RunPod pod id: RUNPOD_POD_ID is not set"
        if not self._api_key:
            return "no RunPod API key: RUNPOD_API_KEY is not set"
        return None

    def shutdown(self, action: Action, reason: str) -> ShutdownResult:
        """Ask once (with retries) to stop or terminate; ``keep`` asks nothing.

        Raises ControlPlaneRefused, ControlPlaneUnavailable, ControlPlaneError.
        """
        return remote_shutdown(
            self.name,
            "RunPod",
            self.pod_id,
            action,
            reason,
            unsupported=self.unsupported(action),
            call=self._call,
        )

    def _call(self, action: Action) -> str:
        fields: dict[str, Any] = {"provider": self.name, "action": action, "url": api.graphql_url()}
        if action == "stop":
            answer = api.call(lambda sdk: sdk.stop_pod(self.pod_id), action, self._api_key, HINTS, **fields)
            status = answer.get("desiredStatus") if isinstance(answer, dict) else None
            return f"pod {self.pod_id} stop requested (desiredStatus={status})"
        try:
            api.call(lambda sdk: sdk.terminate_pod(self.pod_id), action, self._api_key, HINTS, **fields)
        except api.QueryFailed as exc:
            if _GONE_TEXT in exc.said.lower():
                return f"pod {self.pod_id} already gone ({exc.said})"
            raise
        return f"pod {self.pod_id} terminate requested"
