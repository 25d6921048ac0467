#!/usr/bin/env bash
# Set up (with test tools), check types, then run every test: unit and integration
# (real ffmpeg, a real SeaweedFS S3 server on loopback started by a fixture).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
# Types first: strict mypy on the package (settings in pyproject.toml); a type
# error fails the run before any test starts.
.venv/bin/python -m mypy
exec .venv/bin/python -m pytest "$@"
