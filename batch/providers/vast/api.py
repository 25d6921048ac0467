"""vast.ai's REST API: the one base URL, the auth header and the one error mapping.

Both sides of the cloud go through here: the laptop's launcher
(:mod:`batch.providers.vast.launch`: offer search, create) and the
watchdog's stop (:mod:`batch.providers.vast.stop`: stop, destroy). The
``vastai`` package is not used: its 0.2.x releases call console.vast.ai when
imported, and a dry run must never reach a control plane. ``requests`` is
imported at the first request, not with this module.

Base URL: ``VAST_URL`` (default https://console.vast.ai). Key:
``Authorization: Bearer <key>``, never in a URL or a message; text that comes
back is scrubbed of the key before it is put in an error.

Errors (:func:`VastApi.send` and :func:`VastApi.check`), all
:class:`batch.errors.ControlPlaneError` subclasses:

* no answer (connection refused, DNS, timeout, a broken body) ->
  ControlPlaneUnavailable, without ``status``;
* a request that cannot be made (a malformed ``VAST_URL``) -> ControlPlaneError;
* 401/403 -> ControlPlaneRefused;
* 408, 429, 5xx, ``error: rate_limit_exceeded``, or a 2xx that is not a JSON
  object -> ControlPlaneUnavailable, with ``status``;
* any other 3xx/4xx (redirects are not followed: one would turn a PUT into a
  GET of some page that answers 200) or ``"success": false`` -> ControlPlaneError.

The error's hint is the caller's (:class:`Hints`): a laptop and an instance
are told different things.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from batch.errors import ControlPlaneError, ControlPlaneRefused, ControlPlaneUnavailable

DEFAULT_URL = "https://console.vast.ai"
URL_ENV = "VAST_URL"
MASK = "***"


def base_url(env: Mapping[str, str] | None = None) -> str:
    """``VAST_URL`` from ``env`` (default ``os.environ``), else the console; no trailing slash."""
    env = os.environ if env is None else env
    return (env.get(URL_ENV) or DEFAULT_URL).rstrip("/")


@dataclass(frozen=True)
class Hints:
    """What each kind of failure tells the user to do."""

    unreachable: str
    refused: str
    failed: str
    bad_url: str = f"check {URL_ENV}"


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: the status, the JSON body (None when not a JSON object), what it said."""

    status: int
    body: dict[str, Any] | None
    said: str  # the body's msg/error, or the start of its text; the key scrubbed

    @property
    def error(self) -> str:
        return self.error_said

    error_said: str = ""  # the body's ``error`` field, the key scrubbed


class VastApi:
    """Requests to one vast.ai console with one key."""

    def __init__(
        self, api_key: str | None, url: str | None = None, *, timeout: float | tuple[float, float]
    ) -> None:
        self._api_key = (api_key or "").strip()
        self.base_url = (url or DEFAULT_URL).rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:  # the key stays out of logs
        return f"VastApi(base_url={self.base_url!r})"

    @property
    def has_key(self) -> bool:
        return bool(self._api_key)

    def scrub(self, text: str) -> str:
        """``text`` without the key."""
        return text.replace(self._api_key, MASK) if self._api_key else text

    def send(
        self, method: str, path: str, what: str, hints: Hints, *, body: Any = None, **fields: Any
    ) -> Answer:
        """One request to ``{base}{path}``; raises only when no answer came (see the module doc)."""
        import requests

        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}
        try:
            resp = requests.request(
                method,
                f"{self.base_url}{path}",
                json=body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise ControlPlaneUnavailable(
                f"vast.ai {what}: no answer from {self.base_url} ({type(exc).__name__})",
                hint=hints.unreachable,
                **fields,
            ) from None
        except requests.RequestException as exc:  # a malformed VAST_URL and the like
            raise ControlPlaneError(
                f"vast.ai {what}: cannot call {self.base_url} ({type(exc).__name__})",
                hint=hints.bad_url,
                **fields,
            ) from None
        try:
            parsed = resp.json()
        except ValueError:
            parsed = None
        data = parsed if isinstance(parsed, dict) else None
        if data is not None:
            said = str(data.get("msg") or data.get("error") or "")
        else:
            said = " ".join(resp.text.split())[:200]
        error = str((data or {}).get("error") or "")
        return Answer(resp.status_code, data, self.scrub(said), self.scrub(error))

    def check(self, answer: Answer, what: str, hints: Hints, **fields: Any) -> dict[str, Any]:
        """The JSON body of a successful answer; raises the mapped error for anything else."""
        status, said = answer.status, answer.said
        fields.update(status=status, error=answer.error or None)
        if status in (401, 403):
            raise ControlPlaneRefused(
                f"vast.ai {what}: HTTP {status}, key refused ({said})", hint=hints.refused, **fields
            )
        if status in (408, 429) or status >= 500 or answer.error == "rate_limit_exceeded":
            raise ControlPlaneUnavailable(
                f"vast.ai {what}: HTTP {status} ({said})", hint=hints.unreachable, **fields
            )
        not_console = f"{URL_ENV} is not the vast.ai console: unset it, or point it at {DEFAULT_URL}"
        if answer.body is None and status >= 300:  # an error page: a proxy, or VAST_URL is elsewhere
            raise ControlPlaneError(
                f"vast.ai {what}: HTTP {status}, the answer is not vast.ai's JSON ({said})",
                hint=not_console,
                **fields,
            )
        if answer.body is None:  # a 2xx page that is not JSON: a maintenance page passes; ask again
            raise ControlPlaneUnavailable(
                f"vast.ai {what}: HTTP {status}, the answer is not vast.ai's JSON ({said})",
                hint=f"{hints.unreachable}; if it persists, {not_console}",
                **fields,
            )
        if status >= 300 or answer.body.get("success") is False:
            raise ControlPlaneError(f"vast.ai {what}: HTTP {status} ({said})", hint=hints.failed, **fields)
        return answer.body
