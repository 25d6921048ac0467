"""``<output>/report.html`` and its sidecars at an output prefix: read, render, write.

The runner writes its sidecar and the page before its manifest; the watchdog adds
its verdict to its sidecar and writes the page again; ``scripts/status.py --html``
renders the same page for any prefix. A page is a courtesy: callers wrap these in
:func:`never_raises`, so a page that cannot be made never fails the job or the stop.

Importable by the watchdog (no matplotlib, numpy or media code).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from batch import faults
from batch.contracts import (
    MANIFEST,
    REPORT_DATA,
    REPORT_PAGE,
    join_url,
    manifest_url,
    report_data_name,
    shard_manifest_name,
)
from batch.errors import ObjectNotFound, StorageError
from batch.report.data import ReportData
from batch.storage import Store

log = logging.getLogger("batch.report")

HTML = "text/html; charset=utf-8"
T = TypeVar("T")


def never_raises(what: str, fn: Callable[[], T]) -> T | None:
    """``fn()``, or None with a logged note when it raises anything at all."""
    try:
        return fn()
    except Exception as e:
        log.warning("%s: not made (%s: %s); carrying on", what, type(e).__name__, e)
        return None


def sidecar_names(manifest: Mapping[str, Any]) -> list[str]:
    """The sidecars a manifest's page draws on: its own, or each shard's for a merged manifest."""
    shards = manifest.get("shards")
    if isinstance(shards, list) and shards:
        names = []
        for s in shards:
            index, count = (s or {}).get("index"), (s or {}).get("count")
            if isinstance(index, int) and isinstance(count, int):
                names.append(report_data_name(shard_manifest_name(index, count)))
        return names
    shard = manifest.get("shard")
    if (
        isinstance(shard, dict)
        and isinstance(shard.get("index"), int)
        and isinstance(shard.get("count"), int)
    ):
        return [report_data_name(shard_manifest_name(shard["index"], shard["count"]))]
    return [REPORT_DATA]


def read_data(store: Store, output: str, name: str) -> ReportData:
    """One sidecar; a missing or corrupt one is an empty one with a note saying so."""
    try:
        return ReportData.from_json(store.read_bytes(join_url(output, name)), name)
    except ObjectNotFound:
        return ReportData(notes=[f"{name} is missing: the page has no images for its inputs"], missing=True)
    except ValueError as e:
        return ReportData(notes=[f"{e}: the page has no images for its inputs"])


def gather(
    store: Store, output: str, manifest: Mapping[str, Any]
) -> tuple[ReportData, list[dict[str, str]], bool]:
    """Every sidecar of the manifest merged (images, notes), their verdicts, and whether any was there."""
    merged, verdicts, found = ReportData(), [], False
    for name in sidecar_names(manifest):
        one = read_data(store, output, name)
        found = found or not one.missing
        merged.merge(one)
        if one.verdict:
            verdicts.append(one.verdict)
    return merged, verdicts, found


def page_html(
    manifest: Mapping[str, Any] | None, data: ReportData, verdicts: list[dict[str, str]], **kw: Any
) -> str:
    # jinja2 loads here, not with the runner: a job starts ffmpeg first (batch.job.warm_imports)
    from batch.report.render import render

    return render(manifest, verdicts, data.images, notes=data.notes, **kw)


def write_page(store: Store, output: str, html: str) -> None:
    faults.report()
    store.write_bytes(join_url(output, REPORT_PAGE), html.encode(), HTML)


def publish(store: Store, output: str, manifest: Mapping[str, Any], data: ReportData, data_name: str) -> None:
    """The runner's, once its manifest is up: its sidecar, then the page."""
    store.write_bytes(join_url(output, data_name), data.to_json(), "application/json")
    _write_page_for(store, output, manifest)


def add_verdict(
    store: Store, output: str, manifest: Mapping[str, Any], verdict: dict[str, str], data_name: str
) -> None:
    """The watchdog's: its verdict into its sidecar (made afresh if missing or corrupt), then the page."""
    data = read_data(store, output, data_name)
    data.verdict = verdict
    store.write_bytes(join_url(output, data_name), data.to_json(), "application/json")
    _write_page_for(store, output, manifest)


def _write_page_for(store: Store, output: str, manifest: Mapping[str, Any]) -> None:
    """The page for ``manifest``, or for the run's merged ``manifest.json`` once a shard's run has one."""
    shown = manifest
    if manifest.get("shard"):
        merged = _read_json(store, manifest_url(output, MANIFEST))
        if merged and merged.get("job_id") == manifest.get("job_id") and merged.get("shards"):
            shown = merged
    data, verdicts, _ = gather(store, output, shown)
    write_page(store, output, page_html(shown, data, verdicts))


def _read_json(store: Store, url: str) -> dict[str, Any] | None:
    try:
        found = json.loads(store.read_bytes(url))
    except (StorageError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def choose_manifest(manifests: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The manifest a prefix's page shows: the merged one (or the only one), else the first shard's."""
    whole = [m for m in manifests if not m.get("shard") and not m.get("unreadable")]
    found = whole or [m for m in manifests if not m.get("unreadable")]
    return found[0] if found else None


def page_for_prefix(
    store: Store,
    output: str,
    manifest: Mapping[str, Any] | None,
    status: Mapping[str, Any] | None = None,
    fallback: Callable[[], ReportData] | None = None,
) -> str:
    """``scripts/status.py --html``: the page for whatever is at the prefix now.

    ``fallback`` makes the images when no sidecar is there (a job from before the page existed).
    """
    verdicts: list[dict[str, str]] = []
    if manifest is None:
        data = ReportData(notes=["no manifest at the prefix yet: the job has not finished"])
    else:
        data, verdicts, found = gather(store, output, manifest)
        if not found and fallback is not None:
            made = never_raises("the images from the bucket", fallback)
            if made is not None:
                data = made
                data.notes.insert(
                    0, "no report sidecar at the prefix: images made from the outputs in the bucket"
                )
    return page_html(manifest, data, verdicts, status=status)
