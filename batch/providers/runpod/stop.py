"""RunPod: stop or terminate this pod through the ``runpod`` SDK (GraphQL).

The SDK is imported inside :meth:`RunPodProvider.shutdown` only (it takes
about two seconds and pulls in the serverless stack). It posts the
``podStop`` / ``podTerminate`` mutations to
``$RUNPOD_API_BASE_URL/graphql`` (default https://api.runpod.io), read at
every call, with ``Authorization: Bearer <runpod.api_key>``. The SDK keeps the
key in a module global, so it is set for the call and put back afterwards.

The SDK hides the HTTP status except for 401, so errors are mapped from what
it raises:

* ``AuthenticationError`` (401, no key) -> ControlPlaneRefused, not retried;
* connection errors, timeouts, a body that is not JSON (gateway 5xx/429
  pages), an answer without ``data`` -> ControlPlaneUnavailable, retried;
* ``QueryError`` (a GraphQL ``errors`` body) -> ControlPlaneUnavailable,
  retried: a rate limit or server fault may come back in that form, and a
  few bounded retries cost less than a pod left billing. The one exception
  is terminate answering "pod not found to terminate": the pod is already
  gone, which counts as done (matched on the text because the SDK gives
  nothing else; dstack does the same).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from batch.errors import ControlPlaneError, ControlPlaneRefused, ControlPlaneUnavailable
from batch.providers.base import Action, ShutdownResult, remote_shutdown

log = logging.getLogger("batch.providers")

DEFAULT_URL = "https://api.runpod.io"
_GONE_TEXT = "not found to terminate"


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
        import requests
        import runpod
        import runpod.error

        base = os.environ.get("RUNPOD_API_BASE_URL", DEFAULT_URL)
        fields: dict[str, Any] = {"provider": self.name, "action": action, "url": f"{base}/graphql"}
        saved, runpod.api_key = runpod.api_key, self._api_key
        try:
            if action == "stop":
                answer = runpod.stop_pod(self.pod_id)
                status = answer.get("desiredStatus") if isinstance(answer, dict) else None
                return f"pod {self.pod_id} stop requested (desiredStatus={status})"
            runpod.terminate_pod(self.pod_id)
            return f"pod {self.pod_id} terminate requested"
        except runpod.error.AuthenticationError as exc:
            raise ControlPlaneRefused(
                f"RunPod {action}: key refused ({self._scrub(str(exc))})",
                hint="check RUNPOD_API_KEY and that the key may manage this pod",
                **fields,
            ) from None
        except runpod.error.QueryError as exc:
            said = self._scrub(str(exc))
            if action == "destroy" and _GONE_TEXT in said.lower():
                return f"pod {self.pod_id} already gone ({said})"
            raise ControlPlaneUnavailable(f"RunPod {action}: GraphQL error: {said}", **fields) from None
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.InvalidSchema,
            requests.exceptions.MissingSchema,
        ) as exc:
            raise ControlPlaneError(
                f"RunPod {action}: cannot call {base} ({type(exc).__name__})",
                hint="check RUNPOD_API_BASE_URL",
                **fields,
            ) from None
        except ValueError:  # JSONDecodeError (after the URL errors, also ValueErrors): a gateway page
            raise ControlPlaneUnavailable(f"RunPod {action}: answer was not JSON", **fields) from None
        except (KeyError, TypeError):  # stop_pod indexing data.podStop of an odd answer
            raise ControlPlaneUnavailable(f"RunPod {action}: answer without data", **fields) from None
        except requests.RequestException as exc:
            raise ControlPlaneUnavailable(
                f"RunPod {action}: no answer from {base} ({type(exc).__name__})",
                hint="the control plane is down or unreachable; stop the pod by hand if this persists",
                **fields,
            ) from None
        finally:
            runpod.api_key = saved

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text
