"""Parsing, joining and redacting storage URLs (no SDK imports here).

URLs are not percent-decoded: ``s3://b/a b.mp4`` names the key ``a b.mp4``.
Bare paths (``out/x.mp4``, ``/data/in.mp4``) are local files, like
``file:///data/in.mp4``.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from batch.contracts import join_url as join_url  # one joining rule, with the names it joins
from batch.errors import UnsupportedOperation

SCHEMES = ("file", "s3", "b2", "http", "https")
_HINT = "use s3://bucket/key, b2://bucket/key, https://host/path, file:///path or a plain path"


def parse_url(url: str) -> tuple[str, str, str]:
    """Split a URL into ``(scheme, bucket, key)``.

    * ``file``: bucket is ``""``, key is the local path (bare paths too).
    * ``s3``/``b2``: bucket and key (``""`` for the bucket root).
    * ``http``/``https``: bucket is ``host[:port]``, key is path and query
      without the leading slash.

    Raises UnsupportedOperation for an unknown scheme or a URL without a bucket.
    """
    if not isinstance(url, str) or not url:
        raise UnsupportedOperation("empty storage URL", hint=_HINT, url=repr(url))
    if "://" not in url:
        return "file", "", url
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise UnsupportedOperation(
            f"unsupported URL scheme {scheme!r} in {redact_url(url)}",
            hint=_HINT,
            url=redact_url(url),
        )
    if scheme == "file":
        host, sep, path = rest.partition("/")
        if host not in ("", "localhost"):
            raise UnsupportedOperation(  # the host alone: a user:password@ before it stays out
                f"file URL with a remote host ({host.rpartition('@')[2]})",
                hint="write file:///absolute/path (three slashes) or a plain path",
            )
        return "file", "", "/" + path if sep else "/"
    bucket, _, key = rest.partition("/")
    if "@" in bucket and scheme in ("s3", "b2"):  # s3://KEY:SECRET@bucket: no store reads keys there
        raise UnsupportedOperation(
            f"credentials in a storage URL: {redact_url(url)}",
            hint="give keys in the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for s3://, "
            "B2_APPLICATION_KEY_ID and B2_APPLICATION_KEY for b2://), never in the URL",
            url=redact_url(url),
        )
    if not bucket:
        raise UnsupportedOperation(
            f"storage URL without a bucket or host: {redact_url(url)}",
            hint=_HINT,
            url=redact_url(url),
        )
    return scheme, bucket, key


def is_prefix(url: str) -> bool:
    """A URL ending in ``/`` (or naming a bucket root) names a prefix."""
    scheme, _bucket, key = parse_url(url)
    return url.endswith("/") or (scheme in ("s3", "b2") and key == "")


def as_prefix(url: str) -> str:
    """The URL with a trailing ``/`` (unless it is a bucket root)."""
    scheme, _bucket, key = parse_url(url)
    if url.endswith("/") or (scheme in ("s3", "b2") and key == ""):
        return url
    return url + "/"


def redact_url(url: str, *, strict: bool = False) -> str:
    """The URL without user info or query string, safe for logs and errors.

    The one URL redactor of the project (storage, config, the launchers).
    Query strings may carry presigned signatures and user info may carry a
    password, so both are replaced by ``***`` (the fragment is dropped). For
    ``s3``/``b2`` URLs, which carry no credentials by design, only a user
    info part before the bucket (``s3://key:secret@bucket/...``, never valid)
    is replaced; their keys may hold ``?`` and are kept, unless ``strict``:
    then what follows a ``?`` or ``#`` is replaced too (for text shown where
    nothing needs the exact key, e.g. a launcher echoing CONFIG_URL).
    """
    lowered = url.lower()
    if lowered.startswith(("s3://", "b2://")):
        scheme, rest = url.split("://", 1)
        bucket, sep, key = rest.partition("/")
        if "@" in bucket:
            bucket = "***@" + bucket.rsplit("@", 1)[1]
        if strict:
            cut = min((i for i in (key.find("?"), key.find("#")) if i >= 0), default=-1)
            if cut >= 0:
                key = f"{key[:cut]}{key[cut]}***"
        return f"{scheme}://{bucket}{sep}{key}"
    if not lowered.startswith(("http://", "https://")):
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("://", 1)[0] + "://***"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = "***" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


#: the longest name :func:`safe_name` returns, in UTF-8 bytes (file systems allow 255)
NAME_MAX_BYTES = 120


def url_path(url: str) -> str:
    """The object's path: the key for ``s3``/``b2``, the local path for files,
    and for ``http(s)`` the path alone, never the query or fragment (where a
    presigned URL keeps its signature and token)."""
    scheme, _bucket, key = parse_url(url)
    if scheme in ("http", "https"):
        try:
            return urlsplit(url).path.lstrip("/")
        except ValueError:
            return ""
    return key


def safe_name(name: str, max_bytes: int = NAME_MAX_BYTES) -> str:
    """``name`` as one safe path segment, or ``""`` when nothing usable is left.

    Path separators (``/``, ``\\``) and control characters become ``_``, a
    name of dots only (``.``, ``..``) becomes ``""``, and the result is cut to
    ``max_bytes`` of UTF-8 (never inside a character).
    """
    name = name.encode("utf-8", "replace").decode("utf-8")  # lone surrogates -> "?"
    name = "".join("_" if ch in "/\\" or ord(ch) < 32 or ord(ch) == 127 else ch for ch in name)
    name = name.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")
    return "" if not name.strip(".") else name


def url_basename(url: str) -> str:
    """The last segment of :func:`url_path`, made safe by :func:`safe_name`.

    ``url_basename("https://h/in/clip.mp4?X-Amz-Signature=...") == "clip.mp4"``;
    ``""`` for a URL ending in ``/`` or a last segment of ``..``. Local file
    names and output stems are made from this, so no query string (secret) or
    traversal ever reaches a file name, a key or a command line.
    """
    return safe_name(url_path(url).rsplit("/", 1)[-1])


def url_stem(url: str) -> str:
    """The output folder name an input URL asks for: its file stem, from the path only (never a
    presigned query), one safe key segment; "input" when none is usable. The runner suffixes it
    (-2, -3) when two inputs share one (batch.job.runner.output_stems)."""
    from pathlib import PurePosixPath

    return safe_name(PurePosixPath(url_basename(url)).stem) or "input"
