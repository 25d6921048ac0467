"""Chunked processing with checkpoints in the bucket: a preempted instance loses one chunk at most.

Each input is cut into chunks of about ``limits.chunk_s`` seconds of source
frames. Each chunk is encoded as its own part (its own encode, so a closed
GOP) and uploaded to ``<output>/<stem>/parts/part-NNNNN.<ext>`` with a small
record ``part-NNNNN.json`` (frame ranges, size, sha256, and a fingerprint of
everything that shapes the frames). The part and its record are the
checkpoint: a run started again verifies the parts in the bucket and makes
only the missing or damaged ones. The final output joins the parts without
re-encoding and muxes the source's audio once; then the parts are deleted
(unless ``output.keep_parts``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import resource
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batch import disk
from batch.config import PRESETS, JobConfig
from batch.contracts import PARTS, parts_url
from batch.errors import FrameCountMismatch, ObjectNotFound, StorageError
from batch.job.encode_pace import PaceDecision, WaveFigures, decide
from batch.job.pipeline import (
    ChunkClock,
    Segment,
    grid_rate_note,
    pixel_plan_for,
    plan_preview,
    plan_stages,
    resample_note,
    run_segment,
)
from batch.media import direct
from batch.media.colour import plan_colour
from batch.media.concat import join_parts
from batch.media.encoder import EncoderChoice, choose_encoder
from batch.media.frame_times import Timeline
from batch.media.interlace import deinterlace_filter, deinterlace_note
from batch.media.pixel_plan import PixelPlan
from batch.media.probe import MediaInfo, probe
from batch.media.streams import StreamPlan, check_output, plan_streams
from batch.media.writer import OutputSpec
from batch.models import gpu_slot
from batch.stages.base import output_count
from batch.stages.registry import REGISTRY, StageRegistry
from batch.storage import Store, join_url

log = logging.getLogger("batch")

REREAD_MAX_BYTES = 16 * 1024 * 1024
# Threads per chunk worker: one chunk in its stages (the worker's gate), the one before it draining
# its encoder and uploading meanwhile, so the GPU does not wait on either. A chunk that one ffmpeg
# transcodes (no stages, or stages in its graph) holds the gate for the transcode: the part before it
# uploads meanwhile (a part of a minute of 1080p is ~40-80 MB to a bucket).
OVERLAP = 2
# Containers with a sample index, where an accurate seek lands on the exact frame.
SEEKABLE_CONTAINERS = ("mp4", "mov", "matroska", "webm")


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int  # first source frame (of a variable-rate source: first frame of its resampling)
    count: int  # source frames (resampled frames)
    out_start: int  # first output frame
    out_count: int  # output frames
    last: bool

    @property
    def name(self) -> str:
        return f"part-{self.index:05d}"


# The fewest output frames a part is made of. x265 (3.5, as ffmpeg 5.1 drives it) gives the first
# frames of an encode shorter than its B-frame delay (2) a DTS from memory it never set: the MP4 muxer
# refused such a 1- or 2-frame last part ("pts/dts pair unsupported") and the input failed (an outside
# review, no-stage jobs in chunks). A tail that short is not worth an encoder's start and a part anyway.
MIN_TAIL_FRAMES = 3


def plan_chunks(cfg: JobConfig, info: MediaInfo, registry: StageRegistry = REGISTRY) -> list[Chunk] | None:
    """The chunks of one input, or None when it is processed in one pass.

    One pass when the input fits in one chunk, when more than one stage changes
    the frame rate (chunk boundaries are defined by that stage), or when a
    stage spans the input (its caps say so: metrics, tracked masks and
    held-frame removal span chunks), or when its container has no index to
    seek by (MPEG-TS and raw streams), or when its frames lie too close to their
    time base's ticks for a seek to start exactly at any of them (50 fps in 1/60 s).
    A variable-rate input is cut into chunks of the frames its resampling makes
    (``start``/``count`` count those): each chunk decodes the source frames its
    frames are made of (batch.media.frame_times.Timeline). It runs in one pass
    where its timestamps are not known, where two frames share one (a seek could
    not tell them apart), where they are too close everywhere to cut between (a
    chunk would decode most of the input), and without stages (one direct
    transcode resamples it).
    Raises ConfigError when a stage cannot apply to this input.
    """
    size = max(1, round(cfg.limits.chunk_s * float(info.fps)))
    if not registry.chunkable(cfg.stages) or info.delivered_frames <= size:
        return None
    if info.vfr and not (cfg.stages and info.timeline is not None and info.timeline.distinct()):
        return None
    if not any(name in info.container for name in SEEKABLE_CONTAINERS):
        return None  # no index to seek by (MPEG-TS, raw streams): a seek would not be frame-exact
    if not info.vfr and not info.cuts_exact:
        return None  # frames a tick or two apart: the seek's and the trim's rounding could miss one
    ratio = plan_stages(cfg, info, registry=registry).fps / info.fps  # at most one stage changes the rate
    chunks = []
    n = info.delivered_frames
    starts = list(range(0, n, size))
    if len(starts) > 1 and output_count(n, ratio) - output_count(starts[-1], ratio) < MIN_TAIL_FRAMES:
        starts.pop()  # a tail of a frame or two joins the chunk before it
    for k, start in enumerate(starts):
        last = k == len(starts) - 1
        end = n if last else starts[k + 1]
        out_start = output_count(start, ratio)
        out_end = output_count(end, ratio)
        chunks.append(Chunk(k, start, end - start, out_start, out_end - out_start, last))
    if info.vfr and info.timeline is not None and not _cuttable(info.timeline, chunks, size):
        return None
    return chunks


def _cuttable(timeline: Timeline, chunks: list[Chunk], size: int) -> bool:
    """Each chunk's source frames can be cut out with at most a chunk's worth more on either side:
    where a stream has no two frames far enough apart to cut between (1 tick apart in a coarse time
    base), every chunk would decode most of the input."""
    for c in chunks:
        picks = timeline.picks(c.start, c.count)
        a, b = timeline.window(picks[0], picks[-1])
        if picks[0] - a > size or b - picks[-1] > size:
            return False
    return True


# Named in the fingerprint of what an input's frames depend on where an earlier rule of decoding gave
# other frames (batch.job.chunks.decoding_rule): parts and outputs made under it are made again.
DECODING = "frames by timestamps; chunks decoded from before their first frame"


# Anamorphic sources: their pixels' aspect is written since this rule (outputs with stages were square)
ASPECT = "the pixels' aspect written"


def decoding_rule(
    cfg: JobConfig, info: MediaInfo, registry: StageRegistry = REGISTRY, pixels: PixelPlan | None = None
) -> str:
    """What changed in how this input's frames are made where they came out otherwise before (an earlier
    run's output or parts are then made again), else "" (fingerprints stay as they were): the frames'
    rule (_frames_rule), and an anamorphic source's aspect where it was lost (``pixels``: the input's
    pixel plan, which tells the direct transcode)."""
    rule = _frames_rule(cfg, info, registry)
    if _aspect_marked_now(cfg, info, registry, pixels):
        rule = f"{rule}; {ASPECT}" if rule else ASPECT
    return rule


def _aspect_marked_now(
    cfg: JobConfig, info: MediaInfo, registry: StageRegistry, pixels: PixelPlan | None
) -> bool:
    """An anamorphic source's output, marked now, written square before: through the stages or the
    pipes. Where ffmpeg carried it (the direct transcode of a job with no stage) or the output is
    square after all (a resize to square pixels), the earlier output stands and is reused."""
    if info.sar is None:
        return False
    if not cfg.stages:  # unsure of the route: made again rather than reused square
        return pixels is None or not direct.source_planes_pass_through(info, pixels)
    return plan_stages(cfg, info, registry=registry).sar is not None


def _frames_rule(cfg: JobConfig, info: MediaInfo, registry: StageRegistry) -> str:
    """DECODING where the rule before it made other frames, else "".

    A variable-rate source: its frames now follow its timestamps (one pass lost the last frame of a
    B-frame MP4; a video starting after its audio was filled before it). A source in chunks with
    B-frames or interlacing: a chunk now starts decoding before its first frame (a chunk could start
    a frame late; the deinterlacer lacked the frame before). A constant-rate source whose reported
    rate drifts off its timestamps: its frames are now timed by their grid (chunks started on the
    wrong frame). One whose frames lie a tick or two apart: now in one pass (its chunks started a
    frame off)."""
    if info.vfr:
        return DECODING
    if info.reported_fps is not None:  # (the reported rate, which drifted off the frames, timed them)
        return f"{DECODING}; a constant rate from the timestamps"
    size = max(1, round(cfg.limits.chunk_s * float(info.fps)))
    chunked = registry.chunkable(cfg.stages) and info.delivered_frames > size
    if chunked and not info.cuts_exact:  # (its chunks could start a frame off: now one pass)
        return f"{DECODING}; one pass where a seek cannot start exactly at a frame"
    return DECODING if chunked and (info.reorder_s > 0 or deinterlace_filter(info)) else ""


def fingerprint(
    cfg: JobConfig,
    source_sha256: str,
    chunk_frames: int,
    encoder: EncoderChoice,
    pixels: str = "",
    decoding: str = "",
) -> str:
    """What a part's frames depend on; a part made under another fingerprint is not reused.

    The encoder actually used is part of it: parts from NVENC and from libx264
    must not be joined into one stream. So is the output's pixel format
    (``pixels``: the pixel plan's output, which follows the source and this
    ffmpeg's encoders): parts of 8 and 10 bits must not be joined either. So is the
    decoding rule where an earlier one made other frames (``decoding``: decoding_rule).
    """
    shaping = {
        "source": source_sha256,
        "stages": [s.to_data() for s in cfg.stages],
        # how the job may pace its encoders shapes no frame (the preset it picks is in the encoder's args);
        # where colour is converted shows in ``pixels`` (yuv420p or rgb24 frames), and leaving the key
        # out keeps the fingerprints of parts made before it existed
        "encode": cfg.encode.to_data(exclude={"auto_workers", "auto_preset", "colour_on_device"}),
        "encoder": [encoder.codec, encoder.pix_fmt, *encoder.args],
        "chunk_frames": chunk_frames,
    }
    if pixels:  # (absent otherwise, so fingerprints made without it stay as they were)
        shaping["pixels"] = pixels
    if decoding:  # (the same)
        shaping["decoding"] = decoding
    return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()


@dataclass
class ChunkResult:
    frames_out: int
    stages: list[dict[str, Any]]
    reused: int
    processed: int
    chunks: int
    seconds: float
    streams: StreamPlan | None = None  # the source's other streams, added at the join
    notes: list[str] = field(default_factory=list)
    joined: OutputSpec | None = None  # what the join was asked to write, for reading its facts


class ChunkedInput:
    """Runs one input chunk by chunk against the bucket."""

    def __init__(
        self,
        cfg: JobConfig,
        info: MediaInfo,
        chunks: list[Chunk],
        encoder: EncoderChoice,
        store: Store,
        stem: str,
        work_dir: Path,
        source_sha256: str,
        *,
        workers: int = 1,
        make_room: Callable[[int], int] | None = None,
        deadline: float | None = None,
        registry: StageRegistry = REGISTRY,
    ) -> None:
        self.cfg, self.info, self.chunks, self.encoder = cfg, info, chunks, encoder
        self.deadline = deadline  # time.monotonic() by which the job must be done, for the ladders
        self.make_room = make_room  # frees kept local copies when the join needs their room
        self.store, self.work_dir, self.workers = store, work_dir, max(1, workers)
        self.prefix = parts_url(cfg.output, stem)
        self.ext = cfg.encode.container if cfg.encode.container in ("mkv", "mov") else "mp4"  # mov: ProRes
        pixels = pixel_plan_for(cfg, info, encoder, registry)
        self._pixel_plan = pixels
        self._pixels, self._source_sha256 = pixels.route, source_sha256
        self._decoding = decoding_rule(cfg, info, registry, pixels)
        self.print = fingerprint(cfg, source_sha256, chunks[0].count, encoder, self._pixels, self._decoding)
        self.registry = registry
        plan = plan_stages(cfg, info, registry=registry)
        # stages whose frames cross the pipes (stages run in the transcode's graph pace as none do)
        self.has_stages = bool(plan.stages) and not pixels.in_graph
        self.pace: PaceDecision | None = None  # what the first wave of chunks decided (encode_pace)
        self.fps_out = plan.fps
        self._size, self._sar = (plan.width, plan.height), plan.sar
        self.streams = plan_streams(info, cfg.encode.container, plan.fps)  # carried at the join
        self.tap = plan_preview(cfg, info, encoder, plan, registry)  # every chunk made here feeds it
        self.abort = threading.Event()
        self._lock = threading.Lock()
        self._reports: list[list[dict[str, Any]]] = []

    def _urls(self, c: Chunk) -> tuple[str, str]:
        return join_url(self.prefix, f"{c.name}.{self.ext}"), join_url(self.prefix, f"{c.name}.json")

    def _local(self, c: Chunk) -> Path:
        return self.work_dir / PARTS / f"{c.name}.{self.ext}"

    def _record(self, c: Chunk) -> dict[str, Any] | None:
        """The part's record in the bucket as written (None: none there, or not a record)."""
        try:
            record = json.loads(self.store.read_bytes(self._urls(c)[1]))
        except (ObjectNotFound, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def _reusable(self, c: Chunk, record: dict[str, Any] | None) -> dict[str, Any] | None:
        """``record`` (read by :meth:`_record`) when it, the part's size and checksum all hold (fetched)."""
        if record is None:
            return None
        part_url = self._urls(c)[0]
        try:
            if record.get("fingerprint") != self.print or record.get("output_frames") != [
                c.out_start,
                c.out_start + c.out_count,
            ]:
                return None
            info = self.store.stat(part_url)
            if info.size != record["size"] or (info.sha256 and info.sha256 != record["sha256"]):
                log.warning("%s: the part in the bucket does not match its record; redoing it", c.name)
                return None
            local = self._local(c)
            local.parent.mkdir(parents=True, exist_ok=True)
            got = self.store.download(part_url, local)
        except (ObjectNotFound, ValueError, KeyError):
            return None
        if got.sha256 != record["sha256"]:
            log.warning("%s: the part's bytes do not match its record; redoing it", c.name)
            return None
        return record

    def _make(
        self,
        c: Chunk,
        progress: Callable[[int], None] | None,
        clock: ChunkClock | None = None,
        gates: list[threading.Semaphore] | None = None,
    ) -> None:
        local = self._local(c)
        local.parent.mkdir(parents=True, exist_ok=True)
        written, reports = run_segment(
            self.cfg,
            self.info,
            Segment(c.start, c.count, c.last),
            local,
            self.encoder,
            progress=progress,
            abort=self.abort.is_set,
            deadline=self.deadline,
            tap=self.tap,
            out_start=c.out_start,
            registry=self.registry,
            clock=clock,
            gate=gates[gpu_slot.index() % len(gates)] if gates else None,
        )
        if written != c.out_count:
            raise FrameCountMismatch(
                f"{c.name}: wrote {written} frames, the plan says {c.out_count}",
                hint="this is a bug; please report it with the manifest",
            )
        part_url, record_url = self._urls(c)
        uploaded = self.store.upload(
            local, part_url, content_type="video/quicktime" if self.ext == "mov" else f"video/{self.ext}"
        )
        record = {
            "part": c.index,
            "input_frames": [c.start, c.start + c.count],
            "output_frames": [c.out_start, c.out_start + c.out_count],
            "size": uploaded.size,
            "sha256": uploaded.sha256,
            "fingerprint": self.print,
            "stages": reports,  # which rungs made this part, kept for the runs that reuse it
        }
        self.store.write_bytes(record_url, json.dumps(record, indent=2).encode(), "application/json")
        with self._lock:
            self._reports.append(reports)
        log.info("%s: %d frames checkpointed", c.name, written)

    def run(
        self,
        dest: Path,
        progress: Callable[[int, int], None] | None = None,
        on_join: Callable[[int], None] | None = None,
    ) -> ChunkResult:
        """Make or reuse every part, then join them into ``dest`` (``on_join(parts)`` just before)."""
        started = time.perf_counter()
        total = sum(c.out_count for c in self.chunks)
        records = {c.name: self._record(c) for c in self.chunks}  # one read of each part's record
        earlier = self._preset_of_earlier_parts(records)
        if earlier is not None:
            log.info("resuming with preset %s, which an earlier run of this input switched to", earlier)
            self._use_preset(earlier)
        todo = []
        for c in self.chunks:
            record = self._reusable(c, records[c.name])
            if record is None:
                todo.append(c)
            elif record.get("stages"):
                self._reports.append(record["stages"])
        reused = len(self.chunks) - len(todo)
        done = [total - sum(c.out_count for c in todo)]

        def tick(n: int) -> None:
            with self._lock:
                done[0] += n
            if progress:
                progress(done[0], total)

        if reused:
            log.info("resuming: %d of %d parts verified in the bucket", reused, len(self.chunks))
        if self._pacing(todo):
            wave = todo[: self.workers]
            made_before = len(self._reports)
            # parts reused from the bucket fix the preset: a switch now would mix presets in one output
            fixed = reused > 0 or earlier is not None
            decision = self._first_wave(wave, len(todo) - len(wave), tick, preset_fixed=fixed)
            self.pace = decision
            log.info("encoders: %s (%s)", decision.action, decision.reason)
            rest = todo[len(wave) :]
            if decision.action == "preset":  # every part of one output is encoded with one set of settings
                self._use_preset(decision.preset)
                del self._reports[made_before:]
                with self._lock:
                    done[0] -= sum(c.out_count for c in wave)
                rest = todo
            self._run_chunks(rest, decision.workers, tick)
        else:
            self._run_chunks(todo, self.workers, tick)
        parts = [self._local(c) for c in self.chunks]
        # the join writes about the parts' total again (the audio is a small share)
        need = sum(p.stat().st_size for p in parts if p.exists())
        disk.require(dest.parent, need, f"joining {len(parts)} parts", make_room=self.make_room)
        if on_join is not None:
            on_join(len(parts))
        join_parts(
            parts,
            dest,
            container=self.cfg.encode.container,
            audio_source=Path(self.info.path),
            audio=self.streams.audio,
            video_offset_s=self.info.start_s,
            durations=[c.out_count / self.fps_out for c in self.chunks],
            streams=self.streams,
            timeout_s=self.cfg.limits.stall_s,
        )
        return ChunkResult(
            frames_out=total,
            stages=merge_reports(self._reports, self.cfg, self.info, self.registry),
            reused=reused,
            processed=len(todo),
            chunks=len(self.chunks),
            seconds=time.perf_counter() - started,
            streams=self.streams,
            notes=[
                *self.streams.notes,
                *filter(None, [deinterlace_note(self.info), self._resampled(), grid_rate_note(self.info)]),
            ],
            joined=self._joined_spec(dest),
        )

    def _joined_spec(self, dest: Path) -> OutputSpec:
        """The joined file as one pass would have asked the encoder for it (the parts' video, the
        source's streams copied at the join)."""
        return OutputSpec(
            path=dest, width=self._size[0], height=self._size[1], fps=self.fps_out,
            container=self.cfg.encode.container, encoder=self.encoder,
            colour=plan_colour(self.info.color, self.info.height, self.info.pix_fmt),
            audio_source=Path(self.info.path), audio=self.streams.audio, video_offset_s=self.info.start_s,
            pix_fmt=self._pixel_plan.transport, streams=self.streams, pixels=self._pixel_plan, sar=self._sar,
        )  # fmt: skip

    def _resampled(self) -> str | None:
        """A variable-rate source's note, as one pass writes it (the chunks made its resampled frames)."""
        if not self.info.vfr:
            return None
        return resample_note(self.info, sum(c.count for c in self.chunks))

    def _pacing(self, todo: list[Chunk]) -> bool:
        """Whether the first wave decides how the rest is encoded: a CPU encoder, stages, chunks after it."""
        enc = self.cfg.encode
        allowed = enc.auto_workers or enc.preset_may_change
        return allowed and self.has_stages and not self.encoder.nvenc and len(todo) > self.workers

    def _first_wave(
        self, wave: list[Chunk], left: int, tick: Callable[[int], None], *, preset_fixed: bool = False
    ) -> PaceDecision:
        """One chunk per worker, measured: the stages' wait on the encoder, wall and CPU time."""
        clocks = [ChunkClock() for _ in wave]
        cpu_before, started = _cpu_seconds(), time.perf_counter()
        self._run_chunks(wave, len(wave), tick, clocks)
        figures = WaveFigures(
            workers=len(wave),
            frames=sum(c.out_count for c in wave),
            wall_s=time.perf_counter() - started,
            stages_s=sum(k.stages_done_at - k.first_at for k in clocks),
            write_wait_s=sum(k.write_wait_s for k in clocks),
            encode_s=sum(k.encoded_at - k.first_at for k in clocks),
            cpu_s=_cpu_seconds() - cpu_before,
        )
        enc = self.cfg.encode
        uses_preset = self.encoder.codec in ("libx264", "libx265")
        if preset_fixed:
            kept = "the parts an earlier run made use it"
        elif not uses_preset:
            kept = f"{self.encoder.codec} has no presets"
        else:
            kept = "set in the config, or encode.auto_preset: false"
        return decide(
            figures,
            cores=len(os.sched_getaffinity(0)),
            preset=enc.preset,
            may_change_preset=enc.preset_may_change and uses_preset and not preset_fixed,
            chunks_left=left,
            may_add_workers=enc.auto_workers,
            preset_kept=kept,
        )

    def _with_preset(self, preset: str) -> tuple[JobConfig, EncoderChoice, str]:
        """The config, encoder and parts' fingerprint this input has when encoded with ``preset``."""
        cfg = self.cfg.replace(encode=self.cfg.encode.replace(preset=preset))
        chosen = choose_encoder(cfg.encode)
        encoder = EncoderChoice(
            chosen.codec, chosen.pix_fmt, chosen.args, self.encoder.requested, self.encoder.steps
        )  # the same codec (no new NVENC probe matters: pacing runs only for CPU encoders)
        return (
            cfg,
            encoder,
            fingerprint(
                cfg, self._source_sha256, self.chunks[0].count, encoder, self._pixels, self._decoding
            ),
        )

    def _use_preset(self, preset: str) -> None:
        """Encode with ``preset`` from now on; the parts' fingerprint follows it."""
        self.cfg, self.encoder, self.print = self._with_preset(preset)

    def _preset_of_earlier_parts(self, records: dict[str, dict[str, Any] | None]) -> str | None:
        """The preset an earlier run of this input switched to, read from its parts in the bucket.

        A rerun after a switch finds parts whose fingerprint holds the faster preset: it carries on
        with that preset, so they are reused and the output keeps one preset. None: parts at the
        config's own preset exist, none exist, or the preset may not change here.
        """
        if not (self.cfg.encode.preset_may_change and self.encoder.codec in ("libx264", "libx265")):
            return None
        prints = {self._with_preset(p)[2]: p for p in PRESETS if p != self.cfg.encode.preset}
        found: set[str] = set()
        for record in records.values():
            print_ = record.get("fingerprint") if record else None
            if print_ == self.print:
                return None  # parts at the config's preset: keep it (and do not switch, see run)
            if print_ in prints:
                found.add(prints[print_])
        return found.pop() if len(found) == 1 else None

    def _run_chunks(
        self,
        todo: list[Chunk],
        workers: int,
        tick: Callable[[int], None],
        clocks: list[ChunkClock] | None = None,
    ) -> None:
        """``workers`` chunks at once in their stages (one per GPU, or --workers N on the CPU).

        Each worker has OVERLAP threads and one gate: thread t takes gate t mod ``workers`` (and
        GPU t mod the GPU count, as worker t mod ``workers`` does), so the next chunk decodes and
        runs its stages while the previous one's encoder drains and uploads; a chunk one ffmpeg
        transcodes holds the gate for its transcode, so the previous part uploads meanwhile.
        """
        threads = min(len(todo), workers * OVERLAP)
        if threads <= 1:
            for k, c in enumerate(todo):
                self._make(c, tick, clocks[k] if clocks else None)
            return
        gates = [threading.Semaphore(1) for _ in range(workers)]
        gpu_slot.reset()  # thread k uses GPU k (mod the GPU count) for its model stages
        with ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="chunk", initializer=gpu_slot.claim
        ) as pool:
            futures = [
                pool.submit(self._make, c, tick, clocks[k] if clocks else None, gates)
                for k, c in enumerate(todo)
            ]
            try:
                finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
            except BaseException:  # SIGTERM (Cancelled) in the main thread: stop the workers
                self.abort.set()
                pool.shutdown(wait=True, cancel_futures=True)  # each stops at its next frame
                raise
            for f in finished:
                if f.exception() is not None:
                    self.abort.set()
                    for other in futures:
                        other.cancel()
                    raise f.exception()  # type: ignore[misc]

    def delete_parts(self) -> None:
        """This plan's parts, and any an earlier run left under other chunk lengths (a killed run with
        chunk_s 0.4 made part-00008, a rerun with chunk_s 1 has only 4)."""
        urls = {u for c in self.chunks for u in self._urls(c)}
        try:
            listed = self.store.list(self.prefix.rstrip("/") + "/")
            urls |= {o.url for o in listed if PART_NAME.fullmatch(o.url.rsplit("/", 1)[-1])}
        except StorageError as e:
            log.warning("could not list %s for parts of earlier runs: %s", self.prefix, e.message)
        for url in sorted(urls):
            try:
                self.store.delete(url)
            except StorageError as e:  # a leftover part costs little; say so and go on
                log.warning("could not delete %s: %s", url, e.message)


PART_NAME = re.compile(r"part-\d{5,}\.(json|[a-z0-9]{2,4})")  # what the parts folder holds: ours alone


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (ffmpeg decoders and encoders)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


# What a stage's report counts per chunk, summed over the chunks (the rest is the same in every one)
STAGE_COUNTS = ("scene_cuts", "held_frames_removed", "calls")
STEP_COUNTS = ("units", "frames", "seconds", "warmup_seconds")


def merge_reports(
    per_chunk: list[list[dict[str, Any]]],
    cfg: JobConfig,
    info: MediaInfo,
    registry: StageRegistry = REGISTRY,
) -> list[dict[str, Any]]:
    """One report per stage over every chunk, made now or reused (counts summed, steps by rung)."""
    if not per_chunk:
        reports = [s.report() for s in plan_stages(cfg, info, registry=registry).stages]
        return [dict(r, note="every part was reused from the bucket") for r in reports]
    merged = []
    for reports in zip(*per_chunk, strict=True):
        first = dict(reports[0])
        for count in STAGE_COUNTS:  # each chunk counts its own frames' events (a pair belongs to one chunk)
            if count in first:
                first[count] = sum(r.get(count, 0) for r in reports)
        steps: dict[tuple[str, str], dict[str, Any]] = {}
        for r in reports:
            for s in r.get("steps") or []:
                key = (s["rung"], s["status"])
                agg = steps.setdefault(key, {k: v for k, v in s.items() if k not in STEP_COUNTS})
                for k in STEP_COUNTS:
                    if k in s:
                        agg[k] = round(agg.get(k, 0) + s[k], 3)
        if "steps" in first:  # stages without a ladder (crop, analyze) have no steps to sum
            first["steps"] = list(steps.values())
        first.pop("frames_in", None)  # per chunk, with interpolation's lookahead frame: not summable
        first.pop("frames_out", None)
        merged.append(first)
    return merged


def verify_joined(
    dest: Path,
    expected_frames: int,
    streams: StreamPlan | None = None,
    *,
    source: MediaInfo | None = None,
    joined: OutputSpec | None = None,
) -> MediaInfo:
    """The joined file's facts, checked against the parts' frame count and the source's streams.

    With ``source`` and ``joined`` the common output (H.264 in MP4/MOV, audio copied) is read from its
    own index, as a one-pass output is (batch.media.written); anything else, or anything that does
    not read cleanly there, is probed. ffprobe reads every packet: ~0.2 s for a minute of 720p here,
    seconds for a film's.
    """
    out = None
    if source is not None and joined is not None:
        from batch.media.written import facts as written_facts

        out = written_facts(source, joined, dest)
    out = out or probe(dest)
    if out.frame_count != expected_frames:
        raise FrameCountMismatch(
            f"{dest.name}: the joined output holds {out.frame_count} frames, the parts {expected_frames}",
            hint="a part may be damaged; run the job again to redo it",
        )
    if streams is not None:
        check_output(streams, out, dest)
    return out
