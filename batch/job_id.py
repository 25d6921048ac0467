"""A job's id from its config data, without validating the rest (no pydantic).

PID 1 names the default state dir ``state/<job id>`` before the runner
starts; reading the id this way costs a YAML parse (~0.05 s) instead of the
whole config model (~0.4 s of every run, before any work). The runner's
:func:`batch.config.parse_config` uses the same rule for a config that names
no id, so both agree.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from batch.contracts import JOB_ID_PATTERN


def default_job_id(data: Any) -> str:
    """``job-<12 hex>`` from the config's data: the same config gives the same id on every machine."""
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=_plain).encode()).hexdigest()
    return f"job-{digest[:12]}"


def job_id_of(data: Any) -> str | None:
    """The id the runner will use for config ``data`` (None: the config names an invalid one)."""
    if not isinstance(data, dict):
        return None
    given = data.get("job_id")
    if given is None:
        return default_job_id(data)
    if isinstance(given, (bytes, bytearray)):  # YAML's !!binary: the config model reads it as UTF-8 text
        try:
            given = bytes(given).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return given if isinstance(given, str) and JOB_ID_PATTERN.fullmatch(given) else None


def _plain(value: Any) -> Any:
    """JSON for what YAML can hold and JSON cannot (dates, sets ...), the same in every process."""
    if isinstance(value, (set, frozenset)):
        return sorted(str(v) for v in value)
    return str(value)
