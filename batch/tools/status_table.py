"""What a user sees of a job from a laptop: status.json and the manifest(s) at an output prefix."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from batch.contracts import MANIFEST, status_url
from batch.errors import ObjectNotFound
from batch.storage import Store, parse_url

FINAL_PHASES = {"succeeded", "partial", "failed"}


@dataclass
class Report:
    prefix: str
    status: dict[str, Any] | None = None
    manifests: list[dict[str, Any]] = field(default_factory=list)
    stale_manifests: bool = False  # the manifests predate the run status.json describes

    @property
    def finished(self) -> bool:
        if self.manifests and not self.stale_manifests:
            return True
        return bool(self.status and self.status.get("phase") in FINAL_PHASES)

    def to_dict(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "status": self.status,
            "manifests": self.manifests,
            "stale_manifests": self.stale_manifests,
        }


def _epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").timestamp()
    except ValueError:
        return None


def _read_json(store: Store, url: str) -> dict[str, Any] | None:
    try:
        body: dict[str, Any] = json.loads(store.read_bytes(url))
        return body
    except ObjectNotFound:
        return None
    except ValueError:
        return {"unreadable": url}


def load_report(store: Store, prefix: str) -> Report:
    """Read status.json and every top-level manifest*.json. Raises StorageError subclasses."""
    prefix = prefix if prefix.endswith("/") else prefix + "/"
    report = Report(prefix=prefix, status=_read_json(store, status_url(prefix)))
    root = parse_url(prefix)[2]
    for info in store.list(prefix):
        key = parse_url(info.url)[2]
        name = key[len(root) :] if key.startswith(root) else key
        if "/" not in name and name.startswith(MANIFEST.removesuffix(".json")) and name.endswith(".json"):
            found = _read_json(store, info.url)
            if found:
                report.manifests.append(found)
    started = _epoch((report.status or {}).get("started_at"))
    finished = [_epoch(m.get("finished_at")) for m in report.manifests]
    if started and finished and all(f is not None and f < started for f in finished):
        report.stale_manifests = True
    return report


def _size(size: int | None) -> str:
    if size is None:
        return "?"
    n = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def _status_line(status: dict[str, Any]) -> str:
    age = time.time() - (_epoch(status.get("updated_at")) or time.time())
    line = (
        f"job {status.get('job_id')}: {status.get('phase')} - input {status.get('input_index')}/"
        f"{status.get('input_count')}"
    )
    if status.get("input"):
        line += f" ({status['input']})"
    if status.get("frames_total"):
        line += f": {status.get('frames_done')}/{status.get('frames_total')} frames"
    if status.get("fps"):
        line += f", {status['fps']} fps"
    if status.get("eta_s") is not None:
        line += f", ETA {status['eta_s']:.0f} s"
    return line + f" (updated {age:.0f} s ago)"


def render(report: Report) -> str:
    lines: list[str] = []
    if report.status and (report.stale_manifests or not report.manifests):
        lines.append(_status_line(report.status))
    if not report.manifests or report.stale_manifests:
        if not report.status:
            lines.append(f"nothing at {report.prefix} yet (no status.json, no manifest)")
        return "\n".join(lines)
    for m in report.manifests:
        counts = ", ".join(f"{v} {k}" for k, v in (m.get("counts") or {}).items())
        lines.append(
            f"job {m.get('job_id')}: {m.get('status')} (exit {m.get('exit_code')}), finished "
            f"{m.get('finished_at')}; inputs: {counts or 'none'}"
        )
        for e in m.get("errors") or []:
            lines.append(f"  job error: {e.get('type')}: {e.get('message')}")
        lines.append(f"  {'#':>3}  {'input':<28} {'status':<10} {'frames':>11} {'fps':>6}  stages")
        for r in m.get("inputs") or []:
            lines.extend(_input_lines(r))
    return "\n".join(lines)


def _input_lines(r: dict[str, Any]) -> list[str]:
    name = PurePosixPath(str((r.get("source") or {}).get("url") or "?")).name
    frames_in = (r.get("media_in") or {}).get("frame_count")
    frames_out = (r.get("media_out") or {}).get("frame_count")
    frames = f"{frames_in}->{frames_out}" if frames_in is not None and frames_out is not None else ""
    seconds = (r.get("timings") or {}).get("process_s")
    fps = f"{frames_out / seconds:.1f}" if frames_out and seconds else ""
    stages = " ".join(
        f"{s.get('name')}:{s['used']}" if s.get("used") else str(s.get("name")) for s in r.get("stages") or []
    )
    encode = (r.get("encode") or {}).get("used")
    if encode:
        stages = f"{stages} encode:{encode}".strip()
    out = [
        f"  {r.get('index'):>3}  {name[:28]:<28} {r.get('status', '?'):<10} {frames:>11} {fps:>6}  {stages}"
    ]
    for o in r.get("outputs") or []:
        out.append(
            f"       -> {o.get('key')} ({_size(o.get('size'))}, sha256 {str(o.get('sha256'))[:12]}...)"
        )
    if r.get("error"):
        e = r["error"]
        out.append(f"       ! {e.get('type')}: {e.get('message')}")
        if e.get("hint"):
            out.append(f"         fix: {e['hint']}")
    return out
