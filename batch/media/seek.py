"""Where a chunk's decoding starts: an input seek early enough, then a trim at the chunk's first frame.

ffmpeg's accurate seek (``-ss`` before ``-i``) asks the demuxer for a keyframe at or before the time
and drops what decodes before it. A demuxer that seeks by decode time (MP4, fragmented MP4) can pick
a keyframe that decodes after the frame wanted when B-frames show frames later than they decode:
that frame never comes, and the chunk starts a frame late (or, counted by frames, shifted by one).
So the seek goes back by the stream's reorder delay and a margin, and a ``trim`` filter placed after
any deinterlacer (which then has the fields before the chunk, as in one pass) starts the chunk.
"""

from __future__ import annotations

from fractions import Fraction

# Beyond the reorder delay: the demuxer's and ffmpeg's rounding of the time, with room to spare
# (a few more frames decoded and let go).
SEEK_MARGIN_S = Fraction(1, 20)


def seek_args(at_s: Fraction, reorder_s: float) -> tuple[list[str], Fraction]:
    """The input options for decoding from ``at_s`` (seconds from the file's start, as ``-ss`` counts)
    and the time the filters' clock starts at (0 without a seek: the file's start)."""
    seek = at_s - Fraction(reorder_s) - SEEK_MARGIN_S
    if seek <= 0:
        return [], Fraction(0)
    seek = Fraction(round(seek * 1_000_000), 1_000_000)  # as printed: the trims count from it exactly
    return ["-ss", f"{float(seek):.6f}"], seek


def trim(start_s: Fraction | None, end_s: Fraction | None, clock_s: Fraction) -> str | None:
    """A ``trim`` keeping what is shown from ``start_s`` until before ``end_s`` (seconds from the file's
    start; None: no bound), on filters whose clock starts at ``clock_s``."""
    bounds = []
    if start_s is not None and start_s > clock_s:
        bounds.append(f"start={float(start_s - clock_s):.6f}")
    if end_s is not None:
        bounds.append(f"end={float(end_s - clock_s):.6f}")
    return f"trim={':'.join(bounds)}" if bounds else None
