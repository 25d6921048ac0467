"""The first local input's ffprobe, started before the runner's imports (see media.probe_ahead)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from batch.config_loader import load_config_text
from batch.media.probe_command import probe_ahead_of_time
from batch.storage.urls import parse_url


def first_local_input(config_text: str) -> Path | None:
    """The config's first input when it is a local file (read as the runner reads it); else None."""
    data = load_config_text(config_text)
    inputs = data.get("inputs") if isinstance(data, dict) else None
    if not isinstance(inputs, list) or not inputs or not isinstance(inputs[0], str):
        return None
    scheme, _, key = parse_url(inputs[0])
    if scheme != "file" or key.endswith("/"):  # a prefix: the runner lists it first
        return None
    path = Path(key)
    return path if path.is_file() else None


def start_for(config_url: str) -> bool:
    """Probe a local config's first local input now; False when there is nothing to guess.

    Only a guess: the runner validates the config and uses the answer only for the same file,
    unchanged; a config that cannot be read here is reported by the runner, with its fix.
    """
    try:
        scheme, _, key = parse_url(config_url)
        # a remote config, a pipe or process substitution (/dev/fd/63, /dev/stdin) is read once, by
        # the runner: reading it here would leave the runner an empty stream
        if scheme != "file" or not stat.S_ISREG(os.stat(key).st_mode):
            return False
        path = first_local_input(Path(key).read_text(encoding="utf-8", errors="replace"))
        return path is not None and probe_ahead_of_time(path)
    except Exception:  # any doubt: no guess
        return False
