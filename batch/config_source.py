"""Reading the job config from its URL: fetch, then parse and validate (batch.config).

:func:`read_config_text` imports no config model: PID 1's job-id child uses it alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from batch.errors import ConfigError, ObjectNotFound
from batch.storage import open_url, redact_url

if TYPE_CHECKING:
    from batch.config import JobConfig


def read_config_text(url: str) -> str:
    """The config's text from any storage URL. Raises ConfigError (not found) or StorageError."""
    try:
        return open_url(url).read_bytes(url).decode("utf-8", errors="replace")
    except ObjectNotFound:
        raise ConfigError(
            f"config not found at {redact_url(url)}", hint="check the --config path or CONFIG_URL"
        ) from None


def load_config(url: str) -> JobConfig:
    """Read and validate a config from any storage URL. Raises ConfigError or StorageError."""
    from batch.config import parse_config  # the whole config model: only where it is wanted

    return parse_config(read_config_text(url), source=redact_url(url))
