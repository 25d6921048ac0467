"""The names the programs share, and the builders of their paths.

Every file in the state dir (supervisor, watchdog, runner) and every object at
the output prefix that another program reads (the watchdog, ``scripts/status.py``,
a rerun, a sibling shard) is named here once; code builds the path with
:func:`state_file` or the ``*_url`` helpers instead of spelling the name.
``docs/manifest.md`` and ``docs/watchdog.md`` describe these names to users;
``tests/unit/test_contracts.py`` keeps the two in step.

Imports nothing but the standard library: PID 1 and the last-resort shutdown
read these names and must not pull in storage, media or torch.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path

# in a module of their own: the entrypoint reads the shard before its imports (batch.head_start)
from batch.shard_env import RUN_ID_ENVS as RUN_ID_ENVS
from batch.shard_env import run_id_from_env as run_id_from_env
from batch.shard_env import shard_spec_from_env as shard_spec_from_env

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
RUN_LOCK = "run.lock"  # held (flock) by PID 1 for its run: one run at a time in a state dir
STOPPED_SENTINEL = "STOPPED"  # a dry run's shutdown line
STOPPING_LINE = "STOPPING INSTANCE"  # how the one shutdown line starts (logged, and in STOPPED)
KEPT_OUTPUTS = "outputs"  # local copies of uploads until the watchdog verified them
PREVIOUS_RUNS = "previous"  # in the state dir: previous/<time>/, an earlier run's PER_RUN_FILES
PREVIOUS_OUTPUTS = "previous"  # in the bucket: <output>/previous/<run start>/<key>, what a rerun replaced
MANIFEST_ARCHIVE = "manifests"  # in the bucket: manifests/<name stem>.<its finished_at>.json
OUTPUT_RECORD = "output.json"  # in the bucket: <output>/<stem>/output.json, a done input (a rerun reuses it)
PARTS = "parts"  # in the bucket: <output>/<stem>/parts/, an input's encoded chunks (and locally in work/)
INPUT_SNAPSHOT_PREFIX = "inputs."  # in the bucket: inputs.<run id>.<8 hex>.json, a sharded run's inputs
REPORT_PAGE = "report.html"  # in the bucket: <output>/report.html, the job's page (images inlined)
REPORT_DATA = "report-data.json"  # in the bucket: the page's images and the watchdog's verdict (per manifest)

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
# bars | lines | auto: how progress is shown (batch.console); PID 1 sets it for its children
PROGRESS_ENV = "BATCH_PROGRESS"
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


# --- path builders -------------------------------------------------------------------------------


def join_url(prefix: str, *parts: str) -> str:
    """Join path parts onto a URL or path with exactly one ``/`` between them.

    ``join_url("s3://b/out/", "x", "y.mp4") == "s3://b/out/x/y.mp4"``; a
    trailing slash on the last part is kept (so the result is a prefix).
    (Also :func:`batch.storage.join_url`; it lives here so that the names need no storage import.)
    """
    out = prefix
    for part in parts:
        if not part:
            continue
        if not out:
            out = part
        elif out.endswith("/"):
            out = out + part.lstrip("/")
        else:
            out = out + "/" + part.lstrip("/")
    return out


def state_file(state_dir: Path, name: str) -> Path:
    """``<state dir>/<name>``, ``name`` one of the names above (or a shard's :func:`shard_manifest_name`)."""
    return state_dir / name


def shard_manifest_name(index: int, count: int) -> str:
    """Shard ``index`` of ``count``'s manifest: ``manifest.shard-I-of-N.json``."""
    return f"{MANIFEST.removesuffix('.json')}.shard-{index}-of-{count}.json"


def shard_status_name(index: int, count: int) -> str:
    """Shard ``index`` of ``count``'s heartbeat: ``status.shard-I-of-N.json``."""
    return f"{STATUS.removesuffix('.json')}.shard-{index}-of-{count}.json"


def report_data_name(manifest_name: str = MANIFEST) -> str:
    """The report sidecar beside a manifest: ``report-data.json``, ``report-data.shard-I-of-N.json``."""
    tail = manifest_name.removeprefix(MANIFEST.removesuffix(".json"))
    return REPORT_DATA.removesuffix(".json") + tail


def manifest_url(prefix: str, name: str = MANIFEST) -> str:
    """``<output>/manifest.json`` (or a shard's manifest, by name)."""
    return join_url(prefix, name)


def status_url(prefix: str, name: str = STATUS) -> str:
    """``<output>/status.json`` (or a shard's heartbeat, by name)."""
    return join_url(prefix, name)


def manifest_archive_url(prefix: str, name: str, stamp: str) -> str:
    """``<output>/manifests/<name stem>.<stamp>.json``: where an earlier manifest of that name is kept."""
    return join_url(prefix, MANIFEST_ARCHIVE, f"{name.removesuffix('.json')}.{stamp}.json")


def previous_output_url(prefix: str, stamp: str, key: str) -> str:
    """``<output>/previous/<run start>/<key>``: where a rerun keeps the output it replaces."""
    return join_url(prefix, PREVIOUS_OUTPUTS, stamp, key)


def output_record_key(stem: str) -> str:
    """``<stem>/output.json``, relative to the output prefix: the record of a finished input."""
    return f"{stem}/{OUTPUT_RECORD}"


def parts_url(prefix: str, stem: str) -> str:
    """``<output>/<stem>/parts/``: the prefix an input's encoded chunks go under."""
    return join_url(prefix, stem, PARTS) + "/"


def input_snapshot_name(run_id: str | None, job_id: str = "", config_inputs: list[str] | None = None) -> str:
    """``inputs.<run id>.<8 hex of the job and its configured inputs>.json``.

    The job part keeps another job, or this job with other inputs, from taking a stale list.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", run_id or "")[:100] or "unnamed"
    what = json.dumps([job_id, config_inputs or []]).encode()
    return f"{INPUT_SNAPSHOT_PREFIX}{safe}.{hashlib.sha256(what).hexdigest()[:8]}.json"
