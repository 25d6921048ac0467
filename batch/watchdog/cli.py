"""Command line of the watchdog (``monitor.py``): parse, build settings, run.

Started by the entrypoint with ``--runner-pid-file``; also runs on its own
for a job started elsewhere: ``monitor.py --manifest-url s3://b/out/manifest.json``
waits for that manifest, verifies it and shuts the instance down.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batch import faults
from batch.console import log_to_stderr
from batch.contracts import LAUNCH_ID_ENV, MANIFEST, WATCHDOG_LOG, env_seconds, state_file
from batch.errors import BatchError
from batch.providers.registry import PROVIDERS
from batch.watchdog import shutdown
from batch.watchdog.life_sign import BEAT_FD_ARG
from batch.watchdog.supervisor_news import SupervisorNews

if TYPE_CHECKING:  # deferred at run time: a broken config or module must not stop the watchdog
    from batch.config import JobConfig
    from batch.watchdog.watch import WatchdogSettings

log = logging.getLogger("batch.watchdog.watch")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="monitor.py",
        description="Watchdog: verify the upload from the bucket, then stop or destroy the instance.",
    )
    p.add_argument("--config", help="the job's config URL (default: $CONFIG_URL)")
    p.add_argument("--manifest-url", help="watch this manifest (a job started elsewhere)")
    p.add_argument(
        "--launch-id",
        help="take only a manifest with this launch_id (default: $BATCH_LAUNCH_ID; with --manifest-url and "
        "no run id, a manifest already there at start counts as an earlier run's)",
    )
    p.add_argument("--state-dir", type=Path, help="watchdog state (default ./state/<job id>)")
    p.add_argument("--runner-pid", type=int, help="the runner's process id")
    p.add_argument("--runner-pid-file", type=Path, help=argparse.SUPPRESS)
    p.add_argument(BEAT_FD_ARG, type=int, help=argparse.SUPPRESS)  # PID 1's pipe for its sign of life
    p.add_argument("--confirm", type=int, help="checks of every object before shutdown (default 3)")
    p.add_argument("--interval", type=float, help="seconds between checks (default 5)")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between looks at the runner")
    p.add_argument("--grace", type=float, default=20.0, help="seconds from SIGTERM to SIGKILL")
    p.add_argument("--upload-timeout", type=float, help="seconds to keep trying a failure manifest")
    p.add_argument(
        "--shutdown-budget", type=float, help="seconds to keep asking the provider to stop (default 900)"
    )
    p.add_argument(
        "--max-runtime",
        type=float,
        help="seconds to wait for the job before stopping (default: limits.max_runtime_s)",
    )
    # no argparse choices: a bad name must not stop the watchdog; provider_for() says so and falls back
    p.add_argument("--provider", help=f"override instance.provider ({', '.join(PROVIDERS)})")
    p.add_argument(
        "--dry-run", action="store_true", help="never call a control plane (writes <state>/STOPPED)"
    )
    p.add_argument("--shard", metavar="I/N", help="the shard this instance ran: watch its shard manifest")
    return p


CONFIG_READ_S = 120.0  # a store that fails once must not leave the watchdog blind


def _load(config_url: str | None) -> tuple[JobConfig | None, str | None]:
    """The job's config (read again for a while if the store does not answer), or why not.

    A config that is invalid gives (None, why) at once (the runner fails on it too).
    """
    if not config_url:
        return None, None
    from batch.config_source import load_config
    from batch.errors import StorageError
    from batch.retry import RetryPolicy, log_before_sleep, retrying

    loop = retrying(
        RetryPolicy(attempts=None, base_wait_s=3.0, max_wait_s=3.0, jitter=False),  # every 3 s
        retry_on=lambda e: isinstance(e, StorageError),
        deadline=time.monotonic() + CONFIG_READ_S,
        before_sleep=log_before_sleep(log, "reading the config"),
    )
    try:
        for attempt in loop:
            with attempt:
                return load_config(config_url), None
    except StorageError as e:
        log.error("the config could not be read (%s); watching the runner only", e.message)
        return None, f"the config could not be read: {e.message}"
    except BatchError as e:
        log.error("the config is not usable (%s); watching the runner only", e.message)
        return None, f"the config is not usable: {e.message}"
    raise AssertionError("unreachable: tenacity stopped without an outcome")


_NEWS: SupervisorNews | None = None


def _news(args: argparse.Namespace) -> SupervisorNews | None:
    """Under PID 1 (--runner-pid-file), its word on the runner arrives on stdin."""
    global _NEWS
    if _NEWS is None and args.runner_pid_file is not None:
        _NEWS = SupervisorNews(sys.stdin)
    return _NEWS


def _runner_pid(args: argparse.Namespace) -> int | None:
    """The runner's pid; None for a job run elsewhere; -1 when PID 1 has not said it yet.

    -1 is not "gone": the watchdog keeps watching while PID 1 lives (see SupervisorNews).
    """
    if args.runner_pid is not None:
        return int(args.runner_pid)
    if args.runner_pid_file is None:
        return None
    news = _news(args)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the entrypoint says it right after starting the runner
        if news is not None and (news.pid is not None or news.exit is not None):
            return news.pid or -1
        try:
            return int(args.runner_pid_file.read_text().strip())
        except (OSError, ValueError):
            time.sleep(0.1)
    return -1


def _provider(name: str, *, dry_run: bool, state_dir: Path, command: str | None) -> Any:
    """The provider asked for; if that cannot be built, the one the environment says; never raises."""
    from batch.providers.local import LocalProvider
    from batch.providers.registry import provider_for

    for attempt in (name, "auto"):
        try:
            return provider_for(attempt, dry_run=dry_run, state_dir=state_dir, command=command)
        except Exception as e:
            said = " ".join(str(e).split())  # one log line: an error's "(fix: ...)" may sit on its own line
            log.error("cannot set up provider %r (%s); falling back", attempt, said)
    return LocalProvider(state_dir)


def settings_from(args: argparse.Namespace) -> WatchdogSettings:
    """The watchdog's settings; a fault here gives fallback settings that still shut down."""
    try:
        faults.bug("settings")
        return _settings(args)
    except Exception as e:
        log.exception("the watchdog's settings could not be made")
        return _fallback(args, f"the watchdog's settings could not be made: {type(e).__name__}: {e}")


def _env_float(name: str) -> float | None:
    return env_seconds(name, 0.0) or None


def _launch_id(args: argparse.Namespace) -> str | None:
    return args.launch_id or os.environ.get(LAUNCH_ID_ENV) or None


def _settings(args: argparse.Namespace) -> WatchdogSettings:
    from batch.config import resolved
    from batch.job.shards import Shard
    from batch.storage import StorageSettings
    from batch.watchdog.watch import WatchdogSettings

    cfg, why = _load(args.config or os.environ.get("CONFIG_URL"))
    output = cfg.output if cfg else None
    shard = Shard.parse(args.shard) if args.shard else None
    manifest_name = shard.manifest_name if shard else MANIFEST
    if args.manifest_url:
        output, manifest_name = args.manifest_url.rsplit("/", 1)
        output += "/"
    job_id = cfg.job_id if cfg and cfg.job_id else "unknown"
    state_dir = args.state_dir or Path("state") / job_id
    instance = cfg.instance if cfg else None
    name = args.provider or (instance.provider if instance else "auto")
    provider = _provider(
        name, dry_run=args.dry_run, state_dir=state_dir, command=instance.command if instance else None
    )
    wd = cfg.watchdog if cfg else None
    budget = (
        args.shutdown_budget
        or _env_float(shutdown.BUDGET_ENV)
        or getattr(wd, "shutdown_budget_s", None)
        or shutdown.DEFAULT_BUDGET_S
    )
    return WatchdogSettings(
        state_dir=state_dir,
        provider=provider,
        output=output,
        manifest_name=manifest_name,
        job_id=job_id,
        launch_id=_launch_id(args),
        config=resolved(cfg) if cfg else None,
        storage=StorageSettings(endpoint_url=cfg.storage.endpoint_url, region=cfg.storage.region)
        if cfg
        else StorageSettings(),
        on_success=instance.on_success if instance else "destroy",
        on_failure=instance.on_failure if instance else "stop",
        dry_run=args.dry_run,
        confirm=args.confirm or (wd.confirm if wd else 3),
        interval_s=args.interval if args.interval is not None else (wd.interval_s if wd else 5.0),
        upload_timeout_s=args.upload_timeout or (wd.upload_timeout_s if wd else 120.0),
        shutdown_budget_s=budget,
        stall_s=cfg.limits.stall_s if cfg else 900.0,
        max_runtime_s=args.max_runtime or (cfg.limits.max_runtime_s if cfg else 21600.0),
        poll_s=args.poll,
        grace_s=args.grace,
        runner_pid=_runner_pid(args),
        news=_news(args),
        beat_fd=args.beat_fd,
        shard=shard.to_dict() if shard else None,
        settings_error=why,
    )


def _fallback(args: argparse.Namespace, why: str) -> WatchdogSettings:
    """Settings that need no config: watch the runner, then stop the instance the environment names."""
    from batch.watchdog.watch import WatchdogSettings

    state_dir = args.state_dir or Path("state") / "unknown"
    return WatchdogSettings(
        state_dir=state_dir,
        provider=_provider(args.provider or "auto", dry_run=args.dry_run, state_dir=state_dir, command=None),
        output=None,
        launch_id=_launch_id(args),
        on_success="stop",
        on_failure="stop",
        dry_run=args.dry_run,
        shutdown_budget_s=args.shutdown_budget or shutdown.DEFAULT_BUDGET_S,
        poll_s=args.poll,
        grace_s=args.grace,
        runner_pid=_runner_pid(args),
        news=_news(args),
        beat_fd=args.beat_fd,
        settings_error=why,
    )


def main(argv: list[str] | None = None) -> int:
    faults.apply_watchdog_env()
    args = build_parser().parse_args(argv)
    log_to_stderr(sys.stderr, logging.INFO, "watchdog: ")
    if not (args.config or os.environ.get("CONFIG_URL") or args.manifest_url or args.runner_pid_file):
        print("error: give --config URL, CONFIG_URL or --manifest-url", file=sys.stderr)
        return 2
    faults.bug("start")
    settings = settings_from(args)
    try:  # the log file is a comfort, not a need: a full or read-only disk must not stop us
        faults.state_write()
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(state_file(settings.state_dir, WATCHDOG_LOG))
        handler.setFormatter(logging.getLogger().handlers[0].formatter)
        logging.getLogger().addHandler(handler)
    except Exception as e:
        log.warning("no %s in %s (%s); logging to stderr only", WATCHDOG_LOG, settings.state_dir, e)
    from batch.watchdog.watch import Watchdog

    return Watchdog(settings).run()
