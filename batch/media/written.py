"""The facts of an encoded output from what was asked of ffmpeg and the file's own index.

One ffprobe run per input, not two (issue 12): for the common output (H.264 of 8 or 10 bits in
MP4/MOV, the source's audio copied, no subtitles, chapters, timecode or rotation; an HDR one adds the
one-frame ffprobe for its mastering data that probe() runs too) the output's
:class:`~batch.media.probe.MediaInfo` is read from its ``moov`` (tracks, sample counts and
durations, edit list, where the samples lie) and its SPS (pixel format, colour description,
chroma siting), the two places ffprobe reads them from, in about a millisecond instead of
ffprobe's ~0.1 s start-up. The counts are the container's, as ffprobe's are for MP4, so the
frame and duration checks that follow are the same checks. Anything outside that common case,
or any box that does not read cleanly, returns None and the caller runs the full probe, so odd
and damaged files meet the errors they met before. ``tests/integration/test_written_facts.py``
holds the two readings equal over many outputs.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from batch.media.h264_sps import Sps, SpsUnreadable, sps_from_avcc
from batch.media.mp4_index import Index, IndexUnreadable, Track, read_index
from batch.media.probe import HDR_TRANSFERS, AudioStream, ColorInfo, HdrMeta, MediaInfo, read_hdr_meta
from batch.media.streams import copies_audio
from batch.media.writer import OutputSpec, audio_args

MP4_FORMAT = "mov,mp4,m4a,3gp,3g2,mj2"  # ffprobe's format_name for an MP4 or MOV

# ISO/IEC 23091-2 code points -> ffmpeg's names; a code point not listed sends the file to ffprobe
_PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film", 9: "bt2020"}
_TRANSFERS = {
    1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "linear",
    13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 18: "arib-std-b67",
}  # fmt: skip
_MATRICES = {0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020nc"}
# the sample entry's boxes an HDR output may hold for its facts to be read here (others carry HDR
# metadata ffprobe reads from the container: mdcv, clli, SmDm, CoLL, dvcC ...)
_PLAIN_ENTRY_BOXES = {"avcC", "colr", "pasp", "btrt"}
_CHROMA_FORMATS = {1: "420", 2: "422", 3: "444"}  # chroma_format_idc -> ffmpeg's pix_fmt part
_CHROMA_LOCATIONS = ("left", "center", "topleft", "top", "bottomleft", "bottom")
# an audio codec as ffprobe names it -> the sample entries that carry it in MP4/MOV
_AUDIO_ENTRIES = {
    "aac": {"mp4a"}, "mp3": {"mp4a", ".mp3"}, "ac3": {"ac-3"}, "eac3": {"ec-3"}, "alac": {"alac"},
    "opus": {"Opus"}, "flac": {"fLaC"}, "pcm_s16le": {"sowt"}, "pcm_s24le": {"in24"},
}  # fmt: skip


def facts(info_in: MediaInfo, spec: OutputSpec, path: Path) -> MediaInfo | None:
    """``path``'s facts as :func:`~batch.media.probe.probe` would give them; None: probe it."""
    if not _common_case(info_in, spec):
        return None
    try:
        index = read_index(path)
    except IndexUnreadable:
        return None
    if index.fragmented or not _intact(index):
        return None
    video = [t for t in index.tracks if t.handler == "vide"]
    sound = [t for t in index.tracks if t.handler == "soun"]
    audio = spec.source_streams.audio
    if len(video) != 1 or index.tracks[0] is not video[0] or len(sound) != len(audio):
        return None
    if len(index.tracks) != 1 + len(sound):  # a chapter, timecode or subtitle track: ffprobe
        return None
    v = video[0]
    if v.fourcc not in ("avc1", "avc3") or v.entries != 1 or not v.matrix_identity or v.language != "und":
        return None
    if len(v.avcc) < 5 or v.avcc[4] & 0x03 != 3:
        return None  # NAL lengths of other than 4 bytes: not what ffmpeg's muxer writes, ffprobe judges
    if v.pasp is not None and v.pasp[0] != v.pasp[1]:
        return None  # a pixel aspect in the container: ffprobe reads it
    try:
        sps = sps_from_avcc(v.avcc)
    except SpsUnreadable:
        return None
    if not sps.square_pixels:
        return None  # a pixel aspect in the SPS: ffprobe reads it
    picture = _picture(sps, v)
    fps = _constant_rate(v)
    duration = _duration(v)
    if picture is None or fps is None or duration is None:
        return None
    if fps != spec.fps or (sps.width, sps.height) != (spec.width, spec.height) or not _edit_fits(index, v):
        return None  # not what was asked of the encoder: ffprobe says what it is
    pix_fmt, color, chroma = picture
    hdr_signal = color.transfer in HDR_TRANSFERS or color.primaries == "bt2020"
    if hdr_signal and not set(v.entry_boxes) <= _PLAIN_ENTRY_BOXES:
        return None  # mastering display or light level boxes (mdcv, clli), Dolby Vision: ffprobe reads them
    kept = []
    for k, (track, source) in enumerate(zip(sound, audio, strict=True), start=1):
        if track.fourcc not in _AUDIO_ENTRIES.get(source.codec, set()) or track.entries != 1:
            return None
        if track.sample_rate != source.sample_rate:  # (MP4 writes 2 channels here whatever they are)
            return None  # a copied stream keeps its rate; other entries (HE-AAC, damage): ffprobe
        if source.codec == "aac" and track.aac != (source.channels, source.sample_rate):
            return None  # the decoder's configuration is what ffprobe reads channels and rate from
        if not _audio_timeline_whole(index, track):
            return None  # ffprobe would list fewer packets than the track holds
        kept.append(AudioStream(k, source.codec, source.channels, source.sample_rate, track.samples))
    # an HDR signal's mastering display and light level: from the first frame, as probe() reads them
    # where the sample entry holds none (one-frame ffprobe: the output's one probe)
    hdr = read_hdr_meta(path, {"index": 0}) if hdr_signal else HdrMeta()
    return MediaInfo(
        path=str(path),
        container=MP4_FORMAT,
        codec="h264",
        width=sps.width,
        height=sps.height,
        fps=fps,
        frame_count=v.samples,
        duration=duration,
        pix_fmt=pix_fmt,
        color=color,
        audio=tuple(kept),
        field_order="progressive",
        chroma_location=chroma,
        hdr=hdr,
    )


def _common_case(info_in: MediaInfo, spec: OutputSpec) -> bool:
    """The outputs this reader vouches for: H.264 in MP4/MOV with nothing but copied audio."""
    plan = spec.source_streams
    if spec.container not in ("mp4", "mov") or spec.encoder.codec not in ("libx264", "h264_nvenc"):
        return False
    if info_in.rotation or info_in.start_s or spec.video_offset_s or info_in.streams or info_in.timecode:
        return False
    if spec.sar is not None:  # anamorphic: its aspect is read by ffprobe (pasp box, the SPS's VUI)
        return False
    if plan.subtitles or plan.attachments or plan.chapters or plan.timecode or plan.tags:
        return False
    # copied audio keeps the codec, channels and rate ffprobe read from the source
    return all(copies_audio(spec.container, a) for a in plan.audio) and "-strict" not in audio_args(
        spec.container, plan.audio
    )


def _intact(index: Index) -> bool:
    """Every sample the index lists lies in the file: the chunks of all tracks tile the mdat boxes,
    each byte of them in one chunk (a chunk offset moved onto another track's bytes, which a
    total of the sizes would miss, is refused)."""
    if not index.mdat:
        return False
    held = sum(end - start for start, end in index.mdat)
    if held != sum(t.sample_bytes for t in index.tracks):
        return False
    spans = sorted(span for t in index.tracks for span in t.chunk_spans if span[1] > span[0])
    boxes = list(index.mdat)
    k, end_before = 0, boxes[0][0]
    for start, end in spans:
        while start >= boxes[k][1]:  # past this mdat: the next one
            k += 1
            if k == len(boxes):
                return False
            end_before = boxes[k][0]
        if start < end_before or end > boxes[k][1]:  # overlapping the chunk before, or outside the box
            return False
        end_before = end
    return True


def _picture(sps: Sps, track: Track) -> tuple[str, ColorInfo, str | None] | None:
    """(pix_fmt, colour tags, chroma siting) as ffmpeg's H.264 decoder reports an SPS of 8 or 10
    bits, 4:2:0, 4:2:2 or 4:4:4 (``yuvj`` names for full range at 8 bits only, as the decoder's)."""
    chroma_name = _CHROMA_FORMATS.get(sps.chroma_format)
    depth = sps.bit_depth_luma
    if chroma_name is None or depth not in (8, 10) or sps.bit_depth_chroma != depth or not sps.frame_mbs_only:
        return None  # interlaced coding, monochrome, 9/12/14 bits, mixed depths: ffprobe
    if (sps.width, sps.height) != (track.width, track.height):
        return None
    if chroma_name == "444" and sps.colour_description and sps.matrix == 0:
        return None  # 4:4:4 with the identity (GBR) matrix: the decoder reports gbrp, ffprobe says so
    names: list[str | None] = [None, None, None]
    if sps.colour_description:
        for k, (code, table) in enumerate(
            ((sps.primaries, _PRIMARIES), (sps.transfer, _TRANSFERS), (sps.matrix, _MATRICES))
        ):
            if code != 2:  # 2: unspecified
                if code not in table:
                    return None
                names[k] = table[code]
    if track.colr is not None:  # the container's colour box must say what the SPS says
        stated = (sps.primaries, sps.transfer, sps.matrix) if sps.colour_description else (2, 2, 2)
        if (track.colr.primaries, track.colr.transfer, track.colr.matrix) != stated:
            return None
        if track.colr.full_range is not None and track.colr.full_range != sps.full_range:
            return None
    colour_range = ("pc" if sps.full_range else "tv") if sps.video_signal_type else None
    color = ColorInfo(range=colour_range, space=names[2], transfer=names[1], primaries=names[0])
    chroma = "left"  # what ffmpeg's H.264 decoder reports without chroma_loc_info (4:2:2 and 4:4:4 too)
    if sps.chroma_loc_top is not None:
        if sps.chroma_loc_top >= len(_CHROMA_LOCATIONS):
            return None
        chroma = _CHROMA_LOCATIONS[sps.chroma_loc_top]
    jpeg = "j" if sps.full_range and depth == 8 else ""
    return f"yuv{jpeg}{chroma_name}p{'10le' if depth == 10 else ''}", color, chroma


def _edit_fits(index: Index, track: Track) -> bool:
    """An edit's length is the samples' (in the movie's coarser timescale), as the muxer writes it."""
    if not track.edits:
        return True
    total = Fraction(sum(n * d for n, d in track.deltas), track.timescale)
    return abs(track.edits[0][0] - total * index.movie_timescale) <= 1


def _audio_timeline_whole(index: Index, track: Track) -> bool:
    """Every audio packet is inside the presented timeline, as the muxer writes it: the media
    header says what the samples last, and an edit (the encoder's priming skipped) runs to their
    end, within the movie timescale's rounding. A shorter edit makes ffprobe list fewer packets."""
    ticks = sum(n * d for n, d in track.deltas)
    if ticks != track.media_duration or len(track.edits) > 1:
        return False
    if not track.edits:
        return True
    segment, media_time, rate = track.edits[0]
    end = media_time + Fraction(segment * track.timescale, index.movie_timescale)
    slack = Fraction(track.timescale, index.movie_timescale)
    return rate == 0x10000 and media_time >= 0 and abs(end - ticks) <= slack


def _constant_rate(track: Track) -> Fraction | None:
    if len(track.deltas) != 1 or track.deltas[0][1] == 0:  # one stts run: every frame lasts as long
        return None
    return Fraction(track.timescale, track.deltas[0][1])


def _duration(track: Track) -> float | None:
    """The video's length as ffprobe prints it (microseconds): its samples' durations.

    Only a constant-rate track whose presentation times fill the grid from the edit's start, one
    sample a slot (no sample before the edit, which ffprobe would count as discarded), is taken.
    """
    if len(track.edits) > 1 or len(track.deltas) != 1:
        return None
    delta = track.deltas[0][1]
    start = 0
    if track.edits:
        _, start, rate = track.edits[0]
        if rate != 0x10000:
            return None
    if track.composition and sum(count for count, _ in track.composition) != track.samples:
        return None  # (checked before the list is made: a damaged count could ask for billions)
    offsets = [offset for count, offset in track.composition for _ in range(count)] or [0] * track.samples
    if sorted(k * delta + off for k, off in enumerate(offsets)) != list(
        range(start, start + track.samples * delta, delta)
    ):
        return None
    ticks = track.samples * delta
    if ticks != track.media_duration:  # mdhd must say what the samples last (ffprobe reads mdhd)
        return None
    return float(f"{float(Fraction(ticks, track.timescale)):.6f}")
