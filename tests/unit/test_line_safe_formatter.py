"""The log format every program uses: a name cannot forge a line, a tab stays a tab."""

from __future__ import annotations

import logging

from hypothesis import given
from hypothesis import strategies as st

from batch.console import LineSafeFormatter


def formatted(message: str) -> str:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "%s", (message,), None)
    return LineSafeFormatter("%(asctime)s %(levelname)s %(message)s", "%Y").format(record)


def test_controls_are_escaped_tabs_kept_and_later_lines_indented() -> None:
    out = formatted("a\tb\x1b[31m\rc\nFAKE LINE\u2028d\x85e")
    assert out.endswith("a\tb\\x1b[31m\\x0dc\n    FAKE LINE\\u2028d\\x85e")


@given(st.text())
def test_no_line_of_a_record_can_pass_for_a_record_of_its_own(name: str) -> None:
    lines = formatted(f"processing {name}").split("\n")
    assert lines[0].split(" ", 2)[1] == "INFO"
    for line in lines[1:]:
        assert line.startswith("    ")
    assert not any(c in "".join(lines) for c in "\r\x1b\x00\u2028\u2029\x85")
