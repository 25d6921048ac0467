# syntax=docker/dockerfile:1
#
# The job runner's image: CUDA runtime, Python 3.11, an ffmpeg with NVENC and
# NVDEC, the pinned requirements in a venv, a non-root user. docs/deploy.md
# has the commands; in short:
#
#   docker build -t gpu-batch-runner .
#   docker build --build-arg WEIGHTS="rife-4.25" -t gpu-batch-runner:rife .
#
# Nothing secret goes into the image: storage credentials and CONFIG_URL come
# from the environment when the container runs.

# CUDA 12.8 runtime on Ubuntu 24.04. 24.04 and not 22.04: the runner passes
# `-fps_mode` to ffmpeg, which needs ffmpeg >= 5.1; Ubuntu 22.04 ships 4.4,
# 24.04 ships 6.1. The tag is pinned; change it here (or with --build-arg).
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-runtime-ubuntu24.04

# ---- python: the CUDA runtime plus CPython 3.11 ----------------------------
# Ubuntu 24.04's own python3 is 3.12. The project targets and is tested on
# 3.11, which for Ubuntu comes from the deadsnakes PPA (the usual source of
# other CPython versions for Ubuntu, built from Ubuntu's packaging).
# software-properties-common is needed only to add the PPA, so it is removed
# again in the same layer.
FROM ${CUDA_IMAGE} AS python
ARG DEBIAN_FRONTEND=noninteractive
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# DL3008 (pin apt versions): the base image tag pins the Ubuntu release, and
# Ubuntu's archive drops superseded package versions, so exact pins would break
# rebuilds while blocking security updates.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates software-properties-common \
 && add-apt-repository -y ppa:deadsnakes/ppa \
 && apt-get install -y --no-install-recommends python3.11 \
 && apt-get purge -y --auto-remove software-properties-common \
 && rm -rf /var/lib/apt/lists/*

# ---- venv: the pinned requirements, built apart from the final image -------
# python3.11-venv (ensurepip) is needed only to create the venv; the final
# stage copies /opt/venv, whose interpreter links to /usr/bin/python3.11 from
# the shared `python` stage. Every pinned requirement has a manylinux wheel for
# CPython 3.11 except three pure-Python sdists (antlr4-python3-runtime, iopath,
# sam2), so --only-binary keeps compilers out of the build. sam2 is installed
# last without build isolation (its build requires torch, which isolation
# would download a second time) and without its optional CUDA extension
# (SAM2_BUILD_CUDA=0: it only fills small holes in masks).
FROM python AS venv
ARG DEBIAN_FRONTEND=noninteractive
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# DL3008: as above.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11-venv \
 && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /tmp/requirements.txt
RUN python3.11 -m venv /opt/venv \
 && grep -v '^sam2==' /tmp/requirements.txt > /tmp/requirements-wheels.txt \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --only-binary=:all: \
      --no-binary=antlr4-python3-runtime,iopath -r /tmp/requirements-wheels.txt \
 && grep '^sam2==' /tmp/requirements.txt > /tmp/requirements-sam2.txt \
 && SAM2_BUILD_CUDA=0 /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
      --no-build-isolation --no-deps -r /tmp/requirements-sam2.txt

# ---- runtime ----------------------------------------------------------------
FROM python AS runtime
ARG DEBIAN_FRONTEND=noninteractive
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# ffmpeg from Ubuntu: the Debian/Ubuntu package is built with the ffnvcodec
# headers, so h264_nvenc/hevc_nvenc (NVENC), the *_cuvid decoders and the cuda
# hwaccel (NVDEC) are compiled in and load the driver's libnvidia-encode /
# libnvcuvid at run time. The loop below fails the build if a base image ever
# ships an ffmpeg without them, or one too old for `-fps_mode`. (The output is
# captured in a file first: `ffmpeg | grep -q` would end ffmpeg with SIGPIPE,
# which pipefail turns into a failure.)
# DL3008: as above.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && { ffmpeg -hide_banner -encoders; ffmpeg -hide_banner -decoders; \
      ffmpeg -hide_banner -hwaccels; ffmpeg -hide_banner -h full; } > /tmp/ffmpeg-caps.txt 2>&1 \
 && for cap in h264_nvenc hevc_nvenc h264_cuvid hevc_cuvid cuda -fps_mode; do \
      grep -qw -- "$cap" /tmp/ffmpeg-caps.txt || { echo "ffmpeg lacks $cap" >&2; exit 1; }; \
    done \
 && rm /tmp/ffmpeg-caps.txt

# A fixed non-root user (uid 10001: Ubuntu 24.04 images already use 1000 for
# `ubuntu`). It owns only what the job writes: the working directory (relative
# paths in a config, default ./state/<job id>), /state (the state dir compose
# mounts) and the weights cache. The code in /app stays root-owned, read-only.
RUN useradd --no-log-init --uid 10001 --user-group --create-home --shell /usr/sbin/nologin batch \
 && mkdir -p /work /state /opt/weights \
 && chown batch:batch /work /state /opt/weights

COPY --from=venv /opt/venv /opt/venv
# The build context is only what .dockerignore lets through (code, configs,
# the sample clip, scripts); byte-code (and the report template's) is
# compiled now because /app is read-only to the job.
COPY . /app
RUN /opt/venv/bin/python -m compileall -q /app \
 && PYTHONPATH=/app /opt/venv/bin/python -m batch.report.render --compile

# NVIDIA_DRIVER_CAPABILITIES: the CUDA images ask for compute,utility; `video`
# makes the NVIDIA container toolkit mount libnvidia-encode and libnvcuvid,
# without which NVENC/NVDEC cannot open (the encoder then falls back to
# libx264, as the manifest records).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WEIGHTS_DIR=/opt/weights \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,video

LABEL org.opencontainers.image.title="gpu-batch-runner" \
      org.opencontainers.image.description="GPU video job runner: config from CONFIG_URL, results and a manifest to object storage, watchdog included"

USER 10001:10001

# WEIGHTS bakes named model weights into $WEIGHTS_DIR at build time, e.g.
# --build-arg WEIGHTS="rife-4.25 realesr-animevideov3" (`python -m batch.weights
# list` names them); each file is checked against its sha256. Empty (the
# default) skips this step: the job then fetches weights on first use. xargs
# splits the space-separated list into separate arguments (no unquoted
# expansion) and fails the build when a fetch fails.
ARG WEIGHTS=""
RUN if [ -n "$WEIGHTS" ]; then \
      printf '%s\n' "$WEIGHTS" | xargs python -m batch.weights fetch; \
    fi

WORKDIR /work
# run_with_config_batch_sync.py is PID 1: it starts the watchdog (monitor.py)
# first, then the runner, and exits with the runner's code. With no arguments
# it reads CONFIG_URL; pass e.g. `--dry-run --state-dir /state` as the command.
ENTRYPOINT ["python", "/app/run_with_config_batch_sync.py"]
