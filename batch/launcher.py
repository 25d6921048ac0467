"""The container entrypoint's supervisor: watchdog first, then the runner, then wait.

The entrypoint is PID 1 in a container, and a container ends when PID 1
does. So the entrypoint stays small and alive: it starts ``monitor.py`` in
its own process session (so signals to the job's process group miss it),
then the runner as a child process, tees the runner's stderr into
``<state dir>/runner.log``, records the runner's exit status in
``<state dir>/runner.exit`` (even when it was killed), and waits for the
watchdog to finish verifying and shutting down before it exits itself.

SIGTERM (a provider stopping the container) is passed to the runner, and
``<state dir>/provider_stop`` tells the watchdog not to call the control plane.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from batch.errors import EXIT_INTERNAL, BatchError
from batch.shards import Shard
from batch.watchdog import PROVIDER_STOP_FLAG, RUNNER_EXIT_FILE

log = logging.getLogger("batch")

ROOT = Path(__file__).resolve().parents[1]
MONITOR = ROOT / "monitor.py"
ENTRYPOINT = ROOT / "run_with_config_batch_sync.py"
MONITOR_RESTARTS = 3
PER_RUN_FILES = (  # one run's records; archived when a new run starts in the same state dir
    "watchdog.json",
    "watchdog.log",
    RUNNER_EXIT_FILE,
    PROVIDER_STOP_FLAG,
    "runner.pid",
    "runner.log",
    "monitor.pid",
    "STOPPED",
    "manifest.json",
    "status.json",
)


def state_dir_for(config_url: str, state_dir: Path | None) -> Path:
    """The state dir both processes use: --state-dir, else ./state/<job id> (or ./state/unknown)."""
    if state_dir is not None:
        return state_dir
    from batch.runner import load_config

    try:
        job_id = load_config(config_url).job_id or "unknown"
    except BatchError:
        job_id = "unknown"  # the runner reports the problem; the watchdog still runs
    return Path("state") / job_id


def archive_previous_run(state_dir: Path) -> None:
    """A new run starts clean; the last run's records move to previous/<time>/."""
    found = [state_dir / n for n in PER_RUN_FILES if (state_dir / n).exists()]
    if not found:
        return
    dest = state_dir / "previous" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest.mkdir(parents=True, exist_ok=True)
    for path in found:
        path.replace(dest / path.name)


class Supervisor:
    def __init__(
        self,
        config_url: str,
        state_dir: Path,
        *,
        dry_run: bool,
        quiet: bool,
        shard: Shard | None = None,
        workers: int | None = None,
    ) -> None:
        self.config_url = config_url
        self.shard_args = ["--shard", f"{shard.index}/{shard.count}"] if shard else []
        self.workers_args = ["--workers", str(workers)] if workers else []
        self.state_dir = state_dir
        self.dry_run = dry_run
        self.quiet = quiet
        self.runner: subprocess.Popen[bytes] | None = None

    def _monitor(self) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, str(MONITOR), "--config", self.config_url, "--state-dir", str(self.state_dir)]
        cmd += ["--runner-pid-file", str(self.state_dir / "runner.pid")]
        if self.dry_run:
            cmd.append("--dry-run")
        cmd += self.shard_args
        # its own session: a signal to the job's process group does not reach it
        monitor = subprocess.Popen(cmd, start_new_session=True)
        (self.state_dir / "monitor.pid").write_text(f"{monitor.pid}\n")
        return monitor

    def _runner(self) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, str(ENTRYPOINT), "--worker", "--config", self.config_url]
        cmd += ["--state-dir", str(self.state_dir)]
        if self.dry_run:
            cmd.append("--dry-run")
        if self.quiet:
            cmd.append("--quiet")
        cmd += self.shard_args + self.workers_args
        return subprocess.Popen(cmd, stderr=subprocess.PIPE)

    def _tee(self, stream: object, log_path: Path) -> threading.Thread:
        def pump() -> None:
            with log_path.open("ab") as out:
                for line in iter(stream.readline, b""):  # type: ignore[attr-defined]
                    sys.stderr.buffer.write(line)
                    sys.stderr.flush()
                    out.write(line)
                    out.flush()

        thread = threading.Thread(target=pump, name="runner-log", daemon=True)
        thread.start()
        return thread

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        (self.state_dir / PROVIDER_STOP_FLAG).write_text(signal.Signals(signum).name + "\n")
        if self.runner and self.runner.poll() is None:
            self.runner.send_signal(signum)

    def run(self) -> int:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        archive_previous_run(self.state_dir)
        keeper = threading.Thread(target=self._keep_monitor, args=(self._monitor(),), daemon=True)
        keeper.start()  # the watchdog runs before any work
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        self.runner = self._runner()
        (self.state_dir / "runner.pid").write_text(f"{self.runner.pid}\n")
        tee = self._tee(self.runner.stderr, self.state_dir / "runner.log")
        code = self.runner.wait()
        tee.join(timeout=5)
        record = {
            "code": code if code >= 0 else None,
            "signal": signal.Signals(-code).name if code < 0 else None,
        }
        (self.state_dir / RUNNER_EXIT_FILE).write_text(json.dumps(record) + "\n")
        keeper.join()  # the watchdog verifies the upload and shuts down; then this process may end
        return code if 0 <= code <= EXIT_INTERNAL else EXIT_INTERNAL

    def _keep_monitor(self, monitor: subprocess.Popen[bytes]) -> None:
        """Wait for the watchdog; one that ended before handling the shutdown starts again.

        It carries on from its state file, so it never shuts down twice.
        """
        for attempt in range(MONITOR_RESTARTS + 1):
            status = monitor.wait()
            if self._shutdown_handled() or attempt == MONITOR_RESTARTS:
                return
            log.warning("the watchdog ended (status %d) before the shutdown; starting it again", status)
            monitor = self._monitor()

    def _shutdown_handled(self) -> bool:
        try:
            return bool(json.loads((self.state_dir / "watchdog.json").read_text()).get("shutdown"))
        except (OSError, ValueError):
            return False


def supervise(
    config_url: str,
    state_dir: Path | None,
    *,
    dry_run: bool,
    quiet: bool,
    shard: Shard | None = None,
    workers: int | None = None,
) -> int:
    resolved = state_dir_for(config_url, state_dir)
    return Supervisor(config_url, resolved, dry_run=dry_run, quiet=quiet, shard=shard, workers=workers).run()
