"""Launch the job image on a rented GPU from a laptop (vast.ai, RunPod).

The library behind ``scripts/launch_vast.py`` and ``scripts/launch_runpod.py``:
``batch.providers.vast.launch`` (REST with ``requests``) and ``batch.providers.runpod.launch``
(the ``runpod`` SDK). This module holds what both share: the errors (each
with the exit code the scripts return), the environment handed to the
instance, and the masking that keeps secrets out of everything printed.

Secrets: the API key and every forwarded variable except ``CONFIG_URL`` are
printed as ``***``; a ``CONFIG_URL`` keeps its scheme, host and path but not
its query (a presigned URL's signature). Text that comes back from a control
plane is passed through :func:`scrub` before it is shown.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

from batch.errors import BatchError

MASK = "***"
#: forwarded from the laptop's environment when set (storage credentials and endpoints)
STORAGE_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",  # temporary (STS/SSO) credentials fail on the instance without it
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "B2_APPLICATION_KEY_ID",
    "B2_APPLICATION_KEY",
)

EXIT_OK = 0
EXIT_USAGE = 2  # also argparse's own
EXIT_NO_OFFER = 3
EXIT_REFUSED = 4
EXIT_CONTROL_PLANE = 5


class LaunchError(BatchError):
    """A launch could not go ahead; ``exit_code`` is what the script returns.

    Used as is for a control plane's failing answer that is none of the below
    (a 4xx other than 401/403, an answer without the new instance's id).
    """

    code = "launch_failed"
    exit_code = EXIT_CONTROL_PLANE


class MissingSetting(LaunchError):
    """No API key in the environment, no CONFIG_URL, or a value that cannot be sent."""

    code = "launch_setting_missing"
    exit_code = EXIT_USAGE


class NoOfferMatches(LaunchError):
    """The search found nothing that meets every filter; the message lists them."""

    code = "no_offer_matches"
    exit_code = EXIT_NO_OFFER


class KeyRefused(LaunchError):
    """The control plane answered 401/403: the key is wrong or lacks the right."""

    code = "key_refused"
    exit_code = EXIT_REFUSED


class ControlPlaneDown(LaunchError):
    """No answer (connection refused, DNS, timeout), 5xx, 429, or an answer that is not the API's."""

    code = "control_plane_unreachable"
    exit_code = EXIT_CONTROL_PLANE
    retryable = True


def instance_env(
    config_url: str | None,
    extra: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """``CONFIG_URL`` plus whichever of :data:`STORAGE_ENV` and ``extra`` are set.

    Raises MissingSetting when there is no config URL.
    """
    environ = os.environ if environ is None else environ
    url = (config_url or environ.get("CONFIG_URL") or "").strip()
    if not url:
        raise MissingSetting(
            "no job config: pass --config-url or set CONFIG_URL",
            hint="CONFIG_URL is where the instance reads its job config, e.g. s3://bucket/jobs/job.yaml",
        )
    env = {"CONFIG_URL": url}
    for name in (*STORAGE_ENV, *extra):
        value = environ.get(name)
        if value:
            env[name] = value
    return env


def mask_url(url: str) -> str:
    """The URL without its query, fragment and user info (a presigned signature, a password)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if not parts.scheme:
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    masked = urlunsplit((parts.scheme, netloc, parts.path, MASK if parts.query else "", ""))
    return masked + ("#***" if parts.fragment else "")


def masked_env(env: Mapping[str, str]) -> dict[str, str]:
    """Names kept; values ``***``, except CONFIG_URL shown by :func:`mask_url`."""
    return {k: mask_url(v) if k == "CONFIG_URL" else MASK for k, v in env.items()}


def secret_values(env: Mapping[str, str], *keys: str | None) -> list[str]:
    """The values :func:`scrub` must remove: the keys and every forwarded value but CONFIG_URL."""
    values = [v for k, v in env.items() if k != "CONFIG_URL"]
    values += [k for k in keys if k]
    return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for value in secrets:
        text = text.replace(value, MASK)
    return text


def follow_hint(output_prefix: str | None) -> str:
    """How to follow the job from the laptop."""
    target = output_prefix or "<the output: prefix of your job config>"
    return f"python scripts/status.py {target} --watch"


class Console:
    """What a launch script prints: secrets scrubbed, and one error line with its exit code."""

    def __init__(self, *keys: str | None) -> None:
        self.secrets: list[str] = [k for k in keys if k]

    def say(self, text: str = "") -> None:
        print(scrub(text, self.secrets), flush=True)

    def run(self, body: Callable[[], int]) -> int:
        """``body()``'s exit code; a LaunchError prints ``error: ...`` and returns its code."""
        try:
            return body()
        except LaunchError as exc:
            print(scrub(f"error: {exc}", self.secrets), file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
