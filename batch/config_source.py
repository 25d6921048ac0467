"""Reading the job config from its URL: fetch, then parse and validate (batch.config)."""

from __future__ import annotations

from batch.config import JobConfig, parse_config
from batch.errors import ConfigError, ObjectNotFound
from batch.storage import open_url, redact_url


def load_config(url: str) -> JobConfig:
    """Read and validate a config from any storage URL. Raises ConfigError or StorageError."""
    shown = redact_url(url)
    try:
        text = open_url(url).read_bytes(url).decode("utf-8", errors="replace")
    except ObjectNotFound:
        raise ConfigError(
            f"config not found at {shown}", hint="check the --config path or CONFIG_URL"
        ) from None
    return parse_config(text, source=shown)
