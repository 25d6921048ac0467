"""The stage registry: config type -> stage class, caps as data, the planned chain."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, get_args

import pytest

from batch.config import (
    STAGE_NAMES,
    AnalyzeStage,
    CropStage,
    InterpolateStage,
    SegmentObject,
    SegmentStage,
    Stage,
    UpscaleStage,
)
from batch.config_rules import Record, choice, field, integer
from batch.stages import ladder
from batch.stages.base import Caps, Frame, StageFile, StageInput
from batch.stages.base import Stage as StageBase
from batch.stages.registry import REGISTRY, StageEntry, StageRegistry, caps_for, plan

REPO = Path(__file__).resolve().parents[2]
SRC = StageInput(640, 360, Fraction(30), total_frames=90)
SEGMENT = SegmentStage(objects=[SegmentObject(id=1, points=[(1, 1)], labels=[1])])


def test_every_config_stage_is_registered_once() -> None:
    configs = set(get_args(Stage))
    assert {e.config for e in REGISTRY.entries} == configs
    assert set(REGISTRY.names) == set(STAGE_NAMES)
    for e in REGISTRY.entries:
        assert e.load().name == e.name  # the class answers to its config's literal


def test_caps_are_data_and_follow_the_spec() -> None:
    assert caps_for(CropStage(width=2, height=2)) == Caps()
    blend = caps_for(InterpolateStage(factor=2))
    assert blend.changes_rate and not blend.needs_rgb and not blend.spans_input and blend.model_kind is None
    assert caps_for(InterpolateStage(factor=2, dedupe=True)).spans_input  # held frames span chunks
    rife = caps_for(InterpolateStage(factor=2, model="rife-4.25"))
    assert rife.needs_rgb and rife.model_kind == "rife" and rife.device_frames
    sr = caps_for(UpscaleStage(scale=2, model="realesr-animevideov3"))
    assert sr.needs_rgb and sr.model_kind == "sr" and sr.device_frames and not sr.changes_rate
    assert caps_for(UpscaleStage(scale=2)) == Caps(resizes=True)  # lanczos alone resizes the planes
    seg = caps_for(SEGMENT)
    assert seg.spans_input and seg.needs_rgb and seg.model_kind == "sam2" and not seg.device_frames
    assert caps_for(AnalyzeStage()).files == (
        StageFile("metrics", "metrics.parquet", "application/vnd.apache.parquet"),
    )


def test_files_in_registry_order_only_for_configured_stages() -> None:
    # the runner uploads them in this order, whatever the order of the stages
    assert [f.name for f in REGISTRY.files([SEGMENT, AnalyzeStage()])] == [
        "metrics.parquet",
        "masks.parquet",
        "overlay.mp4",
    ]
    assert REGISTRY.files([InterpolateStage(factor=2), CropStage(width=2, height=2)]) == []


def test_what_can_be_chunked() -> None:
    two = InterpolateStage(factor=2)
    assert REGISTRY.chunkable([]) and REGISTRY.chunkable([two, CropStage(width=2, height=2)])
    assert not REGISTRY.chunkable([two, two])  # two rate changes: no single chunk boundary
    assert not REGISTRY.chunkable([AnalyzeStage()]) and not REGISTRY.chunkable([SEGMENT])


def test_plan_passes_each_stage_what_the_previous_made() -> None:
    specs = [
        InterpolateStage(factor=2, model="rife-4.25"),
        UpscaleStage(scale=2, model="realesr-animevideov3"),
        CropStage(width=400, height=300, x=100, y=50),
        InterpolateStage(fps=24),
    ]
    p = plan(specs, StageInput(640, 360, Fraction(30), total_frames=90, deadline=123.0))
    got = [(s.context.width, s.context.height, s.context.fps, s.context.total_frames) for s in p.stages]
    assert got == [
        (640, 360, 30, 90),
        (640, 360, 60, 180),
        (1280, 720, 60, 180),
        (400, 300, 60, 180),
    ]
    assert (p.width, p.height, p.fps, p.expected_frames) == (400, 300, Fraction(24), 72)
    # two model stages in a row keep their frames on the device; the next one is not a model
    assert [s.context.keep_on_device for s in p.stages] == [True, False, False, False]
    # the deadline reaches every ladder: no module state
    assert p.stages[0].ladder.deadline == 123.0 and p.stages[1].ladder.deadline == 123.0  # type: ignore[attr-defined]
    assert not hasattr(ladder, "set_deadline") and not hasattr(ladder, "_DEADLINE")


def test_a_model_stage_before_segment_hands_it_numpy() -> None:
    p = plan([InterpolateStage(factor=2, model="rife-4.25"), SEGMENT], SRC)
    assert [s.context.keep_on_device for s in p.stages] == [False, False]


class ToyStage(Record):
    stage: Literal["toy"] = field(choice("toy"), "toy")
    times: int = field(integer(ge=1), 2)


class Toy(StageBase[ToyStage]):
    """Repeats each frame: a stage added by injecting a registry, no file of batch/ edited."""

    name = "toy"
    caps = Caps(changes_rate=True)

    def expected_frames(self, frames_in: int) -> int:
        return frames_in * self.config.times

    def run(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        for f in frames:
            yield from [f] * self.config.times

    def report(self) -> dict[str, Any]:
        return {"name": self.name}


def test_an_injected_registry_plans_a_new_stage() -> None:
    registry = StageRegistry([*REGISTRY.entries, StageEntry(ToyStage, f"{__name__}:Toy")])
    p = registry.plan([ToyStage(times=3), CropStage(width=2, height=2)], SRC)
    assert p.expected_frames == 270 and (p.width, p.height) == (2, 2)
    assert list(p.stages[0].run(iter([1, 2]))) == [1, 1, 1, 2, 2, 2]
    with pytest.raises(TypeError, match="no stage is registered for ToyStage"):
        REGISTRY.plan([ToyStage()], SRC)


def test_a_stage_registered_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="crop"):
        StageRegistry([*REGISTRY.entries, StageEntry(CropStage, "batch.stages.crop:Crop")])
    with pytest.raises(TypeError, match="not a Stage"):
        StageEntry(CropStage, "batch.stages.crop:check_fits").load()


def test_the_registry_imports_stage_modules_only_when_asked() -> None:
    code = (
        "import sys, batch.stages.registry as r, batch.job.pipeline, batch.job.chunks, batch.job.runner; "
        "heavy = [m for m in ('torch', 'sam2', 'batch.stages.segment') if m in sys.modules]; "
        "from batch.config import CropStage; r.caps_for(CropStage(width=2, height=2)); "
        "sys.exit(str(heavy) if heavy else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_job_modules_name_no_stage_class() -> None:
    for name in ("pipeline.py", "chunks.py", "runner.py"):
        text = (REPO / "batch" / "job" / name).read_text()
        for word in ("isinstance(s", "InterpolateStage", "AnalyzeStage", "SegmentStage", "UpscaleStage"):
            assert word not in text, (name, word)
        assert "from batch.stages." not in text.replace("from batch.stages.base", "").replace(
            "from batch.stages.registry", ""
        ).replace("from batch.stages.ladder", ""), name
