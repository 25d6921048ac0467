#!/usr/bin/env python3
"""Show a job's progress and results from its output prefix (what a user runs from a laptop).

    python scripts/status.py s3://bucket/out/job/ [--watch [SECONDS]] [--json]

Reads ``status.json`` and every ``manifest*.json`` at the prefix (credentials
from the environment, as for the runner). Exit codes: 0 shown, 2 nothing there
yet or a bad URL, 3 the store is unreachable or refused the credentials.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from batch.errors import BatchError
from batch.storage import open_url
from batch.tools.status_table import load_report, render


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url", help="the job's output prefix (s3://, b2://, or a path)")
    p.add_argument("--watch", nargs="?", const=5.0, type=float, metavar="SECONDS", help="refresh until done")
    p.add_argument("--json", action="store_true", help="print the raw status and manifests")
    args = p.parse_args(argv)
    try:
        store = open_url(args.url)
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


if __name__ == "__main__":
    sys.exit(main())
