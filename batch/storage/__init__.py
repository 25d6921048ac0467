"""Object storage behind one URL-based interface.

``open_url(url)`` returns the backend for the URL's scheme:

==============================  ===========================================
``/path``, ``file:///path``     :class:`batch.storage.local.LocalStore`
``s3://bucket/key``             :class:`batch.storage.s3.S3Store` (boto3)
``b2://bucket/key``             :class:`batch.storage.b2.B2Store` (b2sdk)
``http(s)://host/path``         :class:`batch.storage.http.HttpStore` (read-only)
==============================  ===========================================

Backends are cached, so SDK clients are built once per scheme, bucket,
settings and credentials. SDKs are imported lazily: importing this package
does not import boto3, b2sdk or requests.

Every store method raises only :class:`batch.errors.StorageError`
subclasses: StorageUnreachable (retried, then raised), CredentialsRefused,
ObjectNotFound, UploadVerificationFailed, UnsupportedOperation.
"""

from __future__ import annotations

import hashlib
import os
import threading

from batch.storage.base import ObjectInfo, Store
from batch.storage.s3_config import StorageSettings
from batch.storage.urls import join_url, parse_url, redact_url

__all__ = [
    "ObjectInfo",
    "StorageSettings",
    "Store",
    "clear_cache",
    "join_url",
    "open_url",
    "parse_url",
    "redact_url",
]

_CACHE: dict[tuple[object, ...], Store] = {}
_LOCK = threading.Lock()

_S3_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
)
_B2_ENV = ("B2_APPLICATION_KEY_ID", "B2_APPLICATION_KEY")


def _env_fingerprint(names: tuple[str, ...]) -> str:
    """A digest of the env vars a backend reads, so changed credentials get a
    fresh client; the digest keeps secret values out of the cache key."""
    h = hashlib.sha256()
    for name in names:
        h.update(name.encode() + b"=" + os.environ.get(name, "").encode() + b"\0")
    return h.hexdigest()


def open_url(url: str, settings: StorageSettings | None = None) -> Store:
    """The backend for ``url``'s scheme, reused across calls.

    ``settings`` only matters for ``s3://`` (endpoint, region, multipart
    sizes). Raises UnsupportedOperation for an unknown scheme; credential
    problems surface on the first call to the store, not here.
    """
    scheme, bucket, _key = parse_url(url)
    settings = settings or StorageSettings()
    if scheme == "file":
        key: tuple[object, ...] = ("file",)
    elif scheme == "s3":
        key = ("s3", bucket, settings, _env_fingerprint(_S3_ENV))
    elif scheme == "b2":
        from batch.storage import b2

        key = ("b2", bucket, b2.injected_api(), _env_fingerprint(_B2_ENV))
    else:
        key = (scheme, bucket)
    with _LOCK:
        store = _CACHE.get(key)
        if store is None:
            store = _build(scheme, settings)
            _CACHE[key] = store
    return store


def _build(scheme: str, settings: StorageSettings) -> Store:
    if scheme == "file":
        from batch.storage.local import LocalStore

        return LocalStore()
    if scheme == "s3":
        from batch.storage.s3 import S3Store

        return S3Store(settings)
    if scheme == "b2":
        from batch.storage.b2 import B2Store, injected_api

        return B2Store(api=injected_api())
    from batch.storage.http import HttpStore

    return HttpStore(scheme)


def clear_cache() -> None:
    """Forget every cached backend (tests; after rotating credentials)."""
    with _LOCK:
        _CACHE.clear()
