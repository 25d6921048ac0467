"""RunPod's GraphQL API through the ``runpod`` SDK: the one base URL, the key and the one error mapping.

Both sides of the cloud go through :func:`call`: the laptop's launcher
(:mod:`batch.providers.runpod.launch`: get_gpus, get_gpu, create_pod) and the
watchdog's stop (:mod:`batch.providers.runpod.stop`: stop_pod, terminate_pod).
The SDK is imported inside :func:`call` only (it takes about two seconds and
pulls in the serverless stack), never with this module.

Base URL: ``$RUNPOD_API_BASE_URL/graphql`` (default https://api.runpod.io),
read by the SDK; :func:`graphql_url` reads it at every call for messages.
Key: ``Authorization: Bearer <runpod.api_key>``. The SDK keeps the key in a
module global, so it is set for the call and put back afterwards.

The SDK hides the HTTP status except for 401, so errors are mapped from what
it raises, all :class:`batch.errors.ControlPlaneError` subclasses:

* ``AuthenticationError`` (401) -> ControlPlaneRefused, not retried;
* ``QueryError`` (a GraphQL ``errors`` body) -> ControlPlaneUnavailable: a
  rate limit or server fault may come back in that form, and a few bounded
  retries cost less than a pod left billing (the launcher never retries);
* a malformed base URL -> ControlPlaneError;
* an answer that is not JSON (gateway 5xx/429 pages), an answer without
  ``data`` -> ControlPlaneUnavailable;
* another ValueError (``get_gpu``: "No GPU found with the specified ID") ->
  ControlPlaneError;
* connection errors, timeouts -> ControlPlaneUnavailable.

Every message is scrubbed of the key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from batch.errors import ControlPlaneError, ControlPlaneRefused, ControlPlaneUnavailable

DEFAULT_URL = "https://api.runpod.io"
URL_ENV = "RUNPOD_API_BASE_URL"
MASK = "***"
T = TypeVar("T")


def base_url(env: Mapping[str, str] | None = None) -> str:
    """``RUNPOD_API_BASE_URL`` from ``env`` (default ``os.environ``), else api.runpod.io."""
    env = os.environ if env is None else env
    return env.get(URL_ENV, DEFAULT_URL)


def graphql_url(env: Mapping[str, str] | None = None) -> str:
    return f"{base_url(env)}/graphql"


@dataclass(frozen=True)
class Hints:
    """What each kind of failure tells the user to do."""

    unreachable: str
    refused: str
    query: str | None = None
    bad_url: str = f"check {URL_ENV}"


class QueryFailed(ControlPlaneUnavailable):
    """A GraphQL ``errors`` answer; ``said`` is its text, the key scrubbed.

    The stop side reads ``said`` to tell "pod not found to terminate" (already
    gone: done) from a failure, as the SDK gives nothing but the text.
    """

    def __init__(self, message: str, *, said: str, hint: str | None = None, **fields: Any) -> None:
        super().__init__(message, hint=hint, **fields)
        self.said = said


def scrub(text: str, api_key: str) -> str:
    """``text`` without the key."""
    return text.replace(api_key, MASK) if api_key else text


def call(fn: Callable[[Any], T], what: str, api_key: str, hints: Hints, **fields: Any) -> T:
    """``fn(runpod)``, one SDK call, with ``runpod.api_key`` set to ``api_key``; errors mapped as above.

    ``fields`` go into the error (provider, action, url ...), never the key.
    """
    import requests
    import runpod
    import runpod.error

    url = graphql_url()
    saved, runpod.api_key = runpod.api_key, api_key
    try:
        return fn(runpod)
    except runpod.error.AuthenticationError as exc:
        raise ControlPlaneRefused(
            f"RunPod {what}: key refused (HTTP 401 from {url}: {scrub(str(exc), api_key)})",
            hint=hints.refused,
            **fields,
        ) from None
    except runpod.error.QueryError as exc:
        said = scrub(str(exc), api_key)
        raise QueryFailed(
            f"RunPod {what}: GraphQL error: {said}", said=said, hint=hints.query, **fields
        ) from None
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.InvalidSchema,
        requests.exceptions.MissingSchema,
    ) as exc:
        raise ControlPlaneError(
            f"RunPod {what}: cannot call {url} ({type(exc).__name__})", hint=hints.bad_url, **fields
        ) from None
    except (json.JSONDecodeError, requests.exceptions.JSONDecodeError):  # a gateway page
        raise ControlPlaneUnavailable(
            f"RunPod {what}: the answer from {url} was not JSON", hint=hints.unreachable, **fields
        ) from None
    except ValueError as exc:  # get_gpu: "No GPU found with the specified ID"
        raise ControlPlaneError(f"RunPod {what}: {scrub(str(exc), api_key)}", **fields) from None
    except (KeyError, TypeError, AttributeError):  # indexing data.podStop and the like of an odd answer
        raise ControlPlaneUnavailable(
            f"RunPod {what}: answer without the expected data", hint=hints.unreachable, **fields
        ) from None
    except requests.RequestException as exc:
        raise ControlPlaneUnavailable(
            f"RunPod {what}: no answer from {url} ({type(exc).__name__})", hint=hints.unreachable, **fields
        ) from None
    finally:
        runpod.api_key = saved
