"""PID 1 without --state-dir starts the runner first, names state/<job id> meanwhile, then tells it.

The runner imports while the child that reads the job id runs; it does nothing until it is told
its state dir, after the watchdog has started. These tests try the edges: a slow config store, PID 1
dying before it says anything, a ``state`` path that is a file, a runner told nothing.
The real entrypoint in a dry run with local files (and one loopback HTTP server).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from run_state import stopped_lines

from batch.errors import EXIT_INTERNAL

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ENTRY = str(ROOT / "run_with_config_batch_sync.py")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CONFIG_URL", "STATE_DIR"))}
    env["SHUTDOWN_RETRY_BASE_WAIT_S"] = "0.05"
    env.update(extra)
    return env


def _config(tmp: Path, clip: Path) -> str:
    return (
        f"job_id: early\ninputs: [{clip}]\nencode: {{codec: libx264, preset: ultrafast}}\n"
        f"output: {tmp / 'out'}/\nwatchdog: {{confirm: 1, interval_s: 0.2}}\n"
    )


def _marked(marker: str, arg: bytes = b"") -> list[str]:
    """Processes started with ``marker`` in their environment (and ``arg`` in their command line)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if arg in cmdline and marker.encode() in environ:
            found.append(proc.name)
    return found


def _waiting_runners(marker: str) -> list[str]:
    """Runner processes still waiting for a state dir, started with ``marker`` in their environment."""
    return _marked(marker, b"--state-dir-on-stdin")


def _gone(marker: str, within_s: float = 30.0) -> bool:
    deadline = time.monotonic() + within_s
    while _waiting_runners(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not _waiting_runners(marker)


def test_the_product_names_its_state_dir_while_the_runner_imports(small_clip: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "job.yaml"
    cfg.write_text(_config(tmp_path, small_clip))
    proc = subprocess.run(
        [sys.executable, ENTRY, "--config", str(cfg), "--dry-run"],
        env=_env(), capture_output=True, text=True, timeout=180, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = tmp_path / "state" / "early"
    manifest = json.loads((state / "manifest.json").read_text())
    assert manifest["status"] == "succeeded"
    lines = stopped_lines(state)
    assert len(lines) == 1 and "action=destroy reason=verified" in lines[0], lines
    assert (state / "runner.pid").read_text().strip().isdigit()
    assert "named no state dir" not in (state / "runner.log").read_text()


def test_a_state_path_that_is_a_file_falls_back_and_the_runner_is_told_the_fallback(
    small_clip: Path, tmp_path: Path
) -> None:
    cfg = tmp_path / "job.yaml"
    cfg.write_text(_config(tmp_path, small_clip))
    (tmp_path / "state").write_text("a file where the state dir would go")
    proc = subprocess.run(
        [sys.executable, ENTRY, "--config", str(cfg), "--dry-run"],
        env=_env(), capture_output=True, text=True, timeout=180, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    used = Path(proc.stderr.split("using ", 1)[1].split(" for this run", 1)[0])
    assert json.loads((used / "manifest.json").read_text())["status"] == "succeeded"
    lines = stopped_lines(used)
    assert len(lines) == 1 and "reason=verified" in lines[0], lines


class _SlowConfig(http.server.BaseHTTPRequestHandler):
    body = b""
    delay_s = 0.0

    def do_GET(self) -> None:  # http.server's name for it
        time.sleep(self.delay_s)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        return None


def _serve_config(small_clip: Path, tmp_path: Path, delay_s: float) -> Iterator[str]:
    """The job's config over loopback HTTP, answered after ``delay_s``."""
    body = _config(tmp_path, small_clip).encode()
    handler = type("Handler", (_SlowConfig,), {"body": body, "delay_s": delay_s})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/job.yaml"
    finally:
        server.shutdown()


@pytest.fixture
def slow_config_server(small_clip: Path, tmp_path: Path) -> Iterator[str]:
    yield from _serve_config(small_clip, tmp_path, 4.0)


def _pid1_with_a_waiting_runner(
    config_url: str, tmp_path: Path, *, capture: bool = False, poll_s: float = 0.05
) -> tuple[subprocess.Popen[str], str]:
    """The entrypoint (PID 1) on ``config_url``, once its early runner waits (at most 30 s), and the
    marker its processes carry in their environment."""
    marker = f"BATCH_TEST_MARK={tmp_path.name}"
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, ENTRY, "--config", config_url, "--dry-run"],
        env=_env(BATCH_TEST_MARK=tmp_path.name), cwd=tmp_path, stdout=out, stderr=out, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not _waiting_runners(marker) and time.monotonic() < deadline:
        time.sleep(poll_s)
    return proc, marker


def test_pid1_killed_before_naming_the_state_dir_leaves_no_runner_and_no_work(
    slow_config_server: str, tmp_path: Path
) -> None:
    """The job-id child waits on a slow store; PID 1 dies (SIGKILL): the waiting runner must end, idle."""
    proc, marker = _pid1_with_a_waiting_runner(slow_config_server, tmp_path)
    assert _waiting_runners(marker), "the runner was not started early"
    time.sleep(1.0)  # it has imported by now and waits on its stdin
    proc.kill()
    proc.wait(timeout=30)
    assert _gone(marker), "a runner kept waiting after PID 1 died"
    assert not (tmp_path / "out").exists()  # it did no work
    assert not (tmp_path / "state").exists()


def test_sigterm_while_the_state_dir_is_named_stops_before_any_work(
    slow_config_server: str, tmp_path: Path
) -> None:
    """SIGTERM to PID 1 while the job-id child waits on a slow store, before PID 1's supervisor took
    signals over: a container's PID 1 gets no signal it has no handler for, so it was lost until the
    SIGKILL, with no record. The entrypoint keeps it (batch.head_start): the runner is dismissed idle
    and the run ends as a provider's stop, on record."""
    proc, marker = _pid1_with_a_waiting_runner(slow_config_server, tmp_path, capture=True)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert _gone(marker), "a runner kept waiting after PID 1 ended"
    assert not (tmp_path / "out" / "in").exists()  # no input was processed
    state = tmp_path / "state" / "unknown"  # the job id was not waited for once the stop came
    # the entrypoint keeps a SIGTERM that comes before the supervisor's handlers (batch.head_start):
    # the run stops before the runner is told anything, as a provider's stop (no control-plane call:
    # the provider is stopping the instance), with the runner's fate and the flag on record
    assert proc.returncode == EXIT_INTERNAL, (proc.returncode, err[-3000:])
    assert (state / "provider_stop").read_text().strip() == "SIGTERM"
    assert json.loads((state / "runner.exit").read_text())["signal"] == "SIGTERM"
    assert "the provider is stopping the instance" in err, err[-3000:]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())  # on record in the bucket
    assert manifest["status"] != "succeeded", manifest


def test_a_runner_told_nothing_exits_without_work(small_clip: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "job.yaml"
    cfg.write_text(_config(tmp_path, small_clip))
    proc = subprocess.run(
        [sys.executable, ENTRY, "--worker", "--state-dir-on-stdin", "--config", str(cfg), "--dry-run"],
        env=_env(), input="", capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == EXIT_INTERNAL
    assert "named no state dir" in proc.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "state").exists()


def test_a_runner_told_its_state_dir_runs_there(small_clip: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "job.yaml"
    cfg.write_text(_config(tmp_path, small_clip))
    where = tmp_path / "told"
    proc = subprocess.run(
        [sys.executable, ENTRY, "--worker", "--state-dir-on-stdin", "--config", str(cfg), "--dry-run"],
        env=_env(), input=f"{where}\n", capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((where / "manifest.json").read_text())["status"] == "succeeded"


def test_a_stop_signal_while_the_state_dir_is_named_dismisses_the_waiting_runner(
    small_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PID 1 in this process (stdlib code): the provider's SIGTERM lands while the child names the
    state dir (simulated in ``state_dir_for``). The waiting runner is told nothing and ends idle;
    the watchdog still shuts the instance down."""
    from batch.watchdog import supervisor

    cfg = tmp_path / "job.yaml"
    cfg.write_text(_config(tmp_path, small_clip))
    monkeypatch.chdir(tmp_path)
    for key, value in _env(BATCH_TEST_MARK=tmp_path.name).items():
        monkeypatch.setenv(key, value)
    sup = supervisor.Supervisor(str(cfg), None, dry_run=True, quiet=True)
    real = supervisor.state_dir_for

    def named_while_stopping(url: str, given: Path | None, shard: str | None = None) -> Path:
        assert _waiting_runners(f"BATCH_TEST_MARK={tmp_path.name}"), "the runner was not started first"
        sup.stopping = signal.SIGTERM  # as _on_signal records it
        return real(url, given, shard)

    monkeypatch.setattr(supervisor, "state_dir_for", named_while_stopping)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = sup.run()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert code != 0
    assert _gone(f"BATCH_TEST_MARK={tmp_path.name}")
    assert not (tmp_path / "out" / "in").exists()
    state = tmp_path / "state" / "early"
    runner_exit = json.loads((state / "runner.exit").read_text())
    assert runner_exit["signal"] == "SIGTERM"
    lines = stopped_lines(state)
    assert len(lines) == 1, lines


def test_a_config_on_stdin_reaches_the_runner_whole(small_clip: Path, tmp_path: Path) -> None:
    """``--config /dev/stdin``: the early probe must not read the stream first (outside review)."""
    proc = subprocess.run(
        [sys.executable, ENTRY, "--no-watchdog", "--config", "/dev/stdin", "--state-dir", str(tmp_path)],
        env=_env(), input=_config(tmp_path, small_clip), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["status"] == "succeeded"


def test_pid1_with_a_config_on_stdin_shuts_down(small_clip: Path, tmp_path: Path) -> None:
    """``cat job.yaml | ... --config /dev/stdin`` under PID 1: the job-id child, the runner and the
    watchdog each read the config, and the watchdog's stdin is PID 1's pipe; the stream is read once
    into a private file (an outside review found the watchdog waiting on it for ever, instance up)."""
    proc = subprocess.run(
        [sys.executable, ENTRY, "--config", "/dev/stdin", "--dry-run"],
        env=_env(), input=_config(tmp_path, small_clip), capture_output=True, text=True, timeout=180,
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = tmp_path / "state" / "early"
    assert json.loads((state / "manifest.json").read_text())["status"] == "succeeded"
    lines = stopped_lines(state)
    assert len(lines) == 1 and "reason=verified" in lines[0], lines


def test_pid1_with_a_config_on_stdin_from_a_file_shuts_down(small_clip: Path, tmp_path: Path) -> None:
    """``... --config /dev/stdin < job.yaml``: stdin is a regular file, but each child of PID 1 has its
    own stdin (the watchdog's is PID 1's pipe): PID 1 reads it once for them (an outside review found
    the watchdog waiting on its stdin for WATCHDOG_FINISH_S, the instance up)."""
    cfg = tmp_path / "job.yaml"
    cfg.write_text(_config(tmp_path, small_clip))
    with cfg.open() as stdin:
        proc = subprocess.run(
            [sys.executable, ENTRY, "--config", "/dev/stdin", "--dry-run"],
            env=_env(WATCHDOG_FINISH_S="30"), stdin=stdin, capture_output=True, text=True, timeout=180,
            cwd=tmp_path,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = stopped_lines(tmp_path / "state" / "early")
    assert len(lines) == 1 and "reason=verified" in lines[0], lines


def test_config_from_stream_leaves_files_and_urls_alone(tmp_path: Path) -> None:
    from batch.watchdog.supervisor import config_from_stream

    cfg = tmp_path / "job.yaml"
    cfg.write_text("inputs: [a]\n")
    missing = str(tmp_path / "no.yaml")
    for url in (str(cfg), f"file://{cfg}", "s3://b/job.yaml", "https://h/job.yaml", missing):
        assert config_from_stream(url) == url
    fifo = tmp_path / "job.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text("inputs: [b]\n"))
    writer.start()
    copy = config_from_stream(str(fifo))
    writer.join()
    assert copy != str(fifo) and Path(copy).read_text() == "inputs: [b]\n"
    assert Path(copy).stat().st_mode & 0o077 == 0  # private: the config may hold what others must not read
    Path(copy).unlink()


def _runner_pids(marker: str, parent: int) -> dict[str, int]:
    """``parent``'s runner processes started with ``marker`` in their environment, with their
    ignored-signal mask (a runner's own fork, before its exec, shows the runner's command line too)."""
    found = {}
    for pid in _waiting_runners(marker):
        try:
            status = (Path("/proc") / pid / "status").read_text()
        except OSError:
            continue
        if f"PPid:\t{parent}\n" not in status:
            continue
        mask = next((line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")), "0")
        found[pid] = int(mask, 16)
    return found


def test_pid1_adopts_the_runner_it_started_first_and_starts_no_second(
    small_clip: Path, tmp_path: Path
) -> None:
    """The entrypoint starts the runner before PID 1's imports (batch.head_start); PID 1 must use that
    one (a second would mean the first was dismissed), and it must ignore SIGHUP as every child of
    PID 1 does: a closing terminal must not end the job (it was started before PID 1 set that up)."""
    cfg = tmp_path / "job.yaml"
    cfg.write_text(_config(tmp_path, small_clip))
    marker = f"BATCH_TEST_MARK={tmp_path.name}"
    proc = subprocess.Popen(
        [sys.executable, ENTRY, "--config", str(cfg), "--dry-run", "-q"],
        env=_env(BATCH_TEST_MARK=tmp_path.name), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=tmp_path,
    )  # fmt: skip
    seen: dict[str, int] = {}
    while proc.poll() is None:  # every runner of this test, sampled until the job ends
        seen |= _runner_pids(marker, proc.pid)
        time.sleep(0.01)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    state = tmp_path / "state" / "early"
    assert json.loads((state / "manifest.json").read_text())["status"] == "succeeded"
    assert list(seen) == [(state / "runner.pid").read_text().strip()], seen
    sighup = 1 << (signal.SIGHUP - 1)
    assert all(mask & sighup for mask in seen.values()), seen


def test_a_sharded_pid1_starts_its_runner_the_usual_way(small_clip: Path, tmp_path: Path) -> None:
    """No head start for a shard (the early reading refuses it): the job still runs its share."""
    cfg = tmp_path / "job.yaml"
    cfg.write_text(_config(tmp_path, small_clip))
    proc = subprocess.run(
        [sys.executable, ENTRY, "--config", str(cfg), "--dry-run", "--shard", "0/1"],
        env=_env(BATCH_RUN_ID="r1"), capture_output=True, text=True, timeout=180, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = stopped_lines(tmp_path / "state" / "early.shard-0-of-1")  # a shard's own state dir
    assert len(lines) == 1 and "reason=verified" in lines[0], lines


@pytest.fixture
def very_slow_config_server(small_clip: Path, tmp_path: Path) -> Iterator[str]:
    yield from _serve_config(small_clip, tmp_path, 25.0)


def test_a_kept_sigterm_does_not_wait_for_a_slow_store_to_name_the_state_dir(
    very_slow_config_server: str, tmp_path: Path
) -> None:
    """The job-id child waits 25 s on the store; a provider's SIGKILL follows its SIGTERM within
    seconds: PID 1 stops waiting for the job id at the SIGTERM, so the stop is on record (under
    state/unknown) while the store has still not answered (second outside review)."""
    proc, marker = _pid1_with_a_waiting_runner(very_slow_config_server, tmp_path, poll_s=0.01)
    try:
        proc.send_signal(signal.SIGTERM)
        state = tmp_path / "state" / "unknown"
        deadline = time.monotonic() + 15  # well before the store's 25 s
        while not (state / "runner.exit").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (state / "provider_stop").read_text().strip() == "SIGTERM"
        assert json.loads((state / "runner.exit").read_text())["signal"] == "SIGTERM"
        assert not (tmp_path / "out" / "in").exists()
    finally:
        proc.kill()
        proc.wait()
        # the runner, and the watchdog in its own session, which would retry its dry-run stop in a
        # deleted folder for its whole budget (15 minutes) after the test
        for pid in _marked(marker):
            with contextlib.suppress(OSError):
                os.kill(int(pid), signal.SIGKILL)
