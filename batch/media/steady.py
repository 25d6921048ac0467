"""Frames of one size and format through the whole graph, when the stream changes them midway.

Clips joined end to end, a recorded live stream that switched quality, a WebRTC recording: the
stream's resolution changes partway. ffmpeg then rebuilt the filter graph at the change, and every
counter in it started again (``setpts=N``, the preview's ``select``, the decode check): timestamps
went back to zero and the job failed as "truncated or damaged", on a file plain ffmpeg transcodes.
Plain ffmpeg keeps the first frame's size and scales the frames after the change to it; so do
these commands: the video's graph is built once (``-reinit_filter:v 0``, an input option) and starts
with a scaler to the stream's size as probed (named, not ``iw``/``ih``, so that a chunk decoded from
after the change is made at the same size as the others) whose output is the decoder's format. The
probed size is the first frame's, except where Matroska or MPEG-TS change size within the first few
frames: ffprobe reads a few frames before it reports a size, and gives the size after the change.
For a frame of that size and format the scaler is no filter at all (the frame is handed on as it is:
the pixels of every steady stream are unchanged, tested); a full-range frame it scales stays full.

Only where the scaler can make the decoder's format (:data:`PINNED`), the frames reach it as decoded
(a rotated source's frames pass ffmpeg's own transposition first, which assumes one size) and are
progressive: an interlaced frame must be deinterlaced before it is scaled (the two fields, taken
20 ms apart, would be blended), and the deinterlacer, which reads the frames either side, assumes one
size too. Elsewhere the graph is rebuilt at a change as before: the job fails there, except where
frames reach Python through a pipe with no counter in the graph (ffmpeg scales them itself).
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
    """Whether the commands for ``info`` build their graph once and keep the probed size."""
    return info.pix_fmt in PINNED and info.rotation % 360 == 0 and not is_interlaced(info)


def input_options(info: MediaInfo) -> list[str]:
    """Options before ``-i``: the video's graph is not rebuilt when the stream changes size (it is
    pinned). Video only: a re-encoded audio stream's graph is still rebuilt when its channels or
    rate change midway (ffmpeg's audio source refuses such frames into a graph built for others)."""
    return ["-reinit_filter:v", "0"] if pinned(info) else []


def head_filters(info: MediaInfo) -> list[str]:
    """The graph's first filters: every frame at the probed size, in the decoder's format."""
    if not pinned(info):
        return []
    scale = f"scale=w={info.width}:h={info.height}"
    if info.color.range == "pc":
        # full range kept when frames are scaled: swscale writes limited range into yuv420p otherwise
        # (VP9 and AV1 decode full range as yuv420p tagged pc), which the output's pc tag would then
        # misname; the same range in and out keeps the steady frames' no-op
        scale += ":in_range=pc:out_range=pc"
    return [scale, f"format={info.pix_fmt}"]
