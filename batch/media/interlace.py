"""Interlaced sources: detected from ffprobe's field order, deinterlaced in the decode.

One rule: an interlaced source is always deinterlaced, with or without
stages, so every output is progressive. The stages (interpolation, upscaling,
models) mix pixels across lines and frames and would smear two fields taken
at different times into combs; the encoders here write progressive frames
only. bwdif in ``send_frame`` mode makes one frame of each frame (not one of
each field), so the frame count and rate are the source's and nothing
downstream changes. The field order comes from ffprobe (``tt``/``bt``: top
field shown first, ``bb``/``tb``: bottom first), not from per-frame flags,
which some decoders do not set. A source whose field order is unknown or
progressive is left untouched.
"""

from __future__ import annotations

from batch.media.probe import MediaInfo

# ffprobe's field_order -> the field shown first (tb: top coded first, bottom shown first)
TOP_FIRST = {"tt": "tff", "bt": "tff", "bb": "bff", "tb": "bff"}


def is_interlaced(info: MediaInfo) -> bool:
    return info.field_order in TOP_FIRST


def deinterlace_filter(info: MediaInfo) -> str | None:
    """The filter that goes first in the decode, or None for a progressive source."""
    if info.field_order not in TOP_FIRST:
        return None
    return f"bwdif=mode=send_frame:parity={TOP_FIRST[info.field_order]}:deint=all"


def deinterlace_note(info: MediaInfo) -> str | None:
    if not is_interlaced(info):
        return None
    return (
        f"interlaced source (field order {info.field_order}) deinterlaced with bwdif "
        "(one frame per frame: frame count and rate unchanged)"
    )
