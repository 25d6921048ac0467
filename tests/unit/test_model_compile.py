"""``compile:`` falls back to eager when compiling fails, says so, and leaves out-of-memory to the halving;
SR runs ``batch`` frames a call and halves the batch before it tiles.

torch.compile is replaced by a stand-in whose compiled model raises, as a
failed inductor build does at the first call (a real build needs a C++
compiler and minutes of CPU; on a GPU the gpu_check script times the real one).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from model_weights import compact_shapes, sha256_of, write_rife4, write_sr

from batch.config import InterpolateStage, UpscaleStage
from batch.models import compiled, loaded
from batch.stages.base import StageInput
from batch.stages.interpolate import Interpolate
from batch.stages.upscale import Upscale


@pytest.fixture(autouse=True)
def _weights_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIGHTS_DIR", str(tmp_path / "weights"))
    loaded.clear()


def _frames(n: int, h: int = 40, w: int = 56) -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, (h, w + 2 * n, 3), dtype=np.uint8)
    return [np.ascontiguousarray(base[:, 2 * k : 2 * k + w]) for k in range(n)]


def _failing_compile(error: Exception, calls: list[str]) -> Any:
    def fake(model: Any, mode: str = "default", **_: Any) -> Any:
        calls.append(mode)

        def run(*args: Any, **kwargs: Any) -> Any:
            raise error

        return run

    return fake


def _rife(path: Path, **kw: Any) -> InterpolateStage:
    model = {"url": str(path), "sha256": sha256_of(path)}
    return InterpolateStage.parse(
        {"factor": 2, "model": model, "ladder": ["rife-cpu"], "scene_threshold": None, "batch": 2, **kw}
    )


def _run(stage: InterpolateStage, frames: list[np.ndarray]) -> tuple[list[np.ndarray], dict[str, Any]]:
    it = Interpolate(stage, StageInput(56, 40, Fraction(30)))
    return list(it.run(iter(frames))), it.report()


def test_a_compile_failure_runs_eager_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "flownet.pkl"
    write_rife4(path, "4.22-lite")
    frames = _frames(5)
    eager, _ = _run(_rife(path), frames)
    calls: list[str] = []
    failure = RuntimeError("InductorError: no working C++ compiler found\n(long trace)")
    monkeypatch.setattr(torch, "compile", _failing_compile(failure, calls))
    out, report = _run(_rife(path, compile="reduce-overhead"), frames)
    assert calls == ["reduce-overhead"]
    assert len(out) == len(eager) == 10 and all(np.array_equal(a, b) for a, b in zip(out, eager, strict=True))
    step = report["steps"][0]
    assert step["status"] == "used" and step["frames"] == 8  # no frame lost to the failed attempt
    assert step["events"] == [
        "torch.compile (mode reduce-overhead) failed (RuntimeError: InductorError: no working C++ compiler "
        "found); running eager"
    ]
    assert step["backend"]["compile"] == {"mode": "reduce-overhead", "used": False}


def test_compile_none_never_calls_torch_compile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "flownet.pkl"
    write_rife4(path, "4.6")
    calls: list[str] = []
    monkeypatch.setattr(torch, "compile", _failing_compile(RuntimeError("x"), calls))
    _, report = _run(_rife(path), _frames(3))
    assert calls == [] and report["steps"][0]["backend"]["compile"] == {"mode": "none"}
    assert "events" not in report["steps"][0]


def test_torch_compile_refusing_at_once_is_recorded_too() -> None:
    events: list[str] = []

    def refuse() -> Any:
        raise RuntimeError("Python 3.14 is not supported by torch.compile")

    model = compiled.wrap(lambda x: x + 1, "default", events, lambda build: refuse())
    assert model(torch.zeros(1)).item() == 1 and not model.active
    assert events == [
        "torch.compile (mode default) failed (RuntimeError: Python 3.14 is not supported by torch.compile); "
        "running eager"
    ]


def test_out_of_memory_in_a_compiled_model_halves_the_batch_not_the_compilation() -> None:
    events: list[str] = []
    model = compiled.wrap(lambda x: x, "default", events, lambda build: _oom_above(2))
    assert model(torch.zeros(2)).shape == (2,)
    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        model(torch.zeros(4))
    assert model.active and events == []  # still compiled: the rung halves and calls again
    assert model.new_shapes == 2  # each new shape is a warm-up unit for the ladder


def _oom_above(n: int) -> Any:
    def run(x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > n:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return x

    return run


def _sr(path: Path, **kw: Any) -> UpscaleStage:
    model = {"url": str(path), "sha256": sha256_of(path)}
    return UpscaleStage.parse({"scale": 2, "model": model, "ladder": ["model-cpu", "lanczos"], **kw})


def test_sr_batches_agree_with_single_frames(tmp_path: Path) -> None:
    path = tmp_path / "model.pth"
    write_sr(path, compact_shapes(), "params")
    frames = _frames(5)
    one = Upscale(_sr(path, batch=1), StageInput(56, 40, Fraction(30)))
    four = Upscale(_sr(path, batch=4), StageInput(56, 40, Fraction(30)))
    single, batched = list(one.run(iter(frames))), list(four.run(iter(frames)))
    assert len(single) == len(batched) == 5
    assert (
        max(int(np.abs(a.astype(int) - b.astype(int)).max()) for a, b in zip(single, batched, strict=True))
        <= 1
    )
    step = four.report()["steps"][0]
    assert (step["units"], step["frames"], step["backend"]["batch"]) == (2, 5, 4)  # 4 + 1 frames


def test_sr_out_of_memory_halves_the_batch_before_it_tiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.pth"
    write_sr(path, compact_shapes(), "params")
    monkeypatch.setenv("BATCH_TEST_OOM", "upscale:64")  # any tile (or whole frame) of 64 px or more
    up = Upscale(_sr(path, batch=4), StageInput(96, 80, Fraction(30)))
    out = list(up.run(iter(_frames(6, 80, 96))))
    assert len(out) == 6 and out[0].shape == (160, 192, 3)
    step = up.report()["steps"][0]
    assert step["events"] == [
        "out of memory at batch 4; retrying at batch 2",
        "out of memory at batch 2; retrying at batch 1",
        "out of memory at tile 96 px; retrying with tiles of 48 px",
    ]
    assert step["frames"] == 6 and step["backend"]["batch"] == 1 and step["backend"]["tile"] == 48


@pytest.mark.parametrize("value", [True, "yes", "inductor", None])
def test_a_bad_compile_value_names_the_modes(value: object) -> None:
    from batch.config_rules import Invalid

    for cls, spec in ((InterpolateStage, {"factor": 2}), (UpscaleStage, {"scale": 2})):
        with pytest.raises(Invalid, match="'none', 'default', 'reduce-overhead' or 'max-autotune'"):
            cls.parse({**spec, "compile": value})
    with pytest.raises(Invalid, match="batch"):
        UpscaleStage.parse({"scale": 2, "batch": 0})
