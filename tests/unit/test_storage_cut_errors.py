"""A connection cut that reaches a backend raw is a retryable StorageUnreachable, not an internal error."""

from __future__ import annotations

import errno

import pytest
import requests
from s3transfer.exceptions import RetriesExceededError
from urllib3.exceptions import ProtocolError

from batch.errors import StorageError, StorageUnreachable
from batch.retry import is_retryable
from batch.storage import b2 as b2_backend
from batch.storage.s3_config import map_error as s3_map_error

URL = "s3://bucket/in/clip.mp4"


@pytest.mark.parametrize(
    "exc",
    [
        RetriesExceededError(
            ConnectionResetError(errno.ECONNRESET, "reset")
        ),  # s3transfer's own retries spent
        RetriesExceededError(TimeoutError("timed out")),
        ProtocolError("Connection broken", ConnectionResetError()),
    ],
    ids=["retries-reset", "retries-timeout", "protocol"],
)
def test_s3_cut_is_unreachable(exc: BaseException) -> None:
    mapped = s3_map_error(exc, URL, "http://127.0.0.1:9000")
    assert isinstance(mapped, StorageUnreachable) and is_retryable(mapped)
    assert "cut" in mapped.message and URL in mapped.message


def test_s3_local_disk_error_is_not_a_cut() -> None:
    mapped = s3_map_error(OSError(errno.ENOSPC, "No space left on device"), URL, None)
    assert isinstance(mapped, StorageError) and not isinstance(mapped, StorageUnreachable)


@pytest.mark.parametrize(
    "exc",
    [
        requests.exceptions.ChunkedEncodingError(ProtocolError("Connection broken: IncompleteRead")),
        requests.ConnectionError("reset"),
        ConnectionResetError(errno.ECONNRESET, "reset"),
    ],
    ids=["chunked", "requests-connection", "reset"],
)
def test_b2_cut_is_unreachable(exc: BaseException) -> None:
    mapped = b2_backend.map_error(exc, "b2://bucket/in/clip.mp4")
    assert isinstance(mapped, StorageUnreachable) and is_retryable(mapped)
