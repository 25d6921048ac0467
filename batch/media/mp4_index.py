"""The index (``moov``) of an MP4/MOV file, read in-process: a cheap check of what an encoder wrote.

ffprobe costs ~0.1 s a run on the development VM, nearly all of it its own start-up (the
dynamic loader resolving ~200 libraries); reading the few boxes below costs about a millisecond.
The check (:func:`batch.media.written.facts`) needs per track: its kind, its sample entry (codec,
coded size, colour box), its sample count and durations, its edit list, and where its samples
lie, so that a file cut short or an index that promises more than the file holds is refused.

Every malformed case raises :class:`IndexUnreadable`; the caller then asks ffprobe.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_MAX_MOOV = 256 << 20  # an index larger than this is read by ffprobe, not into memory here
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf"}


# the boxes an ISO-BMFF file (MP4, MOV) can start with
FIRST_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")


class IndexUnreadable(ValueError):
    """The file's index is missing, damaged or of a form this reader does not take."""


@dataclass(frozen=True)
class Colr:
    """An ``nclx``/``nclc`` colour box: ISO/IEC 23091-2 code points."""

    primaries: int
    transfer: int
    matrix: int
    full_range: bool | None  # nclc (QuickTime) has no range flag


@dataclass(frozen=True)
class Track:
    handler: str  # "vide", "soun", "sbtl", "text", "tmcd", "subp" ...
    fourcc: str  # the first sample entry's format ("avc1", "hvc1", "mp4a" ...)
    entries: int  # sample entries in stsd
    timescale: int  # mdhd
    media_duration: int  # mdhd, in ``timescale`` ticks
    language: str  # mdhd's ISO 639-2/T code ("und" when unset)
    samples: int  # stsz/stz2
    sample_bytes: int  # the sum of the samples' sizes
    deltas: tuple[tuple[int, int], ...]  # stts: (count, duration in ticks)
    composition: tuple[tuple[int, int], ...]  # ctts: (count, offset in ticks); () without B-frames
    edits: tuple[tuple[int, int, int], ...]  # elst: (length in the movie timescale, media time, rate)
    width: int  # visual sample entry (0 for other kinds)
    height: int
    colr: Colr | None
    avcc: bytes  # the H.264 decoder configuration (avcC payload); b"" for other codecs
    channels: int  # audio sample entry (0 for other kinds)
    sample_rate: int
    aac: tuple[int, int] | None  # (channels, sample rate) of an AAC-LC AudioSpecificConfig (esds)
    matrix_identity: bool  # tkhd's transformation matrix is the identity (no rotation)
    entry_boxes: tuple[str, ...] = ()  # the visual sample entry's child boxes (avcC, colr, pasp, mdcv ...)
    pasp: tuple[int, int] | None = None  # the pixel aspect box's (hSpacing, vSpacing), where there is one
    chunk_spans: tuple[tuple[int, int], ...] = ()  # each chunk's (first byte, last byte + 1), stco order


@dataclass(frozen=True)
class Index:
    movie_timescale: int
    tracks: tuple[Track, ...]
    mdat: tuple[tuple[int, int], ...]  # (payload start, payload end) of each mdat box
    file_size: int
    top_level: tuple[str, ...]  # the top-level box types in file order
    fragmented: bool  # moof boxes follow (samples live outside moov's tables)


def read_index(path: Path) -> Index:
    """The index of ``path``; raises IndexUnreadable for anything but a complete, plain MP4/MOV."""
    try:
        with Path(path).open("rb") as f:
            size = f.seek(0, 2)
            f.seek(0)
            return _read(f, size)
    except (OSError, struct.error, IndexError) as e:  # a field read past the data it lies in
        raise IndexUnreadable(f"{Path(path).name}: {e}") from e


def _read(f: BinaryIO, file_size: int) -> Index:
    pos = 0
    moov: bytes | None = None
    mdat: list[tuple[int, int]] = []
    kinds: list[str] = []
    fragmented = False
    while pos < file_size:
        f.seek(pos)
        kind, header, size = _header(f.read(16), 0, file_size - pos)
        kinds.append(kind.decode("latin-1"))
        if kind == b"moov":
            if moov is not None:
                raise IndexUnreadable("two moov boxes")
            if size > _MAX_MOOV:
                raise IndexUnreadable(f"moov of {size} bytes")
            f.seek(pos + header)
            moov = f.read(size - header)
        elif kind == b"mdat":
            mdat.append((pos + header, pos + size))
        elif kind in (b"moof", b"mfra", b"sidx"):
            fragmented = True
        pos += size
    if moov is None:
        raise IndexUnreadable("no moov box (the index is missing)")
    if not kinds or kinds[0].encode("latin-1") not in FIRST_BOXES:
        raise IndexUnreadable(f"first box {kinds[0] if kinds else None!r} is not an MP4/MOV box")
    timescale, tracks = _moov(moov)
    return Index(timescale, tracks, tuple(mdat), file_size, tuple(kinds), fragmented)


def _header(buf: bytes, at: int, room: int) -> tuple[bytes, int, int]:
    """(type, header length, box size) of the box whose header starts at ``buf[at]``, which has
    ``room`` bytes up to the end of its parent (or of the file)."""
    if room < 8 or len(buf) < at + 8:
        raise IndexUnreadable("a box header cut short")
    size, kind = struct.unpack_from(">I4s", buf, at)
    header = 8
    if size == 1:  # a 64-bit size follows
        if room < 16 or len(buf) < at + 16:
            raise IndexUnreadable("a large box header cut short")
        size, header = struct.unpack_from(">Q", buf, at + 8)[0], 16
    elif size == 0:  # the box runs to the end of its parent
        size = room
    if size < header or size > room:
        raise IndexUnreadable(f"box {kind!r} runs past its parent or the file ({size} bytes)")
    return kind, header, size


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the boxes in ``data[start:end]``."""
    end = len(data) if end is None else end
    out = []
    pos = start
    while pos < end:
        kind, header, size = _header(data, pos, end - pos)
        out.append((kind, pos + header, pos + size))
        pos += size
    return out


def _find(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for k, s, e in _boxes(data, start, end):
        if k == kind:
            return s, e
    return None


def _need(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int]:
    found = _find(data, start, end, kind)
    if found is None:
        raise IndexUnreadable(f"no {kind.decode('latin-1')} box")
    return found


def _moov(data: bytes) -> tuple[int, tuple[Track, ...]]:
    mvhd = _need(data, 0, len(data), b"mvhd")
    version = _version(data, mvhd[0], "mvhd")
    timescale = struct.unpack_from(">I", data, mvhd[0] + (20 if version == 1 else 12))[0]
    if timescale == 0:
        raise IndexUnreadable("mvhd timescale 0")
    if struct.unpack_from(">9i", data, mvhd[0] + (48 if version == 1 else 36)) != _IDENTITY:
        raise IndexUnreadable("a movie transformation matrix")  # rotation: ffprobe reports it
    tracks = tuple(_track(data, s, e) for k, s, e in _boxes(data) if k == b"trak")
    if not tracks:
        raise IndexUnreadable("no tracks")
    return timescale, tracks


def _track(data: bytes, start: int, end: int) -> Track:
    tkhd = _need(data, start, end, b"tkhd")
    version = _version(data, tkhd[0], "tkhd")
    identity = struct.unpack_from(">9i", data, tkhd[0] + (52 if version == 1 else 40)) == _IDENTITY
    edits: tuple[tuple[int, int, int], ...] = ()
    if (edts := _find(data, start, end, b"edts")) and (elst := _find(data, *edts, b"elst")):
        edits = _elst(data, *elst)
    mdia = _need(data, start, end, b"mdia")
    mdhd = _need(data, *mdia, b"mdhd")
    if _version(data, mdhd[0], "mdhd") == 1:
        timescale, duration = struct.unpack_from(">IQ", data, mdhd[0] + 20)
        lang_at = mdhd[0] + 32
    else:
        timescale, duration = struct.unpack_from(">II", data, mdhd[0] + 12)
        lang_at = mdhd[0] + 20
    if timescale == 0:
        raise IndexUnreadable("mdhd timescale 0")
    packed = struct.unpack_from(">H", data, lang_at)[0]
    # ISO 639-2/T packed in 5-bit letters; 0x7FFF: QuickTime's "unspecified"
    language = "und" if packed == 0x7FFF else "".join(chr(((packed >> s) & 0x1F) + 0x60) for s in (10, 5, 0))
    hdlr = _need(data, *mdia, b"hdlr")
    handler = data[hdlr[0] + 8 : hdlr[0] + 12].decode("latin-1")
    minf = _need(data, *mdia, b"minf")
    _self_contained(data, minf)
    stbl = _need(data, *minf, b"stbl")
    fourcc, entries, width, height, colr, avcc, audio, aac, entry_boxes, pasp = _stsd(
        data, *_need(data, *stbl, b"stsd"), handler
    )
    samples, sample_bytes, spans = _layout(data, stbl)
    _sync_samples(data, stbl, samples)
    deltas = _stts(data, *_need(data, *stbl, b"stts"))
    if sum(n for n, _ in deltas) != samples:
        raise IndexUnreadable(f"stts counts {sum(n for n, _ in deltas)} samples, stsz {samples}")
    return Track(
        handler=handler,
        fourcc=fourcc,
        entries=entries,
        timescale=timescale,
        media_duration=duration,
        language=language,
        samples=samples,
        sample_bytes=sample_bytes,
        deltas=deltas,
        composition=_ctts(data, stbl),
        edits=edits,
        width=width,
        height=height,
        colr=colr,
        avcc=avcc,
        channels=audio[0],
        sample_rate=audio[1],
        aac=aac,
        matrix_identity=identity,
        entry_boxes=entry_boxes,
        pasp=pasp,
        chunk_spans=spans,
    )


_IDENTITY = (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def _version(data: bytes, at: int, name: str) -> int:
    version = data[at]
    if version > 1:
        raise IndexUnreadable(f"{name} version {version}")
    return version


def _self_contained(data: bytes, minf: tuple[int, int]) -> None:
    """The samples are in this file: one data reference, flagged self-contained."""
    dref = _need(data, *_need(data, *minf, b"dinf"), b"dref")
    if dref[1] - dref[0] < 20 or struct.unpack_from(">I", data, dref[0] + 4)[0] != 1:
        raise IndexUnreadable("not one data reference")
    size, kind, flags = struct.unpack_from(">I4sI", data, dref[0] + 8)
    if kind not in (b"url ", b"alis") or not flags & 1 or size < 12 or dref[0] + 8 + size > dref[1]:
        raise IndexUnreadable("the samples live in another file")


def _sync_samples(data: bytes, stbl: tuple[int, int], samples: int) -> None:
    """stss, when present, lists key frames in order within the samples, the first among them."""
    found = _find(data, *stbl, b"stss")
    if found is None:
        return
    start, end = found
    count = struct.unpack_from(">I", data, start + 4)[0]
    if count < 1 or start + 8 + 4 * count > end:
        raise IndexUnreadable("stss lists fewer entries than it counts")
    keys = struct.unpack_from(f">{count}I", data, start + 8)
    if keys[0] != 1 or keys[-1] > samples or any(b <= a for a, b in itertools.pairwise(keys)):
        raise IndexUnreadable("stss's key frames are out of order or out of range")


def _ctts(data: bytes, stbl: tuple[int, int]) -> tuple[tuple[int, int], ...]:
    found = _find(data, *stbl, b"ctts")
    if found is None:
        return ()
    start, end = found
    version = _version(data, start, "ctts")
    count = struct.unpack_from(">I", data, start + 4)[0]
    if count < 1 or start + 8 + 8 * count > end:
        raise IndexUnreadable("ctts lists fewer entries than it counts")
    flat = struct.unpack_from(f">{2 * count}{'i' if version else 'I'}", data, start + 8)
    return tuple(zip(flat[::2], flat[1::2], strict=True))


def _elst(data: bytes, start: int, _end: int) -> tuple[tuple[int, int, int], ...]:
    version = data[start]
    count = struct.unpack_from(">I", data, start + 4)[0]
    out = []
    pos = start + 8
    for _ in range(count):
        if version == 1:
            seg, media, rate = struct.unpack_from(">Qqi", data, pos)
            pos += 20
        else:
            seg, media, rate = struct.unpack_from(">Iii", data, pos)
            pos += 12
        out.append((seg, media, rate))
    return tuple(out)


_Entry = tuple[
    str, int, int, int, Colr | None, bytes, tuple[int, int], tuple[int, int] | None, tuple[str, ...],
    tuple[int, int] | None,
]  # fmt: skip


def _stsd(data: bytes, start: int, end: int, handler: str) -> _Entry:
    entries = struct.unpack_from(">I", data, start + 4)[0]
    if entries < 1:
        raise IndexUnreadable("stsd without a sample entry")
    size, kind = struct.unpack_from(">I4s", data, start + 8)
    entry_start, entry_end = start + 8, start + 8 + size
    if size < 8 or entry_end > end:
        raise IndexUnreadable("a sample entry runs past stsd")
    width = height = 0
    colr = None
    avcc = b""
    audio = (0, 0)
    aac: tuple[int, int] | None = None
    entry_boxes: tuple[str, ...] = ()
    pasp: tuple[int, int] | None = None
    if handler == "soun" and kind == b"mp4a" and (esds := _find(data, entry_start + 36, entry_end, b"esds")):
        aac = _aac_config(data[esds[0] + 4 : esds[1]])
    if handler == "soun" and size >= 36 and struct.unpack_from(">H", data, entry_start + 16)[0] != 0:
        raise IndexUnreadable("a QuickTime sound entry of version 1 or 2")  # its fields differ
    if handler == "soun" and size >= 36:  # AudioSampleEntry: channelcount, samplesize ... samplerate 16.16
        audio = (
            struct.unpack_from(">H", data, entry_start + 24)[0],
            struct.unpack_from(">I", data, entry_start + 32)[0] >> 16,
        )
    if handler == "vide":
        # VisualSampleEntry: 8 header, 6 reserved, 2 index, 16 pre-defined, then width, height;
        # its child boxes (avcC, colr, pasp ...) start 78 bytes after the header
        width, height = struct.unpack_from(">HH", data, entry_start + 32)
        children = entry_start + 86
        if children <= entry_end:
            entry_boxes = tuple(k.decode("latin-1") for k, _, _ in _boxes(data, children, entry_end))
            found = _find(data, children, entry_end, b"colr")
            if found is not None:
                colr = _colr(data, *found)
            if kind in (b"avc1", b"avc3") and (config := _find(data, children, entry_end, b"avcC")):
                avcc = data[config[0] : config[1]]
            if (box := _find(data, children, entry_end, b"pasp")) is not None:
                if box[1] - box[0] < 8:
                    raise IndexUnreadable("a pasp box cut short")
                h_spacing, v_spacing = struct.unpack_from(">II", data, box[0])
                pasp = (int(h_spacing), int(v_spacing))
    return kind.decode("latin-1"), entries, width, height, colr, avcc, audio, aac, entry_boxes, pasp


_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)


def _descriptor(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, payload start, payload end) of an MPEG-4 descriptor (ISO/IEC 14496-1 8.3.3)."""
    tag, pos, size = data[pos], pos + 1, 0
    for _ in range(4):
        byte, pos = data[pos], pos + 1
        size = (size << 7) | (byte & 0x7F)
        if not byte & 0x80:
            break
    if pos + size > len(data):
        raise IndexUnreadable("an esds descriptor runs past its box")
    return tag, pos, pos + size


def _aac_config(esds: bytes) -> tuple[int, int] | None:
    """(channels, sample rate) an AAC-LC AudioSpecificConfig states; None for anything else."""
    tag, pos, end = _descriptor(esds, 0)
    if tag != 3:
        return None
    flags = esds[pos + 2]
    pos += (
        3
        + (2 if flags & 0x80 else 0)
        + (1 + esds[pos + 3] if flags & 0x40 else 0)
        + (2 if flags & 0x20 else 0)
    )
    tag, pos, end = _descriptor(esds, pos)
    if tag != 4 or esds[pos] != 0x40:  # DecoderConfigDescriptor, MPEG-4 audio
        return None
    tag, pos, end = _descriptor(esds, pos + 13)
    # two bytes, or the three of the SBR-absent sync extension ffmpeg's encoder adds (0x2b7, 5, 0)
    if tag != 5 or not (end - pos == 2 or (end - pos == 5 and esds[pos + 2 : end] == b"\x56\xe5\x00")):
        return None
    bits = int.from_bytes(esds[pos : pos + 2], "big")
    kind, rate, channels = bits >> 11, (bits >> 7) & 0xF, (bits >> 3) & 0xF
    if kind != 2 or rate >= len(_AAC_RATES) or not 1 <= channels <= 7:  # LC, a listed rate, a layout
        return None
    return (8 if channels == 7 else channels), _AAC_RATES[rate]


def _colr(data: bytes, start: int, end: int) -> Colr | None:
    kind = data[start : start + 4]
    if kind == b"nclx" and end - start >= 11:
        p, t, m = struct.unpack_from(">HHH", data, start + 4)
        return Colr(p, t, m, bool(data[start + 10] & 0x80))
    if kind == b"nclc" and end - start >= 10:
        p, t, m = struct.unpack_from(">HHH", data, start + 4)
        return Colr(p, t, m, None)
    return None  # an ICC profile: no code points


def _layout(data: bytes, stbl: tuple[int, int]) -> tuple[int, int, tuple[tuple[int, int], ...]]:
    """(samples, their bytes, each chunk's (first byte, last byte + 1)).

    The samples are counted as a demuxer counts them, chunk by chunk (stsc x stco), and must be
    the samples stsz sizes: a sample-to-chunk table that places more or fewer is refused.
    """
    stsz, stsz_end = _need(data, *stbl, b"stsz")  # stz2 (compact sizes; ffmpeg never writes it): ffprobe
    uniform, count = struct.unpack_from(">II", data, stsz + 4)
    if not uniform and stsz + 12 + 4 * count > stsz_end:
        raise IndexUnreadable("stsz lists fewer sizes than it counts")
    sizes = (uniform,) * count if uniform else struct.unpack_from(f">{count}I", data, stsz + 12)
    offsets = _chunk_offsets(data, stbl)
    start, end = _need(data, *stbl, b"stsc")
    runs = struct.unpack_from(">I", data, start + 4)[0]
    if start + 8 + 12 * runs > end:
        raise IndexUnreadable("stsc lists fewer entries than it counts")
    table = struct.unpack_from(f">{3 * runs}I", data, start + 8)
    firsts, per_chunk = table[::3], table[1::3]
    if any(entry != 1 for entry in table[2::3]):  # one sample entry (stsd) for every chunk
        raise IndexUnreadable("stsc names a sample description other than the first")
    if runs and (firsts[0] != 1 or any(b <= a for a, b in itertools.pairwise(firsts))):
        raise IndexUnreadable("stsc's chunk numbers do not start at 1 and rise")
    sample = 0
    spans: list[tuple[int, int]] = []
    for run in range(runs):
        stop = firsts[run + 1] - 1 if run + 1 < runs else len(offsets)
        for chunk in range(firsts[run] - 1, min(stop, len(offsets))):
            n = per_chunk[run]
            if sample + n > count:
                raise IndexUnreadable("stsc places more samples than stsz sizes")
            spans.append((offsets[chunk], offsets[chunk] + sum(sizes[sample : sample + n])))
            sample += n
    if sample != count:
        raise IndexUnreadable(f"stsc places {sample} samples, stsz sizes {count}")
    return count, sum(sizes), tuple(spans)


def _stts(data: bytes, start: int, end: int) -> tuple[tuple[int, int], ...]:
    count = struct.unpack_from(">I", data, start + 4)[0]
    if start + 8 + 8 * count > end:
        raise IndexUnreadable("stts lists fewer entries than it counts")
    flat = struct.unpack_from(f">{2 * count}I", data, start + 8)
    return tuple(zip(flat[::2], flat[1::2], strict=True))


def _chunk_offsets(data: bytes, stbl: tuple[int, int]) -> tuple[int, ...]:
    if found := _find(data, *stbl, b"stco"):
        fmt = "I"
    elif found := _find(data, *stbl, b"co64"):
        fmt = "Q"
    else:
        raise IndexUnreadable("no chunk offsets (stco/co64)")
    start, end = found
    count = struct.unpack_from(">I", data, start + 4)[0]
    if start + 8 + struct.calcsize(fmt) * count > end:
        raise IndexUnreadable("the chunk offset table lists fewer entries than it counts")
    return tuple(struct.unpack_from(f">{count}{fmt}", data, start + 8))
