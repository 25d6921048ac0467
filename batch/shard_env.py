"""Which shard of a run this process is, from the environment: light enough for the entrypoint's
first steps (batch.head_start), before anything else is imported."""

from __future__ import annotations

import os

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
