"""A constant-rate stream's rate, read from the grid its timestamps are the rounding of
(frame_times.grid_rate), and whether chunks can start exactly at any of its frames (cuts_exact).

ffprobe's average is the frames over the stream's length, which a coarse time base skews (20 fps in
1/30 s ticks: 9000/451), and a codec can declare another rate than the container's timestamps show.
Frames counted at such a rate drift off their timestamps: a chunk sought by frame number (its
trim starts half a frame before the frame) started on the wrong frame. Where frames are a tick or
two apart, no rate helps: ffmpeg rounds the seek and the trim to ticks, so such a stream runs in one
pass. The promises tested: the rate a grid of rounded times comes from is found (the reported one
where it fits), and where cuts_exact says so, every chunk's trim, moved by a tick either way, holds
its first frame and not the one before.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch.media.frame_times import GRID_RATES, _simplest_between, cuts_exact, grid_rate, half_away

TIME_BASES = [Fraction(1, d) for d in (30, 25, 60, 90, 100, 600, 1000, 12800, 15360, 90000, 1000000)]
RATES = [
    *GRID_RATES,
    Fraction(25, 2),
    Fraction(7),
    Fraction(100, 3),
    Fraction(18),
    Fraction(2997, 100),
    Fraction(5),
]


def ticks(rate: Fraction, tb: Fraction, frames: int, offset: Fraction = Fraction(0)) -> list[int]:
    """Frame ``i`` shown at ``offset + i / rate`` seconds, rounded to ticks as ffmpeg rounds."""
    return [half_away((offset + Fraction(i) / rate) / tb) for i in range(frames)]


def starts_on_its_frame(pts: list[int], tb: Fraction, rate: Fraction, slack_ticks: int = 0) -> bool:
    """A chunk from frame ``i`` keeps what is shown from half a frame before it (batch.media.seek):
    frame ``i`` must be inside and frame ``i - 1`` outside, for every ``i``, with the cut moved by up
    to ``slack_ticks`` either way (ffmpeg's rounding of the seek and the trim)."""
    for i in range(1, len(pts)):
        cut = pts[0] * tb + (i - Fraction(1, 2)) / rate
        if not (pts[i - 1] * tb < cut - slack_ticks * tb and cut + slack_ticks * tb < pts[i] * tb):
            return False
    return True


def test_twenty_fps_in_thirtieth_ticks_is_twenty_not_its_skewed_average() -> None:
    tb = Fraction(1, 30)
    pts = ticks(Fraction(20), tb, 300)
    assert pts[:6] == [0, 2, 3, 5, 6, 8]  # spaced 2 and 1: as an MP4 with timescale 30 holds them
    average = Fraction(9000, 451)  # what ffprobe reports for it
    assert not starts_on_its_frame(pts, tb, average)  # frame 240's chunk started at 241 (found)
    assert grid_rate(pts, tb, (average, Fraction(30))) == 20
    # a tick is 2/3 of a frame: ffmpeg's rounding of a seek could still miss one, so one pass
    assert not cuts_exact(pts, tb, Fraction(20))


def test_frames_a_tick_or_two_apart_are_not_cut() -> None:
    for rate, tb in ((Fraction(50), Fraction(1, 60)), (Fraction(24), Fraction(1, 25))):
        pts = ticks(rate, tb, 300)
        assert grid_rate(pts, tb, (None,)) == rate
        assert not cuts_exact(pts, tb, rate)
    # 240 fps in milliseconds (4 and 5 ms apart): its cuts are 2 ms from each frame
    pts = ticks(Fraction(240), Fraction(1, 1000), 500)
    assert cuts_exact(pts, Fraction(1, 1000), Fraction(240))


def test_jitter_under_a_millisecond_has_no_grid_but_cuts_exactly_at_its_average() -> None:
    tb = Fraction(1, 90000)
    pts = [n * 3000 + (n * 7 % 5) * 5 for n in range(120)]  # up to 20 ticks (0.2 ms) late
    assert grid_rate(pts, tb, (Fraction(30),)) is None
    average = Fraction(720000, 24001)
    assert cuts_exact(pts, tb, average) and starts_on_its_frame(pts, tb, average, slack_ticks=1)


def test_a_stream_that_fits_its_reported_rate_keeps_it() -> None:
    # 30 fps in milliseconds: 30000/1001 also fits its first frames; the reported rate comes first
    pts = ticks(Fraction(30), Fraction(1, 1000), 20)
    assert grid_rate(pts, Fraction(1, 1000), (Fraction(30),)) == 30
    assert grid_rate(ticks(Fraction(30000, 1001), Fraction(1, 1000), 3000), Fraction(1, 1000), (None,)) == (
        Fraction(30000, 1001)
    )


def test_25_fps_whose_codec_declares_30_is_25() -> None:
    pts = ticks(Fraction(25), Fraction(1, 1000), 120)
    assert grid_rate(pts, Fraction(1, 1000), (Fraction(30), Fraction(30))) == 25


def test_an_odd_rate_no_list_holds_is_found_by_its_grid() -> None:
    rate = Fraction(125, 7)  # 17.857 fps
    pts = ticks(rate, Fraction(1, 1000), 500)
    found = grid_rate(pts, Fraction(1, 1000), (None,))
    assert found is not None and starts_on_its_frame(pts, Fraction(1, 1000), found)
    assert abs(found - rate) < Fraction(1, 100)


def test_jitter_of_over_a_tick_has_no_grid() -> None:
    pts = ticks(Fraction(30), Fraction(1, 90000), 100)
    pts[50] += 1500  # half a frame late: no rate's grid holds it
    assert grid_rate(pts, Fraction(1, 90000), (Fraction(30),)) is None
    assert grid_rate([0], Fraction(1, 1000), (Fraction(30),)) is None


@settings(max_examples=300, deadline=None, database=None)
@given(
    rate=st.sampled_from(RATES),
    tb=st.sampled_from(TIME_BASES),
    frames=st.integers(3, 700),
    offset_ticks=st.fractions(0, 1000),
    reported=st.sampled_from(["exact", "average", "other", "none"]),
)
def test_the_rate_of_a_rounded_grid_is_found_and_its_cuts_hold_where_said(
    rate: Fraction, tb: Fraction, frames: int, offset_ticks: Fraction, reported: str
) -> None:
    period = 1 / (rate * tb)  # ticks a frame
    pts = ticks(rate, tb, frames, offset_ticks * tb)
    if len(set(pts)) < len(pts):
        return  # frames sharing a tick: variable-rate to the probe, not this rule
    average = Fraction(frames, 1) / ((pts[-1] - pts[0] + round(period)) * tb)
    guess = {"exact": rate, "average": average, "other": Fraction(30) if rate != 30 else 25, "none": None}
    found = grid_rate(pts, tb, (guess[reported],))
    if reported == "exact" or rate in GRID_RATES:
        assert found is not None  # (an odd rate not reported is looked for, not always found)
    if reported == "exact":
        assert found == rate  # the reported rate is kept where it fits
    if found is None:
        return  # (the probe keeps the reported rate, and cuts_exact decides on it as below)
    if cuts_exact(pts, tb, found):
        assert starts_on_its_frame(pts, tb, found, slack_ticks=1), found
    if period >= 8 and tb <= Fraction(1, 1000):  # fine ticks: every chunk can start exactly
        assert cuts_exact(pts, tb, found)


@settings(max_examples=300, deadline=None, database=None)
@given(st.fractions(Fraction(1, 100), 1000), st.fractions(0, 10))
def test_the_simplest_fraction_between_two_is_in_between_and_simplest(lo: Fraction, width: Fraction) -> None:
    hi = lo + width
    found = _simplest_between(lo, hi)
    assert lo <= found <= hi
    for den in range(1, min(found.denominator, 5000)):  # no smaller denominator has one in [lo, hi]
        assert -((-lo * den) // 1) > hi * den // 1


@pytest.mark.parametrize("frames", [2, 3])
def test_the_shortest_streams(frames: int) -> None:
    pts = ticks(Fraction(24), Fraction(1, 1000), frames)
    found = grid_rate(pts, Fraction(1, 1000), (None,))
    assert found is not None and starts_on_its_frame(pts, Fraction(1, 1000), found)


@settings(max_examples=300, deadline=None, database=None)
@given(
    period=st.integers(1, 4000),
    jitter=st.lists(st.integers(-40, 40), min_size=3, max_size=300),
    tb=st.sampled_from(TIME_BASES),
)
def test_where_cuts_are_said_exact_every_chunk_starts_on_its_frame(
    period: int, jitter: list[int], tb: Fraction
) -> None:
    """Any timestamps (a grid with jitter), at the rate their span gives: cuts_exact never says yes
    where a chunk's start, moved by a tick either way, would take the wrong frame."""
    pts = sorted({n * period + j for n, j in enumerate(jitter)})
    if len(pts) < 3:
        return
    rate = (len(pts) - 1) / ((pts[-1] - pts[0]) * tb)
    if cuts_exact(pts, tb, rate):
        assert starts_on_its_frame(pts, tb, rate, slack_ticks=1)
