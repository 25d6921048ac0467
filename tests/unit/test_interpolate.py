"""Frame-rate conversion on synthetic frames: counts, positions, rungs, fallback."""

from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import pytest

from batch.config import InterpolateStage
from batch.errors import RungUnavailable, StageError
from batch.stages import interpolate as interp_mod
from batch.stages.base import StageInput
from batch.stages.interpolate import BlendRung, DuplicateRung, Interpolate, output_count


def frames(n: int, h: int = 4, w: int = 6) -> list[np.ndarray]:
    # frame i is filled with value 10*i so positions can be read back
    return [np.full((h, w, 3), (10 * i) % 250, dtype=np.uint8) for i in range(n)]


def flat(**kwargs: object) -> InterpolateStage:
    """A stage for flat test frames: each differs in tone, so scene detection would call every pair a cut."""
    return InterpolateStage(scene_threshold=None, **kwargs)


def run(stage: InterpolateStage, n: int, fps_in: Fraction = Fraction(30)) -> list[np.ndarray]:
    return list(Interpolate(stage, StageInput(0, 0, fps_in)).run(iter(frames(n))))


@pytest.mark.parametrize(
    ("n", "kwargs", "fps_in", "expected"),
    [
        (10, {"factor": 2}, Fraction(30), 20),
        (10, {"factor": 3}, Fraction(30), 30),
        (10, {"factor": Fraction(5, 2)}, Fraction(30), 25),
        (11, {"factor": Fraction(5, 2)}, Fraction(30), 28),  # 27.5: the last frame covers the tail
        (40, {"fps": 1}, Fraction(30), 2),  # positions 0 and 30 lie within 40 frames
        (10, {"fps": 60}, Fraction(24), 25),
        (30, {"fps": 24}, Fraction(30), 24),
        (100, {"fps": Fraction(60000, 1001)}, Fraction(30000, 1001), 200),
        (1, {"factor": 2}, Fraction(30), 2),
    ],
)
def test_output_count_matches_the_ratio(n: int, kwargs: dict, fps_in: Fraction, expected: int) -> None:
    stage = flat(**kwargs)
    out = run(stage, n, fps_in)
    assert len(out) == expected
    assert Interpolate(stage, StageInput(0, 0, fps_in)).expected_frames(n) == expected


def test_factor_two_blend_puts_sources_on_even_frames_and_means_between() -> None:
    out = run(flat(factor=2), 4)
    values = [int(f[0, 0, 0]) for f in out]
    # sources 0,10,20,30; midpoints 5,15,25; the last source frame is held once
    assert values == [0, 5, 10, 15, 20, 25, 30, 30]


def test_duplicate_rung_holds_the_earlier_frame() -> None:
    out = run(flat(factor=2, ladder=["duplicate"]), 3)
    assert [int(f[0, 0, 0]) for f in out] == [0, 0, 10, 10, 20, 20]


def test_t_zero_returns_the_source_frame_object() -> None:
    a, b = frames(2)
    assert BlendRung().between(a, b, [Fraction(0)])[0] is a
    third = BlendRung().between(a, b, [Fraction(1, 3)])[0]
    assert int(third[0, 0, 0]) == 3  # 10/3 rounded
    assert DuplicateRung().between(a, b, [Fraction(1, 2)])[0] is a


def test_output_count_is_the_positions_within_the_input() -> None:
    assert output_count(11, Fraction(5, 2)) == 28
    assert output_count(3, Fraction(1, 2)) == 2
    assert output_count(40, Fraction(1, 30)) == 2


@pytest.mark.parametrize("n", [1, 2, 3, 7, 40, 61])
@pytest.mark.parametrize(
    "ratio", [Fraction(1, 30), Fraction(1, 15), Fraction(1, 6), Fraction(7, 30), Fraction(4, 5), 1, 2, 3,
              Fraction(5, 2), Fraction(1001, 1000), 32],
)  # fmt: skip
def test_streamed_count_equals_the_promised_count(n: int, ratio: Fraction) -> None:
    stage = flat(factor=ratio)
    it = Interpolate(stage, StageInput(0, 0, Fraction(30)))
    out = list(it.run(iter(frames(n))))
    assert len(out) == it.expected_frames(n) == output_count(n, Fraction(ratio))
    # positions never run backwards: each output is the source at floor(j / ratio) or a mix towards the next
    sources = [int(f[0, 0, 0]) for f in out]
    assert sources == sorted(sources) or n * 10 >= 250


def test_high_factors_are_produced_in_bounded_units() -> None:
    it = Interpolate(flat(factor=32), StageInput(0, 0, Fraction(30)))
    assert len(list(it.run(iter(frames(3))))) == 96
    # 2 pairs x 32 frames in units of at most 8, plus the held tail
    assert it.report()["steps"][0]["units"] == 8


class FlakyRung:
    """Test hook: a rung that gives up after ``ok`` units, as an OOM would."""

    def __init__(self, ok: int) -> None:
        self.ok = ok

    def between(self, a: np.ndarray, b: np.ndarray, ts: Sequence[Fraction]) -> list[np.ndarray]:
        if self.ok == 0:
            raise RungUnavailable("out of memory (injected)")
        self.ok -= 1
        return BlendRung().between(a, b, ts)


def test_a_failing_rung_hands_the_same_frames_to_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # units hold 8 midpoints: the first unit (positions 0-15) blends, the second (16-17) fails
    monkeypatch.setitem(interp_mod.RUNGS, "blend", lambda: FlakyRung(ok=8))
    it = Interpolate(flat(factor=2), StageInput(0, 0, Fraction(30)))
    out = list(it.run(iter(frames(10))))
    assert len(out) == 20
    values = [int(f[0, 0, 0]) for f in out]
    # unit 1 blended; unit 2 re-run whole on duplicate: no frame lost or repeated out of order
    assert values[:16] == [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75]
    assert values[16:] == [80, 80, 90, 90]
    report = it.report()
    assert report["used"] == "duplicate"
    first = report["steps"][0]
    assert (first["rung"], first["status"], first["reason"], first["units"]) == (
        "blend",
        "failed",
        "out of memory (injected)",
        1,
    )
    # unit 2 (2 positions); the 2 tail frames hold the last source without a rung
    assert report["steps"][1]["rung"] == "duplicate" and report["steps"][1]["frames"] == 2


def test_scene_cut_repeats_the_earlier_frame_instead_of_blending() -> None:
    shots = frames(3) + [np.full((4, 6, 3), 200, dtype=np.uint8)] * 2  # tones 0,10,20 then a cut to 200
    it = Interpolate(InterpolateStage(factor=2, scene_threshold=0.3), StageInput(0, 0, Fraction(30)))
    values = [int(f[0, 0, 0]) for f in it.run(iter(shots))]
    assert values[4:8] == [20, 20, 200, 200]  # no 110 morph across the cut
    assert it.report()["scene_cuts"] >= 1 and 3 in it.cuts


def test_dedupe_spreads_motion_over_held_frames() -> None:
    # animation on twos: drawings 0, 40, 80 each held for two frames
    held = [np.full((4, 6, 3), v, dtype=np.uint8) for v in (0, 0, 40, 40, 80, 80)]
    it = Interpolate(flat(factor=2, dedupe=True), StageInput(0, 0, Fraction(24)))
    values = [int(f[0, 0, 0]) for f in it.run(iter(held))]
    assert len(values) == 12
    assert values[:8] == [0, 10, 20, 30, 40, 50, 60, 70]  # even steps between drawings, not 0,0,20,20...
    assert values[8:] == [80, 80, 80, 80]  # the last drawing holds to the end
    assert it.report()["held_frames_removed"] == 3


def test_no_rung_left_is_a_stage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(interp_mod.RUNGS, "blend", lambda: FlakyRung(ok=0))
    it = Interpolate(flat(factor=2, ladder=["blend"]), StageInput(0, 0, Fraction(30)))
    with pytest.raises(StageError, match="no rung of the ladder could run"):
        list(it.run(iter(frames(3))))


def test_unavailable_rung_is_skipped_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable() -> None:
        raise RungUnavailable("no CUDA device")

    monkeypatch.setitem(interp_mod.RUNGS, "blend", unavailable)
    it = Interpolate(flat(factor=2), StageInput(0, 0, Fraction(30)))
    assert len(list(it.run(iter(frames(5))))) == 10
    assert it.report()["steps"][0] == {
        "rung": "blend",
        "status": "unavailable",
        "reason": "no CUDA device",
    }
