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
import stat

# batch.config_loader.MAX_BYTES (that module imports YAML; a test holds the two equal)
CONFIG_MAX_BYTES = 1 << 20
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


def _only_comment(rest: str) -> bool:
    rest = rest.strip(" ")
    return not rest or rest.startswith("#")


def _plain_before(lines: list[str]) -> bool:
    """No quoted text, flow collection or block scalar before the ``inputs:`` line (outside comments),
    so that line is a top-level key: a quoted scalar or a ``[`` may span lines whatever their indent."""
    for line in lines:
        if line.lstrip(" ").startswith("#"):
            continue
        code = line.split(" #", 1)[0]  # with no quote before it, " #" starts a comment
        if any(c in code for c in "'\"[]{}|>"):
            return False
    return True


def scan_first_input(text: str) -> str | None:
    """The first entry of the config's top-level ``inputs`` list when the text is in a shape this
    plain scan is sure of (a YAML reading gives the same string); None: not sure, ask YAML."""
    text = text.replace("\r\n", "\n")
    # tabs, other line breaks YAML knows, directives, document markers, a flow mapping: YAML reads it
    if any(c in text for c in "\t\r\x85\u2028\u2029") or text.lstrip(" \n").startswith(("{", "%", "---")):
        return None
    if "\n---" in text or "\n..." in text:
        return None
    lines = text.split("\n")
    found = [k for k, line in enumerate(lines) if line.startswith("inputs:")]
    if len(found) != 1 or not _plain_before(lines[: found[0]]):
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
        return got[0] if after.startswith("]") and _only_comment(after[1:]) else None
    if not _only_comment(rest):
        return None
    items = [line for line in lines[k + 1 :] if not _only_comment(line)]
    if not items:
        return None
    line = items[0]
    indent = len(line) - len(line.lstrip(" "))
    if not line[indent:].startswith("- "):
        return None
    got = _scalar(line[indent + 2 :].lstrip(" "), flow=False)
    if got is None or not _only_comment(got[1]):
        return None
    following = items[1] if len(items) > 1 else ""
    if len(following) - len(following.lstrip(" ")) > indent:  # a plain scalar may go on there
        return None
    return got[0]


def local_path(entry: str) -> str | None:
    """A plain path or a ``file://`` URL as the local file it names (batch.storage.urls.parse_url's
    rule, which imports more than this module may before its ffprobe starts); else None."""
    if "://" not in entry:
        return entry or None
    scheme, rest = entry.split("://", 1)
    if scheme.lower() != "file":
        return None
    host, sep, path = rest.partition("/")
    if host not in ("", "localhost"):
        return None
    return "/" + path if sep else "/"


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
        key = local_path(config_url)
        # a remote config, a pipe or process substitution (/dev/fd/63, /dev/stdin) is read once, by
        # the runner: reading it here would leave the runner an empty stream
        if not key:
            return False
        st = os.stat(key)
        if not stat.S_ISREG(st.st_mode) or st.st_size > CONFIG_MAX_BYTES:  # the runner refuses it
            return False
        with open(key, encoding="utf-8", errors="replace", newline="") as f:
            path = first_local_input(f.read(CONFIG_MAX_BYTES + 1))
        if path is None:
            return False
        from batch.media.probe_command import probe_ahead_of_time

        return probe_ahead_of_time(path)
    except Exception:  # any doubt: no guess
        return False
