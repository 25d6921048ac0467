#!/usr/bin/env bash
# Set up a fresh Debian machine: ffmpeg from Debian, a .venv with the pinned
# requirements. `--dev` adds the test tools (pytest, the SeaweedFS S3 server, and
# Debian's chromium, the headless browser the report page tests open pages in).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || need_apt+=(ffmpeg)
if [ "${1:-}" = "--dev" ]; then
  command -v chromium >/dev/null || command -v chromium-browser >/dev/null || need_apt+=(chromium)
fi
if ((${#need_apt[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
req=requirements.txt
[ "${1:-}" = "--dev" ] && req=requirements-dev.txt
.venv/bin/python -m pip install -q --disable-pip-version-check -r "$req"
if [ "${1:-}" = "--dev" ]; then
  # SkyPilot (for the task-file test) lives apart: its pins clash with the runpod SDK's.
  [ -x .venv-tools/bin/python ] || "$PY" -m venv .venv-tools
  .venv-tools/bin/python -m pip install -q --disable-pip-version-check -r requirements-tools.txt
fi
