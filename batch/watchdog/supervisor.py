"""The container entrypoint's supervisor (PID 1): watchdog first, then the runner, then wait.

The entrypoint is PID 1 in a container, and a container ends when PID 1
does. So it does almost nothing and nothing that can fail: it reads no
config and imports nothing heavy (only batch.contracts, batch.faults and the
standard-library batch.console/relay until a last resort needs a provider). It starts
``monitor.py`` in its own process session (so signals to the job's process group miss
it), then the runner as a child process, tees the runner's output into
``<state dir>/runner.log`` (plain lines), records the
runner's exit status in ``<state dir>/runner.exit`` (even when it was
killed), and waits for the watchdog to finish verifying and shutting down.

A watchdog that ends before its shutdown is final is started again (it
carries on from its state), and so is one that gives no sign of life for
WATCHDOG_SILENCE_S while it watches, or none at all within WATCHDOG_START_S of its start
(batch.watchdog.life_sign: hung, it is killed first); one that keeps failing, or still runs long after
the runner ended, is replaced by PID 1's last resort (batch.watchdog.shutdown), which
stops the instance without storage or config.

SIGTERM (a provider stopping the container) is passed to the runner, and
``<state dir>/provider_stop`` tells the watchdog not to call the control plane. SIGINT (a
Ctrl-C) is passed on too, and the run ends as a failed one: the watchdog stops the instance.
A runner still running RUNNER_GRACE_S after either is killed.

The terminal is only a view (batch.watchdog.relay): both children write to
pipes PID 1 drains, PID 1 alone writes to the terminal, from a thread nobody
waits on. A terminal that closes (SIGHUP, ignored here and so in the children),
stops reading or changes size ends or drops what is shown, never the job or
its shutdown.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from batch import console, faults
from batch.contracts import (
    JOB_ID_PATTERN,
    MONITOR_PID,
    NEWS_RUNNER_EXIT,
    NEWS_RUNNER_PID,
    PER_RUN_FILES,
    PREVIOUS_RUNS,
    PROVIDER_STOP_FLAG,
    RUN_LOCK,
    RUNNER_EXIT,
    RUNNER_LOG,
    RUNNER_PID,
    SHUTDOWN_FINAL,
    WATCHDOG_STATE,
    env_seconds,
    state_file,
)
from batch.head_start import stop_pending, take_stop_signal
from batch.plain_yaml import local_config_text, scan_job_id
from batch.watchdog.launch import (
    ENTRYPOINT,
    ROOT,
    EarlyRunner,
    child_env,
    dismiss,
    is_stream,
    new_launch_id,
    runner_command,
    start_runner,
)
from batch.watchdog.life_sign import BEAT_FD_ARG, Pulse
from batch.watchdog.relay import TerminalSink, pump

log = logging.getLogger("batch")

MONITOR = ROOT / "monitor.py"
EXIT_CONFIG = 2  # as batch.errors says; not imported, to keep PID 1 light
EXIT_STORAGE = 3
EXIT_INTERNAL = 4
EXIT_GAVE_UP = 5  # monitor.py: final, not confirmed (batch.watchdog.shutdown.EXIT_GAVE_UP)
MONITOR_RESTARTS = 3
RUNNER_GRACE_S = 20.0  # SIGTERM -> SIGKILL when PID 1 must end the runner itself
JOB_ID_TIMEOUT_S = 90.0  # reading the config for the default state dir (a slow store retries)
CONFIG_CHILD_MEMORY = 2 << 30  # bytes of address space for the child that parses the config


def _at_least(name: str, value: float, floor: float) -> float:
    """``value``, raised to ``floor`` with a line saying so (as env_seconds says what it ignores)."""
    if value < floor:
        print(f"warning: {name}={value:g} is below its floor; using {floor:g}", flush=True)
    return max(value, floor)


# How long the watchdog may take once its watch is over before PID 1 replaces it. Below the watchdog's
# own finish (confirm x interval_s + upload_timeout_s to verify, shutdown_budget_s of provider
# retries: 135 s and 900 s by default) a healthy shutdown is cut short into a last resort, which stops
# (never destroys) the instance, whose disk then goes on billing. The floor only catches a typo.
WATCHDOG_FINISH_S = _at_least("WATCHDOG_FINISH_S", env_seconds("WATCHDOG_FINISH_S", 3600.0), 60.0)
# A look at the watchdog this late after the last (PID 1 looks every second) means PID 1 itself was
# frozen (docker pause): nobody could be heard meanwhile, and the silence starts again.
PID1_FROZEN_S = 4.0
# How long the watchdog may go without a sign of life (batch.watchdog.life_sign) while it watches
# before PID 1 kills it and starts it again; at least twice PID1_FROZEN_S, so that PID 1's own slow
# looks can never keep resetting it (an outside review switched detection off with 2 s).
WATCHDOG_SILENCE_S = _at_least(
    "WATCHDOG_SILENCE_S", env_seconds("WATCHDOG_SILENCE_S", 600.0), 2 * PID1_FROZEN_S
)
# Until its first sign of life: the watchdog's slowest start. A remote config that does not answer is
# read for CONFIG_READ_S (120 s) plus one attempt (5 tries at the stores' 10 + 120 s timeouts: ~650 s),
# then the runner's pid is waited for (60 s); an outside review measured 613 s for a store that never
# answered, where a 600 s limit killed every healthy watchdog in turn. Never below the silence limit.
WATCHDOG_START_S = _at_least("WATCHDOG_START_S", env_seconds("WATCHDOG_START_S", 1200.0), WATCHDOG_SILENCE_S)


CONFIG_STREAM_LIMIT = 16 << 20  # bytes of a config given as a stream; a config is a few KB


def config_from_stream(config_url: str) -> str:
    """A config given as a stream (``/dev/stdin``, a pipe, ``<(...)``) read once, into a private file.

    PID 1's children each read the config (the job-id child, the runner, the watchdog); a
    stream gives its bytes to the first reader only, and the watchdog, whose stdin is PID 1's
    pipe, would wait on ``/dev/stdin`` for ever with the instance up (an outside review found
    it). Anything else (a file, a URL, a path that is not there) is returned as it is.
    """
    if not is_stream(config_url):
        return config_url
    path = config_url.removeprefix("file://")
    try:
        with open(path, "rb") as stream:
            data = stream.read(CONFIG_STREAM_LIMIT)
        fd, copy = tempfile.mkstemp(prefix="batch-config-", suffix=".yaml")  # 0600: the config may be private
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except OSError:  # the children read it themselves and report what is wrong
        return config_url
    return copy


def state_dir_for(config_url: str, state_dir: Path | None, shard: str | None = None) -> Path:
    """--state-dir, else $STATE_DIR, else ./state/<job id>
    (``<job id>.shard-I-of-N`` for a shard: the shards of a run on one machine or one shared volume
    each have their own, where one would hold the other's run.lock).

    A local config whose ``job_id:`` line is in a shape a plain scan is sure of names it at once
    (batch.plain_yaml: ~0.1 s and a Python process less before the runner may start). Any other
    config is parsed in a child with a memory and CPU limit and a
    timeout: a config that crashes or hangs the parser costs PID 1 nothing
    (the state dir is then ./state/unknown and the runner reports the config).
    """
    if state_dir is not None:
        return state_dir
    if os.environ.get("STATE_DIR"):
        return Path(os.environ["STATE_DIR"])
    job_id = scanned_job_id(config_url) or _job_id_from_child(config_url)
    name = job_id if JOB_ID_PATTERN.fullmatch(job_id) else "unknown"
    if shard:
        index, _, count = shard.replace(" ", "").partition("/")
        name += f".shard-{index}-of-{count}"
    return Path("state") / name


SCAN_WAIT_S = 1.0  # a config on a file system that does not answer is left to the child and its timeout


def scanned_job_id(config_url: str) -> str | None:
    """The job id a plain scan of a local config is sure of; None: the child reads it.

    The read runs on a thread PID 1 waits on for SCAN_WAIT_S at most: a hung network mount must not
    hold PID 1 before its watchdog has started.
    """
    found: list[str | None] = []

    def scan() -> None:
        try:
            text = local_config_text(config_url)
            found.append(scan_job_id(text) if text is not None else None)
        except Exception:  # any doubt: the child
            found.append(None)

    reader = threading.Thread(target=scan, name="job-id-scan", daemon=True)
    reader.start()
    reader.join(SCAN_WAIT_S)
    return found[0] if found else None


def _job_id_from_child(config_url: str) -> str:
    """The job id as ``--print-job-id`` reads it, in a child with limits; "" when it cannot."""
    cmd = [
        sys.executable,
        str(ENTRYPOINT),
        "--print-job-id",
    ]  # the URL goes by env: a presigned one is a secret
    job_id = ""
    try:
        child = subprocess.Popen(
            cmd,
            env={**os.environ, "CONFIG_URL": config_url},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            preexec_fn=_limit_child,
        )
    except OSError:
        child = None
    deadline = time.monotonic() + JOB_ID_TIMEOUT_S
    while child is not None:
        try:
            out, _ = child.communicate(timeout=0.25)  # returns the moment the child ends
            job_id = out.strip() if child.returncode == 0 else ""
            break
        except subprocess.TimeoutExpired:
            # a slow store must not hold a stop the entrypoint kept (batch.head_start): a provider's
            # SIGKILL follows its SIGTERM within seconds, and the run must be on record by then
            if stop_pending() or time.monotonic() > deadline:
                child.kill()
                child.communicate()
                break
    return job_id


def _limit_child() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CONFIG_CHILD_MEMORY, CONFIG_CHILD_MEMORY))
    resource.setrlimit(resource.RLIMIT_CPU, (60, 60))


def archive_previous_run(state_dir: Path) -> None:
    """A new run starts clean; the last run's records move to previous/<time>/."""
    found = [state_file(state_dir, n) for n in PER_RUN_FILES if state_file(state_dir, n).exists()]
    if not found:
        return
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    state_file(state_dir, PREVIOUS_RUNS).mkdir(parents=True, exist_ok=True)
    for n in itertools.count(1):  # a new folder: two runs can start in the same second
        dest = state_file(state_dir, PREVIOUS_RUNS) / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            dest.mkdir()
            break
        except FileExistsError:
            continue
    for path in found:
        path.replace(dest / path.name)


_STOP_ROUNDS = 20  # a tree that grows faster than it can be stopped is killed as far as it was listed


def _kill_if_running(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL for the runner and the processes it started (its ffmpeg would go on writing into the
    state dir after PID 1 let go of it)."""
    if process.poll() is not None:
        return
    # The tree is stopped first, from the top, until no new process turns up: a stopped process neither
    # starts another nor reacts to its children's end (a runner whose ffmpeg died first could exit, or
    # write, before its own SIGKILL; a child listed too late would outlive it). Then all are killed.
    tree: list[int] = []
    new = [process.pid]
    try:
        for _ in range(_STOP_ROUNDS):
            for pid in new:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGSTOP)
            tree += new
            new = [pid for pid in _descendants(process.pid) if pid not in tree]
            if not new:
                break
    finally:
        for pid in [*tree, *new]:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid``, from /proc (none where there is no /proc)."""
    children: dict[int, list[int]] = {}
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rfind(b")") + 2 :].split()  # after "pid (name)": state, ppid, ...
            if len(fields) > 1:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _write(path: Path, text: str) -> None:
    """Best effort: a full disk must not take PID 1 down."""
    try:
        faults.unwritable(path.name)
        path.write_text(text)
    except OSError as e:
        log.warning("could not write %s: %s", path, e)


class Supervisor:
    def __init__(
        self,
        config_url: str,
        state_dir: Path | None,
        *,
        dry_run: bool,
        quiet: bool,
        shard: str | None = None,
        workers: int | None = None,
        early: EarlyRunner | None = None,
    ) -> None:
        self.config_url = config_url
        self.shard_args = ["--shard", shard] if shard else []
        self.workers_args = ["--workers", str(workers)] if workers else []
        # None: ./state/<job id>, named by a child while the runner, started first, imports (run())
        self._state_dir = state_dir
        self.dry_run = dry_run
        self.quiet = quiet
        # a runner started before PID 1's imports (batch.watchdog.launch): adopted in run() if it is the
        # one this supervisor would start; its launch id is this launch's either way
        self._early = early
        self.launch_id = early.launch_id if early is not None else new_launch_id()
        # what a person sees: the children write to pipes, their output comes to the terminal from here
        self.mode = console.progress_mode(2)
        self.terminal = TerminalSink(2, self.mode)
        self._relays: list[threading.Thread] = []  # one per watchdog started: its last lines come at its end
        self.env = child_env(config_url, self.launch_id, self.mode)
        self.runner: subprocess.Popen[bytes] | None = None
        self.runner_done = threading.Event()
        # what every watchdog is told on its stdin (a restarted one hears it all again)
        self._news: list[str] = []
        self._news_lock = threading.Lock()
        self._current_monitor: subprocess.Popen[bytes] | None = None
        self._pulse: Pulse | None = None  # the current watchdog's sign of life; None: it cannot give one
        self.unconfirmed = False  # the shutdown ended without the provider's confirmation
        self.stopping = 0  # the signal the provider sent, if any
        self._lock_fd: int | None = None  # the state dir's run.lock, held open for this run

    def _monitor(self) -> subprocess.Popen[bytes] | None:
        cmd = [sys.executable, str(MONITOR), "--state-dir", str(self.state_dir)]
        pid_file = state_file(self.state_dir, RUNNER_PID)
        cmd += ["--runner-pid-file", str(pid_file), "--launch-id", self.launch_id]
        if self.dry_run:
            cmd.append("--dry-run")
        cmd += self.shard_args
        if self._pulse is not None:
            self._pulse.close()
        try:
            self._pulse = Pulse()
        except OSError:  # no file descriptors left: it runs without, as before
            self._pulse = None
        pass_fds: tuple[int, ...] = ()
        if self._pulse is not None:
            cmd += [BEAT_FD_ARG, str(self._pulse.write_fd)]
            pass_fds = (self._pulse.write_fd,)
        try:
            # its own session: a signal to the job's process group does not reach it
            monitor = subprocess.Popen(
                cmd, start_new_session=True, env=self.env, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, pass_fds=pass_fds,
            )  # fmt: skip
        except OSError as e:
            log.error("cannot start the watchdog: %s", e)
            return None
        finally:
            if self._pulse is not None:
                self._pulse.sent()
        assert monitor.stdout is not None
        self._relays.append(pump(monitor.stdout, self.terminal, None))  # it keeps its own watchdog.log
        _write(state_file(self.state_dir, MONITOR_PID), f"{monitor.pid}\n")
        with self._news_lock:
            self._current_monitor = monitor
            for line in self._news:
                _send(monitor, line)
        return monitor

    def _tell(self, line: str) -> None:
        """Tell the watchdog (now and after any restart) what it must not depend on the disk for."""
        with self._news_lock:
            self._news.append(line)
            if self._current_monitor is not None:
                _send(self._current_monitor, line)

    @property
    def state_dir(self) -> Path:
        assert self._state_dir is not None, "the state dir is named at the start of run()"
        return self._state_dir

    @state_dir.setter
    def state_dir(self, path: Path) -> None:
        self._state_dir = path

    def _runner_command(self, *, waiting: bool) -> list[str]:
        state_dir = None if waiting else self.state_dir
        extra = self.shard_args + self.workers_args
        return runner_command(state_dir, dry_run=self.dry_run, quiet=self.quiet, extra=extra)

    def _runner(self, *, waiting: bool = False) -> subprocess.Popen[bytes]:
        """The runner; ``waiting``: it imports, then waits for its state dir on stdin (see :meth:`_go`)."""
        return start_runner(self._runner_command(waiting=waiting), self.env, waiting=waiting)

    def _adopt_early(self) -> subprocess.Popen[bytes] | None:
        """The runner started before the arguments were parsed, if it is the waiting one this would start."""
        early, self._early = self._early, None
        if early is None:
            return None
        return early.adopt(self._runner_command(waiting=True), self.env)

    def _go(self, runner: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        """Name the state dir to a waiting runner; one that died meanwhile is reported by its exit code."""
        assert runner.stdin is not None
        with contextlib.suppress(OSError):  # BrokenPipe: it ended while importing
            runner.stdin.write(f"{self.state_dir}\n".encode())
        with contextlib.suppress(OSError):
            runner.stdin.close()
        return runner

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = signum
        if signum == signal.SIGTERM:  # the provider stopping the container: the watchdog calls nothing
            _write(state_file(self.state_dir, PROVIDER_STOP_FLAG), signal.Signals(signum).name + "\n")
        # a Ctrl-C (SIGINT) is a person ending the job: the watchdog verifies what was uploaded and stops
        # the instance as after any failure (it had taken it for the provider's stop: billing went on)
        runner = self.runner
        if runner and runner.poll() is None:
            runner.send_signal(signum)
            # a runner that ignores it must not keep PID 1 (and the instance) waiting for ever
            timer = threading.Timer(RUNNER_GRACE_S, _kill_if_running, args=(runner,))
            timer.daemon = True
            timer.start()

    def _lock_state_dir(self) -> bool:
        """This run's hold on its state dir, for as long as PID 1 lives (the kernel lets go of a dead
        one's). False when another run holds it: its records, work files and watchdog are left alone
        (a second run had archived the first's records and deleted its work, and the first's watchdog
        took the second's end for its own). A state dir that cannot hold a lock is used as before."""
        try:
            fd = os.open(state_file(self.state_dir, RUN_LOCK), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held_by = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            log.error(
                "state dir %s is in use by another run (PID 1 %s); nothing was done "
                "(fix: give each run its own --state-dir or STATE_DIR)",
                self.state_dir, held_by,
            )  # fmt: skip
            return False
        except OSError:  # a file system without locks: as before
            os.close(fd)
            return True
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd  # kept open: the lock lasts as long as this process
        return True

    def _usable_state_dir(self) -> None:
        """The state dir, or a fresh one under the temp dir when it cannot be made or written."""
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            probe = self.state_dir / f".probe-{self.launch_id}"
            probe.write_text("")
            probe.unlink()
            return
        except OSError as e:
            fallback = Path(tempfile.gettempdir()) / f"batch-state-{self.launch_id}"
            log.error("state dir %s is not usable (%s); using %s for this run", self.state_dir, e, fallback)
        try:
            fallback.mkdir(parents=True, exist_ok=True)
            self.state_dir = fallback
        except OSError as e:  # no disk at all: go on; the provider call needs none
            log.error("no usable state dir (%s); carrying on without one", e)

    def run(self) -> int:
        """The job, start to end; PID 1's own log lines go through the terminal sink meanwhile."""
        handlers = _log_to(self.terminal)
        # the terminal closing (SIGHUP) or PID 1 writing to it from the background (SIGTTOU) must not
        # stop the job: ignored here and, inherited, in the children (a signal handler would not be)
        previous = {}
        for sig in (signal.SIGHUP, signal.SIGTTOU):
            with contextlib.suppress(ValueError):  # not the main thread (tests)
                previous[sig] = signal.signal(sig, signal.SIG_IGN)
        try:
            return self._run()
        finally:
            until = time.monotonic() + 3.0  # the watchdog's last lines, if the terminal takes them
            for relay in self._relays:
                relay.join(timeout=max(until - time.monotonic(), 0.0))
            self.terminal.wait_empty(2.0)
            for handler, stream in handlers:
                handler.setStream(stream)
            for sig, old in previous.items():
                signal.signal(sig, old)

    def _run(self) -> int:
        # the runner's imports (~0.3 s) overlap the child that reads the job id (~0.1 s) and the
        # watchdog's start; it does nothing until it is told the state dir, after the watchdog has started
        waiting = self._adopt_early()
        if self._state_dir is None:
            if waiting is None:
                with contextlib.suppress(OSError):  # started again below, the usual way
                    waiting = self._runner(waiting=True)
            self.state_dir = state_dir_for(
                self.config_url, None, self.shard_args[1] if self.shard_args else None
            )
        self._usable_state_dir()
        if not self._lock_state_dir():
            if waiting is not None:
                dismiss(waiting)
            return EXIT_CONFIG
        if console.bad_setting():
            log.warning("%s", console.bad_setting())
        try:
            archive_previous_run(self.state_dir)
        except OSError as e:  # its records stay; the watchdog tells them apart by launch id
            log.warning("could not archive the previous run in %s: %s", self.state_dir, e)
        keeper = threading.Thread(target=self._keep_monitor, args=(self._monitor(),), daemon=True)
        keeper.start()  # the watchdog runs before any work
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        early_stop = take_stop_signal()  # one that came before these handlers (batch.head_start)
        if early_stop and not self.stopping:
            self._on_signal(early_stop, None)
        try:
            if self.stopping:  # stopped before any work: start none
                raise InterruptedError(f"{signal.Signals(self.stopping).name} before the runner started")
            self.runner = self._go(waiting) if waiting is not None else self._runner()
        except OSError as e:
            if waiting is not None and self.runner is None:
                dismiss(waiting)
            log.error("cannot start the runner: %s", e)
            code = -self.stopping if self.stopping else EXIT_INTERNAL
        else:
            _write(state_file(self.state_dir, RUNNER_PID), f"{self.runner.pid}\n")
            self._tell(f"{NEWS_RUNNER_PID} {self.runner.pid}")
            assert self.runner.stdout is not None
            tee = pump(self.runner.stdout, self.terminal, state_file(self.state_dir, RUNNER_LOG))
            code = self.runner.wait()
            tee.join(timeout=5)
        record = {
            "code": code if code >= 0 else None,
            "signal": signal.Signals(-code).name if code < 0 else None,
        }
        _write(state_file(self.state_dir, RUNNER_EXIT), json.dumps(record) + "\n")
        self._tell(f"{NEWS_RUNNER_EXIT} {json.dumps(record)}")
        self.runner_done.set()
        keeper.join()  # the watchdog verifies the upload and shuts down; then this process may end
        if self.unconfirmed:
            log.error("the shutdown was not confirmed by the provider: stop the instance by hand")
            return EXIT_GAVE_UP
        if code == 0 and (self._shutdown_record() or {}).get("reason") == "verification_failed":
            return EXIT_STORAGE  # the runner ended well, but its upload is not in the bucket intact
        return code if 0 <= code <= EXIT_INTERNAL else EXIT_INTERNAL

    def _keep_monitor(self, monitor: subprocess.Popen[bytes] | None) -> None:
        """Wait for the watchdog; restart one that ended early; else the last resort. Never raises."""
        try:
            why = self._watch_monitor(monitor)
            if why is not None:
                self._last_resort(why)
        except BaseException as e:  # PID 1 must never be left without a shutdown
            self._last_resort(f"the supervisor's watch on the watchdog failed: {type(e).__name__}: {e}")

    def _watch_monitor(self, monitor: subprocess.Popen[bytes] | None) -> str | None:
        """None once the watchdog finished its shutdown; else why PID 1 must do it."""
        status: int | None = None
        # Not a batch.retry loop, on purpose: this restarts a process (and reads its exit status and the
        # state file between starts), it does not retry a call; and PID 1 keeps to the standard library
        # plus batch.contracts/faults, so that a broken environment cannot take its last resort away.
        for attempt in range(MONITOR_RESTARTS + 1):
            if monitor is not None:
                status = self._wait(monitor)
                if status is None:
                    return f"the watchdog still ran {WATCHDOG_FINISH_S:g} s after its watch was over; killed"
            if status in (0, EXIT_GAVE_UP) or self._shutdown_final():  # its status counts if the disk is full
                record = self._shutdown_record() or {}
                self.unconfirmed = status == EXIT_GAVE_UP or record.get("status") == "gave_up"
                return None
            if attempt < MONITOR_RESTARTS:
                log.warning("the watchdog ended (status %s) before the shutdown; starting it again", status)
                time.sleep(2**attempt)  # a moment for whatever failed to pass
                monitor = self._monitor()
        return f"the watchdog ended {MONITOR_RESTARTS + 1} times (last status {status}) before the shutdown"

    def _wait(self, monitor: subprocess.Popen[bytes]) -> int | None:
        """The watchdog's exit status; None when it outlived WATCHDOG_FINISH_S once its watch was over
        (then killed).

        Until it says its watch is over (batch.watchdog.life_sign), a watchdog silent for
        WATCHDOG_SILENCE_S is hung (its watch loop beats every second, and the runner's end wakes it
        at once), and so is one that has not beaten once WATCHDOG_START_S after its start: it is
        killed, and its exit status sends it to be started again. One that cannot give a sign of
        life is timed from the runner's end, as before there were signs.
        """
        pulse = self._pulse
        runner_ended: float | None = None
        looked = time.monotonic()
        while True:
            status = wait_exit(monitor, 1.0)
            if status is not None:
                return status
            if runner_ended is None and self.runner_done.is_set():
                runner_ended = time.monotonic()
            if pulse is None:
                if runner_ended is not None:
                    break
                continue
            silent = pulse.silent_for()  # read before the clock: a freeze after it counts as one
            now = time.monotonic()
            if now - looked > PID1_FROZEN_S:  # PID 1 itself did not run (a paused container)
                pulse.last, silent = now, 0.0
            looked = now
            if pulse.finishing:
                break  # it verifies and shuts down now, within WATCHDOG_FINISH_S
            if pulse.heard and runner_ended is not None and now - runner_ended > WATCHDOG_FINISH_S:
                _kill(monitor)  # beating, but never on to the shutdown (one still starting: START_S)
                return None
            limit, name = (WATCHDOG_SILENCE_S, "WATCHDOG_SILENCE_S") if pulse.heard else (
                WATCHDOG_START_S, "WATCHDOG_START_S")  # fmt: skip
            if silent > limit:
                log.error(
                    "the watchdog (pid %d) gave no sign of life for %.0f s (%s=%g): killed, to be "
                    "started again", monitor.pid, silent, name, limit,
                )  # fmt: skip
                return _kill(monitor)
        status = wait_exit(monitor, WATCHDOG_FINISH_S)
        if status is None:
            _kill(monitor)
        return status

    def _shutdown_record(self) -> dict[str, Any] | None:
        """This launch's shutdown record, if the state file holds one (any other is ignored)."""
        try:
            state = json.loads(state_file(self.state_dir, WATCHDOG_STATE).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(state, dict) or state.get("launch_id") != self.launch_id:
            return None
        record = state.get("shutdown")
        return record if isinstance(record, dict) else None

    def _shutdown_final(self) -> bool:
        return (self._shutdown_record() or {}).get("status") in SHUTDOWN_FINAL

    def _stop_runner(self) -> None:
        """No watchdog: nobody can watch the runner any more, and stopping the instance ends it anyway."""
        runner = self.runner
        if runner is None or runner.poll() is not None:
            return
        log.error("stopping the runner: no watchdog is left to watch it")
        runner.terminate()  # it writes a partial manifest on SIGTERM
        try:
            runner.wait(timeout=RUNNER_GRACE_S)
        except subprocess.TimeoutExpired:
            _kill_if_running(runner)

    def _last_resort(self, why: str) -> None:
        log.error("last resort: %s; PID 1 stops the instance itself", why)
        try:
            self._stop_runner()
        except BaseException as e:
            log.error("could not stop the runner: %r", e)
        try:
            from batch.watchdog.shutdown import last_resort

            result = last_resort(
                self.state_dir, dry_run=self.dry_run, reason="watchdog_failed", detail=why,
                launch_id=self.launch_id,
            )  # fmt: skip
            self.unconfirmed = result != 0
        except BaseException as e:  # nothing more can be done from here than say so, loudly
            self.unconfirmed = True
            log.critical("the last-resort shutdown failed: %r; STOP THE INSTANCE BY HAND", e)


POLL_MAX_S = 86400.0  # one poll's longest wait; a longer timeout is several
KILL_WAIT_S = 10.0


def _kill(proc: subprocess.Popen[bytes]) -> int:
    """SIGKILL, and its exit status; -SIGKILL when it has not ended KILL_WAIT_S later: a process in
    an uninterruptible read (a hard network mount) dies only when the read returns, and PID 1 must
    go on to the restart or the last resort meanwhile."""
    with contextlib.suppress(OSError):
        proc.kill()
    status = wait_exit(proc, KILL_WAIT_S)
    return -signal.SIGKILL if status is None else status


def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """``proc``'s exit status, or None once ``timeout`` seconds passed; woken the moment it ends.

    ``Popen.wait(timeout=...)`` sleeps up to 50 ms between polls: PID 1 paid ~30 ms of it at the
    end of every job, between the watchdog's exit and its own. A pidfd (Linux >= 5.3) becomes
    readable when the process ends; without one (an older kernel) this is ``Popen.wait``.
    """
    if proc.returncode is not None:
        return proc.returncode
    try:
        fd = os.pidfd_open(proc.pid)
    except OSError:  # ENOSYS on an old kernel; ESRCH cannot happen for an unreaped child
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
    deadline = time.monotonic() + max(timeout, 0.0)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while True:
            left = deadline - time.monotonic()
            # poll takes at most 2**31 - 1 ms (~24.8 days); WATCHDOG_FINISH_S may say more ("never")
            if poller.poll(max(min(left, POLL_MAX_S), 0.0) * 1000):
                return proc.wait()  # it ended: reaped at once
            if left <= POLL_MAX_S:
                return None
    finally:
        os.close(fd)


def _log_to(sink: TerminalSink) -> list[tuple[logging.StreamHandler[Any], Any]]:
    """Point the log handlers that write to stderr at ``sink``; what they wrote to before."""
    moved: list[tuple[logging.StreamHandler[Any], Any]] = []
    for handler in logging.getLogger().handlers:
        if not isinstance(handler, logging.StreamHandler) or isinstance(handler, logging.FileHandler):
            continue
        if handler.stream in (sys.stderr, sys.__stderr__):
            moved.append((handler, handler.stream))
            handler.setStream(sink)
    return moved


def _send(monitor: subprocess.Popen[bytes], line: str) -> None:
    try:
        assert monitor.stdin is not None
        monitor.stdin.write(line.encode() + b"\n")
        monitor.stdin.flush()
    except (OSError, ValueError, AssertionError):  # it ended: a restarted one hears everything again
        pass


def supervise(
    config_url: str,
    state_dir: Path | None,
    *,
    dry_run: bool,
    quiet: bool,
    shard: str | None = None,
    workers: int | None = None,
    early: EarlyRunner | None = None,
) -> int:
    given = state_dir or (Path(os.environ["STATE_DIR"]) if os.environ.get("STATE_DIR") else None)
    config_url = config_from_stream(config_url)
    supervisor = Supervisor(
        config_url, given, dry_run=dry_run, quiet=quiet, shard=shard, workers=workers, early=early
    )
    return supervisor.run()
