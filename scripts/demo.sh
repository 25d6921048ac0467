#!/usr/bin/env bash
# Set up, then run the demo job: a checked-in clip, local output under ./out/, dry run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python run_with_config_batch_sync.py --config configs/demo.yaml --dry-run "$@"
