"""vast.ai: stop or destroy this instance (the watchdog's side), through :mod:`.api`.

Two requests (from the OpenAPI spec in vast-ai/docs):

* stop: ``PUT {base}/api/v0/instances/{id}/`` with ``{"state": "stopped"}``
* destroy: ``DELETE {base}/api/v0/instances/{id}/``

Errors, raised by :meth:`VastProvider.shutdown` after the project's retry
policy, mapped by :class:`batch.providers.vast.api.VastApi`:
ControlPlaneUnavailable (429, 408, 5xx, connection errors, timeouts;
retried), ControlPlaneRefused (401/403 or no key; not retried),
ControlPlaneError (no instance id, a redirect, any other failing answer).
A destroy answered 404 (with a JSON body) or ``error: no_such_instance /
not_found`` is done: the instance is already gone, so nothing bills. A 2xx
without ``"success": true`` is not taken for done (retried).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from batch.errors import ControlPlaneUnavailable
from batch.providers.base import Action, ShutdownResult, remote_shutdown
from batch.providers.vast.api import DEFAULT_URL, Hints, VastApi, base_url

log = logging.getLogger("batch.providers")

TIMEOUT = (10.0, 30.0)  # connect, read (seconds), per request
_GONE = frozenset({"no_such_instance", "not_found"})
#: what the watchdog's errors tell the user
HINTS = Hints(
    unreachable="the control plane is down or unreachable; stop the instance by hand if this persists",
    refused="check CONTAINER_API_KEY / VAST_API_KEY and that the key may manage this instance",
    failed="check that VAST_URL is the vast.ai console and CONTAINER_ID names this instance",
)


class VastProvider:
    """Stops or destroys one vast.ai instance (``CONTAINER_ID``) with its key."""

    name = "vast"

    def __init__(
        self,
        instance_id: str | None,
        api_key: str | None,
        base_url: str = DEFAULT_URL,
        *,
        timeout: float | tuple[float, float] = TIMEOUT,
    ) -> None:
        self.instance_id = (instance_id or "").strip()
        self._api = VastApi(api_key, base_url, timeout=timeout)
        self.base_url = self._api.base_url
        self.timeout = timeout

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> VastProvider:
        """``CONTAINER_ID``; ``CONTAINER_API_KEY`` (else ``VAST_API_KEY``); ``VAST_URL``."""
        env = os.environ if env is None else env
        key = env.get("CONTAINER_API_KEY") or env.get("VAST_API_KEY")
        return cls(env.get("CONTAINER_ID"), key, base_url(env))

    def __repr__(self) -> str:  # the key stays out of logs
        return f"VastProvider(instance_id={self.instance_id!r}, base_url={self.base_url!r})"

    def unsupported(self, action: Action) -> str | None:
        if action == "keep":
            return None
        if not self.instance_id:
            return "no vast.ai instance id: CONTAINER_ID is not set"
        if not self._api.has_key:
            return "no vast.ai API key: neither CONTAINER_API_KEY nor VAST_API_KEY is set"
        return None

    def shutdown(self, action: Action, reason: str) -> ShutdownResult:
        """Ask once (with retries) to stop or destroy; ``keep`` asks nothing.

        Raises ControlPlaneRefused, ControlPlaneUnavailable, ControlPlaneError.
        """
        return remote_shutdown(
            self.name, "vast.ai", self.instance_id, action, reason, unsupported=self.unsupported(action),
            call=self._request,
        )  # fmt: skip

    # --- one HTTP exchange -----------------------------------------------------------------

    @property
    def path(self) -> str:
        return f"/api/v0/instances/{self.instance_id}/"

    @property
    def url(self) -> str:
        return f"{self.base_url}{self.path}"

    def _request(self, action: Action) -> str:
        """The detail for a success; raises our error for anything else.

        Only a JSON answer counts as vast.ai's: a 404 or 200 page from
        something else (a wrong ``VAST_URL``, a proxy) must not pass for
        "already gone" or "done".
        """
        fields: dict[str, Any] = {"provider": self.name, "action": action, "url": self.url}
        if action == "stop":
            answer = self._api.send("PUT", self.path, action, HINTS, body={"state": "stopped"}, **fields)
        else:
            answer = self._api.send("DELETE", self.path, action, HINTS, **fields)
        said = answer.said
        if action == "destroy" and ((answer.status == 404 and answer.body) or answer.error in _GONE):
            return f"HTTP {answer.status}: instance {self.instance_id} already gone ({said or 'not found'})"
        body = self._api.check(answer, action, HINTS, **fields)
        if body.get("success") is not True:
            raise ControlPlaneUnavailable(
                f"vast.ai {action}: HTTP {answer.status} without success: true ({said})",
                status=answer.status,
                **fields,
            )
        done = "stop requested" if action == "stop" else "destroy requested"
        return f"HTTP {answer.status}: instance {self.instance_id} {done}" + (f" ({said})" if said else "")
