"""The crop stage: config checks, the fit check against the received size, both frame layouts."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch.config import CropStage, parse_config
from batch.config_rules import Invalid
from batch.errors import ConfigError
from batch.media.layout import RGB, YUV420, FrameLayout
from batch.stages.base import StageInput
from batch.stages.crop import Crop
from batch.stages.registry import REGISTRY, caps_for, plan


def _config(crop: str) -> str:
    return f"inputs: [a.mp4]\noutput: out/\nstages: [{{crop: {crop}}}]"


def _planes(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, FrameLayout(YUV420, width, height).frame_bytes, dtype=np.uint8)


def _split(flat: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, c = width * height, (width // 2) * (height // 2)
    return (
        flat[:y].reshape(height, width),
        flat[y : y + c].reshape(height // 2, width // 2),
        flat[y + c :].reshape(height // 2, width // 2),
    )


def test_crop_is_a_registered_stage_that_keeps_yuv_and_chunks() -> None:
    cfg = parse_config(_config("{width: 64, height: 32, x: 2, y: 4}"))
    assert cfg.stages == [CropStage(width=64, height=32, x=2, y=4)]
    assert REGISTRY.entry(cfg.stages[0]).name == "crop"
    caps = caps_for(cfg.stages[0])
    assert not caps.needs_rgb and not caps.spans_input and not caps.changes_rate and caps.files == ()
    assert REGISTRY.chunkable(cfg.stages) and not REGISTRY.needs_rgb(cfg.stages)


@pytest.mark.parametrize(
    ("crop", "problem"),
    [
        ("{width: 0, height: 32}", "stages.0.crop.width: must be at least 2 pixels, got 0"),
        ("{width: 64, height: -2}", "stages.0.crop.height: must be at least 2 pixels, got -2"),
        ("{width: 63, height: 32}", "stages.0.crop.width: must be even for 4:2:0 video"),
        ("{width: 64, height: 32, x: 3}", "stages.0.crop.x: must be even for 4:2:0 video (colour is stored"),
        ("{width: 64, height: 32, y: -2}", "stages.0.crop.y: must be 0 or more, got -2"),
        ("{width: 64}", "stages.0.crop.height: Field required"),
        ("{width: true, height: 32}", "stages.0.crop.width: Input should be a valid integer"),
        ("{width: 64, height: 32, left: 2}", "stages.0.crop.left: unknown key"),
    ],
)
def test_bad_crop_configs_name_the_field_and_the_fix(crop: str, problem: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(_config(crop))
    assert any(p.startswith(problem) for p in e.value.problems), e.value.problems


def test_odd_numbers_get_the_even_neighbours_as_the_fix() -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(_config("{width: 101, height: 32}"))
    assert "use 100 or 102" in e.value.problems[0]


def test_a_crop_outside_the_frame_fails_when_the_size_is_known() -> None:
    spec = CropStage(width=640, height=360, x=100, y=2)
    with pytest.raises(ConfigError) as e:
        plan([spec], StageInput(640, 360, Fraction(30)))
    err = e.value
    assert "640x360 window at (100, 2) does not fit in the 640x360 frames" in err.message
    assert err.problems == [
        "x + width = 100 + 640 = 740 > frame width 640",
        "y + height = 2 + 360 = 362 > frame height 360",
    ]
    assert err.hint and "x + width <= 640 and y + height <= 360" in err.hint
    # the same crop fits after an upscale: it is checked against what it receives
    from batch.config import UpscaleStage

    p = plan([UpscaleStage(scale=2), spec], StageInput(640, 360, Fraction(30)))
    assert (p.width, p.height) == (640, 360)


def test_planar_crop_takes_the_same_window_from_every_plane() -> None:
    rng = np.random.default_rng(0)
    frame = _planes(16, 8, rng)
    stage = Crop(CropStage(width=6, height=4, x=4, y=2), StageInput(16, 8, Fraction(30)))
    out = list(stage.run(iter([frame, frame])))
    assert len(out) == 2 and stage.report()["frames_out"] == 2
    assert out[0].shape == (FrameLayout(YUV420, 6, 4).frame_bytes,)
    y, u, v = _split(frame, 16, 8)
    oy, ou, ov = _split(out[0], 6, 4)
    assert np.array_equal(oy, y[2:6, 4:10])
    assert np.array_equal(ou, u[1:3, 2:5]) and np.array_equal(ov, v[1:3, 2:5])
    assert stage.report()["size_out"] == [6, 4] and stage.report()["size_in"] == [16, 8]


@settings(max_examples=150, deadline=None)
@given(
    frame_w=st.integers(1, 24).map(lambda n: 2 * n),
    frame_h=st.integers(1, 24).map(lambda n: 2 * n),
    w=st.integers(-2, 52),
    h=st.integers(-2, 52),
    x=st.integers(-2, 52),
    y=st.integers(-2, 52),
    seed=st.integers(0, 2**16),
)
def test_fuzz_crop_params_against_frame_sizes(
    frame_w: int, frame_h: int, w: int, h: int, x: int, y: int, seed: int
) -> None:
    valid = w >= 2 and h >= 2 and x >= 0 and y >= 0 and not (w % 2 or h % 2 or x % 2 or y % 2)
    if not valid:
        with pytest.raises(Invalid):
            CropStage(width=w, height=h, x=x, y=y)
        return
    spec = CropStage(width=w, height=h, x=x, y=y)
    context = StageInput(frame_w, frame_h, Fraction(30))
    if x + w > frame_w or y + h > frame_h:
        with pytest.raises(ConfigError, match="does not fit"):
            Crop(spec, context)
        return
    stage = Crop(spec, context)
    assert stage.size_out == (w, h)
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, FrameLayout(RGB, frame_w, frame_h).shape, dtype=np.uint8)
    out = stage.crop(rgb)
    assert out.shape == FrameLayout(RGB, w, h).shape and out.flags.c_contiguous
    assert np.array_equal(out, rgb[y : y + h, x : x + w])
    planar = _planes(frame_w, frame_h, rng)
    out = stage.crop(planar)
    assert out.shape == FrameLayout(YUV420, w, h).shape
    for got, src, k in zip(_split(out, w, h), _split(planar, frame_w, frame_h), (1, 2, 2), strict=True):
        assert np.array_equal(got, src[y // k : (y + h) // k, x // k : (x + w) // k])
