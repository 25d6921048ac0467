"""The source's other streams in the output: what is kept, how, and what cannot be and why.

Besides the video the stages make, an output carries the source's audio,
subtitles, attachments (fonts in Matroska), chapters, global and stream tags
and start timecode, wherever the output container can hold them. Everything
but the video is taken from the source file, given to ffmpeg as its second
input (``-i source``), so its timestamps stay in seconds: interpolation
changes the frame rate, never the duration, and subtitles and chapters stay
where they were. Only the timecode counts frames; it is rescaled to the new
rate.

What the container cannot hold is listed (``Dropped``) for the manifest,
never dropped silently. The one-pass writer and the join of chunks use the
same plan (``source_args``), and ``check_output`` verifies that the encoded
file holds what the plan kept.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from batch.errors import StreamsMismatch
from batch.media.probe import AudioStream, MediaInfo, OtherStream

# Subtitle formats ffmpeg decodes as text: any of them can become subrip or mov_text.
TEXT_SUBTITLES = frozenset(
    {
        "subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text", "microdvd", "subviewer",
        "subviewer1", "sami", "realtext", "jacosub", "mpl2", "pjs", "vplayer", "stl",
    }
)  # fmt: skip
BITMAP_SUBTITLES = frozenset({"dvd_subtitle", "hdmv_pgs_subtitle", "dvb_subtitle", "xsub", "dvb_teletext"})
# What Matroska holds as it is; other text formats become subrip there.
MATROSKA_SUBTITLES = frozenset(
    {"subrip", "ass", "ssa", "webvtt", "dvd_subtitle", "hdmv_pgs_subtitle", "dvb_subtitle"}
)
STYLED = frozenset({"ass", "ssa"})
FONT_CODECS = frozenset({"ttf", "otf"})  # Matroska's muxer knows their mimetypes
_TIMECODE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;.,])(\d{2,3})$")
NTSC = Fraction(30000, 1001)


@dataclass(frozen=True)
class Dropped:
    """A stream (or the timecode) the output does not carry; ``index`` None for a file-level item."""

    index: int | None
    type: str  # "subtitle" | "attachment" | "data" | "video" | "audio" | "timecode"
    codec: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StreamPlan:
    """What goes from the source (ffmpeg's input 1) into an output of one container."""

    container: str  # "mp4" | "mov" | "mkv"
    audio: tuple[AudioStream, ...] = ()  # the audio streams that can be carried
    subtitles: tuple[tuple[int, str], ...] = ()  # (source index, "copy" or the encoder converting it)
    attachments: tuple[int, ...] = ()
    chapters: int = 0  # how many are carried
    timecode: str | None = None  # the output's start timecode (rescaled to its rate)
    tags: tuple[tuple[str, str], ...] = ()  # the video stream's own tags (language, title)
    dropped: tuple[Dropped, ...] = ()
    notes: tuple[str, ...] = ()

    def dropped_dicts(self) -> list[dict[str, Any]]:
        return [d.to_dict() for d in self.dropped]


AUDIO_COPYABLE = {
    "mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"},
    "mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le"},
    "mkv": None,  # Matroska holds anything
}


def copies_audio(container: str, audio: AudioStream) -> bool:
    """The container holds this audio codec: it is copied, bit for bit; else it is made AAC."""
    allowed = AUDIO_COPYABLE.get(container)
    return allowed is None or audio.codec in allowed


def is_matroska(container: str) -> bool:
    return container in ("mkv", "matroska", "webm")


def plan_streams(info: MediaInfo, container: str, fps_out: Fraction) -> StreamPlan:
    """Decide, for each of the source's streams besides the first video, whether and how it is kept."""
    dropped: list[Dropped] = []
    notes: list[str] = []
    audio = []
    for a in info.audio:
        if a.sample_rate <= 0:
            reason = "it has no sample rate: ffprobe found no audio samples in it (too short or damaged)"
            dropped.append(Dropped(a.index, "audio", a.codec, reason))
        elif a.packets == 0 and not is_matroska(container):
            # a track its header declares that never got a packet: Matroska carries it as it is,
            # MP4/MOV muxers leave it out (and the output then lacked a stream the plan kept)
            reason = "it holds no audio packets (the track is declared but empty); MP4/MOV cannot carry it"
            dropped.append(Dropped(a.index, "audio", a.codec, reason))
        else:
            audio.append(a)
            if not copies_audio(container, a):
                notes.append(
                    f"audio stream {a.index} ({a.codec}) re-encoded as AAC 192k: {container} cannot hold it"
                )
    subtitles: list[tuple[int, str]] = []
    attachments: list[int] = []
    for s in info.streams:
        kept = _subtitle(s, container, notes) if s.type == "subtitle" else None
        if kept is not None:
            subtitles.append((s.index, kept))
        elif s.type == "attachment" and _attachment_fits(s, container):
            attachments.append(s.index)
        elif not _remade(s, info):
            dropped.append(Dropped(s.index, s.type, s.codec, _why_not(s, container)))
    timecode = None
    if info.timecode:
        timecode, why = rescale_timecode(info.timecode, info.fps, fps_out)
        if timecode is None:
            dropped.append(Dropped(_timecode_track(info), "timecode", "tmcd", why))
        elif timecode != info.timecode:
            notes.append(f"timecode {info.timecode} at {info.fps} fps {why} {timecode} at {fps_out} fps")
        if timecode is not None and is_matroska(container) and _timecode_track(info) is not None:
            notes.append("timecode track kept as the video's TIMECODE tag (Matroska has no timecode track)")
    tags = tuple((k, v) for k, v in (("language", info.language), ("title", info.title)) if v)
    return StreamPlan(
        container=container,
        audio=tuple(audio),
        subtitles=tuple(subtitles),
        attachments=tuple(attachments),
        chapters=info.chapters,  # Matroska, MP4 and MOV all hold chapters
        timecode=timecode,
        tags=tags,
        dropped=tuple(dropped),
        notes=tuple(notes),
    )


def _subtitle(s: OtherStream, container: str, notes: list[str]) -> str | None:
    """ "copy", the encoder that converts it for this container, or None when it cannot go."""
    if is_matroska(container):
        if s.codec in MATROSKA_SUBTITLES:
            return "copy"
        if s.codec in TEXT_SUBTITLES:
            notes.append(f"subtitle stream {s.index} ({s.codec}) converted to subrip for Matroska")
            return "srt"
        return None
    if s.codec == "mov_text":
        return "copy"
    if s.codec in TEXT_SUBTITLES:
        lost = ": styling and positions not kept" if s.codec in STYLED else ""
        notes.append(f"subtitle stream {s.index} ({s.codec}) converted to mov_text for {container}{lost}")
        return "mov_text"
    return None


def _attachment_fits(s: OtherStream, container: str) -> bool:
    return is_matroska(container) and (bool(s.mimetype) or s.codec in FONT_CODECS)


def _timecode_track(info: MediaInfo) -> int | None:
    return next((s.index for s in info.streams if s.type == "data" and s.tag == "tmcd"), None)


def _remade(s: OtherStream, info: MediaInfo) -> bool:
    """Streams the muxer makes again from what is carried: the timecode track and MP4's chapter track."""
    if s.type != "data":
        return False
    return (s.tag == "tmcd" and info.timecode is not None) or (s.tag == "text" and info.chapters > 0)


def _why_not(s: OtherStream, container: str) -> str:
    name = "Matroska" if is_matroska(container) else container.upper()
    if s.type == "subtitle":
        if s.codec in BITMAP_SUBTITLES and not is_matroska(container):
            return f"{name} holds only text subtitles (mov_text); {s.codec} is a bitmap format (use mkv)"
        return f"{name} cannot hold {s.codec} subtitles"
    if s.type == "attachment":
        if is_matroska(container):
            return "the attachment has no mimetype, which Matroska needs"
        return f"{name} cannot hold attachments (use mkv)"
    if s.type == "video":
        if s.attached_pic:
            return "cover art (an attached picture) is not carried"
        return "only the first video stream is processed"
    return f"data streams ({s.codec}{', ' + s.tag if s.tag else ''}) are not carried"


def rescale_timecode(timecode: str, fps_in: Fraction, fps_out: Fraction) -> tuple[str | None, str]:
    """The same start time at the output's rate: (timecode, how) or (None, why it cannot be kept).

    Only the frames field depends on the rate; it is scaled by the ratio of
    the nominal rates and rounded down (so the label is never later than the
    source's, and earlier by less than one output frame). A drop-frame
    timecode (";") stays drop-frame, which needs a multiple of 30000/1001.
    """
    m = _TIMECODE.match(timecode.strip())
    if m is None:
        return None, f"timecode {timecode!r} is not HH:MM:SS:FF"
    if fps_out == fps_in:
        return timecode, "kept"
    hh, mm, ss, sep, ff = m.groups()
    drop = sep in ";,"
    if drop and (fps_out / NTSC).denominator != 1:
        return None, f"a drop-frame timecode cannot be written at {fps_out} fps (needs n x 30000/1001)"
    n_in, n_out = round(fps_in), round(fps_out)
    if n_in <= 0 or n_out <= 0 or int(ff) >= n_in:
        return None, f"timecode {timecode} does not fit {fps_in} fps"
    scaled = Fraction(int(ff) * n_out, n_in)
    frames = math.floor(scaled)
    width = max(2, len(str(n_out - 1)))
    how = "rescaled to" if scaled == frames else "rescaled (rounded down to a whole frame) to"
    return f"{hh}:{mm}:{ss}{sep}{frames:0{width}d}", how


def _frames_of(timecode: str | None) -> tuple[int, ...] | None:
    """A timecode's numbers, whatever the separators and zero padding."""
    m = _TIMECODE.match((timecode or "").strip())
    return tuple(int(g) for i, g in enumerate(m.groups()) if i != 3) if m else None


def source_args(plan: StreamPlan | None, source: int = 1, *, video: str = "0:v:0") -> list[str]:
    """ffmpeg output options taking the video from ``video`` and everything else from input ``source``.

    ``plan`` None: no source input, video only (a chunk's part). Audio codec
    options are the caller's (``writer.audio_args``), for ``plan.audio``.
    ``video``: a stream specifier or a filter graph's output label (``[v]``, the direct transcode).
    """
    args = ["-map", video]
    if plan is None:
        return args
    for a in plan.audio:
        args += ["-map", f"{source}:{a.index}"]
    for index, _ in plan.subtitles:
        args += ["-map", f"{source}:{index}"]
    for index in plan.attachments:
        args += ["-map", f"{source}:{index}"]
    args += ["-map_metadata", str(source), "-map_chapters", str(source) if plan.chapters else "-1"]
    for k, (_, codec) in enumerate(plan.subtitles):
        args += [f"-c:s:{k}", codec]
    if plan.attachments:
        args += ["-c:t", "copy"]
    for key, value in plan.tags:
        args += ["-metadata:s:v:0", f"{key}={value}"]
    # the timecode goes on the video stream (MOV/MP4 make a timecode track of it); a file-level
    # one copied from the source would win over it in MOV and keep the source's rate
    args += ["-metadata", "timecode="]
    if plan.timecode:
        args += ["-metadata:s:v:0", f"timecode={plan.timecode}"]
    return args


def check_output(plan: StreamPlan, out: MediaInfo, dest: Path) -> None:
    """The encoded file holds every stream the plan kept. Raises StreamsMismatch naming what is missing."""
    have_subs = sum(s.type == "subtitle" for s in out.streams)
    have_attachments = sum(s.type == "attachment" for s in out.streams)
    missing = []
    if len(out.audio) < len(plan.audio):
        missing.append(f"audio: {len(out.audio)} of {len(plan.audio)} streams")
    if have_subs < len(plan.subtitles):
        missing.append(f"subtitles: {have_subs} of {len(plan.subtitles)} streams")
    if have_attachments < len(plan.attachments):
        missing.append(f"attachments: {have_attachments} of {len(plan.attachments)}")
    if out.chapters < plan.chapters:
        missing.append(f"chapters: {out.chapters} of {plan.chapters}")
    if plan.timecode and _frames_of(out.timecode) != _frames_of(plan.timecode):
        missing.append(f"timecode: {out.timecode} instead of {plan.timecode}")
    if missing:
        raise StreamsMismatch(
            f"{dest.name} lacks streams the source's plan kept ({'; '.join(missing)})",
            hint="this is a bug; please report it with the manifest",
            missing=missing,
        )
