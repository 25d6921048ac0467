"""numpy frames (RGB or planar YUV, 8 or 16 bits) -> ffmpeg -> encoded video, audio muxed from the source.

A writer thread drains a bounded queue into ffmpeg's stdin so encoding
overlaps with the stages. Audio is copied from the source in the same pass
(re-encoded to AAC only where the container cannot hold the source codec),
and the source's colour matrix, range and tags are carried over.
"""

from __future__ import annotations

import contextlib
import math
import queue
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from batch.disk import full_in_stderr, says_out_of_space
from batch.errors import BatchError, FFmpegFailed
from batch.media.colour import (
    ColourPlan,
    encoder_tag_args,
    frame_params,
    planar_change,
    rgb_conversion,
    written_colour,
)
from batch.media.encoder import EncoderChoice
from batch.media.layout import RGB, FrameLayout
from batch.media.pipes import widen
from batch.media.pixel_plan import PixelPlan
from batch.media.pixfmt import CHROMA_BLOCK, pix_facts_or_guess
from batch.media.probe import AudioStream
from batch.media.reader import stderr_tail
from batch.media.streams import StreamPlan, copies_audio, source_args

if TYPE_CHECKING:  # numpy is imported where frames are made: the direct transcode needs none
    import numpy as np

_END = object()
FRAME_TAGGED = ("prores_ks",)  # writes the frames' colour properties, not the -colorspace options
# Audio codecs each container holds as they are; anything else becomes AAC.


@dataclass(frozen=True)
class OutputSpec:
    path: Path
    width: int
    height: int
    fps: Fraction
    container: str
    encoder: EncoderChoice
    colour: ColourPlan
    audio_source: Path | None = None
    audio: tuple[AudioStream, ...] = ()
    video_offset_s: float = 0.0  # where video starts relative to the source's audio
    pix_fmt: str = RGB  # layout of the frames handed to write()
    streams: StreamPlan | None = None  # what else comes from audio_source (subtitles, chapters ...)
    pixels: PixelPlan | None = None  # the output's pixel format and profile; None: the encoder's default
    sar: Fraction | None = None  # the frames' pixel aspect (anamorphic sources); None: square

    @property
    def source_streams(self) -> StreamPlan:
        """The plan for the source's streams; without one, its audio only (as given) and its tags."""
        return self.streams or StreamPlan(self.container, audio=self.audio)

    @property
    def layout(self) -> FrameLayout:
        return FrameLayout(self.pix_fmt, self.width, self.height)

    @property
    def out_pix_fmt(self) -> str:
        """The format the encoder is fed."""
        return self.pixels.encoder_pix_fmt if self.pixels else self.encoder.pix_fmt

    @property
    def out_rgb(self) -> bool:
        return self.pixels.output_rgb if self.pixels else self.encoder.rgb


def audio_args(container: str, audio: tuple[AudioStream, ...]) -> list[str]:
    """Each audio stream copied where the container holds its codec, else AAC (one by one: a PCM
    track beside an AAC one must not make the AAC one lossy too)."""
    if all(copies_audio(container, a) for a in audio):
        args = ["-c:a", "copy"] if audio else []
    else:
        args = []
        for k, a in enumerate(audio):
            args += (
                [f"-c:a:{k}", "copy"]
                if copies_audio(container, a)
                else [f"-c:a:{k}", "aac", f"-b:a:{k}", "192k"]
            )
    if container == "mp4" and any(a.codec == "flac" for a in audio):
        # ffmpeg before 6.1 refuses FLAC in MP4 unless told it may ("experimental"); players read it
        args += ["-strict", "experimental"]
    return args


def pad_sizes(spec: OutputSpec) -> tuple[int, int]:
    """Pixels added right and below so a subsampled output is whole chroma blocks (even sides at 4:2:0;
    a width that is a multiple of 4 at 4:1:1), as the encoder and zscale need."""
    if spec.out_rgb:
        return 0, 0
    chroma = pix_facts_or_guess(spec.pixels.output if spec.pixels else spec.encoder.pix_fmt).chroma
    bw, bh = CHROMA_BLOCK.get(chroma, (1, 1))
    return -spec.width % bw, -spec.height % bh


def video_filter(spec: OutputSpec) -> str:
    parts: list[str] = []
    pad_w, pad_h = pad_sizes(spec)
    if pad_w or pad_h:  # smeared from the edge
        parts.append(f"pad={spec.width + pad_w}:{spec.height + pad_h}:0:0")
        parts.append(f"fillborders=right={pad_w}:bottom={pad_h}:mode=smear")
    written = written_colour_of(spec)
    if spec.layout.packed and not spec.out_rgb:
        conversion = rgb_conversion(
            written, to_rgb=False, yuv_pix_fmt=spec.out_pix_fmt, rgb_pix_fmt=spec.pix_fmt
        )
        parts.append(conversion)
    elif spec.out_rgb:
        parts.append(f"format={spec.out_pix_fmt}")
    else:
        parts.append(planar_change(spec.colour, written, spec.pix_fmt, spec.out_pix_fmt))
    if spec.encoder.codec in FRAME_TAGGED and not spec.out_rgb:
        parts.append(frame_params(written, converted_here=converted_here(spec)))
    if spec.sar is not None:  # raw frames through the pipe carry no aspect
        parts.append(setsar(spec.sar))
    return ",".join(parts)


def setsar(sar: Fraction | None) -> str:
    """The filter that marks frames with ``sar`` (None: none marked, square), within the 16 bits a
    side that H.264's and HEVC's VUI hold (setsar's own default rounds to 100 a side: 1:1.0067 became
    1:1)."""
    if sar is None:
        return "setsar=0"
    sar = _both_sides_within(sar, 65535)
    return f"setsar={sar.numerator}/{sar.denominator}:max=65535"


def _both_sides_within(x: Fraction, most: int) -> Fraction:
    """The fraction nearest ``x`` (> 0) whose numerator and denominator are both at most ``most``."""
    if x < 1:
        return 1 / _both_sides_within(1 / x, most)
    x = min(x, Fraction(most))
    den = max(1, math.floor(most / x))  # numerator ~ x * den stays within ``most``
    near = x.limit_denominator(den)
    while near.numerator > most:  # rounded up past it: one step coarser
        den -= 1
        near = x.limit_denominator(den)
    return near


def converted_here(spec: OutputSpec) -> bool:
    """Frames made or resized before ffmpeg, which marks no matrix on them (colour.output_tags)."""
    return spec.pixels is not None and (spec.pixels.colour_on_device or bool(spec.pixels.resize_rule))


def written_colour_of(spec: OutputSpec) -> ColourPlan:
    """The colour plan the output is written with (limited range where the codec cannot mark full)."""
    return written_colour(spec.colour, limited=spec.pixels is not None and spec.pixels.limited_range)


def encoder_args(spec: OutputSpec) -> list[str]:
    """The encoder's options, with the pixel plan's profile and x265 HDR parameters merged in."""
    args = list(spec.encoder.args)
    if spec.pixels is None:
        return args
    if spec.pixels.x265_params:
        extra = ":".join(spec.pixels.x265_params)
        if "-x265-params" in args:
            k = args.index("-x265-params") + 1
            args[k] = f"{args[k]}:{extra}"
        else:
            args += ["-x265-params", extra]
    return [*args, *spec.pixels.extra_args]


def build_command(spec: OutputSpec) -> list[str]:
    cmd = [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", spec.pix_fmt, "-s", f"{spec.width}x{spec.height}",
        "-framerate", f"{spec.fps.numerator}/{spec.fps.denominator}",
    ]  # fmt: skip
    if spec.video_offset_s > 0:
        cmd += ["-itsoffset", f"{spec.video_offset_s:.6f}"]
    cmd += ["-i", "pipe:0"]
    if spec.audio_source is not None:
        cmd += ["-i", str(spec.audio_source)]
    cmd += source_args(spec.source_streams if spec.audio_source is not None else None)
    # passthrough: the muxer must not drop or duplicate frames to fit its clock
    cmd += ["-vf", video_filter(spec), "-fps_mode", "passthrough"]
    return [*cmd, *output_args(spec), str(spec.path)]


def output_args(spec: OutputSpec) -> list[str]:
    """The encoder (with the pixel plan's profile and HDR parameters), the colour tags, the audio
    codec and the container's flags of an output.

    One list for the frame writer and the direct transcode (batch.media.direct), so both
    encode, tag and carry audio alike.
    """
    args = encoder_args(spec)
    if not spec.out_rgb:
        args += encoder_tag_args(
            written_colour_of(spec), converted_here=converted_here(spec), codec=spec.encoder.codec
        )
        if spec.pixels is not None and spec.pixels.chroma_location:
            args += ["-chroma_sample_location", spec.pixels.chroma_location]
        elif spec.pixels is not None and spec.pixels.in_graph:
            # the decoded frames' siting would ride along where the plan records none (4:4:4's, 4:2:2's
            # vertical part, a rotated 4:2:0's): none, as frames through the pipes carry none
            args += ["-chroma_sample_location", "unspecified"]
    if spec.audio_source is not None and spec.audio:
        args += audio_args(spec.container, spec.audio)
    if spec.container in ("mp4", "mov"):
        args += ["-movflags", "+faststart"]
    return args


class FrameWriter:
    """Context manager: ``write(frame)`` frames, then leave the block to finish.

    Raises FFmpegFailed (with the command and stderr tail) when the encoder fails.
    """

    def __init__(self, spec: OutputSpec, *, queue_frames: int = 8) -> None:
        self.spec = spec
        self.frames_written = 0
        self.command = build_command(spec)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_frames)
        self._stderr = tempfile.NamedTemporaryFile(prefix="writer-", suffix=".log", delete=False)
        self._error: BaseException | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._shape = spec.layout.shape
        self._dtype = spec.layout.dtype

    def __enter__(self) -> FrameWriter:
        self.spec.path.parent.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stderr=self._stderr)
        assert self._proc.stdin is not None
        widen(self._proc.stdin.fileno())  # a frame in a few fills, not dozens (batch.media.pipes)
        self._thread = threading.Thread(target=self._drain, name="frame-writer", daemon=True)
        self._thread.start()
        return self

    def write(self, frame: np.ndarray) -> None:
        import numpy as np

        if frame.shape != self._shape or frame.dtype != self._dtype:
            raise ValueError(
                f"frame {frame.shape} {frame.dtype} does not match {self._shape} {np.dtype(self._dtype)}"
            )
        while True:
            if self._error is not None:
                raise self._failure()
            try:
                self._queue.put(frame, timeout=0.2)
                self.frames_written += 1
                return
            except queue.Full:
                continue

    def _drain(self) -> None:
        import numpy as np

        assert self._proc and self._proc.stdin
        stdin = self._proc.stdin
        try:
            while True:
                item = self._queue.get()
                if item is _END:
                    break
                stdin.write(np.ascontiguousarray(item).data)
        except BaseException as e:  # BrokenPipe: ffmpeg died; reported with its stderr
            self._error = e
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def _failure(self) -> BatchError:
        code = self._proc.wait() if self._proc else None
        tail = stderr_tail(Path(self._stderr.name))
        return full_in_stderr(
            tail, self.spec.path.parent, f"the encode of {self.spec.path.name}"
        ) or FFmpegFailed(
            f"encoding {self.spec.path.name} failed (ffmpeg exit {code})",
            hint="see stderr_tail; check the encode settings",
            command=" ".join(self.command),
            stderr_tail=tail,
        )

    def _out_of_space(self) -> bool:
        return says_out_of_space(stderr_tail(Path(self._stderr.name)))

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self._proc and self._thread
        if exc_type is not None:
            self._proc.kill()
        while self._thread.is_alive():
            try:
                self._queue.put(_END, timeout=0.2)
                break
            except queue.Full:
                if self._error is not None:
                    break
        self._thread.join()
        code = self._proc.wait()
        try:
            # ffmpeg 5.1's Matroska muxer exits 0 after failing every write on a full disk
            if exc_type is None and (code != 0 or self._error is not None or self._out_of_space()):
                raise self._failure()
        finally:
            self._stderr.close()
            Path(self._stderr.name).unlink(missing_ok=True)
