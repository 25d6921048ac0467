"""The page itself: a manifest (and the sidecar's images and verdict) to one HTML string. No IO.

Jinja2 with autoescape on, so file names, error messages and notes (all of
them user-controlled) are text, never markup; a Content-Security-Policy in the
page blocks scripts and every load but ``data:`` images besides. Free text is
scrubbed of URL query strings (a presigned URL's signature) with the project's
one redactor. Links to outputs are relative to the page (``<output>/report.html``),
so they work from a local copy and from a public bucket; images are inlined.

Importable by the watchdog: the standard library, jinja2, and batch.storage.urls.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from jinja2.bccache import Bucket

from batch.contracts import MANIFEST, STATUS
from batch.report.data import Image
from batch.storage.urls import redact_url, url_basename

TEMPLATE = "report.html.j2"
_URL = re.compile(r"(?i)\b(?:https?|s3|b2)://[^\s\"'<>]+")
_QUERY = re.compile(r"\?[^\s\"'<>?]*=[^\s\"'<>]*")  # a query string anywhere (a URL with spaces in its path)
_STATUS_CLASS = {"succeeded": "ok", "verified": "ok", "partial": "warn", "cancelled": "warn"}


# The template compiled to Python byte-code, beside the package's .pyc files: compiling it costs
# ~0.13 s a process, more than rendering. The image writes it at build (`python -m batch.report.render
# --compile`, after compileall); a checkout writes it on first use. Keyed by the template's checksum,
# so an edited template is never rendered from a stale cache.
TEMPLATE_CACHE = Path(__file__).parent / "__pycache__" / "jinja2"


class _TemplateCache(jinja2.FileSystemBytecodeCache):
    """A byte-code cache that never fails a render: read-only, missing or damaged means "compile"."""

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # a damaged file: pickle's and marshal's errors (UnpicklingError, EOFError ...)
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            Path(self.directory).mkdir(parents=True, exist_ok=True)
            super().dump_bytecode(bucket)
            os.chmod(self._get_cache_filename(bucket), 0o644)  # built as root, read as the job's user
        except OSError:  # /app is read-only to the job: compile each time, as without a cache
            pass


def make_environment(cache_dir: Path | None = TEMPLATE_CACHE) -> jinja2.Environment:
    """The page's Jinja2 environment; ``cache_dir`` holds the compiled template (None: no cache)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        bytecode_cache=_TemplateCache(str(cache_dir)) if cache_dir else None,
        autoescape=True,  # every {{ }} is escaped, whatever the template's name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return make_environment()


def scrub(value: object) -> str:
    """``value`` as text with every URL in it redacted (no query string, no user info)."""
    text = "" if value is None else str(value)
    return _QUERY.sub("?***", _URL.sub(lambda m: redact_url(m.group(), strict=True), text))


def scrub_url(value: object) -> str:
    """A field that holds one URL, redacted whole (its path may hold spaces), then as text."""
    return scrub(redact_url(value, strict=True)) if isinstance(value, str) else scrub(value)


def href(key: object) -> str | None:
    """A relative link to ``key`` (relative to the output prefix), or None when it is not a plain key.

    Each segment is percent-quoted, so a key never becomes a scheme (``javascript:``),
    a protocol-relative URL (``//host``), a query or a fragment.
    """
    if not isinstance(key, str) or not key.strip("/"):
        return None
    parts = [p for p in key.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "./" + "/".join(quote(p, safe="") for p in parts)


def size_text(size: object) -> str:
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return "?"
    n = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(size)


def _basename(url: object) -> str:
    """The file name in a URL (no query), or "" when it has none."""
    try:
        return url_basename(url) if isinstance(url, str) and url else ""
    except Exception:  # not a URL the storage layer knows: no name rather than no page
        return ""


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _facts(media: object) -> list[tuple[str, str]]:
    """Media facts as (label, text) rows; an absent fact is left out."""
    m = _dict(media)
    if not m:
        return []
    rows: list[tuple[str, str]] = []
    if m.get("width") and m.get("height"):
        rows.append(("size", f"{m['width']}x{m['height']}"))
    for label, key in (("codec", "codec"), ("fps", "fps"), ("frames", "frame_count"), ("pixels", "pix_fmt")):
        if m.get(key) is not None:
            rows.append((label, scrub(m[key])))
    if isinstance(m.get("duration"), int | float):
        rows.append(("duration", f"{m['duration']:.3f} s"))
    colour = _dict(m.get("color"))
    if colour:
        rows.append(
            ("colour", " / ".join(scrub(colour.get(k) or "?") for k in ("range", "space", "transfer")))
        )
    audio = _list(m.get("audio"))
    rows.append(("audio", ", ".join(scrub(_dict(a).get("codec")) for a in audio) if audio else "none"))
    if m.get("vfr"):
        rows.append(("timing", "variable frame rate"))
    return rows


def _error(raw: object) -> dict[str, str] | None:
    e = _dict(raw)
    if not e:
        return None
    return {
        "type": scrub(e.get("type") or "error"),
        "message": scrub(e.get("message")),
        "hint": scrub(e.get("hint")),
    }


def _steps(raw: object) -> list[dict[str, str]]:
    out = []
    for s in _list(raw):
        s = _dict(s)
        said = [scrub(s["reason"])] if s.get("reason") else []
        if isinstance(s.get("seconds"), int | float):
            said.append(f"{s['seconds']:.2f} s")
        said.extend(scrub(e) for e in _list(s.get("events")))
        out.append({"rung": scrub(s.get("rung")), "status": scrub(s.get("status")), "said": "; ".join(said)})
    return out


def _stage(raw: object) -> dict[str, Any]:
    s = _dict(raw)
    frames = ""
    if s.get("frames_in") is not None or s.get("frames_out") is not None:
        frames = f"{s.get('frames_in', '?')} -> {s.get('frames_out', '?')}"
    summary = _dict(s.get("summary"))
    facts = [
        (k.replace("_", " "), f"{v:.1%}" if k.endswith("_share") and isinstance(v, float) else scrub(v))
        for k, v in summary.items()
        if k in ("frames", "cut_count", "blurry_share", "dark_share", "duplicate_share", "idle_share")
    ]
    return {
        "name": scrub(s.get("name") or "?"),
        "used": scrub(s.get("used") or ""),
        "ladder": " > ".join(scrub(r) for r in _list(s.get("ladder"))),
        "frames": frames,
        "steps": _steps(s.get("steps")),
        "facts": facts,
    }


def _input(raw: object, images: Sequence[Image]) -> dict[str, Any]:
    r = _dict(raw)
    source = _dict(r.get("source"))
    url = scrub_url(source.get("url")) if source.get("url") else ""
    name = _basename(source.get("url")) or f"input {scrub(r.get('index', '?'))}"
    stages = [_stage(s) for s in _list(r.get("stages"))]
    encode = _dict(r.get("encode"))
    if encode:
        stages.append(
            {"name": "encode", "used": scrub(encode.get("used") or ""), "ladder": "", "frames": "",
             "steps": _steps(encode.get("steps")), "facts": []}
        )  # fmt: skip
    outputs = [
        {
            "kind": scrub(_dict(o).get("kind")),
            "key": scrub(_dict(o).get("key")),
            "href": href(_dict(o).get("key")),
            "size": size_text(_dict(o).get("size")),
            "sha256": scrub(_dict(o).get("sha256") or "")[:16],
        }
        for o in _list(r.get("outputs"))
    ]
    timings = [
        (k.removesuffix("_s"), f"{v:.2f} s")
        for k, v in _dict(r.get("timings")).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    return {
        "index": scrub(r.get("index", "?")),
        "status": scrub(r.get("status") or "unknown"),
        "css": _STATUS_CLASS.get(str(r.get("status")), "bad"),
        "name": name,
        "url": url,
        "facts_in": _facts(r.get("media_in")),
        "facts_out": _facts(r.get("media_out")),
        "stages": stages,
        "outputs": outputs,
        "timings": timings,
        "notes": [scrub(n) for n in _list(r.get("notes"))],
        "error": _error(r.get("error")),
        "images": [{"caption": scrub(i.caption), "src": i.data_uri()} for i in images],
    }


def _verdict(raw: Mapping[str, str]) -> dict[str, str]:
    return {k: scrub(v) for k, v in raw.items()} | {"css": _STATUS_CLASS.get(str(raw.get("reason")), "bad")}


def render(
    manifest: Mapping[str, Any] | None,
    verdicts: Sequence[Mapping[str, str]] = (),
    images: Mapping[int, Sequence[Image]] | None = None,
    *,
    status: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """The page for ``manifest`` (None: the job has not finished; ``status`` says where it is).

    ``verdicts``: the watchdog's (one per instance: a sharded run has one per shard);
    ``images``: per input index, shown in order; ``notes``: what the page could not show.
    """
    m = _dict(manifest)
    images = images or {}
    inputs = []
    for raw in _list(m.get("inputs")):
        index = _dict(raw).get("index")
        inputs.append(_input(raw, images.get(index, ()) if isinstance(index, int) else ()))
    counts = ", ".join(f"{scrub(v)} {scrub(k)}" for k, v in _dict(m.get("counts")).items())
    stat = _dict(status)
    page = {
        "job_id": scrub(m.get("job_id") or stat.get("job_id") or "unknown job"),
        "status": scrub(m.get("status") or (f"running: {stat.get('phase')}" if stat else "no manifest yet")),
        "css": _STATUS_CLASS.get(str(m.get("status")), "bad" if m else "warn"),
        "exit_code": scrub(m.get("exit_code", "")),
        "dry_run": bool(m.get("dry_run")),
        "started_at": scrub(m.get("started_at") or stat.get("started_at") or ""),
        "finished_at": scrub(m.get("finished_at") or ""),
        "counts": counts,
        "shard": _dict(m.get("shard")),
        "runner": " ".join(scrub(v) for v in _dict(m.get("runner")).values()),
        "errors": [e for e in (_error(x) for x in _list(m.get("errors"))) if e],
        "watchdog_note": scrub(_dict(m.get("watchdog")).get("note") or ""),
        "inputs": inputs,
        "progress": {k: scrub(v) for k, v in stat.items() if not isinstance(v, dict | list)} if not m else {},
        "links": [(MANIFEST, href(MANIFEST)), (STATUS, href(STATUS))],
    }
    template = _environment().get_template(TEMPLATE)
    return template.render(
        page=page, verdicts=[_verdict(v) for v in verdicts], notes=[scrub(n) for n in notes]
    )


def compile_template(cache_dir: Path = TEMPLATE_CACHE) -> None:
    """Write the template's byte-code cache (the image does at build, where /app is still writable)."""
    make_environment(cache_dir).get_template(TEMPLATE)


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--compile"]:
        raise SystemExit("usage: python -m batch.report.render --compile")
    compile_template()
