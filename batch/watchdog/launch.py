"""How PID 1 starts the runner, and the runner it starts before its own imports.

PID 1's children (the runner, the watchdog) get one environment: the config URL (by environment,
never argv: a presigned URL's signature would show in ``ps``), the launch id, the progress mode of
PID 1's terminal. :func:`start_early_runner` starts the runner PID 1 would start, from the raw
arguments, before PID 1 imports anything else (batch.head_start): its imports and its first ffprobe
then overlap PID 1's imports, the child that reads the job id and the watchdog's start.

It is only a head start. The runner waits for its state dir on its stdin before doing any work,
and PID 1 writes that line after the watchdog has started. PID 1 adopts it only if it is exactly
what PID 1 would have started from its parsed arguments (the same command, the same environment);
otherwise it dismisses it (stdin closed: the runner exits having done nothing) and starts its own.
Standard library and batch.console/contracts only: PID 1 loads this before anything else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from batch import console
from batch.contracts import LAUNCH_ID_ENV, PROGRESS_ENV, shard_spec_from_env

ROOT = Path(__file__).resolve().parents[2]  # batch/watchdog/launch.py -> the repository root
ENTRYPOINT = ROOT / "run_with_config_batch_sync.py"
DISMISS_WAIT_S = 30.0  # a dismissed runner ends once its imports are done; then it is killed


def new_launch_id() -> str:
    return os.urandom(16).hex()  # uuid4().hex without uuid's imports


# paths that name one of the reading process's own descriptors: each child of PID 1 has other ones
# (the runner's stdin is PID 1's pipe), so such a config is read once, by PID 1, even when the
# descriptor is a regular file (``--config /dev/stdin < job.yaml``: the watchdog waited on its stdin
# for WATCHDOG_FINISH_S with the instance up; an outside review found it)
_PER_PROCESS = ("/dev/stdin", "/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/")


def is_stream(config_url: str) -> bool:
    """A config PID 1 must read once for its children: a pipe or a terminal (``<(...)``), or a path
    naming a descriptor of the reader's own (``/dev/stdin``, ``/dev/fd/N``)."""
    if "://" in config_url and not config_url.startswith("file://"):
        return False
    path = config_url.removeprefix("file://")
    try:
        found = os.stat(path)
    except OSError:
        return False
    if stat.S_ISFIFO(found.st_mode) or stat.S_ISCHR(found.st_mode):
        return True
    return os.path.normpath(path).startswith(_PER_PROCESS) or _open_here(found)


def _open_here(found: os.stat_result) -> bool:
    """The file is one this process holds open (``//dev/stdin``, a link to it, ``stdin`` in /dev:
    other spellings of a descriptor path); copying such a config once is harmless in any case."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return False
    for name in names:
        try:
            held = os.fstat(int(name))
        except (OSError, ValueError):
            continue
        if (held.st_dev, held.st_ino) == (found.st_dev, found.st_ino):
            return True
    return False


def child_env(config_url: str, launch_id: str, mode: str) -> dict[str, str]:
    """The environment of PID 1's children; ``mode``: how PID 1's stderr shows progress."""
    env = {**os.environ, LAUNCH_ID_ENV: launch_id, "CONFIG_URL": config_url}
    env[PROGRESS_ENV] = mode  # their stderr is a pipe: they are told what PID 1's is
    if mode == console.BARS and not os.environ.get("COLUMNS"):
        with contextlib.suppress(OSError, ValueError):
            env["COLUMNS"] = str(os.get_terminal_size(2).columns)
    return env


def runner_command(state_dir: Path | None, *, dry_run: bool, quiet: bool, extra: list[str]) -> list[str]:
    """The runner's command; ``state_dir`` None: it imports, then reads its state dir on stdin."""
    cmd = [sys.executable, str(ENTRYPOINT), "--worker"]
    cmd += ["--state-dir-on-stdin"] if state_dir is None else ["--state-dir", str(state_dir)]
    if dry_run:
        cmd.append("--dry-run")
    if quiet:
        cmd.append("--quiet")
    return cmd + extra


def start_runner(cmd: list[str], env: dict[str, str], *, waiting: bool) -> subprocess.Popen[bytes]:
    stdin = subprocess.PIPE if waiting else None
    return subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


def dismiss(runner: subprocess.Popen[bytes]) -> None:
    """A waiting runner told nothing (end of its stdin) exits without doing any work; reaped here."""
    if runner.stdin is not None:
        with contextlib.suppress(OSError):
            runner.stdin.close()
    try:
        runner.wait(timeout=DISMISS_WAIT_S)
    except subprocess.TimeoutExpired:
        runner.kill()
        runner.wait()
    if runner.stdout is not None:
        with contextlib.suppress(OSError):
            runner.stdout.close()


class EarlyRunner:
    """A waiting runner started before PID 1 parsed its arguments, with what it was started from."""

    def __init__(self, proc: subprocess.Popen[bytes], cmd: list[str], env: dict[str, str], launch_id: str):
        self.proc, self.cmd, self.env, self.launch_id = proc, cmd, env, launch_id
        self._lock = threading.Lock()
        self._owned = False  # adopted or dismissed: the other can no longer happen

    def adopt(self, cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes] | None:
        """The process, if it was started as ``cmd`` with ``env`` and still waits; else dismissed, None."""
        with self._lock:
            if self._owned:
                return None
            self._owned = True
        if cmd == self.cmd and env == self.env and self.proc.poll() is None:
            return self.proc
        # not what PID 1 would start: it goes, in the background (it ends after its imports)
        threading.Thread(target=dismiss, args=(self.proc,), name="dismiss-early-runner", daemon=True).start()
        return None

    def dismiss(self) -> None:
        """Unless adopted: told nothing, it exits without work (waited for)."""
        with self._lock:
            if self._owned:
                return
            self._owned = True
        dismiss(self.proc)


_early: EarlyRunner | None = None


def take_early_runner() -> EarlyRunner | None:
    """The runner :func:`start_early_runner` started in this process, once."""
    global _early
    early, _early = _early, None
    return early


def early_arguments(raw: list[str], env: Mapping[str, str]) -> tuple[str, bool, bool] | None:
    """(config URL, --dry-run, --quiet) as PID 1's parser will read them from ``raw``; None when in doubt.

    Only ``--config``, ``--state-dir``, ``--dry-run`` and ``-q``/``--quiet`` written in full are
    understood; anything else (an abbreviation, ``--shard``, ``--workers``, a stray word), a
    sharded environment or no config means no head start.
    """
    config_url = env.get("CONFIG_URL")
    dry_run = quiet = False
    args = iter(raw)
    for arg in args:
        if arg in ("--config", "--state-dir"):
            value = next(args, None)
            if value is None or value.startswith("-"):
                return None
            if arg == "--config":
                config_url = value
        elif arg.startswith("--config="):
            config_url = arg.removeprefix("--config=")
        elif arg.startswith("--state-dir="):
            continue
        elif arg == "--dry-run":
            dry_run = True
        elif arg in ("-q", "--quiet"):
            quiet = True
        else:
            return None
    if not config_url or shard_spec_from_env(dict(env)) is not None:
        return None
    return config_url, dry_run, quiet


def start_early_runner(raw: list[str]) -> EarlyRunner | None:
    """Start the waiting runner PID 1 will want, from its raw arguments; None when in doubt
    (:func:`early_arguments`) or when the config is a stream (PID 1 copies it first)."""
    global _early
    found = early_arguments(raw, os.environ)
    if found is None or is_stream(found[0]):
        return None
    config_url, dry_run, quiet = found
    # what PID 1 does before it starts any child (batch.watchdog.supervisor.Supervisor.run): a closing
    # terminal or a write from the background must not stop the runner; ignored signals stay ignored
    # across exec, a handler would not
    for sig in (signal.SIGHUP, signal.SIGTTOU):
        signal.signal(sig, signal.SIG_IGN)
    launch_id = new_launch_id()
    env = child_env(config_url, launch_id, console.progress_mode(2))
    cmd = runner_command(None, dry_run=dry_run, quiet=quiet, extra=[])
    try:
        proc = start_runner(cmd, env, waiting=True)
    except OSError:  # PID 1 tries again the usual way and reports what fails
        return None
    _early = EarlyRunner(proc, cmd, env, launch_id)
    return _early
