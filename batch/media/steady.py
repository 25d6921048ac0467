"""Frames of one size and format through the whole graph, when the stream changes them midway.

Clips joined end to end, a recorded live stream that switched quality, a WebRTC recording: the
stream's resolution changes partway. ffmpeg then rebuilt the filter graph at the change, and every
counter in it started again (``setpts=N``, the preview's ``select``, the decode check): timestamps
went back to zero and the job failed as "truncated or damaged", on a file plain ffmpeg transcodes.
Plain ffmpeg keeps the first frame's size and scales the frames after the change to it; so do
these commands: the graph is built once (``-reinit_filter 0``, an input option) and starts with a
scaler to the stream's size as probed (the first frame's; named, not ``iw``/``ih``, so that a chunk
decoded from after the change is made at the same size as the others) whose output is the decoder's
format. For a frame of that size and format it is no filter at all (the frame is handed on as it
is: the pixels of every steady stream are unchanged, tested).

Only where the scaler can make the decoder's format (:data:`PINNED`), the frames reach it as decoded
(a rotated source's frames pass ffmpeg's own transposition first, which assumes one size) and are
progressive: an interlaced frame must be deinterlaced before it is scaled (the two fields, taken
20 ms apart, would be blended), and the deinterlacer, which reads the frames either side, assumes one
size too. Elsewhere the graph is rebuilt at a change as before (the job fails there).
"""

from __future__ import annotations

from batch.media.interlace import is_interlaced
from batch.media.probe import MediaInfo

# formats the decoders here give that ffmpeg's scaler also writes (palette and Bayer formats it does not)
PINNED = frozenset(
    f"{base}{depth}"
    for base, depths in (
        ("yuv420p", ("", "9le", "10le", "12le", "14le", "16le")),
        ("yuv422p", ("", "9le", "10le", "12le", "14le", "16le")),
        ("yuv444p", ("", "9le", "10le", "12le", "14le", "16le")),
        ("yuva420p", ("", "9le", "10le", "16le")),
        ("yuva422p", ("", "9le", "10le", "12le", "16le")),
        ("yuva444p", ("", "9le", "10le", "12le", "16le")),
        ("gbrp", ("", "9le", "10le", "12le", "14le", "16le")),
        ("gbrap", ("", "10le", "12le", "16le")),
        ("gray", ("", "9le", "10le", "12le", "14le", "16le")),
    )
    for depth in depths
) | {"yuvj420p", "yuvj422p", "yuvj444p", "yuv440p", "yuvj440p", "yuv411p", "yuvj411p", "nv12", "nv21",
     "rgb24", "bgr24", "rgba", "bgra", "argb", "abgr", "rgb0", "bgr0", "0rgb", "0bgr", "rgb48le", "rgba64le",
     "p010le", "ya8"}  # fmt: skip


def pinned(info: MediaInfo) -> bool:
    """Whether the commands for ``info`` build their graph once and keep the first frame's size."""
    return info.pix_fmt in PINNED and info.rotation % 360 == 0 and not is_interlaced(info)


def input_options(info: MediaInfo) -> list[str]:
    """Options before ``-i``: the video's graph is not rebuilt when the stream changes size (it is
    pinned). Video only: a re-encoded audio stream's graph is still rebuilt when its channels or
    rate change midway (ffmpeg's audio source refuses such frames into a graph built for others)."""
    return ["-reinit_filter:v", "0"] if pinned(info) else []


def head_filters(info: MediaInfo) -> list[str]:
    """The graph's first filters: every frame at the first frame's size, in the decoder's format."""
    if not pinned(info):
        return []
    return [f"scale=w={info.width}:h={info.height}", f"format={info.pix_fmt}"]
