"""Frames per second of each model rung, for ``scripts/bench.py --models``.

Weights are random in the official layouts (tests/model_weights.py): speed
does not depend on the values, and the real files cannot be downloaded on the
machines this runs on. With CUDA, each model rung is measured in fp32 and in
fp16 (bf16 where the model lacks fp16), and the GPU's busy share is sampled
from NVML while it runs; on the CPU only fp32 is measured.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


class GpuBusy:
    """The share of samples in which the GPU reported a kernel running (NVML utilisation.gpu)."""

    def __init__(self) -> None:
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> GpuBusy:
        try:
            import pynvml  # type: ignore[import-not-found]

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception:  # no NVML: no figure
            return self

        def sample() -> None:
            while not self._stop.wait(0.05):
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


def _frames(n: int, width: int, height: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (height, width + 4 * n, 3), dtype=np.uint8)
    return [np.ascontiguousarray(base[:, 4 * k : 4 * k + width]) for k in range(n)]  # a pan


def _time(make: Any, frames: list[np.ndarray], repeat_warm: bool = True) -> tuple[int, float, float | None]:
    if repeat_warm:
        list(make().run(iter(frames[:3])))  # warm-up: model load, cudnn autotune
    with GpuBusy() as busy:
        started = time.perf_counter()
        out = list(make().run(iter(frames)))
        seconds = time.perf_counter() - started
    return len(out), seconds, busy.share


def _row(rung: str, size: str, count: int, seconds: float, busy: float | None = None) -> dict:
    return {"rung": rung, "size": size, "frames_out": count, "seconds": round(seconds, 3),
            "fps_out": round(count / seconds, 2), "gpu_busy": busy}  # fmt: skip


def bench_models(
    width: int = 640, height: int = 360, sr_width: int = 320, sr_height: int = 180
) -> list[dict]:
    import torch
    from model_weights import compact_shapes, realesrgan_rrdb_shapes, sha256_of, write_rife4, write_sr

    from batch.config import InterpolateStage, UpscaleStage
    from batch.models import loaded
    from batch.stages.base import StageInput
    from batch.stages.interpolate import Interpolate
    from batch.stages.upscale import Upscale

    at_30 = StageInput(0, 0, Fraction(30))
    sr_input = StageInput(sr_width, sr_height, Fraction(30))

    cuda = torch.cuda.is_available()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        import os

        os.environ["WEIGHTS_DIR"] = str(work / "weights")
        files = {}
        for version in ("4.25", "4.22-lite", "4.6"):
            path = work / f"rife-{version}.pkl"
            write_rife4(path, version)
            files[f"rife {version}"] = ("rife", path)
        compact, rrdb = work / "animevideov3-layout.pth", work / "x4plus-layout.pth"
        write_sr(compact, compact_shapes(nf=64, convs=16), "params")
        write_sr(rrdb, realesrgan_rrdb_shapes(nf=64, gc=32, blocks=23), "params_ema")
        files["realesr-animevideov3 layout"] = ("sr", compact)
        files["RealESRGAN_x4plus layout"] = ("sr", rrdb)

        rungs = ["rife", "model"] if cuda else ["rife-cpu", "model-cpu"]
        precisions = ["fp32", "fp16"] if cuda else ["fp32"]
        n = 24 if cuda else 8
        for label, (kind, path) in files.items():
            model = {"url": str(path), "sha256": sha256_of(path)}
            for precision in precisions:
                loaded.clear()
                if kind == "rife":
                    stage = InterpolateStage.parse(
                        {"factor": 2, "model": model, "ladder": [rungs[0]], "precision": precision,
                         "scene_threshold": None, "batch": 8}
                    )  # fmt: skip
                    frames = _frames(n, width, height)
                    count, seconds, busy = _time(lambda s=stage: Interpolate(s, at_30), frames)
                    size = f"{width}x{height}"
                else:
                    stage = UpscaleStage.parse(
                        {"scale": 4, "model": model, "ladder": [rungs[1]], "precision": precision}
                    )
                    frames = _frames(max(2, n // 4), sr_width, sr_height)
                    count, seconds, busy = _time(lambda s=stage: Upscale(s, sr_input), frames)
                    size = f"{sr_width}x{sr_height} -> x4"
                rows.append(
                    _row(f"{label} ({'cuda' if cuda else 'cpu'}, {precision})", size, count, seconds, busy)
                )
        frames = _frames(n * 4, width, height)
        stage = InterpolateStage(factor=2, ladder=["blend"], scene_threshold=None)
        count, seconds, _ = _time(lambda: Interpolate(stage, at_30), frames)
        rows.append(_row("blend", f"{width}x{height}", count, seconds))
        frames = _frames(8, sr_width, sr_height)
        stage_up = UpscaleStage(scale=4)
        count, seconds, _ = _time(lambda: Upscale(stage_up, sr_input), frames)
        rows.append(_row("lanczos", f"{sr_width}x{sr_height} -> x4", count, seconds))
    return rows
