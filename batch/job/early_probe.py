"""The first local input's ffprobe, started before the runner's imports (see media.probe_ahead).

The config's first input is found by a plain scan of the text for the common shapes
(``inputs: [a.mp4, ...]`` or ``inputs:`` then ``- a.mp4``), so the ffprobe starts before YAML and
the storage modules load (~30 ms on the 2-core VM: the probe was the last thing the transcode
waited for). Anything the scan is not sure of goes through the YAML reader as before. Either way
it is a guess: the runner validates the config and takes the answer only for the same, unchanged
file (tests/unit/test_probe_ahead.py holds the scan to the YAML reading).
"""

from __future__ import annotations

import os

from batch.plain_yaml import CONFIG_MAX_BYTES as CONFIG_MAX_BYTES
from batch.plain_yaml import goes_on, local_config_text, local_path, only_comment, plain_before, plain_lines

_NOT_PLAIN_START = set("-?:,[]{}#&*!|>'\"%@`~ ")


def _scalar(text: str, flow: bool) -> tuple[str, str] | None:
    """(the scalar at the start of ``text``, what follows it), for the scalars the scan is sure of."""
    if text[:1] in ("'", '"'):
        end = text.find(text[0], 1)
        value = text[1:end]
        if end < 0 or text[end + 1 : end + 2] == text[0] or "\\" in value:  # '' or \ escapes: YAML reads
            return None
        return value, text[end + 1 :]
    if not text or text[0] in _NOT_PLAIN_START:
        return None
    stop = len(text)
    for mark in (" #", ",", "]") if flow else (" #",):
        at = text.find(mark)
        stop = min(stop, at) if at >= 0 else stop
    value = text[:stop].rstrip(" ")
    dot = value.rfind(".")
    # a path ending in a name and an extension such as .mp4 is a string to YAML: no number, boolean,
    # null or date is written so (a ':' could make a date or a key: left to YAML)
    named = dot > 0 and (value[dot - 1].isalnum() or value[dot - 1] in "_-/")
    if not named or any(c in value for c in ":[]{}\t"):
        return None
    extension = value[dot + 1 :]
    if not (extension.isascii() and extension.isalnum() and extension[:1].isalpha()):
        return None
    return value, text[stop:]


def scan_first_input(text: str) -> str | None:
    """The first entry of the config's top-level ``inputs`` list when the text is in a shape this
    plain scan is sure of (a YAML reading gives the same string); None: not sure, ask YAML."""
    lines = plain_lines(text)
    if lines is None:
        return None
    found = [k for k, line in enumerate(lines) if line.startswith("inputs:")]
    if len(found) != 1 or not plain_before(lines[: found[0]]):
        return None
    k = found[0]
    rest = lines[k][len("inputs:") :]
    # (strip(" "), never strip(): YAML keeps other white space, e.g. U+00A0, in a value)
    if rest.startswith(" ") and rest.strip(" ").startswith("["):  # inputs: [a.mp4, b.mp4]
        got = _scalar(rest.strip(" ")[1:].lstrip(" "), flow=True)
        if got is None:
            return None
        after = got[1].lstrip(" ")
        if after.startswith(","):
            return got[0]
        return got[0] if after.startswith("]") and only_comment(after[1:]) else None
    if not only_comment(rest):
        return None
    items = [line for line in lines[k + 1 :] if not only_comment(line)]
    if not items:
        return None
    line = items[0]
    indent = len(line) - len(line.lstrip(" "))
    if not line[indent:].startswith("- "):
        return None
    got = _scalar(line[indent + 2 :].lstrip(" "), flow=False)
    if got is None or not only_comment(got[1]):
        return None
    if goes_on(items[1:], indent):
        return None
    return got[0]


def first_local_input(config_text: str) -> str | None:
    """The config's first input when it is a local file (read as the runner reads it); else None."""
    entry = scan_first_input(config_text)
    if entry is None:
        from batch.config_loader import load_config_text  # YAML: not loaded before the common case's probe

        data = load_config_text(config_text)
        inputs = data.get("inputs") if isinstance(data, dict) else None
        if not isinstance(inputs, list) or not inputs or not isinstance(inputs[0], str):
            return None
        entry = inputs[0]
    path = local_path(entry)
    if path is None or not path or path.endswith("/"):  # a prefix: the runner lists it first
        return None
    return path if os.path.isfile(path) else None


def start_for(config_url: str) -> bool:
    """Probe a local config's first local input now; False when there is nothing to guess.

    Only a guess: the runner validates the config and uses the answer only for the same file,
    unchanged; a config that cannot be read here is reported by the runner, with its fix.
    """
    try:
        # a remote config, a pipe or process substitution (/dev/fd/63, /dev/stdin) is read once, by
        # the runner: reading it here would leave the runner an empty stream; a file too large is refused
        text = local_config_text(config_url)
        if text is None:
            return False
        path = first_local_input(text)
        if path is None:
            return False
        from batch.media.probe_command import probe_ahead_of_time

        return probe_ahead_of_time(path)
    except Exception:  # any doubt: no guess
        return False
