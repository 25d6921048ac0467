"""Settings a caller may pass to ``open_url``; everything else comes from env.

Only non-secret values live here. Credentials are read from the environment by
each backend (``AWS_*``, ``B2_*``) and never stored in a settings object.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class StorageSettings:
    """Where the S3 endpoint is and how large uploads are split.

    ``endpoint_url`` and ``region`` override ``AWS_ENDPOINT_URL`` and
    ``AWS_REGION``/``AWS_DEFAULT_REGION``. Files of ``multipart_threshold``
    bytes or more go up in parts of ``multipart_chunksize`` bytes (S3 needs
    parts of at least 5 MiB except the last one).
    """

    endpoint_url: str | None = None
    region: str | None = None
    multipart_threshold: int = 64 * MIB
    multipart_chunksize: int = 16 * MIB
