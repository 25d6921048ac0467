#!/usr/bin/env python3
"""Show a job's progress and results from its output prefix (what a user runs from a laptop).

    python scripts/status.py s3://bucket/out/job/ [--watch [SECONDS]] [--json] [--html [FILE]]

Reads ``status.json`` and every ``manifest*.json`` at the prefix (credentials
from the environment, as for the runner). Exit codes: 0 shown, 2 nothing there
yet or a bad URL, 3 the store is unreachable or refused the credentials.
``--html`` writes the job's page (the same as ``<output>/report.html``, see
docs/report.md) to FILE (default ``report.html``; ``-`` for stdout) and exits.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from batch.errors import BatchError
from batch.storage import Store, open_url
from batch.tools.status_table import load_report, render


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url", help="the job's output prefix (s3://, b2://, or a path)")
    p.add_argument("--watch", nargs="?", const=5.0, type=float, metavar="SECONDS", help="refresh until done")
    p.add_argument("--json", action="store_true", help="print the raw status and manifests")
    p.add_argument("--html", nargs="?", const="report.html", metavar="FILE", help="write the job's page")
    args = p.parse_args(argv)
    try:
        store = open_url(args.url)
        if args.html:
            return write_html(store, args.url, args.html)
        while True:
            report = load_report(store, args.url)
            if args.json:
                print(json.dumps(report.to_dict(), indent=2))
            else:
                if args.watch:
                    print("\033[2J\033[H", end="")  # clear the terminal between refreshes
                print(render(report))
            if not args.watch or report.finished:
                break
            time.sleep(args.watch)
    except KeyboardInterrupt:
        return 0
    except BatchError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code if e.exit_code in (2, 3) else 2
    if report.status is None and not report.manifests:
        return 2
    return 0


def write_html(store: Store, url: str, dest: str) -> int:
    """The page for the prefix, as the runner and the watchdog write it, to ``dest``."""
    from batch.report import build, page

    report = load_report(store, url)
    manifest = None if report.stale_manifests else page.choose_manifest(report.manifests)
    made = (lambda: build.from_bucket(store, report.prefix, manifest)) if manifest else None
    html = page.page_for_prefix(store, report.prefix, manifest, report.status, made)
    if dest == "-":
        sys.stdout.write(html)
    else:
        Path(dest).write_text(html, encoding="utf-8")
        print(f"wrote {dest}", file=sys.stderr)
    return 0 if manifest or report.status else 2


if __name__ == "__main__":
    sys.exit(main())
