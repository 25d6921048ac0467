"""PID 1's head start (batch.watchdog.launch, batch.head_start) and its wait on the watchdog.

The early runner is started from the raw arguments before argparse sees them; the promise is
that it is only ever a runner PID 1 would have started itself. The fuzz test tries argument lists
nobody meant to send: whenever the early reading accepts one, PID 1's own parser must read the
same config, dry-run and quiet flags from it, with no shard and no worker count. Real processes
(the real entrypoint, ``sleep``) where a process is the point.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch import cli
from batch.errors import EXIT_CONFIG
from batch.head_start import is_pid1, option
from batch.watchdog import launch
from batch.watchdog.supervisor import wait_exit

TOKENS = [
    "--config", "--config=a.yaml", "--config=", "a.yaml", "b c.yaml", "-", "--state-dir", "--state-dir=s",
    "s", "--dry-run", "--dry", "-q", "--quiet", "--qu", "--shard", "0/2", "--workers", "2", "--conf",
    "--validate", "--worker", "-h", "--", "-x", "--dry-run=1",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    raw=st.lists(st.sampled_from(TOKENS), max_size=7),
    env_config=st.sampled_from([None, "", "env.yaml"]),
    shard_env=st.booleans(),
)
def test_what_the_early_reading_accepts_pid1s_parser_reads_the_same(
    raw: list[str], env_config: str | None, shard_env: bool
) -> None:
    env = {} if env_config is None else {"CONFIG_URL": env_config}
    if shard_env:
        env |= {"SHARD_INDEX": "0", "SHARD_COUNT": "2"}
    early = launch.early_arguments(raw, env)
    if early is None:
        return
    assert is_pid1(raw)
    try:
        args = cli.build_parser().parse_args(raw)
    except cli.UsageError as e:
        raise AssertionError(f"the early reading took {raw} that PID 1 refuses: {e}") from e
    assert early == (args.config or env.get("CONFIG_URL"), args.dry_run, args.quiet)
    assert args.shard is None and args.workers is None and not shard_env


@pytest.mark.parametrize(
    "raw",
    [
        ["--dry", "--config", "a.yaml"],  # argparse takes the abbreviation; the head start does not guess
        ["--config", "a.yaml", "--workers", "2"],
        ["--config", "a.yaml", "--shard", "0/2"],
        ["--config"],
        ["--config", "--dry-run"],
        ["--config="],
        [],
    ],
)
def test_no_head_start_when_in_doubt(raw: list[str]) -> None:
    assert launch.early_arguments(raw, {}) is None


def test_the_config_from_the_environment_and_the_last_option_win_as_in_argparse() -> None:
    assert launch.early_arguments(["--dry-run"], {"CONFIG_URL": "e.yaml"}) == ("e.yaml", True, False)
    raw = ["--config", "a.yaml", "--config=b.yaml", "-q"]
    assert launch.early_arguments(raw, {"CONFIG_URL": "e.yaml"}) == ("b.yaml", False, True)
    assert option(raw, "--config") == "b.yaml"


def test_a_config_on_a_pipe_gets_no_early_runner(tmp_path: Path) -> None:
    """PID 1 copies a stream before any child reads it; an early runner would take its bytes."""
    read, write = os.pipe()
    try:
        assert launch.is_stream(f"/dev/fd/{read}")
        assert launch.start_early_runner(["--config", f"/dev/fd/{read}"]) is None
    finally:
        os.close(read)
        os.close(write)
    assert not launch.is_stream(str(tmp_path)) and not launch.is_stream("s3://b/job.yaml")


def _waiting_runner(tmp_path: Path, *, dry_run: bool = True) -> tuple[list[str], dict[str, str]]:
    cfg = tmp_path / "job.yaml"
    cfg.write_text(f"job_id: early\ninputs: [{tmp_path / 'none.mp4'}]\noutput: {tmp_path / 'out'}/\n")
    env = launch.child_env(str(cfg), launch.new_launch_id(), "lines")
    return launch.runner_command(None, dry_run=dry_run, quiet=True, extra=[]), env


def test_an_early_runner_that_is_not_the_one_pid1_wants_is_dismissed_idle(tmp_path: Path) -> None:
    cmd, env = _waiting_runner(tmp_path)
    proc = launch.start_runner(cmd, env, waiting=True)
    early = launch.EarlyRunner(proc, cmd, env, env["BATCH_LAUNCH_ID"])
    # PID 1's arguments said no dry run: this runner must never work
    wanted = launch.runner_command(None, dry_run=False, quiet=True, extra=[])
    assert early.adopt(wanted, env) is None
    assert proc.wait(timeout=60) != 0  # told nothing: it ends without work
    assert not (tmp_path / "out").exists() and not (tmp_path / "state").exists()
    assert early.adopt(cmd, env) is None  # once dismissed, never adopted


def test_the_runner_pid1_wants_is_adopted_and_not_dismissed_after(tmp_path: Path) -> None:
    cmd, env = _waiting_runner(tmp_path)
    proc = launch.start_runner(cmd, env, waiting=True)
    early = launch.EarlyRunner(proc, cmd, env, env["BATCH_LAUNCH_ID"])
    try:
        assert early.adopt(list(cmd), dict(env)) is proc
        early.dismiss()  # cli.main's way out: a no-op for an adopted runner
        assert proc.poll() is None
        other_env = {**env, "CONFIG_URL": "other.yaml"}
        assert launch.EarlyRunner(proc, cmd, env, "x")._owned is False
        assert launch.EarlyRunner(proc, cmd, other_env, "x").adopt(cmd, env) is None  # and dismissed
        assert proc.wait(timeout=60) != 0
    finally:
        if proc.poll() is None:
            launch.dismiss(proc)


def test_pid1_refusing_its_arguments_dismisses_the_early_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A way out before the supervisor (here an impossible shard) still ends the runner, idle."""
    cmd, env = _waiting_runner(tmp_path)
    proc = launch.start_runner(cmd, env, waiting=True)
    monkeypatch.setattr(launch, "_early", launch.EarlyRunner(proc, cmd, env, env["BATCH_LAUNCH_ID"]))
    monkeypatch.setattr(sys, "argv", ["entry", "--config", env["CONFIG_URL"], "--dry-run", "--shard", "5/2"])
    monkeypatch.chdir(tmp_path)
    assert cli.main() == EXIT_CONFIG
    assert proc.poll() is not None, "the early runner outlived PID 1's refusal"
    assert not (tmp_path / "out").exists()
    manifest = json.loads((tmp_path / "state" / "unknown" / "manifest.json").read_text())
    assert "--shard" in json.dumps(manifest)


def test_wait_exit_wakes_on_the_exit_and_gives_the_status() -> None:
    proc = subprocess.Popen(["sh", "-c", "sleep 0.2; exit 3"])
    assert wait_exit(proc, 60.0) == 3
    assert wait_exit(proc, 60.0) == 3  # reaped once, asked again


def test_wait_exit_times_out_on_a_live_process() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        assert wait_exit(proc, 0.1) is None
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_wait_exit_without_pidfd_falls_back_to_popen_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pidfd(pid: int) -> int:
        raise OSError(errno.ENOSYS, "pidfd_open")

    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    proc = subprocess.Popen(["sh", "-c", "exit 7"])
    assert wait_exit(proc, 60.0) == 7
    live = subprocess.Popen(["sleep", "30"])
    try:
        assert wait_exit(live, 0.1) is None
    finally:
        live.kill()
        live.wait()


def test_wait_exit_takes_a_timeout_longer_than_one_poll_can_wait() -> None:
    """WATCHDOG_FINISH_S may be a huge number meaning "never": poll() refuses more than ~24.8 days in
    ms (OverflowError), which sent PID 1 to its last resort mid-verification (outside review)."""
    proc = subprocess.Popen(["sh", "-c", "sleep 0.2; exit 5"])
    assert wait_exit(proc, 1e7) == 5
    assert wait_exit(subprocess.Popen(["true"]), float("1e300")) == 0


def test_descriptor_paths_are_read_once_by_pid1_even_from_a_regular_file(tmp_path: Path) -> None:
    cfg = tmp_path / "job.yaml"
    cfg.write_text("job_id: x\n")
    with cfg.open() as f:
        assert launch.is_stream(f"/dev/fd/{f.fileno()}") and launch.is_stream(f"/proc/self/fd/{f.fileno()}")
    assert not launch.is_stream(str(cfg)) and not launch.is_stream(f"file://{cfg}")


def test_other_spellings_of_a_descriptor_path_are_read_once_too(tmp_path: Path) -> None:
    """``//dev/stdin``, a link to it, ``stdin`` from /dev: the text check misses them; the file
    being one this process holds open does not (second outside review)."""
    cfg = tmp_path / "job.yaml"
    cfg.write_text("job_id: x\n")
    link = tmp_path / "link"
    with cfg.open() as f:
        link.symlink_to(f"/dev/fd/{f.fileno()}")
        assert launch.is_stream(str(link)) and launch.is_stream(f"//dev/fd/{f.fileno()}")
        assert launch.is_stream(str(cfg))  # held open here: a private copy is harmless
    assert not launch.is_stream(str(cfg))
