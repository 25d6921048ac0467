"""The names the three programs (supervisor, watchdog, runner) share in the state dir.

Imports nothing from the project: PID 1 and the last-resort shutdown read
these names and must not pull in storage, media or torch.
"""

from __future__ import annotations

import math
import os
import re

MANIFEST = "manifest.json"  # the runner's local copy (and the bucket object's name)
UNPUBLISHED_MANIFEST = "manifest.unpublished.json"  # the runner could not publish it: the watchdog will
STATUS = "status.json"  # the heartbeat
RUNNER_LOG = "runner.log"
RUNNER_PID = "runner.pid"
RUNNER_EXIT = "runner.exit"  # {"code": int | None, "signal": str | None}, written by the supervisor
MONITOR_PID = "monitor.pid"
WATCHDOG_STATE = "watchdog.json"
WATCHDOG_LOG = "watchdog.log"
PROVIDER_STOP_FLAG = "provider_stop"  # the supervisor got SIGTERM: the provider is stopping us
STOPPED_SENTINEL = "STOPPED"  # a dry run's shutdown line
KEPT_OUTPUTS = "outputs"  # local copies of uploads until the watchdog verified them
PREVIOUS_OUTPUTS = "previous"  # in the bucket: <output>/previous/<run start>/<key>, what a rerun replaced

# One run's records; archived to previous/<time>/ when a new run starts in the same state dir.
PER_RUN_FILES = (
    WATCHDOG_STATE,
    WATCHDOG_LOG,
    RUNNER_EXIT,
    PROVIDER_STOP_FLAG,
    RUNNER_PID,
    RUNNER_LOG,
    MONITOR_PID,
    STOPPED_SENTINEL,
    MANIFEST,
    UNPUBLISHED_MANIFEST,
    STATUS,
)

# Shutdown states in watchdog.json. "decided" and "requested" are unfinished: a
# restarted watchdog (or PID 1's last resort) carries them on; the rest are final.
SHUTDOWN_FINAL = frozenset({"confirmed", "kept", "unsupported", "gave_up", "provider_stopping"})

# One id per container start, set by the supervisor for the runner and the watchdog: only a
# manifest that carries it is this run's. (BATCH_RUN_ID is the user's, naming a group of shards.)
LAUNCH_ID_ENV = "BATCH_LAUNCH_ID"
JOB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


# What PID 1 tells a watchdog on its stdin, one line each: no disk needed, so a full or
# unwritable state dir cannot hide the runner from the watchdog.
NEWS_RUNNER_PID = "runner_pid"  # runner_pid <int>
NEWS_RUNNER_EXIT = "runner_exit"  # runner_exit {"code": int | None, "signal": str | None}


def env_seconds(name: str, default: float) -> float:
    """A positive, finite number of seconds from the environment; ``default`` when unset or not one.

    An operator's typo must never stop the shutdown: it is ignored (with a line on stderr).
    """
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        print(f"warning: {name}={raw!r} is not a positive number of seconds; using {default:g}", flush=True)
        return default
    return value


RUN_ID_ENVS = ("BATCH_RUN_ID", "SKYPILOT_TASK_ID")  # what ties the shards of one run together


def shard_spec_from_env(env: dict[str, str] | None = None) -> str | None:
    """``"I/N"`` from SHARD_INDEX/SHARD_COUNT, else SkyPilot's SKYPILOT_JOB_RANK/SKYPILOT_NUM_JOBS.

    A pair with one half set gives a spec with that half empty, which the parser refuses:
    half a shard setting is a mistake to report, not a reason to run every input.
    """
    env = dict(os.environ) if env is None else env
    for i_name, n_name in (("SHARD_INDEX", "SHARD_COUNT"), ("SKYPILOT_JOB_RANK", "SKYPILOT_NUM_JOBS")):
        index, count = (env.get(i_name) or "").strip(), (env.get(n_name) or "").strip()
        if index or count:
            return f"{index}/{count}"
    return None


def run_id_from_env(env: dict[str, str] | None = None) -> str | None:
    env = dict(os.environ) if env is None else env
    return next((env[k] for k in RUN_ID_ENVS if env.get(k)), None)
