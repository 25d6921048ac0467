"""vast.ai: stop or destroy this instance through the REST API.

The ``vastai`` package is not used: its 0.2.x releases call console.vast.ai
when imported, and a dry run must never reach a control plane. Two requests
are enough (from the OpenAPI spec in vast-ai/docs):

* stop: ``PUT {base}/api/v0/instances/{id}/`` with ``{"state": "stopped"}``
* destroy: ``DELETE {base}/api/v0/instances/{id}/``

both with ``Authorization: Bearer <key>``. The key never goes in the URL or
in a message.

Errors, raised by :meth:`VastProvider.shutdown` after the project's retry
policy: ControlPlaneUnavailable (429, 408, 5xx, connection errors, timeouts;
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
from typing import TYPE_CHECKING, Any

from batch.errors import ControlPlaneError, ControlPlaneRefused, ControlPlaneUnavailable
from batch.providers.base import Action, ShutdownResult, remote_shutdown

if TYPE_CHECKING:
    import requests

log = logging.getLogger("batch.providers")

DEFAULT_URL = "https://console.vast.ai"
TIMEOUT = (10.0, 30.0)  # connect, read (seconds), per request
_GONE = frozenset({"no_such_instance", "not_found"})


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
        self._api_key = (api_key or "").strip()
        self.base_url = (base_url or DEFAULT_URL).rstrip("/")
        self.timeout = timeout

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> VastProvider:
        """``CONTAINER_ID``; ``CONTAINER_API_KEY`` (else ``VAST_API_KEY``); ``VAST_URL``."""
        env = os.environ if env is None else env
        key = env.get("CONTAINER_API_KEY") or env.get("VAST_API_KEY")
        return cls(env.get("CONTAINER_ID"), key, env.get("VAST_URL") or DEFAULT_URL)

    def __repr__(self) -> str:  # the key stays out of logs
        return f"VastProvider(instance_id={self.instance_id!r}, base_url={self.base_url!r})"

    def unsupported(self, action: Action) -> str | None:
        if action == "keep":
            return None
        if not self.instance_id:
            return "no vast.ai instance id: CONTAINER_ID is not set"
        if not self._api_key:
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
    def url(self) -> str:
        return f"{self.base_url}/api/v0/instances/{self.instance_id}/"

    def _request(self, action: Action) -> str:
        import requests

        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}
        fields: dict[str, Any] = {"provider": self.name, "action": action, "url": self.url}
        # a redirect would turn the PUT into a GET of some page that answers 200
        kwargs: dict[str, Any] = {"headers": headers, "timeout": self.timeout, "allow_redirects": False}
        try:
            if action == "stop":
                resp = requests.put(self.url, json={"state": "stopped"}, **kwargs)
            else:
                resp = requests.delete(self.url, **kwargs)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise ControlPlaneUnavailable(
                f"vast.ai {action}: no answer from {self.base_url} ({type(exc).__name__})",
                hint="the control plane is down or unreachable; stop the instance by hand if this persists",
                **fields,
            ) from None
        except requests.RequestException as exc:  # a malformed VAST_URL and the like
            raise ControlPlaneError(
                f"vast.ai {action}: cannot call {self.base_url} ({type(exc).__name__})",
                hint="check VAST_URL",
                **fields,
            ) from None
        return self._judge(action, resp, fields)

    def _judge(self, action: Action, resp: requests.Response, fields: dict[str, Any]) -> str:
        """The detail for a success; raises our error for anything else.

        Only a JSON answer counts as vast.ai's: a 404 or 200 page from
        something else (a wrong ``VAST_URL``, a proxy) must not pass for
        "already gone" or "done".
        """
        status = resp.status_code
        body = _json_or_empty(resp)
        error = str(body.get("error") or "")
        said = str(body.get("msg") or error) if body else " ".join(resp.text.split())[:200]
        said = self._scrub(said)
        fields.update(status=status, error=error or None)
        if action == "destroy" and ((status == 404 and body) or error in _GONE):
            return f"HTTP {status}: instance {self.instance_id} already gone ({said or 'not found'})"
        if status in (401, 403):
            raise ControlPlaneRefused(
                f"vast.ai {action}: HTTP {status}, key refused ({said})",
                hint="check CONTAINER_API_KEY / VAST_API_KEY and that the key may manage this instance",
                **fields,
            )
        if status in (408, 429) or status >= 500 or error == "rate_limit_exceeded":
            raise ControlPlaneUnavailable(f"vast.ai {action}: HTTP {status} ({said})", **fields)
        if status >= 300 or body.get("success") is False:
            raise ControlPlaneError(
                f"vast.ai {action}: HTTP {status} ({said})",
                hint="check that VAST_URL is the vast.ai console and CONTAINER_ID names this instance",
                **fields,
            )
        if body.get("success") is not True:
            raise ControlPlaneUnavailable(
                f"vast.ai {action}: HTTP {status} without success: true ({said})", **fields
            )
        done = "stop requested" if action == "stop" else "destroy requested"
        return f"HTTP {status}: instance {self.instance_id} {done}" + (f" ({said})" if said else "")

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text


def _json_or_empty(resp: requests.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
