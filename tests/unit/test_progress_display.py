"""The runner's progress display (batch.job.progress.Tracker) in bars and lines mode.

Hostile: frames reported as fast as they come, a stderr that fails, log
lines written while a bar is shown.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import pytest
from pytest import MonkeyPatch

from batch import console
from batch.job import progress as progress_module
from batch.job.progress import Tracker, show_logs_above_bars
from batch.watchdog.relay import LogCleaner


@pytest.fixture
def stderr(capsys: pytest.CaptureFixture[str]) -> Iterator[io.StringIO]:
    """sys.stderr as a string; the root logger writes to it as the runner's does.

    Set in the test body (``use``): pytest puts its own stderr back between a fixture and the test.
    """
    out = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    progress_module._streams.clear()
    try:
        yield out
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
        progress_module._streams.clear()


def use(out: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr", out)
    progress_module._streams.clear()


def test_lines_mode_says_frames_at_a_modest_rate(stderr: io.StringIO, monkeypatch: MonkeyPatch) -> None:
    use(stderr, monkeypatch)
    tracker = Tracker("j", 2, log_every_s=60, mode=console.LINES)
    tracker.start_input(1, "s3://b/in/a.mp4")
    tracker.set_phase("processing")
    for n in range(1, 5001):
        tracker.frames(n, 5000)
    tracker.set_phase("uploading")
    text = stderr.getvalue()
    assert "\r" not in text and "\x1b" not in text
    assert len(re.findall(r"frames, [\d.]+ fps", text)) <= 1  # none within a minute of the start
    assert re.search(r"INFO \[1/2\] 5000 frames in [\d.]+ s \([\d.]+ fps\)", text), text


def test_lines_mode_transfer_ends_with_a_summary(stderr: io.StringIO, monkeypatch: MonkeyPatch) -> None:
    use(stderr, monkeypatch)
    tracker = Tracker("j", 1, log_every_s=0.0, mode=console.LINES)
    tracker.start_input(1, "s3://b/in/a.mp4")
    with tracker.transfer("download", "a.mp4") as told:
        for n in range(0, 3 << 20, 1 << 20):
            told(n + (1 << 20), 3 << 20)
    text = stderr.getvalue()
    assert re.search(r"\[1/1\] download a\.mp4: [\d.]+ MiB of 3\.0 MiB, [\d.]+ [KMG]?i?B/s", text), text
    assert re.search(r"\[1/1\] downloaded a\.mp4: 3\.0 MiB in [\d.]+ s", text), text
    assert "\r" not in text


def test_bars_mode_log_lines_land_above_the_bar(stderr: io.StringIO, monkeypatch: MonkeyPatch) -> None:
    use(stderr, monkeypatch)
    show_logs_above_bars()
    tracker = Tracker("j", 1, mode=console.BARS)
    tracker.start_input(1, "s3://b/in/a.mp4")
    tracker.set_phase("processing")
    tracker.frames(10, 100)
    logging.getLogger("batch").warning("a line while the bar is shown")
    tracker.frames(100, 100)
    tracker.set_phase("uploading")
    raw = stderr.getvalue()
    assert re.search(r"\r\[1/1\] +10%\|.*\| 10/100 frames, [\d.?]+ fps, ETA", raw), raw
    cleaner = LogCleaner()
    lines = (cleaner.feed(raw.encode()) + cleaner.end()).decode().splitlines()
    assert "WARNING a line while the bar is shown" in lines  # whole, not glued to a bar
    assert not any("%|" in line for line in lines)  # each bar wiped when its phase ended


def test_bars_mode_on_a_stderr_that_fails_never_fails_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    class Gone(io.StringIO):
        def write(self, s: str) -> int:
            raise OSError(32, "Broken pipe")

    monkeypatch.setattr("sys.stderr", Gone())
    progress_module._streams.clear()
    tracker = Tracker("j", 1, mode=console.BARS)
    tracker.start_input(1, "x")
    tracker.set_phase("processing")
    for n in range(50):
        tracker.frames(n, 50)
    with tracker.transfer("upload", "x/x.mp4") as told:
        told(10, 10)
    tracker.set_phase("succeeded")
    assert tracker.snapshot()["frames_done"] == 49
    progress_module._streams.clear()


def test_sizes_for_a_person() -> None:
    assert progress_module._mib(512) == "512 B"
    assert progress_module._mib(3 << 10) == "3.0 KiB"
    assert progress_module._mib(12 << 20) == "12.0 MiB"
    assert progress_module._mib(5 << 40) == "5120.0 GiB"
