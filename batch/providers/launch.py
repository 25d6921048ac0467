"""What the laptop-side launchers share (``scripts/launch_vast.py``, ``scripts/launch_runpod.py``).

The launchers themselves are :mod:`batch.providers.vast.launch` (REST) and
:mod:`batch.providers.runpod.launch` (the ``runpod`` SDK). This module holds
the environment handed to the instance, the masking that keeps secrets out of
everything printed, and the :class:`Console` that turns an error into one
line and the script's exit code (:func:`batch.errors.launch_exit_code`).

Secrets come from the environment only. The API key and every forwarded
variable except ``CONFIG_URL`` are printed as ``***``; a ``CONFIG_URL`` is
shown by :func:`batch.storage.urls.redact_url` (no query string, where a
presigned URL keeps its signature; no user info). Text that comes back from a
control plane is passed through :func:`scrub` before it is shown.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping

from batch.errors import BatchError, MissingSetting, launch_exit_code
from batch.storage.urls import redact_url

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


def masked_env(env: Mapping[str, str]) -> dict[str, str]:
    """Names kept; values ``***``, except CONFIG_URL shown by :func:`~batch.storage.urls.redact_url`."""
    return {k: redact_url(v, strict=True) if k == "CONFIG_URL" else MASK for k, v in env.items()}


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
        """``body()``'s exit code; a BatchError prints one ``error: ...`` line and returns
        :func:`~batch.errors.launch_exit_code` for it."""
        try:
            return body()
        except BatchError as exc:
            hint = f" (fix: {exc.hint})" if exc.hint else ""
            print(scrub(f"error: {exc.message}{hint}", self.secrets), file=sys.stderr)
            return launch_exit_code(exc)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
