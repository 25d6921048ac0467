"""The environment for a child process of the runner, pointed at the test's S3 server."""

from __future__ import annotations

import os


def s3_child_env(server, **overrides: str) -> dict[str, str]:
    """This process's environment without any cloud settings, plus the SeaweedFS ones.

    Retries are short so failure paths stay fast; ``overrides`` win.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "CONFIG_URL", "CONTAINER_", "RUNPOD_", "VAST_"))
    }
    env.update(
        AWS_ENDPOINT_URL=server.endpoint_url,
        AWS_ACCESS_KEY_ID=server.access_key,
        AWS_SECRET_ACCESS_KEY=server.secret_key,
        AWS_REGION=server.region,
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        STORAGE_RETRY_ATTEMPTS="2",
        STORAGE_RETRY_MAX_WAIT_S="0",
        CONTROL_PLANE_RETRY_MAX_WAIT_S="0.1",
    )
    env.update(overrides)
    return env
