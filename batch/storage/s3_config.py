"""S3 settings, client configuration and error mapping (botocore imported lazily).

Kept apart from :mod:`batch.storage.s3` so the rules are easy to find:
:class:`StorageSettings` (what a caller may pass to ``open_url``; secrets
never live there, they come from the environment), which endpoint and
region are used, which botocore Config (checksum settings, path-style, no
SDK retries), and which botocore error becomes which of our errors.
Decisions use status codes, error codes and exception classes, never
message text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from batch.errors import (
    CredentialsRefused,
    ObjectNotFound,
    StorageError,
    StorageUnreachable,
    UnsupportedOperation,
)
from batch.storage.base import connection_cut, find_cause
from batch.storage.urls import redact_url

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


_NOT_FOUND = {"404", "NoSuchKey", "NoSuchBucket", "NotFound", "NoSuchVersion"}
_REFUSED = {
    "401",
    "403",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AuthorizationHeaderMalformed",
}
_TRANSIENT = {
    "SlowDown",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    "Throttling",
}


def resolve_endpoint(settings: StorageSettings) -> str | None:
    """The custom endpoint URL, or None for AWS itself."""
    return (
        settings.endpoint_url
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
        or None
    )


def resolve_region(settings: StorageSettings) -> str:
    return (
        settings.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    )


def is_aws_endpoint(endpoint: str | None) -> bool:
    """True when requests go to AWS S3 itself."""
    if not endpoint:
        return True
    host = endpoint.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn"))


def client_config(endpoint: str | None, region: str) -> Any:
    """The botocore Config this backend uses (see module docstring)."""
    from botocore.config import Config

    kwargs: dict[str, Any] = {
        "region_name": region,
        "signature_version": "s3v4",
        "retries": {"total_max_attempts": 1, "mode": "standard"},
        "connect_timeout": 10,
        "read_timeout": 120,
        "max_pool_connections": 32,
    }
    if not is_aws_endpoint(endpoint):
        kwargs["s3"] = {"addressing_style": "path"}
        kwargs["request_checksum_calculation"] = "when_required"
        kwargs["response_checksum_validation"] = "when_required"
    return Config(**kwargs)


def _sdk_cause(exc: BaseException) -> BaseException:
    """The botocore error behind boto3/s3transfer wrappers, if there is one."""
    from botocore.exceptions import BotoCoreError, ClientError

    return find_cause(exc, (ClientError, BotoCoreError)) or exc


def map_error(exc: BaseException, url: str, endpoint: str | None) -> BaseException:
    """Our error type for a boto3/botocore exception (unknown ones pass through)."""
    from botocore import exceptions as be

    url = redact_url(url)  # an s3 URL carries no secret by design; a pasted "key:secret@" is hidden
    where = redact_url(endpoint) if endpoint else "AWS S3"
    down_hint = (
        f"check AWS_ENDPOINT_URL ({where}) and that the server is running and reachable"
        if endpoint
        else "check the network and AWS_REGION; AWS S3 did not answer"
    )
    cred_hint = "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and that this key may use the bucket"
    cause = _sdk_cause(exc)
    if isinstance(cause, be.ClientError):
        err = cause.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        fields = {
            "url": url,
            "endpoint": where,
            "status": status or None,
            "error_code": code,
        }
        if code in _NOT_FOUND or status == 404:
            what = "bucket" if code == "NoSuchBucket" else "object"
            return ObjectNotFound(
                f"S3 {what} not found: {url} ({code or status})",
                hint="check the bucket and key",
                **fields,
            )
        if code in _REFUSED or status in (401, 403):
            return CredentialsRefused(
                f"S3 refused access to {url} ({status} {code})",
                hint=cred_hint,
                **fields,
            )
        if code in _TRANSIENT or status >= 500 or status == 429:
            return StorageUnreachable(
                f"S3 endpoint {where} failed for {url} ({status} {code})",
                hint=down_hint,
                **fields,
            )
        return StorageError(
            f"S3 request for {url} failed ({status} {code})",
            hint="check the bucket, the key and the endpoint's S3 compatibility",
            **fields,
        )
    if isinstance(cause, (be.NoCredentialsError, be.PartialCredentialsError)):
        return CredentialsRefused(
            f"no S3 credentials found for {url}",
            hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            url=url,
            endpoint=where,
        )
    if isinstance(cause, be.ParamValidationError):
        return UnsupportedOperation(
            f"invalid S3 bucket or key in {url}",
            hint="check the bucket and key",
            url=url,
        )
    if isinstance(cause, (be.ConnectionError, be.HTTPClientError, be.IncompleteReadError)):
        return StorageUnreachable(
            f"cannot reach S3 endpoint {where} for {url} ({type(cause).__name__})",
            hint=down_hint,
            url=url,
            endpoint=where,
        )
    cut = connection_cut(exc)
    if cut is not None:
        return StorageUnreachable(
            f"connection to S3 endpoint {where} was cut while transferring {url} ({type(cut).__name__})",
            hint=down_hint,
            url=url,
            endpoint=where,
        )
    if isinstance(exc, OSError):
        return StorageError(
            f"local I/O failed while transferring {url}: {exc.strerror or exc}",
            hint="check the local disk (space, permissions)",
            url=url,
        )
    return exc
