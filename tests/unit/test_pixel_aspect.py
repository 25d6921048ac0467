"""Anamorphic pixels: ffprobe's sample aspect ratio read, carried through the stages, written back.

A DVD's 720x480 is shown at 16:9 (pixels 32:27 wide), HDV's 1440x1080 too (4:3). Frames through the
pipes carry no aspect, and every output of a job with stages was written with square pixels: the
picture squeezed to 3:2 or 4:3. The integration side (real files, every route) is
tests/integration/test_anamorphic.py.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batch.config import parse_config
from batch.media.probe import pixel_aspect
from batch.media.writer import setsar
from batch.stages.base import StageInput
from batch.stages.registry import Plan, plan


@pytest.mark.parametrize(
    ("text", "rotation", "expected"),
    [
        ("32:27", 0, Fraction(32, 27)),
        ("64:45", 180, Fraction(64, 45)),
        ("32:27", 90, Fraction(27, 32)),  # a quarter turn: the pixels' sides swap with the frame's
        ("4:3", 270, Fraction(3, 4)),
        ("1:1", 0, None),  # square
        ("10:10", 90, None),
        ("0:1", 0, None),  # ffprobe's "unknown"
        ("N/A", 0, None),
        (None, 0, None),
        ("", 0, None),
        ("3:0", 0, None),
        ("-4:3", 0, None),
        ("4/3", 0, None),
        ("4:3:1", 0, None),
        (" 4:3", 0, None),
        (4, 0, None),
    ],
)
def test_ffprobe_s_aspect_is_read_as_displayed(
    text: object, rotation: int, expected: Fraction | None
) -> None:
    assert pixel_aspect(text, rotation) == expected


@given(
    st.one_of(st.none(), st.text(max_size=12), st.integers(), st.floats()), st.sampled_from([0, 90, 180, 270])
)
def test_any_value_is_an_aspect_or_none_never_an_error(text: object, rotation: int) -> None:
    sar = pixel_aspect(text, rotation)
    assert sar is None or (sar > 0 and sar != 1)


@given(st.integers(1, 10**7), st.integers(1, 10**7))
def test_a_quarter_turn_inverts_and_a_half_turn_keeps(num: int, den: int) -> None:
    text = f"{num}:{den}"
    straight, turned = pixel_aspect(text, 0), pixel_aspect(text, 90)
    assert pixel_aspect(text, 180) == straight
    assert (straight is None) == (turned is None)
    if straight is not None:
        assert turned == 1 / straight


def _marked(filter_text: str) -> Fraction:
    head, _, tail = filter_text.partition("=")
    assert head == "setsar"
    value, _, options = tail.partition(":")
    assert options == "max=65535"
    return Fraction(value)


def test_setsar_keeps_ratios_its_default_would_round() -> None:
    """setsar's own default reduces to 100 a side: 301:300 became 1:1, 1001:1000 too."""
    assert _marked(setsar(Fraction(301, 300))) == Fraction(301, 300)
    assert _marked(setsar(Fraction(32, 27))) == Fraction(32, 27)
    assert setsar(None) == "setsar=0"  # square, as frames through the pipes always were


@given(st.fractions(min_value=Fraction(1, 10**9), max_value=10**9))
def test_setsar_fits_the_16_bits_a_side_of_h264_s_vui(sar: Fraction) -> None:
    if sar <= 0:
        return
    marked = _marked(setsar(sar))
    assert 0 < marked.numerator <= 65535 and 0 < marked.denominator <= 65535
    if max(sar.numerator, sar.denominator) <= 65535:
        assert marked == sar
    elif Fraction(1, 16) <= sar <= 16:  # any real pixel's shape: as good as 16 bits a side allow
        assert abs(marked / sar - 1) < Fraction(1, 10**6)


def _plan(stages: str, width: int, height: int, sar: Fraction | None) -> Plan:
    cfg = parse_config(f"inputs: [x]\noutput: out/\nstages: {stages}\n")
    return plan(cfg.stages, StageInput(width=width, height=height, fps=Fraction(25), sar=sar))


def _display(width: int, height: int, sar: Fraction | None) -> Fraction:
    return Fraction(width, height) * (sar or 1)


@pytest.mark.parametrize(
    ("stages", "size", "sar"),
    [
        ("[]", (720, 480), Fraction(32, 27)),
        ("[{interpolate: {factor: 2, ladder: [blend]}}]", (720, 480), Fraction(32, 27)),
        ("[{upscale: {scale: 2}}]", (1440, 960), Fraction(32, 27)),
        ("[{upscale: {width: 1920, height: 1080}}]", (1920, 1080), None),  # 16:9 in square pixels
        ("[{upscale: {width: 1280}}]", (1280, 853), Fraction(32, 27) * Fraction(720 * 853, 480 * 1280)),
        ("[{crop: {width: 640, height: 480}}]", (640, 480), Fraction(32, 27)),  # the pixels keep their shape
        ("[{crop: {width: 704, height: 480, x: 8}}, {upscale: {scale: 2}}]", (1408, 960), Fraction(32, 27)),
        (
            "[{analyze: {}}, {upscale: {width: 853, height: 480}}]",
            (853, 480),
            Fraction(32, 27) * Fraction(720, 853),
        ),
    ],
)
def test_the_stages_carry_the_aspect(stages: str, size: tuple[int, int], sar: Fraction | None) -> None:
    made = _plan(stages, 720, 480, Fraction(32, 27))
    assert (made.width, made.height) == size
    assert made.sar == sar


def test_square_pixels_stay_unmarked_whatever_the_stages_do() -> None:
    """Square sources are written as before (no aspect marked), even resized to another shape."""
    for stages in ("[]", "[{upscale: {width: 1920, height: 1080}}]", "[{crop: {width: 320, height: 64}}]"):
        assert _plan(stages, 640, 480, None).sar is None


@given(
    st.integers(16, 4000),
    st.integers(16, 4000),
    st.integers(16, 4000),
    st.integers(16, 4000),
    st.fractions(min_value=Fraction(1, 4), max_value=4).filter(lambda f: f > 0),
)
def test_a_resize_keeps_the_picture_s_display_shape(
    w: int, h: int, w_out: int, h_out: int, sar: Fraction
) -> None:
    sar = sar if sar != 1 else Fraction(4, 3)
    made = _plan(f"[{{upscale: {{width: {w_out}, height: {h_out}}}}}]", w, h, sar)
    assert _display(made.width, made.height, made.sar) == _display(w, h, sar)


@given(st.integers(64, 2000), st.integers(64, 2000), st.fractions(min_value=Fraction(1, 4), max_value=4))
def test_a_crop_keeps_the_pixels_shape(w: int, h: int, sar: Fraction) -> None:
    sar = sar if sar not in (0, 1) else Fraction(4, 3)
    made = _plan(f"[{{crop: {{width: {w // 4 * 2}, height: {h // 4 * 2}}}}}]", w, h, sar)
    assert made.sar == sar
