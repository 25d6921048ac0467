"""A plain scan of a config's text for what is needed before YAML loads, in the shapes it is sure of.

Two readers are on the way to the first frame: PID 1 names the state dir after the job id, and the
runner starts its first input's ffprobe before its imports. Both read the text with a line scan for
the common shapes and give up (``None``: ask YAML) on anything that could read otherwise, so the
answer is the YAML reading's or none (tests/unit/test_probe_ahead.py and test_job_id_scan.py hold
the scans to it with hypothesis). Standard library only: PID 1 imports this.
"""

from __future__ import annotations

import os
import re
import stat

# batch.config_loader.MAX_BYTES (that module imports YAML; a test holds the two equal)
CONFIG_MAX_BYTES = 1 << 20

# the whole line: a top-level job_id with a plain scalar the id pattern takes, then only a comment
_JOB_ID_LINE = re.compile(r"job_id: +([A-Za-z0-9][A-Za-z0-9._-]{0,127})(?: *| +#.*)")
# plain scalars YAML 1.1 reads as booleans or null (compared in lower case: more than it needs)
_NOT_STRINGS = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"}
_KEY_MARKS = ('"', "'", "?", "&", "*", "!")  # a top-level key quoted, complex, anchored or tagged


def only_comment(rest: str) -> bool:
    rest = rest.strip(" ")
    return not rest or rest.startswith("#")


def plain_before(lines: list[str]) -> bool:
    """No quoted text, flow collection or block scalar in ``lines`` (outside comments), so the line
    after them starts a top-level key: a quoted scalar or a ``[`` may span lines whatever their indent."""
    for line in lines:
        if line.lstrip(" ").startswith("#"):
            continue
        code = line.split(" #", 1)[0]  # with no quote before it, " #" starts a comment
        if any(c in code for c in "'\"[]{}|>"):
            return False
    return True


def plain_lines(text: str) -> list[str] | None:
    """The text's lines, when nothing in it makes a line scan unsure from the start: tabs, line
    breaks other than \\n (\\r\\n counts as one), directives, document markers, a flow mapping."""
    text = text.replace("\r\n", "\n")
    # (a byte-order mark YAML strips, and would then read a "---" after it: found by review)
    if any(c in text for c in "\t\r\x85\u2028\u2029\ufeff"):
        return None
    if text.lstrip(" \n").startswith(("{", "%", "---")):
        return None
    if "\n---" in text or "\n..." in text:
        return None
    return text.split("\n")


def goes_on(lines: list[str], indent: int) -> bool:
    """The next line with content is indented deeper than ``indent``: a plain scalar may go on there."""
    for line in lines:
        if not only_comment(line):
            return len(line) - len(line.lstrip(" ")) > indent
    return False


def scan_job_id(text: str) -> str | None:
    """The config's top-level ``job_id`` when the text is in a shape the scan is sure of and it is a
    valid id YAML reads as a string (``job_id: my-job``); None: not sure, ask YAML.

    For a text YAML refuses further on (a syntax error after the line), this is still the id on
    the line, where the child said nothing: the state dir is then named after it, not ``unknown``,
    and the runner reports the config there."""
    lines = plain_lines(text)
    if lines is None or "job_id" not in text:
        return None
    # one mention only: another spelling of the key ("job_id", job_id :, ? job_id) would be read too
    if text.count("job_id") != 1 or any(line.startswith(_KEY_MARKS) for line in lines):
        return None
    at = next((k for k, line in enumerate(lines) if line.startswith("job_id:")), None)
    if at is None or not plain_before(lines[:at]):
        return None
    found = _JOB_ID_LINE.fullmatch(lines[at])
    if found is None or goes_on(lines[at + 1 :], 0):
        return None
    value = found.group(1)
    if value[0].isdigit() or value.lower() in _NOT_STRINGS:  # numbers, dates, booleans: YAML decides
        return None
    return value


def local_config_text(config_url: str) -> str | None:
    """A local config file's text (a path or ``file://`` URL to a regular file within the size
    limit); None for anything else: a remote config, a stream, a file the runner will refuse."""
    path = local_path(config_url)
    if not path:
        return None
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > CONFIG_MAX_BYTES:
            return None
        with open(path, encoding="utf-8", errors="replace", newline="") as f:
            return f.read(CONFIG_MAX_BYTES + 1)
    except OSError:
        return None


def local_path(entry: str) -> str | None:
    """A plain path or a ``file://`` URL as the local file it names (batch.storage.urls.parse_url's
    rule, which imports more than this module may); else None."""
    if "://" not in entry:
        return entry or None
    scheme, rest = entry.split("://", 1)
    if scheme.lower() != "file":
        return None
    host, sep, path = rest.partition("/")
    if host not in ("", "localhost"):
        return None
    return "/" + path if sep else "/"
