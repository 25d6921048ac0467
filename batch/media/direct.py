"""A job with no stages: ffmpeg transcodes the source itself, no raw frames through pipes.

The output is what the frame reader and writer would make: the same rate
filter for a variable-rate source, the same encoder, colour tags, audio and
container flags (:func:`batch.media.writer.output_args`), the same frame-count
checks (by the caller). The preview's frames come out of the same run: two
more outputs of the decoded stream select the rows' frames (small, as RGB)
and the middle row's full-size crop, written as PPM files beside the output
and handed to the :class:`~batch.media.preview.PreviewTap`. Imports no numpy.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from batch.disk import full_in_stderr
from batch.errors import Cancelled, FFmpegFailed
from batch.media.colour import frame_params, planar_format, rgb_conversion
from batch.media.decode_check import LastFrameCheck
from batch.media.interlace import deinterlace_filter
from batch.media.layout import YUV420, FrameLayout
from batch.media.pixel_plan import PixelPlan
from batch.media.probe import MediaInfo
from batch.media.seek import seek_args, trim
from batch.media.steady import head_filters, input_options
from batch.media.streams import source_args
from batch.media.writer import FRAME_TAGGED, OutputSpec, converted_here, output_args, setsar

PROGRESS_PERIOD_S = 0.5
# 8-bit 4:2:0 as decoded: full-range H.264 and MJPEG decode as yuvj420p, whose codes the graph keeps
PLAIN_SOURCES = (YUV420, "yuvj420p")


@dataclass(frozen=True)
class Grab:
    """Frames of the decoded stream to write as RGB images: [(frame, image size)], or one crop."""

    frames: tuple[int, ...]  # indexes relative to the run's first frame, ascending
    size: tuple[int, int] | None = None  # scale to (width, height); None: as decoded (after ``box``)
    box: tuple[int, int, int, int] | None = None  # x, y, width, height to cut first
    name: str = "grab"
    made: bool = False  # taken from the stages' frames (after the graph's stage filters), not the source's


def usable(info: MediaInfo, spec: OutputSpec) -> bool:
    """Whether the direct transcode makes exactly what the pipes would: the source's own YUV planes
    in and out, no conversion between.

    The pixel plan (batch.media.pixel_plan) must say that frames would cross the pipes as the
    source's planar YUV (``yuv420p``, ``yuv420p10le``, ``yuv422p10le`` ...: the reader's only filter
    is a repack or, for full range, a relabel) and that the encoder is fed that same format, with
    no alpha. A source the pipes convert (RGB, a depth or chroma the codec does not hold, ProRes's
    squeeze of full range, NVENC's ``p010le``) goes through the pipes, which convert it as the plan says.
    """
    pixels = spec.pixels
    if pixels is None:
        plain = spec.pix_fmt == YUV420 == spec.out_pix_fmt
        return plain and info.pix_fmt in PLAIN_SOURCES and not spec.out_rgb
    return (
        source_planes_pass_through(info, pixels)
        and spec.pix_fmt == pixels.transport
        and spec.out_pix_fmt == pixels.encoder_pix_fmt
    )


def source_planes_pass_through(info: MediaInfo, pixels: PixelPlan) -> bool:
    """The source's own planes, as decoded, go from decoder to encoder (the direct transcode)."""
    return pixels.source == info.pix_fmt and planes_pass_through(pixels)


def planes_pass_through(pixels: PixelPlan) -> bool:
    """Whether the plan keeps the source's own planes from decoder to encoder (see :func:`usable`)."""
    planes = pixels.transport
    layout = FrameLayout(planes, 2, 2)
    return (
        pixels.alpha == "none"
        and not layout.packed
        and not layout.alpha
        # the source stored as those very planes (not nv12, p010 or big-endian, which ffmpeg would
        # convert here, marking the frames limited range where the pipes leave the range untagged)
        and pixels.source.replace("yuvj", "yuv") == planes
        and planes == pixels.output == pixels.encoder_pix_fmt
        and not pixels.limited_range
        and not pixels.colour_on_device
        and not pixels.output_rgb
    )


def _fork(first: str, grabs: list[int]) -> str:
    """The stream on to ``first`` and to each grab's branch ``g<k>``."""
    if not grabs:
        return f"null[{first}]"
    labels = [first, *(f"g{k}" for k in grabs)]
    return f"split={len(labels)}" + "".join(f"[{x}]" for x in labels)


def _select(frames: tuple[int, ...]) -> str:
    return "select=" + "+".join(f"eq(n\\,{k})" for k in frames)


def build_command(
    info: MediaInfo,
    spec: OutputSpec,
    grabs: list[Grab],
    grab_dir: Path,
    *,
    start: int = 0,
    count: int | None = None,
    check: LastFrameCheck | None = None,
    stages: tuple[str, ...] = (),
) -> list[str]:
    """ffmpeg: decode ``info`` (frames [start, start + count)), run the ``stages`` filters
    (Stage.graph_filter), encode to ``spec``, write the grabs (and, for a variable-rate source, the
    image ``check`` looks for)."""
    seek: list[str] = []
    head = head_filters(info)  # one size and format whatever the stream does (batch.media.steady)
    if deinterlace := deinterlace_filter(info):  # first, as in the frame reader
        head.append(deinterlace)
    if start > 0:  # as the reader seeks: the first frame out is frame ``start`` (batch.media.seek)
        first_s = Fraction(info.start_s) + (start - Fraction(1, 2)) / info.fps
        seek, clock = seek_args(first_s - (1 / info.fps if deinterlace else 0), info.reorder_s)
        if cut := trim(first_s, None, clock):
            head.append(cut)
    source, checked = "[0:v:0]", []
    if check is not None:  # split before the rate filter, which would hide a frame that did not decode
        checked = [f"[0:v:0]{','.join([*head, 'split=2[vfr][chk]'])}", check.branch("chk", "lastf")]
        source, head = "[vfr]", []
    if info.vfr:  # resampled: its frames from the first frame's slot, then counted as below
        rate = f"{info.fps.numerator}/{info.fps.denominator}"
        if info.timeline is not None:
            # The rate filter ends where the decoder says the stream ends, which drops the last frame
            # of an MP4 whose samples carry no duration (B-frames) and cuts a last frame held for
            # seconds short (Matroska stores no duration for it). Held on, then cut at the count the
            # timestamps give: the frames the reader puts in the same slots (tested).
            head.append("tpad=stop_mode=clone:stop=-1")
            count = info.delivered_frames if count is None else count
        head.append(f"fps={rate}")
    # Timestamps counted in frames, as the frame writer makes them: a container that stores
    # milliseconds (Matroska) otherwise guesses the last frame's duration from the rounded ones.
    # Like the writer, the video starts at the container's start (start_s), here within half a frame.
    offset = round(info.start_s * info.fps) if start == 0 else 0
    head.append(f"settb={info.fps.denominator}/{info.fps.numerator},setpts=N+{offset}")
    if count is not None:
        head.append(f"trim=end_frame={count}")  # the graph ends there: the grabs do not decode on
    grabs = [g for g in grabs if g.frames]
    before = [i for i, g in enumerate(grabs) if not (stages and g.made)]
    after = [i for i, g in enumerate(grabs) if stages and g.made]
    encode = planar_format(spec.colour, spec.out_pix_fmt)  # (full range kept as coded)
    if spec.encoder.codec in FRAME_TAGGED:  # (prores_ks writes the frames' colour properties)
        encode += f",{frame_params(spec.colour, converted_here=converted_here(spec))}"
    graph = [*checked]
    if stages:  # the source's frames for the grabs of the source, the stages' for the rest
        graph.append(f"{source}{','.join([*head, _fork('made', before)])}")
        # the stages' aspect, as the frame writer marks it (zscale would rescale the source's)
        graph.append(f"[made]{','.join([*stages, setsar(spec.sar), _fork('enc', after)])}")
    else:
        graph.append(f"{source}{','.join([*head, _fork('enc', before)])}")
    graph.append(f"[enc]{encode}[v]")
    for i, g in enumerate(grabs):
        chain = [_select(g.frames)]
        if g.box:
            chain.append("crop={2}:{3}:{0}:{1}".format(*g.box))
        chain.append(rgb_conversion(spec.colour, to_rgb=True))
        if g.size:
            chain.append(f"scale={g.size[0]}:{g.size[1]}:flags=area")
        graph.append(f"[g{i}]{','.join(chain)}[o{i}]")
    cmd = [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-nostats",
        "-progress", "pipe:1", "-stats_period", str(PROGRESS_PERIOD_S),
        *seek, *input_options(info), "-i", info.path, "-filter_complex", ";".join(graph),
    ]  # fmt: skip
    # the source's audio, subtitles, chapters, attachments and tags, as the frame writer maps them
    cmd += source_args(spec.source_streams if spec.audio_source is not None else None, 0, video="[v]")
    if count is not None:
        cmd += ["-frames:v", str(count)]
    # passthrough: the muxer must not drop or duplicate frames to fit its clock. The rate: the frames'
    # timestamps count in it, and the encoder's clock would otherwise be the decoder's rate, which an
    # H.264 stream can declare wrongly (50 fps stored, 25 declared: pairs of frames on one timestamp)
    cmd += ["-r", f"{info.fps.numerator}/{info.fps.denominator}", "-fps_mode", "passthrough",
            *output_args(spec), str(spec.path)]  # fmt: skip
    for i, g in enumerate(grabs):
        out = grab_dir / f"{g.name}-%d.ppm"
        cmd += ["-map", f"[o{i}]", "-fps_mode", "passthrough", "-f", "image2", "-c:v", "ppm", str(out)]
    if check is not None:
        cmd += check.output_args("lastf")
    return cmd


@dataclass
class Transcoded:
    frames: int  # frames encoded, as ffmpeg counted them
    grabs: dict[str, list[Path]]  # each grab's images in frame order (fewer when frames were missing)
    seconds: float


class DirectTranscode:
    """Context manager: run the transcode, then read the grabs before leaving (they are removed)."""

    def __init__(
        self,
        info: MediaInfo,
        spec: OutputSpec,
        grabs: list[Grab],
        *,
        start: int = 0,
        count: int | None = None,
        stages: tuple[str, ...] = (),
    ) -> None:
        self.info, self.spec, self.grabs = info, spec, [g for g in grabs if g.frames]
        self.stages = stages
        self.spec.path.parent.mkdir(parents=True, exist_ok=True)
        self._dir = Path(tempfile.mkdtemp(prefix=".grabs-", dir=spec.path.parent))
        whole = start == 0 and count is None
        self.check = (
            LastFrameCheck(self._dir, info.frame_count, Path(info.path).name) if info.vfr and whole else None
        )
        self.command = build_command(
            info, spec, self.grabs, self._dir, start=start, count=count, check=self.check, stages=stages
        )

    def __enter__(self) -> DirectTranscode:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def run(
        self,
        on_frames: Callable[[int], None] | None = None,
        abort: Callable[[], bool] | None = None,
    ) -> Transcoded:
        """Transcode; ``on_frames(frames encoded so far)`` every half second.

        Raises FFmpegFailed (exit status, command, stderr tail) and Cancelled when ``abort()`` says so.
        """
        started = time.perf_counter()
        frames = 0
        with tempfile.TemporaryFile() as stderr:
            proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=stderr, text=True)
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    key, _, value = line.strip().partition("=")
                    if key == "frame" and value.isdigit():
                        frames = int(value)
                    elif key == "progress" and on_frames is not None:
                        on_frames(frames)
                    if abort is not None and abort():
                        raise Cancelled("stopped by signal", hint="run the job again to finish it")
                code = proc.wait()
            finally:  # a signal (Cancelled) or a bug: never leave the encoder running
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            stderr.seek(0)
            tail = stderr.read().decode(errors="replace").strip()[-1500:]
            # ffmpeg 5.1's Matroska muxer exits 0 after failing every write on a full disk
            if full := full_in_stderr(tail, self.spec.path.parent, f"the transcode to {self.spec.path.name}"):
                raise full
            if code != 0:
                made = f"the stages' {self.spec.width}x{self.spec.height} frames, " if self.stages else ""
                raise FFmpegFailed(
                    f"transcoding {Path(self.info.path).name} failed (ffmpeg exit {code})",
                    hint=f"the encoder may refuse the encode settings ({made}see stderr_tail), or the input "
                    "may be damaged (re-upload or re-encode it)",
                    command=" ".join(self.command),
                    stderr_tail=tail,
                )
        found: dict[str, list[Path]] = {}
        for g in self.grabs:
            files = []
            for k in range(1, len(g.frames) + 1):
                path = self._dir / f"{g.name}-{k}.ppm"
                if path.exists():
                    files.append(path)
            found[g.name] = files
        if self.check is not None:
            self.check.verify()
        return Transcoded(frames, found, time.perf_counter() - started)
