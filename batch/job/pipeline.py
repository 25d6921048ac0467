"""One input: reader -> stages -> writer, then check the output frame by frame count.

Decode, stages and encode overlap: the reader and the writer each run on a
thread with a bounded queue, and ffmpeg does the decoding and encoding in its
own processes. Memory stays flat whatever the length of the video.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from batch.config import JobConfig
from batch.errors import Cancelled, DurationMismatch, FrameCountMismatch, TruncatedVideo
from batch.media import direct
from batch.media.colour import ColourPlan, plan_colour
from batch.media.encoder import EncoderChoice
from batch.media.interlace import deinterlace_note
from batch.media.layout import RGB, FrameLayout
from batch.media.pixel_plan import PixelPlan, plan_pixels
from batch.media.preview import PreviewTap, crop_boxes, pick_rows
from batch.media.probe import MediaInfo, probe
from batch.media.streams import check_output, plan_streams
from batch.media.writer import OutputSpec, pad_sizes
from batch.stages.base import Caps, Stage, StageInput
from batch.stages.registry import REGISTRY, Plan, StageRegistry

if TYPE_CHECKING:  # numpy, the reader and the writer are imported when frames pass through Python
    import numpy as np

    from batch.media.writer import FrameWriter

Progress = Callable[[int, int], None]  # (frames done, frames expected)


@dataclass
class PipelineResult:
    info_in: MediaInfo
    info_out: MediaInfo
    frames_in: int
    frames_out: int
    stages: list[dict[str, Any]]
    encode: dict[str, Any]
    seconds: float
    notes: list[str] = field(default_factory=list)
    preview: PreviewTap | None = None  # the frames the preview shows, caught on the way
    dropped_streams: list[dict[str, Any]] = field(default_factory=list)  # what the output cannot carry


def plan_preview(
    cfg: JobConfig, info: MediaInfo, encoder: EncoderChoice, plan: Plan, registry: StageRegistry = REGISTRY
) -> PreviewTap:
    """The preview tap for an input processed in chunks (``plan``: its stages): one, shared by every chunk."""
    return preview_tap(info, plan, *_transport(cfg, info, encoder, registry))


def preview_tap(info: MediaInfo, plan: Plan, colour: ColourPlan, pix_fmt: str) -> PreviewTap:
    """What the preview catches from this input's frames: rows picked from the plan's counts and rate."""
    return PreviewTap(
        pick_rows(info.delivered_frames, plan.expected_frames, plan.fps / info.fps),
        FrameLayout(pix_fmt, info.width, info.height),
        FrameLayout(pix_fmt, plan.width, plan.height),
        colour,
        sar_in=info.sar,
        sar_out=plan.sar,
    )


def _test_hang_frame() -> int | None:
    """Test hook: BATCH_TEST_HANG_AT_FRAME=N makes the pipeline hang after N frames.

    Used only by the watchdog's tests to produce a runner whose heartbeat
    thread lives on while no frame moves (a stuck model or a dead GPU).
    """
    value = os.environ.get("BATCH_TEST_HANG_AT_FRAME")
    return int(value) if value else None


def _hang() -> None:
    while True:
        time.sleep(1)


def _transport(
    cfg: JobConfig, info: MediaInfo, encoder: EncoderChoice, registry: StageRegistry
) -> tuple[ColourPlan, str]:
    """How frames travel for this input: the colour plan and the pixel format between the pipes.

    One rule for the reader, the writer and the preview tap, which must read frames as they travel.
    """
    colour = plan_colour(info.color, info.height, info.pix_fmt)
    return colour, pixel_plan_for(cfg, info, encoder, registry).transport


def pixel_plan_for(
    cfg: JobConfig, info: MediaInfo, encoder: EncoderChoice, registry: StageRegistry = REGISTRY
) -> PixelPlan:
    """Bit depth, chroma and alpha for this input (batch.media.pixel_plan). Raises ConfigError."""
    caps = [registry.caps_for(s) for s in cfg.stages]
    wanted = _rgb_on_device(cfg.encode.colour_on_device, caps)
    resizes = any(c.resizes for c in caps)
    # stages that may run in the transcode's graph: each class has a graph filter (whether this one applies
    # is the instance's to say)
    graphable = bool(cfg.stages) and all(
        registry.stage_class(s).graph_filter is not Stage.graph_filter for s in cfg.stages
    )
    plan = plan_stages(cfg, info, registry=registry) if wanted or resizes or graphable else None
    # the size of the frames each stage makes, in order (4:2:0 frames of odd sizes are not made on a
    # device, and planes resized to a size their chroma cannot hold travel as RGB)
    sizes = tuple(s.size_out for s in plan.stages) if plan else ()
    # every size a frame takes on the way, not only the last: 99x75 planes between an upscale and a
    # crop back to 96x72 would carry chroma of the wrong geometry
    odd = next((s for s in sizes if s[0] % 2 or s[1] % 2), None) if wanted else None
    pixels = plan_pixels(
        info,
        cfg.encode,
        encoder.codec,
        needs_rgb=any(c.needs_rgb for c in caps),
        model_stage=any(c.model_kind is not None for c in caps),
        rgb_on_device=wanted and odd is None,
        resized_to=sizes if resizes else (),
    )
    if plan is not None and in_graph(plan, info, pixels):
        note = (
            f"{', '.join(s.name for s in plan.stages)} ran in the transcode's own ffmpeg graph (on the "
            f"source's {pixels.transport} planes: {'; '.join(graph_filters(plan) or ())}): no frames "
            "through the pipes"
        )
        return replace(pixels, in_graph=True, notes=(*pixels.notes, note))
    if odd is None:
        return pixels
    note = f"colour not converted on the device: the stages make {odd[0]}x{odd[1]} frames, an odd size"
    return replace(pixels, notes=(*pixels.notes, note))


def graph_filters(plan: Plan) -> list[str] | None:
    """The ffmpeg filters that make the stages' frames (Stage.graph_filter); None where one has none."""
    filters = [s.graph_filter() for s in plan.stages]
    return None if any(f is None for f in filters) else [f for f in filters if f is not None]


def in_graph(plan: Plan, info: MediaInfo, pixels: PixelPlan) -> bool:
    """Whether the stages run inside the direct transcode: each has a graph filter, the planes go from
    decoder to encoder as they are, and the rate is constant (a variable one's chunks take frames by
    slot, which only the frame reader does)."""
    return (
        bool(plan.stages)
        and graph_filters(plan) is not None
        and direct.planes_pass_through(pixels)
        and not info.vfr
    )


def _rgb_on_device(setting: bool | None, caps: list[Caps]) -> bool:
    """Whether the RGB the stages need can be made on the model's device (see Caps.yuv_on_device).

    Only for one model stage whose frames come from the pipe and go back to it (no model chain
    on the device), every other stage working on planar frames. ``None`` (auto): with a GPU.
    """
    rgb = [c for c in caps if c.needs_rgb]
    models = [c for c in caps if c.model_kind is not None]
    if not rgb or len(models) != 1 or rgb != models or not models[0].yuv_on_device or setting is False:
        return False
    if setting is None:
        from batch.models.gpu_slot import visible_gpus  # nvidia-smi once a process, only here

        return visible_gpus() > 0
    return True


def _prepare(
    cfg: JobConfig,
    info: MediaInfo,
    encoder: EncoderChoice,
    dest: Path,
    *,
    audio_source: Path | None = None,
    artifacts: Path | None = None,
    deadline: float | None = None,
    chunk: Segment | None = None,
    registry: StageRegistry = REGISTRY,
) -> tuple[Plan, ColourPlan, OutputSpec]:
    """The stages, the colour plan and the writer's spec; audio only when a source is given."""
    colour = plan_colour(info.color, info.height, info.pix_fmt)
    pixels = pixel_plan_for(cfg, info, encoder, registry)
    pix_fmt = pixels.transport
    plan = plan_stages(
        cfg, info, artifacts, deadline=deadline, chunk=chunk, registry=registry, pix_fmt=pix_fmt,
        colour=colour if pixels.colour_on_device else None,
    )  # fmt: skip
    streams = plan_streams(info, cfg.encode.container, plan.fps) if audio_source else None
    if encoder.nvenc:  # this worker's GPU, as its model stages use (batch.models.gpu_slot)
        from batch.models import gpu_slot

        encoder = encoder.on_gpu(gpu_slot.gpu_index())
    spec = OutputSpec(
        path=dest,
        width=plan.width,
        height=plan.height,
        fps=plan.fps,
        container=cfg.encode.container,
        encoder=encoder,
        colour=colour,
        audio_source=audio_source,
        audio=streams.audio if streams else (),
        video_offset_s=info.start_s if audio_source else 0.0,
        pix_fmt=pix_fmt,
        streams=streams,
        pixels=pixels,
        sar=plan.sar,
    )
    return plan, colour, spec


@dataclass
class ChunkClock:
    """When a chunk's frames moved (``time.perf_counter()``), for batch.job.encode_pace.

    ``write_wait_s``: seconds the stages spent handing frames to a full encoder queue
    (the encoder was the limit). ``first_at``: the stages asked for their first frame;
    ``stages_done_at``: they handed over their last; ``encoded_at``: the encoder finished.
    """

    write_wait_s: float = 0.0
    first_at: float = 0.0
    stages_done_at: float = 0.0
    encoded_at: float = 0.0

    def started(self, frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        self.first_at = time.perf_counter()
        yield from frames


def _drain(
    frames: Iterator[np.ndarray],
    writer: FrameWriter,
    on_frame: Callable[[int], None] | None,
    abort: Callable[[], bool] | None = None,
    wait: ChunkClock | None = None,
) -> None:
    """Stage output into the encoder; ``on_frame(frames written)`` after each."""
    hang_at = _test_hang_frame()
    for frame in frames:
        if abort is not None and abort():
            raise Cancelled("stopped by signal", hint="run the job again to finish it")
        before = time.perf_counter()
        writer.write(frame)
        if wait is not None:
            wait.write_wait_s += time.perf_counter() - before
        if on_frame:
            on_frame(writer.frames_written)
        if writer.frames_written == hang_at:
            _hang()


def check_duration(info: MediaInfo, info_out: MediaInfo, dest: Path) -> None:
    """The output lasts as long as the input, within a frame (a variable-rate source's resampled end
    may differ by its last frame's duration more, and by half a slot: each frame goes to the nearest).
    Raises TruncatedVideo when the input declares longer than its frames last, DurationMismatch
    otherwise."""
    resampled = info.last_frame_s + 0.5 / float(info.fps) if info.vfr else 0
    tolerance = max(1 / info_out.fps, 1 / info.fps) + resampled + 0.002
    if abs(info_out.duration - info.duration) <= tolerance:
        return
    frames_last = float(info.frame_count / info.fps)
    if not info.vfr and abs(info_out.duration - frames_last) <= tolerance < info.duration - frames_last:
        raise TruncatedVideo(
            f"{Path(info.path).name} is truncated or damaged: its container declares {info.duration:.3f} s, "
            f"its {info.frame_count} video frames last {frames_last:.3f} s",
            hint="re-upload a complete copy of the input",
            input_duration=info.duration,
            frames_duration=frames_last,
        )
    raise DurationMismatch(
        f"{dest.name} lasts {info_out.duration:.3f} s, the input {info.duration:.3f} s",
        hint="the source's timing could not be kept; please report it with the manifest",
        input_duration=info.duration,
        output_duration=info_out.duration,
    )


def plan_stages(
    cfg: JobConfig,
    info: MediaInfo,
    artifacts: Path | None = None,
    *,
    deadline: float | None = None,
    chunk: Segment | None = None,
    registry: StageRegistry = REGISTRY,
    pix_fmt: str = RGB,
    colour: ColourPlan | None = None,
) -> Plan:
    """The stage runners for one input (or one chunk of it), as the registry builds them.

    Raises ConfigError when a stage cannot apply to this input (a crop larger than the frame).
    """
    source = StageInput(
        width=info.width,
        height=info.height,
        fps=info.fps,
        total_frames=info.delivered_frames,
        first=chunk.start if chunk else 0,
        stop=None if chunk is None or chunk.last else chunk.start + chunk.count,
        artifacts=artifacts,
        deadline=deadline,
        pix_fmt=pix_fmt,
        colour=colour,
        chroma_location=info.chroma_location,
        sar=info.sar,
    )
    return registry.plan(cfg.stages, source)


def run_pipeline(
    cfg: JobConfig,
    source: Path,
    dest: Path,
    encoder: EncoderChoice,
    *,
    info: MediaInfo | None = None,
    progress: Progress | None = None,
    artifacts: Path | None = None,
    deadline: float | None = None,
    registry: StageRegistry = REGISTRY,
    queue_frames: int = 8,
) -> PipelineResult:
    """Process ``source`` into ``dest``; stages may write files (metrics.parquet) to ``artifacts``.

    ``deadline`` (a ``time.monotonic()``) is the job's end, for the ladders' estimates.
    ``queue_frames``: how far decoding may run ahead of the stages, and the stages ahead of encoding.
    Raises MediaError subclasses, StageError and ConfigError (a stage that cannot apply here).
    """
    started = time.perf_counter()
    info = info or probe(source)
    plan, colour, spec = _prepare(
        cfg, info, encoder, dest,
        audio_source=source, artifacts=artifacts, deadline=deadline, registry=registry,
    )  # fmt: skip
    tap = preview_tap(info, plan, colour, spec.pix_fmt)
    if not plan.stages and direct.usable(info, spec):
        frames_in = written = _transcode(info, spec, tap, progress=progress)
        notes = ["no stages: ffmpeg transcoded the source directly (no frames through the pipeline)"]
    elif _stages_in_graph(spec) and direct.usable(info, spec):  # (the note is the pixel plan's)
        frames_in = written = _transcode(info, spec, tap, progress=progress, plan=plan)
        notes = []
    else:
        frames_in, written = _through_stages(info, plan, colour, spec, tap, progress, queue_frames)
        notes = [f"frames passed between stages as {spec.pix_fmt}"]
    expected = frames_in
    for stage in plan.stages:
        expected = stage.expected_frames(expected)
    if written != expected:
        raise FrameCountMismatch(
            f"{source.name}: wrote {written} frames, the stages promise {expected}",
            hint="this is a bug; please report it with the manifest",
        )
    # one ffprobe per input: the common output is read from its own index (loaded while ffmpeg ran,
    # batch.job.warm_imports)
    from batch.media.written import facts as written_facts

    info_out = written_facts(info, spec, dest) or probe(dest)
    if info_out.frame_count != written:
        raise FrameCountMismatch(
            f"{dest.name}: the encoded file holds {info_out.frame_count} frames, {written} were written",
            hint="the encoder dropped or duplicated frames; try another codec",
        )
    check_duration(info, info_out, dest)
    assert spec.streams is not None  # a one-pass output takes the source's streams
    check_output(spec.streams, info_out, dest)
    notes += spec.streams.notes
    if deinterlaced := deinterlace_note(info):
        notes.append(deinterlaced)
    if info.vfr:
        notes.append(resample_note(info, frames_in))
    if on_grid := grid_rate_note(info):
        notes.append(on_grid)
    notes += pixel_notes(spec)
    return PipelineResult(
        info_in=info,
        info_out=info_out,
        frames_in=frames_in,
        frames_out=written,
        stages=[s.report() for s in plan.stages],
        encode=encoder.to_dict(),
        seconds=time.perf_counter() - started,
        notes=notes,
        preview=tap,
        dropped_streams=spec.streams.dropped_dicts(),
    )


def resample_note(info: MediaInfo, frames: int) -> str:
    """What resampling a variable-rate source did to its frames (the drops from its timestamps)."""
    kept = info.frame_count - info.resample_dropped
    if info.resample_dropped:
        lost = (
            f"{info.resample_dropped} of the source's {info.frame_count} frames dropped: each shares its "
            f"1/{info.fps} s slot with the next (frames about 2 ms apart or less, which no rate up to 240 "
            "fps keeps, or a short last frame)"
        )
    else:
        lost = f"all {info.frame_count} source frames kept"
    held = f", {frames - kept} repeated to hold the source's timing" if frames > kept else ""
    return f"variable frame rate resampled to a constant {info.fps} fps ({frames} frames): {lost}{held}"


def grid_rate_note(info: MediaInfo) -> str | None:
    """The frame rate read from the timestamps where ffprobe reported another, for the manifest."""
    if info.reported_fps is None:
        return None
    return (
        f"frame rate {info.fps} fps from the frames' timestamps (on its grid); the file reports "
        f"{info.reported_fps}, which drifts off them"
    )


def pixel_notes(spec: OutputSpec) -> list[str]:
    """What the output's pixel format kept and gave up, and any padding, for the manifest."""
    notes = list(spec.pixels.notes) if spec.pixels else []
    pad_w, pad_h = pad_sizes(spec)
    if pad_w or pad_h:
        notes.append(
            f"odd frame size padded by {pad_w} pixel(s) right and {pad_h} below (edge repeated) "
            "for subsampled chroma"
        )
    return notes


@dataclass
class Segment:
    """A run of source frames processed on its own (one chunk)."""

    start: int  # first source frame (of a variable-rate source: first frame of its resampling)
    count: int  # source frames that belong to this chunk
    last: bool  # the chunk that ends the input (holds the tail)


def run_segment(
    cfg: JobConfig,
    info: MediaInfo,
    segment: Segment,
    dest: Path,
    encoder: EncoderChoice,
    *,
    progress: Callable[[int], None] | None = None,
    abort: Callable[[], bool] | None = None,
    deadline: float | None = None,
    registry: StageRegistry = REGISTRY,
    tap: PreviewTap | None = None,
    out_start: int = 0,
    clock: ChunkClock | None = None,
    gate: StageGate | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """Encode one chunk, video only, to ``dest``. Returns (frames written, stage reports).

    A chunk that is not the last also decodes the next chunk's first frame
    when a stage changes the rate, so interpolation pairs across the boundary
    exactly as in a single pass.
    ``clock`` times the chunk's stages and encoder (batch.job.encode_pace).
    ``gate`` is held from the stages' first frame to their last (not while the encoder drains):
    a chunk sharing this worker's GPU runs its stages meanwhile. A chunk without stages through
    the pipes (one ffmpeg transcodes it) holds it for that transcode.
    Raises MediaError subclasses, StageError, and Cancelled when ``abort()`` says so.
    """
    plan, colour, spec = _prepare(
        cfg, info, encoder, dest, deadline=deadline, chunk=segment, registry=registry
    )
    lookahead = any(s.caps_for(s.config).changes_rate for s in plan.stages) and not segment.last
    count = segment.count + (1 if lookahead else 0)
    direct_ok = not info.vfr and direct.usable(info, spec)  # (a variable rate: frames by slot)
    if direct_ok and (not plan.stages or _stages_in_graph(spec)):
        done = [0]

        def advance(n: int) -> None:
            if progress is not None and n > done[0]:
                progress(n - done[0])
            done[0] = max(done[0], n)

        # one transcode at a time on the gate: the part before it uploads meanwhile (batch.job.chunks)
        direct_held = _Held(gate)
        try:
            direct_held.take()
            if abort is not None and abort():  # stopped while it waited for the gate: no new ffmpeg
                raise Cancelled("stopped by signal", hint="run the job again to finish it")
            written = _transcode(
                info, spec, tap, start=segment.start, count=count, on_frames=advance, abort=abort, plan=plan,
                out_start=out_start,
            )  # fmt: skip
        finally:
            direct_held.release()
        advance(written)
        return written, [s.report() for s in plan.stages]
    from batch.media.reader import FrameReader
    from batch.media.writer import FrameWriter

    held = _Held(gate)
    try:
        with (
            FrameReader(info, colour, pix_fmt=spec.pix_fmt, start=segment.start, count=count) as reader,
            FrameWriter(spec) as writer,
        ):
            frames: Iterator[np.ndarray] = held.on_first(iter(reader))  # the reader fills meanwhile
            if clock is not None:
                frames = clock.started(frames)
            if tap is not None:  # ``out_start``: this chunk's first output frame in the whole output
                frames = tap.watch_source(frames, segment.start)
            for stage in plan.stages:
                frames = stage.run(frames)
            if tap is not None:
                frames = tap.watch_output(frames, out_start)
            _drain(frames, writer, (lambda _n: progress(1)) if progress else None, abort, clock)
            if clock is not None:
                clock.stages_done_at = time.perf_counter()
            held.release()  # the stages are done: the encoder drains while another chunk's stages run
    finally:
        held.release()
    if clock is not None:
        clock.encoded_at = time.perf_counter()
    return writer.frames_written, [s.report() for s in plan.stages]


class StageGate(Protocol):
    """One chunk at a time in its stages on a GPU (a ``threading.Semaphore(1)``)."""

    def acquire(self) -> bool: ...

    def release(self) -> None: ...


class _Held:
    """Takes ``gate`` when the stages ask for their first frame; releases it once."""

    def __init__(self, gate: StageGate | None) -> None:
        self.gate, self.held = gate, False

    def on_first(self, frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        if self.gate is None:
            return frames
        return self._taking(frames)

    def _taking(self, frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        self.take()
        yield from frames

    def take(self) -> None:
        if self.gate is not None and not self.held:
            self.gate.acquire()
            self.held = True

    def release(self) -> None:
        if self.held and self.gate is not None:
            self.held = False
            self.gate.release()


def _through_stages(
    info: MediaInfo,
    plan: Plan,
    colour: ColourPlan,
    spec: OutputSpec,
    tap: PreviewTap,
    progress: Progress | None,
    queue_frames: int = 8,
) -> tuple[int, int]:
    """Reader -> stages -> writer. Returns (frames read, frames written)."""
    from batch.media.reader import FrameReader
    from batch.media.writer import FrameWriter

    with (
        FrameReader(info, colour, pix_fmt=spec.pix_fmt, queue_frames=queue_frames) as reader,
        FrameWriter(spec, queue_frames=queue_frames) as writer,
    ):
        frames: Iterator[np.ndarray] = tap.watch_source(iter(reader))
        for stage in plan.stages:
            frames = stage.run(frames)
        frames = tap.watch_output(frames)
        on_frame = (lambda n: progress(n, plan.expected_frames)) if progress else None
        _drain(frames, writer, on_frame)
    return reader.frames_read, writer.frames_written


def _stages_in_graph(spec: OutputSpec) -> bool:
    """The pixel plan ran the stages in the transcode's graph (pipeline.in_graph decided)."""
    return spec.pixels is not None and spec.pixels.in_graph


def _grabs(tap: PreviewTap | None, start: int, count: int) -> list[direct.Grab]:
    """The preview's frames among source frames [start, start + count), relative to ``start``
    (no stages: each is the source's frame and the output's)."""
    if tap is None:
        return []
    inside = sorted({i - start for r in tap.rows for i in (*r.source, r.output) if 0 <= i - start < count})
    grabs = [direct.Grab(tuple(inside), size=tap.thumbnail_size(), name="row")]
    crop = tap.crop_row
    if crop is not None and 0 <= crop.output - start < count:
        box = crop_boxes(tap.layout_in, tap.layout_out)[0]
        grabs.append(direct.Grab((crop.output - start,), box=box, name="crop"))
    return grabs


def _stage_grabs(tap: PreviewTap | None, start: int, count: int, out_start: int) -> list[direct.Grab]:
    """Stages in the graph (one output frame per source frame): the rows' source frames among
    [start, start + count) and their output frames, counted from ``out_start``, each from its own stream."""
    if tap is None:
        return []
    src = sorted({i - start for r in tap.rows for i in r.source if 0 <= i - start < count})
    made = sorted({r.output - out_start for r in tap.rows if 0 <= r.output - out_start < count})
    grabs = [
        direct.Grab(tuple(src), size=tap.thumbnail_size(), name="row"),
        direct.Grab(tuple(made), size=tap.thumbnail_size(made=True), name="made", made=True),
    ]
    crop = tap.crop_row
    if crop is not None:
        box_in, box_out = crop_boxes(tap.layout_in, tap.layout_out)
        if all(0 <= i - start < count for i in crop.source):
            grabs.append(direct.Grab(tuple(i - start for i in crop.source), box=box_in, name="crop"))
        if 0 <= crop.output - out_start < count:
            grabs.append(direct.Grab((crop.output - out_start,), box=box_out, name="made-crop", made=True))
    return grabs


def _transcode(
    info: MediaInfo,
    spec: OutputSpec,
    tap: PreviewTap | None,
    *,
    start: int = 0,
    count: int | None = None,
    progress: Progress | None = None,
    on_frames: Callable[[int], None] | None = None,
    abort: Callable[[], bool] | None = None,
    plan: Plan | None = None,
    out_start: int = 0,
) -> int:
    """ffmpeg encodes the source itself, no stages or the ``plan``'s in its graph (graph_filters); the
    preview's frames are caught in the same run (``out_start``: this run's first output frame).

    Returns the frames encoded. Raises TruncatedVideo when fewer frames decode than the
    source holds (as the reader does), FFmpegFailed and Cancelled.
    """
    filters = tuple(graph_filters(plan) or ()) if plan is not None else ()
    expected = count if count is not None else info.delivered_frames - start
    hang_at = _test_hang_frame()

    started = time.perf_counter()

    def seen(n: int) -> None:
        if progress is not None:
            progress(n, expected)
        for stage in plan.stages if plan is not None and n else ():  # (raises StageError past the deadline)
            stage.graph_pace(n, time.perf_counter() - started)
        if on_frames is not None:
            on_frames(n)
        if hang_at is not None and n >= hang_at:
            _hang()

    in_graph = plan is not None and bool(plan.stages)
    grabs = _stage_grabs(tap, start, expected, out_start) if in_graph else _grabs(tap, start, expected)
    with direct.DirectTranscode(info, spec, grabs, start=start, count=count, stages=filters) as job:
        done = job.run(seen, abort)
        if tap is not None:
            _hand_to_tap(tap, grabs, done, start, out_start)
    if plan is not None:
        for stage in plan.stages:
            stage.ran_in_graph(done.frames)
    if not info.vfr and done.frames < expected:
        raise TruncatedVideo(
            f"{Path(info.path).name} is truncated or damaged: {done.frames} of {expected} frames decoded",
            hint="re-upload a complete copy of the input",
            declared_frames=expected,
            decoded_frames=done.frames,
        )
    return done.frames


def _hand_to_tap(
    tap: PreviewTap, grabs: list[direct.Grab], done: direct.Transcoded, start: int, out_start: int = 0
) -> None:
    """The grabbed images into the tap; a grab that came back short is left to the read-back."""
    from PIL import Image

    try:
        images: dict[tuple[str, int], Image.Image] = {}
        for g in grabs:
            files = done.grabs.get(g.name, [])
            if len(files) == len(g.frames):
                for k, path in zip(g.frames, files, strict=True):
                    with Image.open(path) as grabbed:
                        images[(g.name, k + (out_start if g.made else start))] = grabbed.convert("RGB")
        for (name, k), small in images.items():
            if name == "row" and not any(g.made for g in grabs):
                tap.caught(k, small, images.get(("crop", k)))
            elif name == "row":
                tap.caught_source(k, small, images.get(("crop", k)))
            elif name == "made":
                tap.caught_output(k, small, images.get(("made-crop", k)))
    except Exception:  # the preview is a courtesy: it never fails the job
        import logging

        logging.getLogger(__name__).warning("preview: grabbed frames not read", exc_info=True)
