"""Whether a Matroska (or WebM) file holds all of its Segment: a complete file, not a cut-short copy.

A Matroska file declares its length in tags written where the file starts (ffmpeg reserves the
room and fills it in at the end), and does not store how long its last frame is shown. So a last
frame held for seconds and a copy cut off halfway look alike to ffprobe: frames that end before
the declared length. The Segment's own size (the EBML element that holds everything after the
header) tells them apart: a cut copy holds less than it declares.
"""

from __future__ import annotations

from pathlib import Path

_EBML = 0x1A45DFA3
_SEGMENT = 0x18538067


def _vint(data: bytes, at: int, *, keep_marker: bool) -> tuple[int, int, bool]:
    """(value, its length in bytes, all value bits set: an "unknown" size) of the EBML variable-length
    integer at ``at``. An element ID keeps its length marker; a size drops it."""
    first = data[at]
    if first == 0:
        raise ValueError("an EBML number longer than 8 bytes")
    length = 9 - first.bit_length()
    if at + length > len(data):
        raise ValueError("cut inside an EBML number")
    value = int.from_bytes(data[at : at + length], "big")
    marker = 1 << (7 * length)
    bits = value ^ marker
    return (value if keep_marker else bits), length, bits == marker - 1


def segment_complete(path: Path) -> bool | None:
    """True when the file holds its whole Segment, False when it holds less than the Segment declares
    (cut short); None when that cannot be told: not Matroska, or a Segment of unknown size (written
    live, to a pipe)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
            size = f.seek(0, 2)
    except OSError:
        return None
    try:
        element, n, _ = _vint(head, 0, keep_marker=True)
        if element != _EBML:
            return None
        header, m, _ = _vint(head, n, keep_marker=False)
        at = n + m + header
        element, n, _ = _vint(head, at, keep_marker=True)
        if element != _SEGMENT:
            return None
        declared, m, unknown = _vint(head, at + n, keep_marker=False)
    except (ValueError, IndexError):
        return None
    if unknown:
        return None
    return at + n + m + declared <= size
