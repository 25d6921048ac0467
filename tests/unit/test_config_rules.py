"""The config's own rules (batch.config_rules): what the pydantic models did, and the edges they missed.

Each test can fail: a record that let a bad value through, lost a problem,
changed what it writes out, or could be changed after it was checked.
"""

from __future__ import annotations

import copy
import json
import pickle
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch.config import (
    CropStage,
    EncodeConfig,
    InterpolateStage,
    JobConfig,
    Limits,
    SegmentStage,
    UpscaleStage,
    parse_config,
)
from batch.config_rules import Invalid, Record, field, integer
from batch.errors import ConfigError
from batch.job_id import job_id_of

# Written by the pydantic models this module replaced (2026-12-04, the commit before): the parts of
# an input in chunks carry a fingerprint made of these dumps, so a job resumed after the upgrade must
# make the same text or it would redo every part already uploaded.
EVERY_STAGE = """
inputs: [a.mp4]
output: out/
stages:
  - interpolate: {factor: 5/2, model: rife-4.25, batch: '4', scene_threshold: 1}
  - upscale: {width: 640, tile: '64'}
  - analyze: {dark_threshold: 30}
  - segment:
      objects: [{id: 1, points: [[1, 2.5]], labels: [1]}, {id: 2, box: [0, 0, 4, 4]}]
      ladder: [cuda, smaller]
  - crop: {width: 64, height: 32, x: 2}
encode: {crf: '20', auto_workers: 'no'}
limits: {stall_s: 60}
"""
PYDANTIC_STAGES = (
    '[{"stage": "interpolate", "factor": "5/2", "fps": null, "model": "rife-4.25", "ladder": ["rife",'
    ' "blend", "duplicate"], "batch": 4, "precision": "auto", "compile": "none", "flow_scale": 1.0, "'
    'scene_threshold": 1.0, "dedupe": false, "dedupe_threshold": 0.5}, {"stage": "upscale", "scale": '
    'null, "width": 640, "height": null, "model": null, "ladder": ["lanczos"], "precision": "auto", "'
    'compile": "none", "batch": 4, "tile": 64, "tile_overlap": 16}, {"stage": "analyze", "blur_thresh'
    'old": 0.01, "dark_threshold": 30.0, "duplicate_distance": 2, "duplicate_motion": 1.0, "idle_moti'
    'on": 0.5, "idle_s": 1.0, "cut_threshold": 0.5}, {"stage": "segment", "model": "sam2.1-hiera-tiny'
    '", "smaller_model": null, "objects": [{"id": 1, "frame": 0, "points": [[1.0, 2.5]], "labels": [1'
    '], "box": null}, {"id": 2, "frame": 0, "points": [], "labels": [], "box": [0.0, 0.0, 4.0, 4.0]}]'
    ', "window": 64, "overlay": false, "ladder": ["cuda"]}, {"stage": "crop", "width": 64, "height": '
    '32, "x": 2, "y": 0}]'
)
PYDANTIC_ENCODE = (
    '{"codec": "auto", "crf": 20, "preset": "medium", "container": "mp4", "pix_fmt": "source", '
    '"auto_workers": false, "auto_preset": null, "colour_on_device": null}'
)
PYDANTIC_LIMITS = '{"max_runtime_s": 21600.0, "stall_s": 60.0, "chunk_s": 30.0, "heartbeat_s": 5.0}'


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return info.value.problems


def test_the_dumps_are_the_text_the_pydantic_models_wrote() -> None:
    cfg = parse_config(EVERY_STAGE)
    assert json.dumps([s.to_data() for s in cfg.stages]) == PYDANTIC_STAGES
    assert json.dumps(cfg.encode.to_data()) == PYDANTIC_ENCODE
    assert json.dumps(cfg.limits.to_data()) == PYDANTIC_LIMITS


def test_a_record_cannot_be_changed_after_it_was_checked() -> None:
    cfg = parse_config(EVERY_STAGE)
    with pytest.raises(AttributeError, match="frozen"):
        cfg.limits.stall_s = 0.001  # type: ignore[misc]
    with pytest.raises(AttributeError, match="frozen"):
        del cfg.encode.crf
    with pytest.raises(TypeError, match="no field"):
        cfg.encode.replace(crfs=3)
    faster = cfg.replace(encode=cfg.encode.replace(preset="veryfast"))
    assert faster.encode.preset == "veryfast" and cfg.encode.preset == "medium"
    assert "preset" in faster.encode.given and "preset" not in cfg.encode.given
    assert faster != cfg and faster.replace(encode=cfg.encode) == cfg


def test_building_a_record_in_code_checks_it_as_a_config_would() -> None:
    assert InterpolateStage(factor=2).factor == Fraction(2) and InterpolateStage(factor=2).ladder == [
        "blend",
        "duplicate",
    ]
    with pytest.raises(Invalid) as info:
        InterpolateStage(factor="x", batch=0, bogus=1)
    said = str(info.value)
    assert (
        "factor: expected a number or a ratio" in said
        and "batch: Input should be greater than or equal to 1" in said
    )
    assert "bogus: unknown key" in said and len(info.value.problems) == 3
    with pytest.raises(Invalid, match="give exactly one of factor"):
        InterpolateStage()
    with pytest.raises(Invalid, match="must be even"):
        CropStage(width=3, height=2)


@pytest.mark.parametrize(
    ("where", "text"),
    [
        ("limits.stall_s", "limits: {stall_s: yes}"),
        ("watchdog.confirm", "watchdog: {confirm: true}"),
        ("encode.crf", "encode: {crf: false}"),
        ("stages.0.upscale.width", "stages: [{upscale: {width: true}}]"),
    ],
)
def test_a_boolean_is_no_number(where: str, text: str) -> None:
    """pydantic read ``stall_s: yes`` as 1 s (a watchdog that kills every job); now it is a problem."""
    (problem,) = problems_of(f"inputs: [a.mp4]\noutput: out/\n{text}\n")
    assert problem.startswith(f"{where}: Input should be a valid")


def test_a_short_stall_is_checked_against_the_default_heartbeat_too() -> None:
    """stall_s: 8 with the 5 s default beat: the watchdog would take a healthy job for a hung one."""
    (problem,) = problems_of("inputs: [a.mp4]\noutput: out/\nlimits: {stall_s: 8}\n")
    assert problem.startswith("limits.heartbeat_s: heartbeat_s (5) must be at most half of stall_s (8)")
    assert (
        parse_config("inputs: [a.mp4]\noutput: out/\nlimits: {stall_s: 8, heartbeat_s: 4}").limits.stall_s
        == 8
    )


def test_every_problem_of_every_level_is_listed_once_with_its_path() -> None:
    problems = problems_of(
        "inputs: [a.mp4, 3]\noutput: out/\n"
        "stages: [{interpolate: {factor: 0, precision: fp8}}, {warp: {}}, 7, {crop: {width: 1}}]\n"
        "encode: {crf: 52, preset: Medium}\nwatchdog: {confirm: 0, nope: 1}\nzzz: 1\n"
    )
    where = [p.split(": ", 1)[0] for p in problems]
    assert where == [
        "inputs.1",
        "stages.0.interpolate.factor",
        "stages.0.interpolate.precision",
        "stages.1",
        "stages.2",
        "stages.3.crop.width",
        "stages.3.crop.height",
        "encode.crf",
        "encode.preset",
        "watchdog.confirm",
        "watchdog.nope",
        "zzz",
    ]
    assert "known stages: ['interpolate', 'upscale', 'analyze', 'segment', 'crop']" in problems[3]


def test_a_job_id_ending_in_a_newline_is_refused_everywhere() -> None:
    """``$`` matches before a final newline: the id would name a state dir ``abc\\n`` and bucket keys."""
    (problem,) = problems_of('job_id: "abc\\n"\ninputs: [a.mp4]\noutput: out/\n')
    assert problem.startswith("job_id: String should match pattern")
    assert job_id_of({"job_id": "abc\n"}) is None and job_id_of({"job_id": "abc"}) == "abc"


@pytest.mark.parametrize(
    ("text", "crf"), [("'18.0'", 18), ("' 20 '", 20), ("'1_8'", 18), ("19.0", 19), ("'+7'", 7)]
)
def test_a_whole_number_may_be_written_as_text(text: str, crf: int) -> None:
    assert parse_config(f"inputs: [a.mp4]\noutput: out/\nencode: {{crf: {text}}}\n").encode.crf == crf


@pytest.mark.parametrize("text", ["'١٨'", "'18.5'", "'1e1'", "'0x12'", "'18 kbps'", "''"])
def test_what_is_not_a_whole_number_is_refused(text: str) -> None:
    (problem,) = problems_of(f"inputs: [a.mp4]\noutput: out/\nencode: {{crf: {text}}}\n")
    assert problem.startswith("encode.crf: Input should be a valid integer")
    (problem,) = problems_of("inputs: [a.mp4]\noutput: out/\nlimits: {stall_s: '١٨'}\n")
    assert problem == "limits.stall_s: Input should be a valid number, unable to parse string as a number"


def test_text_and_whole_numbers_are_read_as_before() -> None:
    cfg = parse_config(
        "inputs: [a.mp4]\noutput: out/\nencode: {crf: ' 20 ', auto_workers: 'off', colour_on_device: 1}\n"
        "watchdog: {confirm: 2.0, interval_s: '0.5'}\nstages: [{upscale: {scale: 2, tile: 128.0}}]\n"
    )
    assert (cfg.encode.crf, cfg.encode.auto_workers, cfg.encode.colour_on_device) == (20, False, True)
    assert (cfg.watchdog.confirm, cfg.watchdog.interval_s) == (2, 0.5)
    assert isinstance(cfg.stages[0], UpscaleStage) and cfg.stages[0].tile == 128
    (problem,) = problems_of("inputs: [a.mp4]\noutput: out/\nwatchdog: {confirm: 2.5}\n")
    assert problem == "watchdog.confirm: Input should be a valid integer, got a number with a fractional part"


_RATIOS = st.sampled_from([2, "5/2", "30000/1001", 1.5, "3"])
_STAGE_DATA = st.one_of(
    st.fixed_dictionaries(
        {"factor": _RATIOS},
        optional={
            "batch": st.integers(1, 256),
            "scene_threshold": st.none() | st.floats(0.01, 1),
            "dedupe": st.booleans(),
            "model": st.sampled_from(["rife-4.25", "rife-4.6"]),
            "flow_scale": st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0]),
        },
    ).map(lambda d: {"interpolate": d}),
    st.fixed_dictionaries(
        {"scale": st.sampled_from([1, 2, "3/2", 4])},
        optional={"tile": st.sampled_from(["auto", 32, 4096, "64"]), "tile_overlap": st.integers(0, 128)},
    ).map(lambda d: {"upscale": d}),
    st.fixed_dictionaries(
        {}, optional={"dark_threshold": st.floats(0, 255), "idle_s": st.floats(0.01, 60)}
    ).map(lambda d: {"analyze": d}),
    st.fixed_dictionaries(
        {"objects": st.just([{"id": 1, "points": [[1, 2]], "labels": [1]}])},
        optional={"window": st.integers(2, 4096), "overlay": st.booleans()},
    ).map(lambda d: {"segment": d}),
    st.fixed_dictionaries(
        {
            "width": st.integers(1, 2000).map(lambda n: 2 * n),
            "height": st.integers(1, 2000).map(lambda n: 2 * n),
        }
    ).map(lambda d: {"crop": d}),
)
_CONFIGS = st.fixed_dictionaries(
    {"inputs": st.just(["a.mp4"]), "output": st.sampled_from(["out/", "s3://b/out", "b2://b/x/"])},
    optional={
        "stages": st.lists(_STAGE_DATA, max_size=4),
        "encode": st.fixed_dictionaries(
            {},
            optional={
                "crf": st.integers(0, 51),
                "preset": st.sampled_from(["veryfast", "medium"]),
                "auto_preset": st.none() | st.booleans(),
            },
        ),
        "limits": st.fixed_dictionaries(
            {}, optional={"max_runtime_s": st.floats(1, 1e6), "chunk_s": st.floats(0.1, 600)}
        ),
        "watchdog": st.fixed_dictionaries({}, optional={"confirm": st.integers(1, 100)}),
    },
)


@settings(max_examples=150, deadline=None)
@given(data=_CONFIGS)
def test_what_a_record_writes_out_reads_back_as_the_same_record(data: dict[str, Any]) -> None:
    cfg = parse_config(json.dumps(data))
    written = cfg.to_data()
    assert json.loads(json.dumps(written)) == written  # plain JSON
    again = JobConfig.parse(written)
    assert again == cfg and hash(again) == hash(cfg)
    assert again.to_data() == written  # a fixed point: a second round changes nothing


def test_records_compare_by_value_and_kind() -> None:
    assert Limits(stall_s=60) == Limits(stall_s=60.0) and Limits(stall_s=60) != Limits(stall_s=61)
    same = Limits().replace(stall_s=900)  # an int where the rule would have made 900.0
    assert same == Limits() and hash(same) == hash(Limits())
    with pytest.raises(Invalid, match="finite"):
        Limits(stall_s=10**400)  # past a float's range: a problem, not an OverflowError
    assert EncodeConfig() != Limits() and EncodeConfig() != "EncodeConfig()"
    seg = SegmentStage(objects=[{"id": 1, "box": [0, 0, 2, 2]}])
    assert seg == SegmentStage.parse(seg.to_data()) and len({seg, SegmentStage.parse(seg.to_data())}) == 1


def test_a_field_declared_again_in_a_subclass_replaces_the_inherited_one() -> None:
    class Base(Record):
        x: int = field(integer(), 1)
        y: int = field(integer(), 2)

    class Child(Base):
        x: int = field(integer(ge=10), 10)
        z: int = field(integer(), 3)

    assert [f.name for f in Child.FIELDS] == ["x", "y", "z"]
    assert Child().to_data() == {"x": 10, "y": 2, "z": 3}
    with pytest.raises(Invalid) as info:
        Child(x=5)
    assert info.value.problems == [(("x",), "Input should be greater than or equal to 10")]


def test_a_record_survives_pickle_and_deepcopy_whole() -> None:
    """Frozen by __setattr__: copying must not go through it (or lose what was given)."""
    cfg = parse_config(EVERY_STAGE)
    for copied in (pickle.loads(pickle.dumps(cfg)), copy.deepcopy(cfg)):
        assert copied == cfg and copied.encode.given == frozenset({"crf", "auto_workers"})
        assert copied.encode.preset_may_change and not copied.encode.auto_workers
