"""PID 1's terminal relay and the bars-or-lines rule (batch.watchdog.relay, batch.console).

Hostile: streams cut at every byte, random bytes, a bar redrawn without end,
a terminal that never reads, one that is gone, a descriptor that is not
there, settings that are nonsense.
"""

from __future__ import annotations

import ast
import fcntl
import io
import os
import sys
import threading
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from batch import console
from batch.watchdog.relay import LINE_LIMIT, LogCleaner, TerminalSink

ROOT = Path(__file__).resolve().parents[2]
F_SETPIPE_SZ = 1031

printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=40)
events = st.lists(
    st.one_of(
        st.tuples(st.just("log"), printable),
        st.tuples(st.just("bar"), st.integers(0, 100)),
        st.tuples(st.just("wipe"), st.just("")),
    ),
    max_size=30,
)


def as_tqdm_writes(script: list[tuple[str, object]]) -> tuple[bytes, list[bytes]]:
    """The bytes tqdm and its log handler would write for ``script``, and the log lines expected."""
    out, expected, shown, bar = [], [], 0, ""
    for kind, value in script:
        if kind == "bar":
            text = f"[1/1] {value:3d}%|#####| {value}/100 frames, 9.5 fps, ETA 00:01"
            bar = "\r" + text + " " * max(shown - len(text), 0)
            out.append(bar)
            shown = len(text)
        elif kind == "wipe" and shown:
            out.append("\r" + " " * shown + "\r")
            shown = 0
        elif kind == "log":
            wipe = "\r" + " " * shown + "\r" if shown else ""
            # tqdm.write: wipe the bar, the line, the bar again
            out.append(wipe + "\x1b[0m" + str(value) + "\n" + (bar if shown else ""))
            if str(value).strip():
                expected.append(str(value).rstrip().encode())
    if shown:
        out.append("\r" + " " * shown + "\r")
    return "".join(out).encode(), expected


@settings(max_examples=200, deadline=None)
@given(events, st.lists(st.integers(1, 64), min_size=1, max_size=20))
def test_log_keeps_the_lines_and_drops_the_bars_however_the_stream_is_cut(script, cuts) -> None:
    data, expected = as_tqdm_writes(script)
    cleaner, got, at, i = LogCleaner(), b"", 0, 0
    while at < len(data):
        size = cuts[i % len(cuts)]
        got += cleaner.feed(data[at : at + size])
        at, i = at + size, i + 1
    got += cleaner.end()
    assert got.splitlines() == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=20))
def test_log_never_holds_a_carriage_return_or_an_escape(chunks: list[bytes]) -> None:
    cleaner = LogCleaner()
    got = b"".join(cleaner.feed(c) for c in chunks) + cleaner.end()
    assert b"\r" not in got and b"\x1b" not in got
    assert all(line for line in got.split(b"\n")[:-1])  # no empty lines
    assert got == b"" or got.endswith(b"\n")


def test_a_bar_redrawn_for_hours_keeps_memory_bounded() -> None:
    cleaner = LogCleaner()
    for n in range(100_000):
        assert cleaner.feed(f"\r[1/1] {n} frames".encode()) == b""
    assert len(cleaner._current) + len(cleaner._kept) < 100
    assert cleaner.end() == b"[1/1] 99999 frames\n"  # the bar's last state, when the stream ends on it


def test_a_line_without_end_is_cut_not_kept() -> None:
    cleaner = LogCleaner()
    out = b"".join(cleaner.feed(b"x" * 1000) for _ in range(200))
    assert out and all(len(line) <= LINE_LIMIT + 1000 for line in out.splitlines())


def test_log_lines_pass_unchanged() -> None:
    line = b"2026-12-03T09:00:00 INFO [1/1] uploaded clip/clip.mp4: 12.0 MiB in 1.0 s\ttab\n"
    assert LogCleaner().feed(line) == line


def _pipe(size: int = 4096) -> tuple[int, int]:
    r, w = os.pipe()
    fcntl.fcntl(w, F_SETPIPE_SZ, size)
    return r, w


def test_a_terminal_that_never_reads_never_holds_up_a_writer() -> None:
    r, w = _pipe()
    sink = TerminalSink(w, console.LINES, limit=64 << 10)
    started = time.monotonic()
    for _ in range(1000):
        sink.put(b"x" * 1023 + b"\n")  # 1 MB into 4 KB of pipe and 64 KB of queue
    assert time.monotonic() - started < 5.0  # a blocked write would hang here for good
    assert sink.dropped > 0 and not sink.dead
    assert not sink.wait_empty(0.2)  # still stuck: the wait gives up
    got = bytearray()

    def drain() -> None:
        while chunk := os.read(r, 65536):
            got.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    sink.put(b"after\n")
    assert sink.wait_empty(5.0)
    os.close(w)
    deadline = time.monotonic() + 5  # the sink has written all of it; the reader may still be reading
    while not got.endswith(b"after\n") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert b"bytes of output not shown: the terminal fell behind" in got
    assert got.endswith(b"after\n")
    os.close(r)


def test_a_terminal_that_is_gone_ends_writing_quietly() -> None:
    r, w = _pipe()
    os.close(r)  # nobody reads: EPIPE
    sink = TerminalSink(w, console.BARS)
    sink.put(b"hello\n")
    assert sink.wait_empty(2.0) and sink.dead
    sink.put(b"more\n")  # no error, nothing queued
    assert sink.write("and a log line\n") == len("and a log line\n")
    os.close(w)


def test_a_descriptor_that_is_not_there() -> None:
    sink = TerminalSink(987, console.LINES)
    assert sink.dead
    sink.put(b"x")
    sink.flush()


def test_bars_or_lines() -> None:
    master, slave = os.openpty()
    try:
        assert console.progress_mode(slave, env={"TERM": "xterm"}) == console.BARS
        assert console.progress_mode(slave, env={"TERM": "dumb"}) == console.LINES
        assert console.progress_mode(slave, env={"BATCH_PROGRESS": "lines"}) == console.LINES
        assert console.progress_mode(slave, env={"BATCH_PROGRESS": "auto"}) == console.BARS
        assert console.progress_mode(slave, env={"BATCH_PROGRESS": " Bars "}) == console.BARS
        assert console.progress_mode(io.StringIO(), env={"BATCH_PROGRESS": "bars"}) == console.BARS
        assert console.progress_mode(io.StringIO(), env={}) == console.LINES
        assert console.progress_mode(None, env={}) == console.LINES
        os.close(slave)
        assert console.progress_mode(slave, env={}) == console.LINES  # closed: not a terminal
    finally:
        os.close(master)


@given(st.text(max_size=12), st.text(max_size=12))
def test_any_setting_gives_bars_or_lines_and_a_bad_one_is_named(value: str, term: str) -> None:
    env = {"BATCH_PROGRESS": value, "TERM": term}
    assert console.progress_mode(io.StringIO(), env=env) in (console.BARS, console.LINES)
    said = console.bad_setting(env)
    if value.strip().lower() in ("bars", "lines", "auto", ""):
        assert said is None
    else:
        assert said is not None and "BATCH_PROGRESS" in said and "fix:" in said


class Broken(io.StringIO):
    def write(self, s: str) -> int:
        raise OSError(5, "Input/output error")


def test_status_line() -> None:
    out = io.StringIO()
    line = console.StatusLine(out, console.BARS, width=20)
    line.show("watchdog: next bucket check in 5 s")
    line.show("short")
    line.clear()
    text = out.getvalue()
    assert text.startswith("\rwatchdog: next buck\r")  # cut to the width less one column
    assert text.endswith("\r     \r") and "\n" not in text
    quiet = io.StringIO()
    console.countdown(0.3, "next check", console.StatusLine(quiet, console.LINES))
    assert quiet.getvalue() == ""
    broken = console.StatusLine(Broken(), console.BARS)
    broken.show("x")  # a terminal that is gone: nothing raised
    broken.clear()


def test_countdown_waits_and_counts() -> None:
    out = io.StringIO()
    started = time.monotonic()
    console.countdown(1.2, "next check", console.StatusLine(out, console.BARS), sleep=0.5)
    assert 1.1 < time.monotonic() - started < 2.5
    shown = [s.strip() for s in out.getvalue().split("\r") if s.strip()]
    assert shown[0] == "next check in 2 s" and "next check in 1 s" in shown


def test_pid1_modules_use_the_standard_library_only() -> None:
    """PID 1 must start when every installed package is broken."""
    for module in ("batch/console.py", "batch/watchdog/relay.py"):
        tree = ast.parse((ROOT / module).read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or name in ("batch.contracts", "batch.console"), (
                    module,
                    name,
                )
