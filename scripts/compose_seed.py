#!/usr/bin/env python3
"""Seed an S3 bucket for the local compose flow: wait for the server, create the bucket, upload files.

The docker compose `seed` service runs this in the runner image; the compose
flow test runs the same command on the host. Endpoint and keys come from the
environment only (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_REGION), with the same client settings the runner uses (path-style
addressing and checksums only when required, for S3-compatible servers).

    python scripts/compose_seed.py --bucket batch-demo \\
        --put samples/demo.mp4=in/demo.mp4 --put configs/compose.yaml=jobs/compose.yaml

Idempotent: an existing bucket is used as it is and objects are overwritten.
Exit codes: 0 done; 1 a local file is missing; 2 bad arguments; 3 the server
did not answer in time, refused the credentials, or an upload did not land.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EXIT_OK, EXIT_LOCAL, EXIT_USAGE, EXIT_STORE = 0, 1, 2, 3


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bucket", required=True, help="bucket to create if it does not exist")
    p.add_argument(
        "--put",
        action="append",
        default=[],
        metavar="FILE=KEY",
        help="upload local FILE as KEY in the bucket (repeatable)",
    )
    p.add_argument("--wait-s", type=float, default=60.0, help="how long to wait for the server (default 60)")
    args = p.parse_args(argv)
    uploads = []
    for item in args.put:
        path, sep, key = item.partition("=")
        if not sep or not path or not key or key.startswith("/"):
            p.error(f"--put wants FILE=KEY with a relative key, got {item!r}")
        uploads.append((Path(path), key))
    args.uploads = uploads
    return args


def make_client() -> tuple[Any, str | None]:
    """A boto3 client with the runner's own settings, and the endpoint it talks to."""
    import boto3

    from batch.storage.s3_config import StorageSettings, client_config, resolve_endpoint, resolve_region

    settings = StorageSettings()
    endpoint = resolve_endpoint(settings)
    config = client_config(endpoint, resolve_region(settings))
    return boto3.client("s3", endpoint_url=endpoint, config=config), endpoint


def _status(exc: Exception) -> tuple[int, str]:
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0), code


class _NotReady(Exception):
    """The server did not (yet) give the bucket: what it said instead."""


def ensure_bucket(client: Any, bucket: str, wait_s: float) -> str:
    """'exists' or 'created'; retries every 0.5 s until ``wait_s`` is up, then exits with 3."""
    from batch.retry import RetryPolicy, retrying

    loop = retrying(
        RetryPolicy(attempts=None, base_wait_s=0.5, max_wait_s=0.5, jitter=False),
        retry_on=lambda e: isinstance(e, _NotReady),
        deadline=time.monotonic() + wait_s,
    )
    try:
        for attempt in loop:
            with attempt:
                return _bucket_once(client, bucket)
    except _NotReady as exc:
        fail(f"S3 at {os.environ.get('AWS_ENDPOINT_URL', 'AWS')} not ready after {wait_s:.0f}s ({exc})")
    raise AssertionError("unreachable: tenacity stopped without an outcome")


def _bucket_once(client: Any, bucket: str) -> str:
    """'exists' or 'created'. Raises _NotReady with what the server said."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client.head_bucket(Bucket=bucket)
        return "exists"
    except ClientError as exc:
        status, code = _status(exc)
        if status in (401, 403):
            # kept trying: a server that is still starting may not know the keys yet
            raise _NotReady(f"the server refused the credentials ({status} {code})") from exc
        if status == 404 or code in ("404", "NoSuchBucket", "NotFound"):
            try:
                client.create_bucket(Bucket=bucket)
                return "created"
            except ClientError as create_exc:
                _, create_code = _status(create_exc)
                if create_code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    return "exists"
                raise _NotReady(f"create_bucket: {create_code or create_exc}") from create_exc
        raise _NotReady(f"{status} {code}") from exc  # e.g. 503 while the filer starts
    except BotoCoreError as exc:  # connection refused, DNS not ready ...
        raise _NotReady(type(exc).__name__) from exc


def upload(client: Any, bucket: str, path: Path, key: str) -> int:
    """Upload one file and check its size in the bucket; returns the size."""
    from botocore.exceptions import BotoCoreError, ClientError

    size = path.stat().st_size
    try:
        with path.open("rb") as body:
            client.put_object(Bucket=bucket, Key=key, Body=body)
        got = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
    except (BotoCoreError, ClientError) as exc:
        fail(f"upload of {path} to s3://{bucket}/{key} failed: {exc}")
    if got != size:
        fail(f"s3://{bucket}/{key} has {got} bytes, {path} has {size}")
    return size


def fail(message: str, code: int = EXIT_STORE) -> NoReturn:
    print(f"seed: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = [str(path) for path, _ in args.uploads if not path.is_file()]
    if missing:
        fail(f"no such file: {', '.join(missing)}", EXIT_LOCAL)
    client, endpoint = make_client()
    state = ensure_bucket(client, args.bucket, args.wait_s)
    print(f"seed: bucket s3://{args.bucket} {state} at {endpoint or 'AWS S3'}", flush=True)
    for path, key in args.uploads:
        size = upload(client, args.bucket, path, key)
        print(f"seed: {path} -> s3://{args.bucket}/{key} ({size} bytes)", flush=True)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
