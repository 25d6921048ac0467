import re
from fractions import Fraction

import pytest

from batch.config import InterpolateStage, UpscaleStage, parse_config, resolved
from batch.errors import EXIT_CONFIG, ConfigError

GOOD = """
job_id: trailer-60fps
inputs: [s3://bucket/in/trailer.mp4, s3://bucket/more/]
stages:
  - interpolate: {fps: 60000/1001}
  - upscale: {scale: 2}
encode: {codec: auto, crf: 18, preset: medium}
output: s3://bucket/out/trailer-60fps
instance: {provider: auto, on_exit: stop}
limits: {max_runtime_s: 21600, stall_s: 900, chunk_s: 30}
"""


def test_full_config_parses_to_typed_objects() -> None:
    cfg = parse_config(GOOD)
    assert cfg.job_id == "trailer-60fps"
    assert isinstance(cfg.stages[0], InterpolateStage)
    assert cfg.stages[0].fps == Fraction(60000, 1001)
    assert isinstance(cfg.stages[1], UpscaleStage) and cfg.stages[1].scale == 2
    assert cfg.output == "s3://bucket/out/trailer-60fps/"  # a prefix always ends in /
    assert (cfg.instance.on_success, cfg.instance.on_failure) == ("stop", "stop")


def test_json_is_accepted_and_resolves_defaults() -> None:
    cfg = parse_config('{"inputs": ["a.mp4"], "output": "out/"}')
    data = resolved(cfg)
    assert data["encode"] == {
        "codec": "auto",
        "crf": 18,
        "preset": "medium",
        "container": "mp4",
        "pix_fmt": "source",
        "auto_workers": True,
        "auto_preset": None,
        "colour_on_device": None,
    }
    assert data["instance"]["on_success"] == "destroy" and data["instance"]["on_failure"] == "stop"
    assert data["limits"]["chunk_s"] == 30


def test_job_id_is_derived_from_the_config_and_stable() -> None:
    a = parse_config("inputs: [a.mp4]\noutput: out/")
    b = parse_config("output: out/\ninputs: [a.mp4]")
    c = parse_config("inputs: [b.mp4]\noutput: out/")
    assert a.job_id == b.job_id and a.job_id and a.job_id.startswith("job-")
    assert c.job_id != a.job_id


def test_every_problem_is_listed_with_its_path() -> None:
    bad = """
inputs: []
stages:
  - interpolate: {factor: -2, foo: 1}
  - upscal: {scale: 2}
  - upscale: {scale: 2, width: 100}
encode: {crf: 99, codec: h266}
output: https://example.com/out/
bogus: 1
"""
    with pytest.raises(ConfigError) as info:
        parse_config(bad, source="bad.yaml")
    err = info.value
    assert err.exit_code == EXIT_CONFIG
    text = str(err)
    for path in (
        "inputs:",
        "stages.0.interpolate.factor: must be greater than 0",
        "stages.0.interpolate.foo: unknown key",
        "stages.1: each stage is a one-key mapping",
        "stages.2.upscale: give either scale",
        "encode.crf:",
        "encode.codec:",
        "output: output cannot be an http(s) URL",
        "bogus: unknown key",
    ):
        assert path in text, path
    assert len(err.problems) == 9
    assert "bad.yaml" in text


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("inputs: [a\n  b: c", "not valid YAML or JSON at line"),
        ("- just\n- a list", "must be a mapping"),
        ("", "must be a mapping"),
        ('{"inputs": ["a"', "not valid YAML or JSON"),
    ],
)
def test_malformed_configs_name_the_problem(text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_config(text)


def test_interpolate_needs_exactly_one_target() -> None:
    with pytest.raises(ConfigError, match="exactly one of factor"):
        parse_config("inputs: [a]\noutput: o/\nstages: [{interpolate: {factor: 2, fps: 60}}]")
    with pytest.raises(ConfigError, match="exactly one of factor"):
        parse_config("inputs: [a]\noutput: o/\nstages: [{interpolate: {}}]")


def test_unknown_ladder_rung_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"unknown rung\(s\) \['dain'\]"):
        parse_config("inputs: [a]\noutput: o/\nstages: [{interpolate: {factor: 2, ladder: [dain]}}]")


def test_model_rung_without_a_model_is_rejected() -> None:
    with pytest.raises(ConfigError, match="names a model rung but no model is given"):
        parse_config("inputs: [a]\noutput: o/\nstages: [{interpolate: {factor: 2, ladder: [rife, blend]}}]")


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("rife-9.9", "unknown model 'rife-9.9'; known: rife-4.6"),
        ("realesr-animevideov3", "is a sr model; this stage needs a rife model"),
        ("{url: s3://b/f.pkl}", "exactly url and sha256"),
        ("{url: s3://b/f.pkl, sha256: abc}", "sha256 must be 64 hex digits"),
        ("{url: s3://b/f.pkl, sha256: " + "a" * 64 + ", size: 3}", "exactly url and sha256"),
        ("7", "give a registry name"),
    ],
)
def test_bad_model_references_are_rejected(model: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(f"inputs: [a]\noutput: o/\nstages: [{{interpolate: {{factor: 2, model: {model}}}}}]")


def test_a_model_sets_the_default_ladder() -> None:
    cfg = parse_config(
        "inputs: [a]\noutput: o/\nstages: [{interpolate: {factor: 2, model: rife-4.25}}, "
        "{upscale: {scale: 2, model: realesr-animevideov3}}, {upscale: {scale: 2}}]"
    )
    assert [s.ladder for s in cfg.stages] == [
        ["rife", "blend", "duplicate"],
        ["model", "lanczos"],
        ["lanczos"],
    ]
    assert cfg.stages[0].model.sha256 == "6615790efd627772917205db291f51cd392528a157ecbb2ecaeec3bff8eb6de2"


def test_ffv1_needs_mkv() -> None:
    with pytest.raises(ConfigError, match="ffv1 needs container: mkv"):
        parse_config("inputs: [a]\noutput: o/\nencode: {codec: ffv1}")


def test_a_rung_named_twice_is_rejected() -> None:
    with pytest.raises(ConfigError, match="a rung is named twice"):
        parse_config("inputs: [a]\noutput: o/\nstages: [{upscale: {scale: 2, ladder: [lanczos, lanczos]}}]")
