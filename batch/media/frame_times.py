"""Variable frame rate, told from the frames' own timestamps, and the constant rate it becomes.

The rates ffprobe reports are guesses: Matroska reports the same ``r_frame_rate`` and
``avg_frame_rate`` for a stream that changes rate halfway, and a phone clip with one frame
missing has rates that agree. So a stream is variable-rate when the spacing of its shown
frames' timestamps varies by more than the time base's rounding.

Such a stream is resampled (ffmpeg's ``fps`` filter) to a constant rate; a rate whose frame
slots are coarser than two source frames drops one of them. :func:`resample_rate` picks the
lowest usual rate that drops none, and says how many a rate drops when none can keep all.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

# The rates a resampled stream may take besides its own base rate, lowest first (240: the highest
# cameras record). Whole rates: 29.97 fps content keeps its base rate, or becomes 30.
RATES = tuple(Fraction(r) for r in (24, 25, 30, 48, 50, 60, 90, 100, 120, 144, 240))


def spacing_varies(pts: list[int], time_base: Fraction) -> bool:
    """Shown frames' timestamps (sorted, in time-base ticks) spaced unevenly: gaps that differ from
    the typical one by more than the timestamps' rounding (a tick, or a millisecond: 29.97 fps
    from Matroska is spaced 33 and 34 ms, in any time base it is remuxed to) plus 1%."""
    gaps = sorted(b - a for a, b in itertools.pairwise(pts))
    if not gaps:
        return False
    typical = gaps[len(gaps) // 2]
    allowed = max(Fraction(1), 1 / (1000 * time_base)) + Fraction(typical, 100)
    return gaps[0] < typical - allowed or gaps[-1] > typical + allowed


def half_away(x: Fraction) -> int:
    """``x`` to the nearest whole number, halves away from zero (ffmpeg's ``AV_ROUND_NEAR_INF``)."""
    whole = math.floor(abs(x) + Fraction(1, 2))
    return whole if x >= 0 else -whole


def _slots(time_base: Fraction, rate: Fraction, origin: int) -> Callable[[int], int]:
    """A timestamp's slot at ``rate``, as the ``fps`` filter rounds it: nearest, halves up, counted
    from ``origin`` (the file's start, where ffmpeg puts time 0)."""
    num = time_base.numerator * rate.numerator
    den = time_base.denominator * rate.denominator
    return lambda p: (2 * (p - origin) * num + den) // (2 * den)


def dropped_at(
    pts: list[int],
    time_base: Fraction,
    rate: Fraction,
    origin: int = 0,
    end: int | None = None,
    limit: int | None = None,
) -> int:
    """Source frames ffmpeg's ``fps`` filter (ffmpeg 5.1, rounding to the nearest slot) drops at
    ``rate``: a frame is dropped when the next one (or, for the last, the stream's ``end``: its
    timestamp plus its duration) falls in a slot it has not yet passed. Slots count from ``origin``
    (the file's start, in ticks: where ffmpeg puts time 0). Counting stops past ``limit``."""
    slot = _slots(time_base, rate, origin)
    nxt, dropped = slot(pts[0]), 0
    for p in [*pts[1:], *([] if end is None else [end])]:
        slot_p = slot(p)
        if slot_p <= nxt:
            dropped += 1
            if limit is not None and dropped > limit:
                break
        else:
            nxt = slot_p
    return dropped


def resampled_count(pts: list[int], time_base: Fraction, rate: Fraction, origin: int, end: int | None) -> int:
    """Frames ffmpeg's ``fps`` filter makes at ``rate``: a slot from the first frame's to the end's
    (the last frame's own slot, plus one, where its end is unknown)."""
    slot = _slots(time_base, rate, origin)
    return max(1, slot(end) - slot(pts[0]) if end is not None else slot(pts[-1]) - slot(pts[0]) + 1)


def resample_rate(
    pts: list[int], time_base: Fraction, base_rate: Fraction | None, origin: int = 0, end: int | None = None
) -> tuple[Fraction, int]:
    """(the constant rate, the source frames it drops) for a variable-rate stream.

    The lowest of ``RATES`` and the stream's own base rate (``r_frame_rate``, unless it is a time
    base's rate above 240) that drops no frame before the last but those shown for less than half
    a 240 fps slot (no usual rate keeps them: a slow rate for the rest beats 240 fps of repeats); where
    none does, the one that drops fewest (the lowest of those). The count includes the last frame
    when ``end`` (its end, in ticks) shows it too short to get a slot of its own.
    """
    rates = sorted({*RATES, *([base_rate] if base_rate and base_rate <= RATES[-1] else [])})
    shortest_kept = 1 / (2 * RATES[-1] * time_base)  # (a Fraction: made once, not for each pair)
    fleeting = sum(b - a < shortest_kept for a, b in itertools.pairwise(pts))
    best: tuple[Fraction, int] | None = None
    for rate in rates:  # a rate below the average drops frames: counting stops past the best so far
        dropped = dropped_at(pts, time_base, rate, origin, None, None if best is None else best[1])
        if best is None or dropped < best[1]:
            best = (rate, dropped)
        if dropped <= fleeting:
            break
    assert best is not None
    return best[0], dropped_at(pts, time_base, best[0], origin, end)


# Constant rates tried, after the stream's reported ones, for timestamps on a grid (the NTSC rates
# first: the simplest rate that fits a short stream of them could be 2997/100).
GRID_RATES = (
    *(Fraction(r, 1001) for r in (24000, 30000, 60000, 120000)),
    *(Fraction(r) for r in (24, 25, 30, 50, 60, 120, 15, 20, 10, 12, 48, 90, 100, 144, 240)),
)


def _on_grid(pts: list[int], period: Fraction) -> bool:
    """The timestamps are a constant-rate grid's times rounded to ticks: each one's distance from its
    grid point (the first's plus a whole number of ``period``s) varies by a tick at most."""
    num, den = period.numerator, period.denominator
    first = pts[0]
    low = high = 0
    for i, p in enumerate(pts):
        off = den * (p - first) - i * num  # den times the distance from the grid
        low, high = min(low, off), max(high, off)
        if high - low > den:
            return False
    return True


def _simplest_between(lo: Fraction, hi: Fraction) -> Fraction:
    """The fraction of smallest denominator in [lo, hi] (0 < lo <= hi), by continued fractions."""
    whole = math.floor(lo)
    if whole == lo or whole + 1 <= hi:
        return Fraction(whole if whole == lo else whole + 1)
    # lo and hi share the whole part: the simplest in between is whole + 1 / (simplest of the inverses)
    return whole + 1 / _simplest_between(1 / (hi - whole), 1 / (lo - whole))


def grid_rate(pts: list[int], time_base: Fraction, guesses: tuple[Fraction | None, ...]) -> Fraction | None:
    """The constant rate whose frame grid a stream's shown timestamps (sorted, in ticks) are the
    rounding of: the first of ``guesses`` (the reported rates), then of ``GRID_RATES``, that fits,
    else the simplest rate that does; None where none fits (jitter of over a tick).

    The reported average is the frames over the stream's length, which a coarse time base skews
    (20 fps in 1/30 s ticks, spaced 2 and 1, averages 9000/451), and the codec's rate can be another
    than the container's (25 fps stored, 30 declared by the H.264 stream): frames counted at such a
    rate drift off their timestamps (the output's timing with them), and a chunk sought by frame
    number starts on the wrong frame."""
    if len(pts) < 2:
        return None
    for rate in (*guesses, *GRID_RATES):
        if rate and rate > 0 and _on_grid(pts, 1 / (rate * time_base)):
            return rate
    # the periods (in ticks) each frame allows within a tick of the first's grid: a superset of the
    # grids that fit (from a sample of the frames and the last; the check holds it to every frame)
    lo, hi = Fraction(0), Fraction(pts[-1] - pts[0] + 1)
    for i in {*range(1, len(pts), max(1, len(pts) // 2000)), len(pts) - 1}:
        lo, hi = max(lo, Fraction(pts[i] - pts[0] - 1, i)), min(hi, Fraction(pts[i] - pts[0] + 1, i))
    if not 0 < lo <= hi:
        return None
    # the simplest rate in it, else in its middle half, quarter ... (the grids that fit lie inside)
    for k in range(12):
        shrink = (hi - lo) * (1 - Fraction(1, 2**k)) / 2
        rate = _simplest_between(1 / ((hi - shrink) * time_base), 1 / ((lo + shrink) * time_base))
        if _on_grid(pts, 1 / (rate * time_base)):
            return rate
    return None


# A cut between two frames for ffmpeg's accurate seek (``-ss``) and a ``trim`` lies halfway between
# them, and is used only where that is at least this far from each: ffmpeg reads the times in
# microseconds and compares them in the stream's ticks.
CUT_MARGIN_S = Fraction(1, 1000)


def cuts_exact(pts: list[int], time_base: Fraction, rate: Fraction) -> bool:
    """Every constant-rate chunk start (half a frame before frame ``i`` at ``rate``, counted from the
    first frame) lies over a tick and CUT_MARGIN_S from frames ``i - 1`` and ``i``: ffmpeg rounds the
    seek and the trim to ticks, half a tick each. Not so where frames are a tick or two apart (50 fps
    in 1/60 s ticks), or where ``rate`` drifts off them: a chunk started a frame early or late."""
    period = 1 / (rate * time_base)  # ticks a frame
    num, den = period.numerator, period.denominator
    # in units of 1 / (2 * den) ticks: whole numbers ("over the margin" is over its floor there)
    margin = math.floor(max(Fraction(1), CUT_MARGIN_S / time_base) * 2 * den)
    first = pts[0]
    for i in range(1, len(pts)):
        cut = 2 * den * first + (2 * i - 1) * num
        if cut - 2 * den * pts[i - 1] <= margin or 2 * den * pts[i] - cut <= margin:
            return False
    return True


@dataclass(frozen=True)
class Timeline:
    """A variable-rate stream's shown frames: their timestamps (sorted, in ``time_base`` ticks), the
    file's start (``origin`` in ticks, where ffmpeg puts time 0 for its filters; ``start_s`` exactly,
    from where ``-ss`` counts) and the constant ``rate`` they are resampled to.

    Kept so that a chunk of the resampled frames can be decoded on its own: which source frames
    ffmpeg's ``fps`` filter puts in its slots is known from the timestamps alone."""

    pts: tuple[int, ...]
    time_base: Fraction
    origin: int
    rate: Fraction
    start_s: Fraction = Fraction(0)

    @functools.cached_property
    def _slots(self) -> list[int]:
        slot = _slots(self.time_base, self.rate, self.origin)
        return [slot(p) for p in self.pts]

    @property
    def frames(self) -> int:
        """Resampled frames up to the last source frame's own slot (the filter may hold it longer)."""
        return self._slots[-1] - self._slots[0] + 1

    def picks(self, start: int, count: int) -> list[int]:
        """For resampled frames [start, start + count), the index (into ``pts``) of the source frame
        ffmpeg's ``fps`` filter (ffmpeg 5.1) puts in each: the latest frame whose slot is not after
        the resampled frame's. Its slots count from the first frame's; past the last frame, the last
        frame is held (the filter fills to the stream's end)."""
        slots = self._slots
        first = slots[0]
        out: list[int] = []
        i = 0
        for n in range(start, start + count):
            t = first + n
            if i < len(slots) - 1 and slots[i + 1] <= t:
                i = bisect.bisect_right(slots, t, lo=i) - 1
            out.append(i)
        return out

    def distinct(self) -> bool:
        """Every shown frame has a timestamp of its own (a seek can then start at any of them)."""
        return all(a < b for a, b in itertools.pairwise(self.pts))

    def _cuttable(self, index: int) -> bool:
        """Halfway between frames ``index - 1`` and ``index`` is over a tick and at least CUT_MARGIN_S
        from each (ffmpeg rounds the seek and the trim to ticks: half a tick each)."""
        gap = self.pts[index] - self.pts[index - 1]
        return gap >= 3 and gap * self.time_base >= 2 * CUT_MARGIN_S

    def cut_s(self, index: int) -> Fraction:
        """Halfway between frames ``index - 1`` and ``index``, in seconds from the file's start as
        ``-ss`` takes it."""
        return Fraction(self.pts[index - 1] + self.pts[index], 2) * self.time_base - self.start_s

    def window(self, first: int, last: int) -> tuple[int, int]:
        """The source frames [a, b] to decode so that frames ``first`` to ``last`` are among them and
        each end is the file's or a safe cut (:meth:`cut_s`): a <= first, b >= last."""
        a = first
        while a > 0 and not self._cuttable(a):
            a -= 1
        b = last
        while b < len(self.pts) - 1 and not self._cuttable(b + 1):
            b += 1
        return a, b
