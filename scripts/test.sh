#!/usr/bin/env bash
# Set up (with test tools), then run every test: unit and integration
# (real ffmpeg, a real SeaweedFS S3 server on loopback started by a fixture).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
exec .venv/bin/python -m pytest "$@"
