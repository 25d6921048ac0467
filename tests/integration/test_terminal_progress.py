"""What a person sees: the real entrypoint under a pseudo-terminal, and without one.

On a terminal: a live bar per input (frames, fps, ETA), bars for the download
and the upload, a line for each phase, the watchdog's check rounds and its
countdown. Elsewhere (a pipe, ``TERM=dumb``, ``BATCH_PROGRESS=lines``): plain
lines only, and the logs in the state dir stay plain in both cases.

Hostile: the terminal hangs up mid-job (its session leader, a shell, dies and
the kernel sends SIGHUP), the terminal stops taking output (Ctrl-S), and
SIGWINCH arrives mid-job. In each the job ends and the watchdog stops the
instance (the dry run's STOPPED line). Nothing is mocked: the job runs its
real stages on a tiny clip, the input comes over HTTP from a local server.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest
from clips import make_clip
from run_state import stopped_lines, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ENTRY = ROOT / "run_with_config_batch_sync.py"
FRAMES = 72  # 3 s at 24 fps, in chunks of 1 s: a join, and a bar that moves


def _config(tmp_path: Path, http_server, chunk_s: float, frames: int = FRAMES) -> Path:
    make_clip(http_server.root / "clip.mp4", size="96x64", rate="24", frames=frames, audio=False)
    config = tmp_path / "job.yaml"
    config.write_text(
        f"job_id: tty\ninputs: [{http_server.base_url}/clip.mp4]\n"
        "stages: [{upscale: {scale: 2}}]\nencode: {codec: libx264, preset: ultrafast}\n"
        f"output: {tmp_path / 'out'}/\nlimits: {{chunk_s: {chunk_s}, heartbeat_s: 0.3}}\n"
        "watchdog: {confirm: 2, interval_s: 1.2, upload_timeout_s: 5}\n"
    )
    return config


@pytest.fixture
def chunked_job(tmp_path: Path, http_server) -> Path:
    """The clip over HTTP (a download), in chunks of 1 s (a join), to a local output."""
    return _config(tmp_path, http_server, chunk_s=1)


@pytest.fixture
def job(tmp_path: Path, http_server) -> Path:
    """As ``chunked_job`` in one pass: shorter."""
    return _config(tmp_path, http_server, chunk_s=60)


@pytest.fixture
def long_job(tmp_path: Path, http_server) -> Path:
    """As ``job``, 40 s long (960 frames, ~1 s of processing here at ~900 fps), so a hang-up made
    when the "processing" line shows lands mid-processing. 72 frames finished inside one 0.3 s beat."""
    return _config(tmp_path, http_server, chunk_s=600, frames=960)


def argv(config: Path) -> list[str]:
    return [sys.executable, str(ENTRY), "--config", str(config), "--state-dir", str(config.parent / "state"),
            "--dry-run"]  # fmt: skip


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in ("BATCH_PROGRESS", "COLUMNS", "NO_COLOR")}
    return {**base, "TERM": "xterm", "STORAGE_RETRY_MAX_WAIT_S": "0", **extra}


class Terminal:
    """A pseudo-terminal: the test holds the master side, the job gets the slave as its terminal."""

    def __init__(self, cols: int = 100) -> None:
        self.master, self.slave = os.openpty()
        self.resize(cols)
        self.data = bytearray()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)

    def resize(self, cols: int, rows: int = 30) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def start(self, args: list[str], environ: dict[str, str], *, read: bool = True) -> subprocess.Popen:
        """``args`` in a new session whose controlling terminal this is (as a login shell's would be)."""

        def take_terminal() -> None:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        proc = subprocess.Popen(
            args, stdin=self.slave, stdout=self.slave, stderr=self.slave, env=environ,
            start_new_session=True, preexec_fn=take_terminal,
        )  # fmt: skip
        os.close(self.slave)
        if read:
            self._reader.start()
        return proc

    def _read(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.data += chunk

    def hang_up(self) -> None:
        """The terminal goes away, as when an ssh connection drops."""
        self._stop.set()
        if self._reader.is_alive():
            self._reader.join(timeout=5)
        os.close(self.master)

    def text(self) -> str:
        return bytes(self.data).decode(errors="replace")


def phase(state: Path) -> str:
    try:
        return str(json.loads((state / "status.json").read_text()).get("phase"))
    except (OSError, ValueError):
        return ""


def processing(state: Path, term: Terminal) -> bool:
    """The input's frames are moving: the heartbeat says so, or (sooner) the terminal's phase line."""
    return phase(state) == "processing" or b"[1/1] processing" in term.data


def plain(data: bytes) -> None:
    """No carriage return (other than a terminal's own CR LF) and no escape code."""
    assert b"\x1b" not in data, data[:2000]
    assert b"\r" not in data.replace(b"\r\n", b"\n"), data[:2000]


def test_a_terminal_shows_live_bars_and_every_phase(chunked_job: Path) -> None:
    job = chunked_job
    term = Terminal(cols=100)
    proc = term.start(argv(job), env())
    state = job.parent / "state"
    wait_until(lambda: processing(state, term), timeout=60, alive=lambda: proc.poll() is None)
    for cols in (60, 140, 80):  # the window changes size mid-job: nothing breaks
        term.resize(cols)
        proc.send_signal(signal.SIGWINCH)
        time.sleep(0.05)
    assert proc.wait(timeout=120) == 0
    term.hang_up()
    shown = term.text()
    bar = rf"\r\[1/1\] +\d+%\|[^\r\n]*\| +\d+/{FRAMES} frames, [\d.]+ fps, ETA \d\d:\d\d"
    assert re.search(bar, shown), shown[-3000:]  # a bar redrawn in place with frames, fps and ETA
    assert re.search(r"\r\[1/1\] download clip\.mp4: +\d+%\|", shown), shown[:3000]
    assert re.search(r"\r\[1/1\] upload clip/clip\.mp4: +\d+%\|", shown), shown[-3000:]
    for said in (
        r"\[1/1\] downloaded clip\.mp4: [\d.]+ KiB in [\d.]+ s \([\d.]+ [KMG]?i?B/s\)",
        rf"\[1/1\] {FRAMES * 1} frames in [\d.]+ s \([\d.]+ fps\)",
        r"\[1/1\] joining: 3 parts into clip\.mp4",
        r"\[1/1\] preview: making preview\.jpg",
        r"\[1/1\] uploaded clip/clip\.mp4: [\d.]+ KiB",
        r"watchdog: verifying 3 object\(s\) in the bucket",  # the video, the preview, the manifest itself
        r"watchdog: check round 1: 3 of 3 object\(s\) as uploaded",
        r"\rwatchdog: next bucket check in \d s",
        r"STOPPING INSTANCE",
    ):
        assert re.search(said, shown), (said, shown[-3000:])
    assert len(stopped_lines(state)) == 1
    log = (state / "runner.log").read_bytes()
    plain(log)  # the bars stayed out of the log; their lines did not
    assert b"joining: 3 parts" in log and b"frames in" in log and b"uploaded clip/clip.mp4" in log
    for line in log.decode().splitlines():
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d (INFO|WARNING|ERROR) ", line), line


@pytest.mark.parametrize("how", ["pipe", "TERM=dumb"])
def test_without_a_terminal_only_plain_lines(job: Path, how: str) -> None:
    state = job.parent / "state"
    if how == "pipe":
        proc = subprocess.run(argv(job), env=env(), capture_output=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        shown = proc.stderr + proc.stdout
    else:
        term = Terminal()
        name, _, value = how.partition("=")
        running = term.start(argv(job), env(**{name: value}))
        assert running.wait(timeout=120) == 0
        term.hang_up()
        shown = bytes(term.data)
    for data in (shown, (state / "runner.log").read_bytes(), (state / "watchdog.log").read_bytes()):
        plain(data)
    text = shown.decode()
    # a line every log_every_s (5 s) while frames move; this 3 s clip may finish before the first
    # one (the pipes now run it at ~200 fps), so the line every input ends with is what must show
    assert re.search(rf"\[1/1\] {FRAMES} frames in [\d.]+ s \([\d.]+ fps\)", text), text
    assert "downloaded clip.mp4" in text and "uploaded clip/clip.mp4" in text
    assert "watchdog: check round 2" in text and "STOPPING INSTANCE" in text
    assert "%|" not in text  # no bar, not even a final one


def test_terminal_hangs_up_mid_job_and_the_job_still_ends_in_a_shutdown(long_job: Path) -> None:
    """The ssh session drops: the shell that owns the terminal dies, SIGHUP goes to the job's group."""
    job = long_job
    term = Terminal()
    state = job.parent / "state"
    shell = ["bash", "-c", '"$@"; echo "the job ended: $?"', "bash", *argv(job)]
    proc = term.start(shell, env())
    wait_until(lambda: processing(state, term), timeout=60, alive=lambda: proc.poll() is None)
    term.hang_up()
    assert proc.wait(timeout=10) != 0  # the shell died of the hangup (nothing of ours was left to print)
    wait_until(lambda: len(stopped_lines(state)) == 1, timeout=120)
    assert "action=destroy reason=verified" in stopped_lines(state)[0]
    manifest = json.loads((job.parent / "out" / "manifest.json").read_text())
    assert manifest["status"] == "succeeded", manifest  # the job went on without its terminal
    assert json.loads((state / "runner.exit").read_text()) == {"code": 0, "signal": None}
    log = (state / "runner.log").read_bytes()
    plain(log)
    assert b"[1/1] succeeded" in log
    wait_until(lambda: not _alive(int((state / "monitor.pid").read_text())), timeout=30)


def test_terminal_that_stops_reading_never_holds_up_the_shutdown(job: Path) -> None:
    """Ctrl-S (output stopped): every write to the terminal blocks. The job and the shutdown go on."""
    term = Terminal()
    termios.tcflow(term.slave, termios.TCOOFF)
    proc = term.start(argv(job), env(), read=False)
    state = job.parent / "state"
    try:
        assert proc.wait(timeout=120) == 0
        assert len(stopped_lines(state)) == 1
        manifest = json.loads((job.parent / "out" / "manifest.json").read_text())
        assert manifest["status"] == "succeeded"
        assert b"[1/1] succeeded" in (state / "runner.log").read_bytes()
    finally:
        if proc.poll() is None:
            proc.kill()
        term.hang_up()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
