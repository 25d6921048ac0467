"""ffprobe -> MediaInfo: the facts about a video the pipeline relies on."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from batch.errors import EmptyInput, FFmpegFailed, NotAVideo, TruncatedVideo
from batch.media import probe_ahead
from batch.media.frame_times import (
    Timeline,
    cuts_exact,
    grid_rate,
    half_away,
    resample_rate,
    resampled_count,
    spacing_varies,
)
from batch.media.matroska import segment_complete
from batch.media.probe_command import FFPROBE, PROBE_ARGS, ffprobe_command, file_argument, probe_ahead_of_time

__all__ = ["FFPROBE", "probe_ahead_of_time"]  # kept here for the runner and the tests


@dataclass(frozen=True)
class ColorInfo:
    """Colour tags as ffmpeg names them; None where the source leaves them unset."""

    range: str | None = None  # "tv" | "pc"
    space: str | None = None  # matrix: "bt709", "bt470bg", "smpte170m", "bt2020nc" ...
    transfer: str | None = None
    primaries: str | None = None


HDR_TRANSFERS = ("smpte2084", "arib-std-b67")
_MASTERING_KEYS = (
    "red_x", "red_y", "green_x", "green_y", "blue_x", "blue_y",
    "white_point_x", "white_point_y", "min_luminance", "max_luminance",
)  # fmt: skip


@dataclass(frozen=True)
class HdrMeta:
    """HDR side data as ffprobe prints it (fractions such as ``34000/50000``); empty when absent."""

    mastering: tuple[tuple[str, str], ...] = ()  # (key, value) in _MASTERING_KEYS order
    max_cll: int | None = None  # content light level: brightest pixel, cd/m2
    max_fall: int | None = None  # brightest frame average, cd/m2

    @property
    def present(self) -> bool:
        return bool(self.mastering) or self.max_cll is not None


@dataclass(frozen=True)
class AudioStream:
    index: int
    codec: str
    channels: int
    sample_rate: int
    packets: int | None = None  # in the file (None: not counted); 0 is a track with no audio at all


@dataclass(frozen=True)
class OtherStream:
    """A stream besides the first video and the audio: subtitles, attachments, data, more video."""

    index: int
    type: str  # "subtitle" | "attachment" | "data" | "video" (a second video or an attached picture)
    codec: str  # ffprobe's codec_name; "none" when ffmpeg does not know it
    tag: str = ""  # the codec tag ("tmcd" for a QuickTime timecode track, "text" for a chapter track)
    language: str | None = None
    title: str | None = None
    mimetype: str | None = None  # attachments (fonts in Matroska)
    filename: str | None = None
    attached_pic: bool = False  # cover art


@dataclass(frozen=True)
class MediaInfo:
    path: str
    container: str
    codec: str
    width: int  # as displayed, i.e. after rotation
    height: int
    fps: Fraction  # the rate frames are delivered at (avg rate for VFR)
    frame_count: int
    duration: float
    pix_fmt: str
    rotation: int = 0
    # the pixels' aspect (sample aspect ratio) as displayed, i.e. after rotation; None: square or unset
    sar: Fraction | None = None
    start_s: float = 0.0  # video start relative to the file's start (audio sync)
    vfr: bool = False
    resample_dropped: int = 0  # VFR: source frames the resampling to ``fps`` drops (from their timestamps)
    last_frame_s: float = 0.0  # VFR: how long the last frame is shown (its duration, else a typical gap)
    resampled_frames: int = 0  # VFR: the frames the resampling to ``fps`` makes (from the timestamps)
    frame_count_source: str = "container"  # or "counted"
    color: ColorInfo = field(default_factory=ColorInfo)
    audio: tuple[AudioStream, ...] = ()
    field_order: str | None = None  # "progressive", or interlaced: "tt" | "bb" | "tb" | "bt"
    chroma_location: str | None = None  # where subsampled chroma sits: "left", "center", "topleft" ...
    language: str | None = None  # the video stream's language and title tags
    title: str | None = None
    timecode: str | None = None  # "HH:MM:SS:FF" (";" before FF: drop-frame), from any stream or the file
    chapters: int = 0
    streams: tuple[OtherStream, ...] = ()
    hdr: HdrMeta = field(default_factory=HdrMeta)
    # VFR: the shown frames' timestamps, so a chunk of the resampled frames can be decoded alone
    timeline: Timeline | None = field(default=None, repr=False, compare=False)
    # How far a frame is shown after it is decoded (B-frames): a seek for a chunk starts that much
    # earlier, or a demuxer that seeks by decode time starts after the chunk's first frame
    reorder_s: float = field(default=0.0, repr=False, compare=False)
    # The rate ffprobe reported where the timestamps' grid gave another (``fps``): that rate drifts off
    # the frames (a coarse time base skews the average; a codec can declare another rate than it has)
    reported_fps: Fraction | None = field(default=None, compare=False)
    # Constant rate: a chunk can start exactly at any frame by a seek and a trim (frame_times.
    # cuts_exact): not where frames are a tick or two apart, or where ``fps`` drifts off them
    cuts_exact: bool = field(default=True, repr=False, compare=False)

    @property
    def delivered_frames(self) -> int:
        """The frames decoding delivers: the source's, or for variable rate the resampling's."""
        return self.resampled_frames if self.vfr and self.resampled_frames else self.frame_count

    def to_dict(self) -> dict[str, Any]:
        out = asdict(replace(self, timeline=None))  # every frame's timestamp: not a fact for the manifest
        out["fps"] = f"{self.fps.numerator}/{self.fps.denominator}"
        out["sar"] = f"{self.sar.numerator}:{self.sar.denominator}" if self.sar else None
        out.pop("path")
        out.pop("timeline")
        out.pop("reorder_s")
        out.pop("reported_fps")  # (in the manifest's notes: pipeline.grid_rate_note)
        out.pop("cuts_exact")
        out["hdr"] = {
            "mastering_display": dict(self.hdr.mastering) or None,
            "max_cll": self.hdr.max_cll,
            "max_fall": self.hdr.max_fall,
        }
        return out


def _rate(text: str | None) -> Fraction | None:
    if not text or text in ("0/0", "0/1"):
        return None
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def _run_ffprobe(args: list[str], path: Path) -> dict[str, Any]:
    cmd = ffprobe_command(args, path)
    early = probe_ahead.take(cmd, path)
    if early is not None:
        try:
            return _facts(early, cmd, path)
        except FFmpegFailed:  # printed to a file that was cut short (a full disk): asked afresh
            pass
    return _facts(subprocess.run(cmd, capture_output=True, text=True, check=False), cmd, path)


def _facts(proc: subprocess.CompletedProcess[str], cmd: list[str], path: Path) -> dict[str, Any]:
    """ffprobe's JSON, or the error its run shows (unreadable output: FFmpegFailed)."""
    if proc.returncode != 0:
        tail = proc.stderr.strip()[-800:]
        if "moov atom not found" in tail and _looks_like_mp4(path):
            raise TruncatedVideo(
                f"{path.name} is truncated: its index (moov atom) is missing",
                hint="re-upload a complete copy of the input",
                stderr_tail=tail,
            )
        # without ffmpeg's "[mov,mp4,... @ 0x55a7...] " and the runner's own path: the file by its name
        said = re.sub(r"\[[^\]\n]* @ 0x[0-9a-f]+\] ", "", tail).replace(file_argument(path), path.name)
        raise NotAVideo(
            f"{path.name} could not be read as a video: {said or 'ffprobe failed'}",
            hint="check that the input is a video file and was uploaded completely",
            stderr_tail=tail,
        )
    if lost := _data_skipped(proc.stderr):
        raise TruncatedVideo(
            f"{path.name} is truncated or damaged: {lost}; frames there are lost",
            hint="re-upload a complete copy of the input; to accept the loss, remux it first "
            "(ffmpeg -i in.mkv -c copy remuxed.mkv) and give the remuxed file",
            stderr_tail=proc.stderr.strip()[-800:],
        )
    try:
        facts: dict[str, Any] = json.loads(proc.stdout or "{}")
        return facts
    except json.JSONDecodeError as e:
        raise FFmpegFailed(f"ffprobe printed unreadable output for {path.name}", command=" ".join(cmd)) from e


# What ffmpeg's Matroska demuxer says where it cannot read a block inside the file and skips ahead to
# the next cluster it finds (the packets between are dropped: ffprobe counts fewer frames, and the gap
# looked like a variable frame rate). A file cut short says "File ended prematurely" instead, and fails
# the duration check with the lengths that show it.
_MATROSKA_SKIPS = re.compile(
    r"\[matroska,webm @ 0x[0-9a-f]+\] [^\n]*?(?P<what>invalid as first byte of an EBML number|exceeds max "
    r"length|exceeds containing master element|Invalid EBML number size)[^\n]*"
)


def _data_skipped(stderr: str) -> str | None:
    """What the demuxer skipped over in the middle of the file, from its log; None where it read all.
    (Damage only in an element that holds no frames, a tag or the seek table, is refused too: telling
    it apart from a lost block, a damaged lace or track header, has proved unreliable.)"""
    found = _MATROSKA_SKIPS.search(stderr or "")
    if found is None:
        return None
    at = re.search(r"at pos (\d+)", found.group(0))
    where = f" at byte {at.group(1)}" if at and int(at.group(1)) else ""  # (0: where it lost its place)
    return f"its Matroska data is unreadable{where} ({found.group('what')}) and ffmpeg skips past it"


COMMON_RATES = tuple(
    Fraction(r) for r in ("24000/1001", "24", "25", "30000/1001", "30", "50", "60000/1001", "60", "120")
)


def cfr_rate_for(r_rate: Fraction, avg_rate: Fraction) -> Fraction:
    """The constant rate a variable-rate stream is resampled to.

    The stream's base rate (r_frame_rate) keeps every frame, filling gaps by
    holding frames; it is used unless it is a timebase-like rate (above 240),
    in which case the common rate nearest the average is used.
    """
    if r_rate <= 240:
        return r_rate
    return min(COMMON_RATES, key=lambda c: abs(c - avg_rate))


def _looks_like_mp4(path: Path) -> bool:
    """An ISO-BMFF file starts with a box such as ftyp; a text file named .mp4 does not."""
    from batch.media.mp4_index import FIRST_BOXES  # an error path: not loaded before every ffmpeg

    with path.open("rb") as f:
        head = f.read(12)
    return head[4:8] in FIRST_BOXES


def pixel_aspect(text: Any, rotation: int = 0) -> Fraction | None:
    """ffprobe's ``sample_aspect_ratio`` ("32:27") as displayed (a quarter turn swaps its sides);
    None for square pixels or none given ("0:1", "N/A", "1:1", nonsense)."""
    num, sep, den = str(text or "").partition(":")
    if not (sep and num.isdigit() and den.isdigit() and int(num) and int(den)):
        return None
    sar = Fraction(int(num), int(den))
    if rotation in (90, 270):
        sar = 1 / sar
    return None if sar == 1 else sar


def _rotation(stream: dict[str, Any]) -> int:
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            return round(float(side["rotation"])) % 360
    tag = (stream.get("tags") or {}).get("rotate")
    return int(tag) % 360 if tag else 0


def _shown_frames(
    packets: list[dict[str, Any]], stream_index: int, second: int
) -> tuple[list[int], int | None] | None:
    """The timestamps of the frames the stream shows, in order, and where the last one ends (its
    timestamp plus its duration, where known). None when a packet has no timestamp, or when the
    timestamps jump back by more than ``second`` ticks in decode order (joined MPEG-TS segments:
    ffmpeg mends that discontinuity, sorting the two runs together would not)."""
    shown = []
    latest: int | None = None
    for p in packets:
        if p.get("stream_index") == stream_index and "D" not in str(p.get("flags", "")):
            pts = p.get("pts")
            if not isinstance(pts, int) or (latest is not None and pts < latest - second):
                return None
            latest = pts if latest is None else max(latest, pts)
            shown.append(p)
    if not shown:
        return None
    last = max(shown, key=lambda p: int(p["pts"]))
    duration = last.get("duration")
    return sorted(int(p["pts"]) for p in shown), last["pts"] + duration if isinstance(duration, int) else None


def _reorder(packets: list[dict[str, Any]], stream_index: int) -> int:
    """The most a packet's presentation time runs ahead of its decode time, in ticks (B-frames)."""
    ahead = 0
    for p in packets:
        pts, dts = p.get("pts"), p.get("dts")
        if p.get("stream_index") == stream_index and isinstance(pts, int) and isinstance(dts, int):
            ahead = max(ahead, pts - dts)
    return ahead


def _packet_counts(packets: list[dict[str, Any]], stream_index: int) -> tuple[int, int]:
    """(packets of the stream, packets that decode to shown frames), from every packet's flags.

    Packets flagged ``D`` lie before an edit list's start (e.g. a stream-copied
    cut) and are decoded but never shown, so they are not frames of the video.
    """
    flags = [str(p.get("flags", "")) for p in packets if p.get("stream_index") == stream_index]
    return len(flags), sum("D" not in f for f in flags)


def _stream_duration(video: dict[str, Any]) -> float | None:
    """The video stream's own duration (Matroska keeps it in a DURATION tag)."""
    if video.get("duration"):
        return float(video["duration"])
    tag = (video.get("tags") or {}).get("DURATION")
    if tag:
        h, m, s = tag.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    return None


def _matroska_end(
    path: Path, pts: list[int], end: int | None, typical: int, time_base: Fraction, length: float
) -> int | None:
    """Where a Matroska video's last frame ends: the track's declared length where that is over two
    frames past its last frame's default end and the file holds its whole Segment (Matroska stores no
    duration for a last frame held for seconds; a copy cut short is what the length then tells)."""
    declared = pts[0] + half_away(Fraction(length).limit_denominator(1_000_000) / time_base)
    if declared - (end if end is not None else pts[-1] + typical) > 2 * typical and segment_complete(path):
        return declared
    return end


def probe(path: Path) -> MediaInfo:
    """Describe the first video stream of a local file.

    Raises EmptyInput (zero bytes), NotAVideo (no video stream or unreadable)
    and TruncatedVideo (the container promises more than the file holds).
    """
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        raise EmptyInput(
            f"{path.name} is empty (0 bytes)", hint="re-upload the input; the object holds no data"
        )
    data = _run_ffprobe(PROBE_ARGS, path)
    streams = data.get("streams") or []
    video = next(
        (
            s
            for s in streams
            if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
        ),
        None,
    )
    if video is None:
        raise NotAVideo(
            f"{path.name} holds no video stream",
            hint="check that the input is a video (a text or audio file named .mp4 is not)",
        )
    fmt = data.get("format") or {}
    r_rate = _rate(video.get("r_frame_rate"))
    avg_rate = _rate(video.get("avg_frame_rate"))
    fps = avg_rate or r_rate
    if fps is None:
        raise NotAVideo(f"{path.name} has no frame rate", hint="the video stream may be a single image")
    if str(fmt.get("format_name", "")).endswith("_pipe") or fmt.get("format_name") == "image2":
        raise NotAVideo(
            f"{path.name} is a still image ({fmt.get('format_name')}), not a video",
            hint="give a video file; for a single image use an image tool",
        )

    declared = int(video.get("nb_frames") or 0)
    packets, frame_count = _packet_counts(data.get("packets") or [], int(video.get("index", 0)))
    if frame_count == 0:
        raise TruncatedVideo(
            f"{path.name} holds no video frames",
            hint="the file is truncated or damaged; re-upload a complete copy",
        )
    if declared and packets < declared:
        raise TruncatedVideo(
            f"{path.name} is truncated: the container declares {declared} frames, the file holds {packets}",
            hint="re-upload a complete copy of the input",
            declared_frames=declared,
            found_frames=packets,
        )
    source = "container" if declared == frame_count else "counted"
    duration = _stream_duration(video) or float(frame_count / fps)
    if not video.get("duration") and _float(video.get("start_time")) > 0:
        # ffmpeg's Matroska muxer writes the track's end time as its DURATION tag, other muxers its
        # length: of the two readings, the one the frames fill is the length.
        as_end = duration - _float(video.get("start_time"))
        if as_end > 0 and abs(as_end - float(frame_count / fps)) < abs(duration - float(frame_count / fps)):
            duration = as_end
    time_base = _rate(video.get("time_base"))
    shown = (
        _shown_frames(data.get("packets") or [], int(video.get("index", 0)), round(1 / time_base))
        if time_base
        else None
    )
    resample_dropped, last_frame_s, resampled_frames = 0, 0.0, 0
    timeline: Timeline | None = None
    reported_fps: Fraction | None = None
    exact_cuts = True
    if shown and len(shown[0]) > 2 and time_base:
        pts, end = shown
        typical = sorted(b - a for a, b in itertools.pairwise(pts))[(len(pts) - 1) // 2]
        # (a video starting late: ffmpeg's muxer writes its end as the length, others may write its
        # length, and which was read is a guess; a last frame is then not held on that guess)
        lavf = any(
            str(v).startswith("Lavf") for k, v in (fmt.get("tags") or {}).items() if k.lower() == "encoder"
        )
        if "matroska" in str(fmt.get("format_name", "")) and (lavf or _float(video.get("start_time")) <= 0):
            end = _matroska_end(path, pts, end, typical, time_base, duration)
        # the frames' own timestamps: the reported rates agree for some variable-rate streams
        # (Matroska; a phone clip missing a frame); so does a last frame held for over two frames
        vfr = spacing_varies(pts, time_base) or (end is not None and end - pts[-1] > 2 * typical)
        if vfr:
            start = Fraction(str(fmt.get("start_time") or 0))  # ffmpeg's time 0
            origin = half_away(start / time_base)  # as ffmpeg rescales it (av_rescale_q)
            fps, resample_dropped = resample_rate(pts, time_base, r_rate, origin, end)
            resampled_frames = resampled_count(pts, time_base, fps, origin, end)
            timeline = Timeline(tuple(pts), time_base, origin, fps, start)
            last_frame_s = float((end - pts[-1] if end is not None else typical) * time_base)
            # An MP4 with B-frames can declare a length shorter than its frames are shown for (its
            # decode times lag); the frames are there, so they set the length (a declared length
            # longer than the frames is kept: that is how a truncated file shows).
            duration = max(duration, float((pts[-1] - pts[0]) * time_base) + last_frame_s)
        else:
            on_grid = grid_rate(pts, time_base, (fps, r_rate))
            if on_grid is not None and on_grid != fps:
                reported_fps, fps = fps, on_grid
            exact_cuts = cuts_exact(pts, time_base, fps)
    else:
        vfr = bool(r_rate and avg_rate and abs(r_rate - avg_rate) / avg_rate > Fraction(1, 100))
        # Some containers (Matroska) report a nominal rate even for variable-rate
        # streams: frames that do not fill the duration at that rate mean VFR.
        if not vfr and abs(frame_count / fps - Fraction(duration)) > 2 / fps:
            vfr = True
            avg_rate = Fraction(frame_count) / Fraction(duration)
        if vfr:
            fps = cfr_rate_for(r_rate or fps, avg_rate or fps)

    reorder_s = float(_reorder(data.get("packets") or [], int(video.get("index", 0))) * (time_base or 0))
    rotation = _rotation(video)
    start_s = max(0.0, _float(video.get("start_time")) - _float(fmt.get("start_time")))
    width, height = int(video["width"]), int(video["height"])
    if rotation in (90, 270):
        width, height = height, width

    per_stream: dict[int, int] = {}
    for packet in data.get("packets") or []:
        index = packet.get("stream_index")
        if isinstance(index, int):
            per_stream[index] = per_stream.get(index, 0) + 1
    audio = tuple(
        AudioStream(
            index=int(s["index"]),
            codec=str(s.get("codec_name", "unknown")),
            channels=int(s.get("channels") or 0),
            sample_rate=int(s.get("sample_rate") or 0),
            packets=per_stream.get(int(s["index"]), 0),
        )
        for s in streams
        if s.get("codec_type") == "audio"
    )
    color = ColorInfo(
        range=_known(video.get("color_range")),
        space=_known(video.get("color_space")),
        transfer=_known(video.get("color_transfer")),
        primaries=_known(video.get("color_primaries")),
    )
    hdr = HdrMeta()
    if color.transfer in HDR_TRANSFERS or color.primaries == "bt2020":
        hdr = read_hdr_meta(path, video)
    return MediaInfo(
        path=str(path),
        container=str(fmt.get("format_name", "")),
        codec=str(video.get("codec_name", "")),
        width=width,
        height=height,
        fps=fps,
        frame_count=frame_count,
        duration=duration,
        pix_fmt=str(video.get("pix_fmt", "")),
        rotation=rotation,
        sar=pixel_aspect(video.get("sample_aspect_ratio"), rotation),
        start_s=start_s,
        vfr=vfr,
        resample_dropped=resample_dropped,
        last_frame_s=last_frame_s,
        resampled_frames=resampled_frames,
        frame_count_source=source,
        color=color,
        audio=audio,
        field_order=_known(video.get("field_order")),
        chroma_location=_known(video.get("chroma_location")),
        language=_tag(video, "language"),
        title=_tag(video, "title"),
        timecode=_timecode(streams, fmt),
        chapters=len(data.get("chapters") or []),
        streams=_other_streams(streams, video),
        hdr=hdr,
        timeline=timeline,
        reorder_s=reorder_s,
        reported_fps=reported_fps,
        cuts_exact=exact_cuts,
    )


def _tag(entry: dict[str, Any], name: str) -> str | None:
    """A tag by name, whatever its case (Matroska writes them in capitals); "und" is no language."""
    for key, value in (entry.get("tags") or {}).items():
        if key.lower() == name and value not in ("", "und"):
            return str(value)
    return None


def _timecode(streams: list[dict[str, Any]], fmt: dict[str, Any]) -> str | None:
    """The start timecode: the video's tag, a timecode track's (tmcd), or the file's."""
    for entry in [*streams, fmt]:
        if value := _tag(entry, "timecode"):
            return value
    return None


def _codec_tag(stream: dict[str, Any]) -> str:
    tag = str(stream.get("codec_tag_string") or "")
    return "" if tag.startswith("[") else tag  # "[0][0][0][0]": no tag


def _other_streams(streams: list[dict[str, Any]], video: dict[str, Any]) -> tuple[OtherStream, ...]:
    kinds = ("subtitle", "attachment", "data", "video")
    return tuple(
        OtherStream(
            index=int(s["index"]),
            type=str(s["codec_type"]),
            codec=str(s.get("codec_name") or "none"),
            tag=_codec_tag(s),
            language=_tag(s, "language"),
            title=_tag(s, "title"),
            mimetype=_tag(s, "mimetype"),
            filename=_tag(s, "filename"),
            attached_pic=bool((s.get("disposition") or {}).get("attached_pic")),
        )
        for s in streams
        if s.get("codec_type") in kinds and s is not video
    )


def _hdr_from(sides: list[dict[str, Any]]) -> HdrMeta:
    mastering: tuple[tuple[str, str], ...] = ()
    cll: int | None = None
    fall: int | None = None
    for side in sides:
        kind = str(side.get("side_data_type", ""))
        if kind.startswith("Mastering display") and all(k in side for k in _MASTERING_KEYS):
            mastering = tuple((k, str(side[k])) for k in _MASTERING_KEYS)
        elif kind.startswith("Content light level"):
            cll, fall = int(side.get("max_content") or 0), int(side.get("max_average") or 0)
    return HdrMeta(mastering, cll, fall)


def read_hdr_meta(path: Path, video: dict[str, Any]) -> HdrMeta:
    """Mastering display and content light level: the stream's side data (Matroska, MP4), else the
    first frame's (HEVC SEI), which costs decoding one frame."""
    found = _hdr_from(list(video.get("side_data_list") or []))
    if found.mastering and found.max_cll is not None:
        return found
    cmd = [
        FFPROBE, "-v", "error", "-of", "json", "-select_streams", f"{video.get('index', 0)}",
        "-read_intervals", "%+#1", "-show_frames", "-show_entries", "frame=side_data_list",
        file_argument(path),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    try:
        frames = json.loads(proc.stdout or "{}").get("frames") or []
    except json.JSONDecodeError:
        frames = []
    from_frame = _hdr_from(list((frames[0] if frames else {}).get("side_data_list") or []))
    return HdrMeta(
        found.mastering or from_frame.mastering,
        found.max_cll if found.max_cll is not None else from_frame.max_cll,
        found.max_fall if found.max_fall is not None else from_frame.max_fall,
    )


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _known(value: Any) -> str | None:
    return None if value in (None, "", "unknown", "reserved", "unspecified") else str(value)
