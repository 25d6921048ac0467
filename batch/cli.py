"""Command line of the runner: parse, call, print. Nothing else lives here."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from batch.console import log_to_stderr
from batch.errors import EXIT_CONFIG, EXIT_INTERNAL, EXIT_OK, BatchError
from batch.head_start import is_pid1

if TYPE_CHECKING:
    from batch.watchdog.launch import EarlyRunner


class UsageError(Exception):
    """argparse's complaint, raised instead of exiting so PID 1 can still shut the instance down."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="run_with_config_batch_sync.py",
        description="Run a video job: pull inputs, run the stages, upload results and a manifest. "
        "The watchdog (monitor.py) starts first and stops the instance when the job is over.",
    )
    p.add_argument("--config", help="config URL or path (default: $CONFIG_URL)")
    p.add_argument("--dry-run", action="store_true", help="never call a cloud control plane")
    p.add_argument("--validate", action="store_true", help="check the config, print it resolved, exit 0/2")
    p.add_argument(
        "--state-dir", type=Path, help="local state: logs, heartbeat, watchdog (default ./state/<job id>)"
    )
    p.add_argument(
        "--no-watchdog", action="store_true", help="run the job in this process only; nothing is shut down"
    )
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="this instance's share of the inputs, 0 <= I < N (or SHARD_INDEX/SHARD_COUNT)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="chunks processed at once (default: one per visible GPU, else 1)",
    )
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # started by the supervisor
    # started by the supervisor before it knows the state dir: one line on stdin names it
    p.add_argument("--state-dir-on-stdin", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--print-job-id", action="store_true", help=argparse.SUPPRESS)  # the supervisor's child
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    return p


def setup_logging(quiet: bool) -> None:
    log_to_stderr(sys.stderr, logging.WARNING if quiet else logging.INFO)


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    pid1 = is_pid1(raw)
    # PID 1's runner, started by the entrypoint before these imports (batch.head_start): the
    # supervisor adopts it; any other way out of here dismisses it (it has done nothing)
    early = None
    if pid1 and argv is None:
        from batch.watchdog.launch import take_early_runner  # loaded by the entrypoint already

        early = take_early_runner()
    try:
        return _main(raw, argv, pid1=pid1, early=early)
    finally:
        if early is not None:
            early.dismiss()


def _main(raw: list[str], argv: list[str] | None, *, pid1: bool, early: EarlyRunner | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        parser.print_usage(sys.stderr)
        setup_logging(quiet=False)
        where = _raw_state_dir(raw)
        return _refused(f"{e} (fix: see --help)", pid1=pid1, state_dir=where, dry_run="--dry-run" in raw)
    setup_logging(args.quiet)
    config_url = args.config or os.environ.get("CONFIG_URL")
    state_dir = args.state_dir or (Path(os.environ["STATE_DIR"]) if os.environ.get("STATE_DIR") else None)
    if not config_url:
        why = "no config given (fix: pass --config URL or set CONFIG_URL)"
        return _refused(why, pid1=pid1, state_dir=state_dir, dry_run=args.dry_run)
    if pid1:
        # PID 1: starts the watchdog and the runner; it parses no config and imports nothing heavy
        from batch.watchdog.supervisor import supervise

        shard = args.shard if args.shard is not None else _shard_from_env()  # --shard '' is refused
        if shard is not None and not _valid_shard(shard):
            why = f"--shard {shard!r} is not I/N with 0 <= I < N (fix: e.g. --shard 0/4)"
            return _refused(why, pid1=pid1, state_dir=state_dir, dry_run=args.dry_run)
        if shard is not None and not _run_id():
            why = (
                "a sharded run needs a run id shared by its shards (fix: set BATCH_RUN_ID to one value "
                "for every shard of this run, e.g. BATCH_RUN_ID=$(date -u +%Y%m%dT%H%M%S))"
            )
            return _refused(why, pid1=pid1, state_dir=state_dir, dry_run=args.dry_run)
        return supervise(
            config_url,
            state_dir,
            dry_run=args.dry_run,
            quiet=args.quiet,
            shard=shard,
            workers=args.workers,
            early=early,
        )

    if args.print_job_id:  # the supervisor's child that names the default state dir
        return _print_job_id(config_url)
    from batch.process_exit import long_lived_imports

    # the first local input's ffprobe started before these imports (batch.head_start)
    with long_lived_imports():  # the config model and the runner: loaded once, kept to the end
        from batch.config import resolved
        from batch.config_source import load_config
        from batch.errors import ConfigError
        from batch.job.runner import RunOptions, refuse_run, run_job
        from batch.job.shards import Shard

    if args.state_dir_on_stdin:
        # the supervisor names state/<job id> while this process imports; no line: it gave up
        named = sys.stdin.readline().strip()
        if not named:
            print("error: the supervisor named no state dir; nothing was done", file=sys.stderr)
            return EXIT_INTERNAL
        state_dir = Path(named)
    # the shard is refused with a failure manifest in the state dir, as a bad config is (only there:
    # a manifest under the output could stand in for one an earlier run's shards made)
    try:
        shard_spec = Shard.parse(args.shard) if args.shard is not None else Shard.from_env()
    except BatchError as e:
        if args.validate:
            print(f"error: {e}", file=sys.stderr)
            return e.exit_code
        return refuse_run(e, config_url, RunOptions(dry_run=args.dry_run, state_dir=state_dir))
    if shard_spec is not None and not _run_id() and not args.validate:
        missing = ConfigError(
            "a sharded run needs BATCH_RUN_ID",
            hint="set BATCH_RUN_ID to one value for every shard of the run",
        )
        refusal = RunOptions(dry_run=args.dry_run, state_dir=state_dir, shard=shard_spec)
        return refuse_run(missing, config_url, refusal)

    if args.validate:
        try:
            cfg = load_config(config_url)
        except BatchError as e:
            print(f"error: {e}", file=sys.stderr)
            return e.exit_code
        print(json.dumps(resolved(cfg), indent=2))
        return EXIT_OK
    options = RunOptions(
        dry_run=args.dry_run,
        state_dir=state_dir,
        keep_outputs=args.worker,
        shard=shard_spec,
        workers=args.workers,  # None: one per visible GPU, counted when an input is cut into chunks
    )
    return run_job(config_url, options)


def _print_job_id(config_url: str) -> int:
    """The job id the runner will use, read without the config model (PID 1 waits for it)."""
    from batch.config_loader import load_config_text
    from batch.config_source import read_config_text
    from batch.job_id import job_id_of

    try:
        job_id = job_id_of(load_config_text(read_config_text(config_url)))
    except Exception:  # the runner reports what is wrong with the config, with its fix
        return EXIT_CONFIG
    if job_id is None:
        return EXIT_CONFIG
    print(job_id)
    return EXIT_OK


_SHARD = re.compile(r"^\s*\d+\s*/\s*\d+\s*$")


def _shard_from_env() -> str | None:
    """SHARD_INDEX/SHARD_COUNT (or SkyPilot's job rank) as "I/N"; checked like --shard."""
    from batch.contracts import shard_spec_from_env

    return shard_spec_from_env()


def _raw_state_dir(raw: list[str]) -> Path | None:
    """--state-dir (or $STATE_DIR) read from arguments argparse refused."""
    for i, arg in enumerate(raw):
        if arg == "--state-dir" and i + 1 < len(raw):
            return Path(raw[i + 1])
        if arg.startswith("--state-dir="):
            return Path(arg.split("=", 1)[1])
    return Path(os.environ["STATE_DIR"]) if os.environ.get("STATE_DIR") else None


def _run_id() -> str | None:
    from batch.contracts import run_id_from_env

    return run_id_from_env()


def _valid_shard(spec: str) -> bool:
    m = _SHARD.match(spec)
    return bool(m) and int(spec.split("/")[0]) < int(spec.split("/")[1])


def _refused(why: str, *, pid1: bool, state_dir: Path | None, dry_run: bool) -> int:
    """Say why once; as PID 1 also leave a failure manifest and shut the instance down (exit 2).

    A container whose entrypoint exits on bad arguments would be restarted and keep billing.
    """
    print(f"error: {why}", file=sys.stderr)
    if not pid1:
        return EXIT_CONFIG
    where = state_dir or Path("state") / "unknown"
    try:
        from batch.errors import ConfigError
        from batch.job.manifest import Manifest, write_local

        manifest = Manifest(job_id="unknown", config=None, dry_run=dry_run, job_errors=[ConfigError(why)])
        write_local(manifest.to_json(), where)
    except Exception as e:  # the shutdown below needs none of this
        print(f"error: no failure manifest in {where}: {e}", file=sys.stderr)
    from batch.watchdog.shutdown import last_resort

    last_resort(where, dry_run=dry_run, reason="config_invalid", detail=why)
    return EXIT_CONFIG
