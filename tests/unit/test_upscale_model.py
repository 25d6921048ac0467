"""Upscaling through spandrel: official Real-ESRGAN layouts (random weights), tiling, OOM, precision.

Runs on the CPU (no GPU on the test machines); the CUDA rung is recorded as unavailable.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from model_weights import compact_shapes, realesrgan_rrdb_shapes, sha256_of, write_rife4, write_sr

from batch.config import UpscaleStage
from batch.errors import WeightsWrongArchitecture
from batch.models import loaded, sr
from batch.models.device import pick_dtype
from batch.stages.base import StageInput
from batch.stages.upscale import Upscale


@pytest.fixture(autouse=True)
def _weights_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIGHTS_DIR", str(tmp_path / "weights"))
    loaded.clear()


def _frames(n: int, h: int = 40, w: int = 56) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def _stage(path: Path, **kw: object) -> UpscaleStage:
    model = {"url": str(path), "sha256": sha256_of(path)}
    return UpscaleStage.parse({"scale": 2, "model": model, "ladder": ["model", "model-cpu", "lanczos"], **kw})


@pytest.mark.parametrize(
    ("shapes", "wrapper", "architecture"),
    [(realesrgan_rrdb_shapes(), "params_ema", "ESRGAN"), (compact_shapes(), "params", "RealESRGAN Compact")],
)
def test_real_esrgan_layouts_load_and_resize_to_the_requested_scale(
    tmp_path: Path, shapes: dict, wrapper: str, architecture: str
) -> None:
    path = tmp_path / "model.pth"
    write_sr(path, shapes, wrapper)
    up = Upscale(_stage(path), StageInput(56, 40, Fraction(30)))
    out = list(up.run(iter(_frames(3))))
    assert len(out) == 3 and all(o.shape == (80, 112, 3) and o.dtype == np.uint8 for o in out)
    report = up.report()
    assert report["steps"][0]["status"] == "unavailable" and "CUDA" in report["steps"][0]["reason"]
    backend = report["steps"][1]["backend"]
    assert (backend["architecture"], backend["model_scale"], backend["dtype"]) == (architecture, 4, "float32")


@pytest.mark.parametrize(
    ("shapes", "wrapper", "overlap"),
    [(compact_shapes(), "params", 16), (realesrgan_rrdb_shapes(), "params_ema", 24)],
)
def test_tiled_and_whole_frame_agree(tmp_path: Path, shapes: dict, wrapper: str, overlap: int) -> None:
    path = tmp_path / "model.pth"
    write_sr(path, shapes, wrapper)
    model = sr.load(path, "m")
    x = torch.rand(1, 3, 72, 100)
    with torch.inference_mode():
        whole = sr.run_tiled(model, x, 4, None, 0)
        tiled = sr.run_tiled(model, x, 4, 32, overlap)
        seams = sr.run_tiled(model, x, 4, 32, 0)
    assert tiled.shape == whole.shape == (1, 3, 288, 400)
    error = float((tiled - whole).abs().max())
    assert error < 2e-3, error
    assert float((seams - whole).abs().max()) > 10 * max(error, 1e-4)  # without overlap the seams show


def test_out_of_memory_switches_to_tiles_and_keeps_every_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.pth"
    write_sr(path, compact_shapes(), "params")
    # documented hook: any tile of 64 px or more "runs out of memory"
    monkeypatch.setenv("BATCH_TEST_OOM", "upscale:64")
    up = Upscale(_stage(path, batch=1), StageInput(96, 80, Fraction(30)))  # batch halving: test_model_compile
    out = list(up.run(iter(_frames(4, 80, 96))))
    assert len(out) == 4 and out[0].shape == (160, 192, 3)
    step = up.report()["steps"][1]
    assert step["events"] == ["out of memory at tile 96 px; retrying with tiles of 48 px"]
    assert step["backend"]["tile"] == 48 and step["frames"] == 4


def test_out_of_memory_at_the_smallest_tile_falls_to_lanczos(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.pth"
    write_sr(path, compact_shapes(), "params")
    monkeypatch.setenv("BATCH_TEST_OOM", "upscale:1")
    up = Upscale(_stage(path), StageInput(56, 40, Fraction(30)))
    assert len(list(up.run(iter(_frames(2))))) == 2
    report = up.report()
    assert report["used"] == "lanczos"
    assert (
        report["steps"][1]["status"] == "failed" and "out of memory at tile" in report["steps"][1]["reason"]
    )


def test_a_rife_file_is_not_an_upscaler(tmp_path: Path) -> None:
    path = tmp_path / "flownet.pkl"
    write_rife4(path, "4.6")
    with pytest.raises(WeightsWrongArchitecture, match="not a model spandrel can load"):
        sr.load(path, "flownet")


@pytest.mark.parametrize(
    ("precision", "half", "bf16", "expected"),
    [
        ("auto", True, True, torch.float16),  # Real-ESRGAN, SPAN: fp16 on CUDA
        ("auto", False, True, torch.bfloat16),  # SwinIR, HAT: no fp16, bf16 instead
        ("auto", False, False, torch.float32),
        ("fp32", True, True, torch.float32),
        ("bf16", True, True, torch.bfloat16),
    ],
)
def test_precision_follows_what_the_model_supports(
    precision: str, half: bool, bf16: bool, expected: torch.dtype
) -> None:
    assert pick_dtype(precision, torch.device("cuda"), half=half, bf16=bf16) == expected
    assert pick_dtype(precision, torch.device("cpu"), half=half, bf16=bf16) == torch.float32


def test_fixed_shapes_give_the_model_one_batch_size_and_the_same_frames(tmp_path: Path) -> None:
    """On CUDA a short last unit is filled with its last frame (one shape for cuDNN's autotuner and
    torch.compile); forced on here on the CPU: the network sees one batch size, the frames are those of
    the unfilled path (within one code value) and none is lost or repeated."""
    from batch.models import sr_rung

    path = tmp_path / "model.pth"
    write_sr(path, compact_shapes(), "params")
    frames = _frames(7)

    def run(fixed: bool) -> tuple[list[np.ndarray], list[int]]:
        sizes: list[int] = []
        original = sr_rung.SrRung.__init__

        def init(self: sr_rung.SrRung, *a: object, **k: object) -> None:
            original(self, *a, **k)  # type: ignore[arg-type]
            self.fixed_shapes = fixed

        hook = torch.nn.modules.module.register_module_forward_pre_hook(
            lambda m, args: sizes.append(args[0].shape[0]) if isinstance(m, torch.nn.Conv2d) else None
        )
        try:
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(sr_rung.SrRung, "__init__", init)
                up = Upscale(_stage(path, batch=3, ladder=["model-cpu"]), StageInput(56, 40, Fraction(30)))
                out = [np.asarray(f) for f in up.run(iter(frames))]
        finally:
            hook.remove()
        return out, sizes

    plain, plain_sizes = run(False)
    filled, filled_sizes = run(True)
    assert set(plain_sizes) == {3, 1}  # 7 frames in units of 3: the tail is a new shape
    assert set(filled_sizes) == {3}
    assert len(filled) == len(plain) == 7
    diff = max(int(np.abs(x.astype(int) - y.astype(int)).max()) for x, y in zip(filled, plain, strict=True))
    assert diff <= 1
