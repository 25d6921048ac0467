"""The batch: pull the config and inputs, run each input, upload, write the manifest.

One input failing never stops the others. The manifest is written on every
path that knows where to write it; when the output store itself cannot be
reached, it is written to the state dir and the exit code says so.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import FrameType
from typing import Any

from batch import disk, faults
from batch.config import JobConfig, resolved
from batch.config_source import load_config
from batch.contracts import (
    KEPT_OUTPUTS,
    MANIFEST,
    PREVIOUS_OUTPUTS,
    STATUS,
    UNPUBLISHED_MANIFEST,
    output_record_key,
    report_data_name,
    state_file,
)
from batch.errors import (
    BatchError,
    Cancelled,
    ConfigError,
    DiskFull,
    InternalError,
    NotAVideo,
    ObjectNotFound,
    StorageError,
)
from batch.job.chunks import ChunkedInput, decoding_rule, fingerprint, plan_chunks, verify_joined
from batch.job.heartbeat import Heartbeat
from batch.job.input_hash import BackgroundHash, sha256_file
from batch.job.manifest import (
    InputRecord,
    Manifest,
    archive_output,
    output_entry,
    publish,
    write_local,
)
from batch.job.pipeline import check_duration, pixel_plan_for, run_pipeline
from batch.job.progress import Tracker, show_logs_above_bars
from batch.job.shards import Shard, merge_if_complete, run_id
from batch.job.warm_imports import load_in_background
from batch.media import probe_ahead
from batch.media.encoder import EncoderChoice, choose_encoder
from batch.media.preview import Files, PreviewTap, make_preview
from batch.media.probe import probe, probe_ahead_of_time
from batch.models.gpu_slot import visible_gpus
from batch.report import page as report_page
from batch.report.build import Collector
from batch.report.data import ReportData
from batch.stages.ladder import deadline_after
from batch.stages.registry import REGISTRY, StageRegistry
from batch.storage import StorageSettings, Store, join_url, open_url, parse_url, redact_url
from batch.storage.local import local_path
from batch.storage.urls import url_basename, url_stem

log = logging.getLogger("batch")

VIDEO_EXTENSIONS = {
    ".mp4",
    ".mov",
    ".mkv",
    ".webm",
    ".avi",
    ".m4v",
    ".ts",
    ".mts",
    ".mpg",
    ".mpeg",
    ".flv",
    ".wmv",
}


@dataclass(frozen=True)
class RunOptions:
    dry_run: bool = False
    state_dir: Path | None = None
    # Keep each uploaded output under <state dir>/outputs/<key> so the watchdog
    # can upload it again if the bucket loses it; the watchdog removes them.
    keep_outputs: bool = False
    shard: Shard | None = None  # this instance's share of the inputs (--shard I/N)
    # chunks processed at once (--workers N); None: one per visible GPU (1 without), counted only
    # when an input is cut into chunks (nvidia-smi can take a second before a job that needs none)
    workers: int | None = None


def expand_inputs(cfg: JobConfig, settings: StorageSettings) -> list[str | BatchError]:
    """Input URLs, with each prefix (ending in '/') replaced by the videos under it."""
    out: list[str | BatchError] = []
    for url in cfg.inputs:
        if not url.endswith("/"):
            out.append(url)
            continue
        try:
            found = [o.url for o in open_url(url, settings).list(url) if _is_video(o.url)]
        except BatchError as e:
            out.append(e)
            continue
        if not found:
            out.append(
                ObjectNotFound(
                    f"no videos under {redact_url(url)}",
                    hint=f"upload inputs there (extensions: {', '.join(sorted(VIDEO_EXTENSIONS))})",
                    url=redact_url(url),
                )
            )
        out.extend(found)
    return out


def _is_video(url: str) -> bool:
    return PurePosixPath(parse_url(url)[2]).suffix.lower() in VIDEO_EXTENSIONS


def output_stems(urls: list[str | BatchError]) -> list[str]:
    """One folder name per input: its file stem, suffixed when two inputs share one.

    The stem comes from the URL's path only (never a presigned query) and is one
    safe key segment: no "/" or "\\", never "." or ".." (``s3://b/...mp4``), at
    most NAME_MAX_BYTES; an input without a usable stem is called "input".
    """
    wanted = [url_stem(item) if isinstance(item, str) else "input" for item in urls]
    taken = set(wanted)  # an input's own stem is never given to another input
    used: set[str] = set()
    stems = []
    for stem in wanted:
        name, n = stem, 1
        while name in used or (name != stem and name in taken):
            n += 1
            name = f"{stem}-{n}"
        used.add(name)
        stems.append(name)
    return stems


def _probe_ahead(item: str | BatchError | None) -> Path | None:
    """Start the next local input's ffprobe now (batch.media.probe_ahead: used only if the file is
    unchanged when its turn comes) and return its path; remote inputs are probed once downloaded."""
    if item is None or isinstance(item, BatchError):
        return None
    with contextlib.suppress(Exception):  # a guess: any failure only means probing it in turn
        scheme, _, key = parse_url(item)
        if scheme == "file" and Path(key).is_file() and probe_ahead_of_time(Path(key)):
            return Path(key)
    return None


class _Cancel:
    """SIGTERM/SIGINT: stop the input in progress, record the rest as cancelled.

    The handler raises only while ``armed`` (an input is being processed) and
    disarms itself, so a signal never interrupts writing the manifest and a
    second signal never interrupts the clean-up of the first.
    """

    def __init__(self) -> None:
        self.requested = False
        self.armed = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _Cancel:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not the main thread (tests)
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        log.warning("received %s: finishing cleanly", signal.Signals(signum).name)
        self.requested = True
        if not self.armed:
            return
        self.armed = False
        raise Cancelled(
            f"stopped by signal {signal.Signals(signum).name}", hint="run the job again to finish it"
        )

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


class Runner:
    def __init__(self, cfg: JobConfig, options: RunOptions, registry: StageRegistry = REGISTRY) -> None:
        assert cfg.job_id
        self.cfg = cfg
        self.options = options
        self.registry = registry  # what the configured stages are, can do and write
        self.deadline: float | None = None  # time.monotonic() by which the job must be done
        self.settings = StorageSettings(endpoint_url=cfg.storage.endpoint_url, region=cfg.storage.region)
        self.state_dir = options.state_dir or Path("state") / cfg.job_id
        self.work_dir = self.state_dir / "work"
        self.shard = options.shard
        self.manifest = Manifest(
            job_id=cfg.job_id,
            config=resolved(cfg),
            dry_run=options.dry_run,
            shard=self.shard.to_dict() if self.shard else None,
        )
        self.manifest_name = self.shard.manifest_name if self.shard else MANIFEST
        self.report = Collector()  # the page's images, gathered while each input's files are on disk

    def run(self) -> int:
        self.deadline = deadline_after(self.cfg.limits.max_runtime_s)  # ladders refuse rungs past it
        out_store = open_url(self.cfg.output, self.settings)
        if self.shard is None:
            inputs = expand_inputs(self.cfg, self.settings)
        else:  # one list for every shard of the run, however the prefix changes meanwhile
            # (imported here: it loads tenacity, ~10 ms before a single run's first ffmpeg could start)
            from batch.job.input_snapshot import fixed_inputs

            inputs, digest = fixed_inputs(
                out_store, self.cfg.output, run_id(), lambda: expand_inputs(self.cfg, self.settings),
                job_id=self.cfg.job_id or "", config_inputs=list(self.cfg.inputs),
            )  # fmt: skip
            assert self.manifest.shard is not None
            self.manifest.shard.update(inputs_total=len(inputs), inputs_sha256=digest)
        stems = output_stems(inputs)  # over every input, so names do not depend on sharding
        mine = [
            (position + 1, item, stem)
            for position, (item, stem) in enumerate(zip(inputs, stems, strict=True))
            if self.shard is None or self.shard.owns(position)
        ]
        tracker = Tracker(self.cfg.job_id or "", len(mine), log_every_s=self.cfg.limits.heartbeat_s)
        if tracker.mode == "bars":
            show_logs_above_bars()
        encoder = choose_encoder(self.cfg.encode)
        status_name = self.shard.status_name if self.shard else STATUS
        with _Cancel() as cancel:
            heartbeat = Heartbeat(
                tracker, out_store, self.cfg.output, self.state_dir, self.cfg.limits.heartbeat_s, status_name
            )
            with heartbeat:
                for position, (index, item, stem) in enumerate(mine):
                    following = mine[position + 1][1] if position + 1 < len(mine) else None
                    ahead = _probe_ahead(following)  # runs while this input is transcoded
                    try:
                        self._run_one(index, item, stem, out_store, encoder, tracker, cancel)
                    finally:  # a run this input never took (it failed first, it changed): stopped now
                        probe_ahead.discard(keep=ahead)
                tracker.set_phase(self.manifest.status)
            # the status got its final beat above; the manifest is the last object written
            self._publish(out_store)
        return self.manifest.exit_code

    def _run_one(
        self,
        index: int,
        item: str | BatchError,
        stem: str,
        out_store: Store,
        encoder: EncoderChoice,
        tracker: Tracker,
        cancel: _Cancel,
    ) -> None:
        mine = len(self.manifest.inputs) + 1  # this input's place in this shard's list
        count = tracker.input_count
        shown = redact_url(item) if isinstance(item, str) else None
        record = InputRecord(index=index, source={"url": shown})
        self.manifest.inputs.append(record)
        if isinstance(item, BatchError):  # a prefix that could not be listed, or held no video
            record.status, record.error = "failed", item
            log.error("[%d/%d] %s", mine, count, item)
            return
        if cancel.requested:
            record.status = "cancelled"
            return
        tracker.start_input(mine, shown or "")
        try:
            try:
                cancel.armed = True
                self._process(item, stem, record, out_store, encoder, tracker)
            finally:
                cancel.armed = False
            record.status = "succeeded"
        except Cancelled as e:
            record.status, record.error = "cancelled", e
        except BatchError as e:
            record.status, record.error = "failed", e
            log.error("[%d/%d] %s: %s", mine, count, shown, e)
        except Exception as e:  # a bug: record it, keep the other inputs going
            log.exception("[%d/%d] internal error", mine, count)
            record.status = "failed"
            record.error = InternalError(f"{type(e).__name__}: {e}", hint="this is a bug; please report it")
        finally:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def _publish(self, out_store: Store) -> None:
        data = self.manifest.to_json()  # the same bytes in the bucket and in the state dir
        try:
            faults.publish()
            info = publish(data, out_store, self.cfg.output, self.manifest_name)
            log.info("manifest: %s (%s)", redact_url(info.url), self.manifest.status)
            if self.shard:
                try:
                    merged = merge_if_complete(out_store, self.cfg.output, self.shard, self.manifest.job_id)
                except Exception as e:  # this shard's manifest is up; a failed merge must not replace it
                    merged = f"failed ({type(e).__name__}: {e}); the next shard to finish merges"
                log.info("merged manifest.json: %s", merged)
            self._publish_report(out_store, data)
        except (StorageError, DiskFull) as e:  # a local output on a full disk is as unreachable
            # the watchdog publishes the manifest as it was meant to be once the bucket answers
            with contextlib.suppress(OSError):
                write_local(data, self.state_dir, UNPUBLISHED_MANIFEST)
            self.manifest.job_errors.append(e)
            data = self.manifest.to_json()
            log.error("could not upload the manifest (%s); keeping it in the state dir", e)
        try:
            path = write_local(data, self.state_dir)
            log.info("local copy of the manifest: %s", path)
        except OSError as e:
            log.error("could not write the local manifest copy in %s: %s", self.state_dir, e)

    def _collect(self, index: int, preview: Path | None) -> None:
        """The page's images for this input, before the upload moves its files away."""
        files = {f.kind: self.work_dir / "artifacts" / f.name for f in self.registry.files(self.cfg.stages)}
        self.report.add_input(index, preview, {kind: p for kind, p in files.items() if p.exists()})

    def _publish_report(self, out_store: Store, manifest: bytes) -> None:
        """report.html and its sidecar, once the manifest is up; a page that cannot be made is a log line."""
        name = report_data_name(self.manifest_name)
        report_page.never_raises(
            "report.html",
            lambda: report_page.publish(
                out_store, self.cfg.output, json.loads(manifest), self.report.data, name
            ),
        )

    def _process(
        self,
        url: str,
        stem: str,
        record: InputRecord,
        out_store: Store,
        encoder: EncoderChoice,
        tracker: Tracker,
    ) -> None:
        t0 = time.perf_counter()
        store = open_url(url, self.settings)
        scheme, _, key = parse_url(url)
        hashing: BackgroundHash | None = None
        sha256: str | None = None
        if scheme == "file":
            source = Path(key)
            try:
                is_dir, is_file = source.is_dir(), source.is_file()
            except OSError as e:  # a name too long for the file system, a loop of links: not there
                raise ObjectNotFound(
                    f"input {url} cannot be opened: {e.strerror}", hint="check the path", url=url
                ) from None
            if is_dir:
                raise NotAVideo(
                    f"input {url} is a directory", hint="end the URL with '/' to take every video under it"
                )
            if not is_file:
                raise ObjectNotFound(f"input {url} does not exist", hint="check the path", url=url)
            self._refuse_writing_over(source, stem)
            hashing = BackgroundHash(source)  # read beside ffprobe, then beside the work (input_hash.py)
        else:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            if scheme in ("s3", "b2"):  # a HEAD is cheap there; a presigned HTTP GET may refuse one
                disk.require(self.work_dir, store.stat(url).size, "the download", make_room=self._make_room)
            # named as in the bucket (from the path: no query, no secret), so errors name the user's file;
            # a folder of its own, apart from the outputs made beside it
            source = self.work_dir / "download" / (url_basename(url) or "source.bin")
            source.parent.mkdir(exist_ok=True)
            with tracker.transfer("download", url_basename(url)) as progress:
                got = store.download(url, source, progress=progress)
            sha256 = got.sha256 or sha256_file(source)  # every store hashes as it writes; never trust a gap
        record.source.update({"sha256": sha256, "size": source.stat().st_size})
        record.timings["download_s"] = time.perf_counter() - t0
        try:
            self._process_source(source, stem, record, out_store, encoder, tracker, t0, sha256, hashing)
        finally:
            if hashing is not None:
                hashing.cancel()  # a failed or stopped input does not wait for a long file's hash
                if record.source.get("sha256") is None:  # failed early: the hash if it is done
                    record.source["sha256"] = hashing.finished()
                if record.source.get("sha256") is None:
                    record.source.pop("sha256", None)  # as for a download that failed

    def _refuse_writing_over(self, source: Path, stem: str) -> None:
        """A local input that lies where its own output goes would be replaced by it (the config's
        check covers the plain name; this one the ``-2`` names given to inputs sharing one)."""
        if parse_url(self.cfg.output)[0] != "file":
            return
        video = local_path(join_url(self.cfg.output, f"{stem}/{stem}.{self.cfg.encode.container}"))
        if os.path.realpath(video) == os.path.realpath(source):
            raise ConfigError(
                f"input {source.name} is where its own output would be written ({video})",
                hint="write outputs to another prefix",
            )

    def _process_source(
        self,
        source: Path,
        stem: str,
        record: InputRecord,
        out_store: Store,
        encoder: EncoderChoice,
        tracker: Tracker,
        t0: float,
        sha256: str | None,
        hashing: BackgroundHash | None,
    ) -> None:
        """The input, on local disk: reuse an earlier output, or process it, check it and upload it.

        ``sha256`` is None while ``hashing`` (a local input's) still runs: it is waited for only
        where it decides something (an earlier run's record to reuse, a chunked input's parts)
        and before the upload.
        """

        def digest() -> str:
            nonlocal sha256
            if sha256 is None:
                assert hashing is not None
                if not hashing.done:  # the heartbeat says so (the watchdog's stall test is for frames)
                    tracker.set_phase("hashing", f"sha256 of {source.name}")
                waited = time.perf_counter()
                sha256 = hashing.result()
                record.timings["hash_wait_s"] = round(time.perf_counter() - waited, 3)
                record.source["sha256"] = sha256
            return sha256

        info = probe(source)
        record.media_in = info.to_dict()
        done_url = join_url(self.cfg.output, output_record_key(stem))
        pixels = pixel_plan_for(self.cfg, info, encoder, self.registry)  # ConfigError before any work
        pixel_route = pixels.route
        decoding = decoding_rule(self.cfg, info, self.registry, pixels)
        earlier = self._done_record(out_store, done_url)
        if earlier is not None:  # the settings' fingerprint decides, and it holds the input's hash
            settings_print = fingerprint(self.cfg, digest(), 0, encoder, pixel_route, decoding)
            if self._reuse_verified_output(out_store, done_url, earlier, settings_print, record):
                report_page.never_raises(
                    "the report's images",
                    lambda: self.report.add_from_bucket(
                        out_store, self.cfg.output, record.index, record.outputs
                    ),
                )
                return
        chunks = plan_chunks(self.cfg, info, self.registry)
        if chunks is not None:
            digest()  # its parts carry the fingerprint: waited for before any frame is expected to move
        tracker.set_phase("processing")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        container = self.cfg.encode.container
        dest = self.work_dir / f"{stem}.{container}"
        chunked: ChunkedInput | None = None
        tap: PreviewTap
        if chunks is None:
            result = run_pipeline(
                self.cfg, source, dest, encoder, info=info, progress=_frames_moving(tracker),
                artifacts=self.work_dir / "artifacts", deadline=self.deadline, registry=self.registry,
            )  # fmt: skip
            out, record.stages, record.notes = result.info_out, result.stages, result.notes
            record.dropped_streams = result.dropped_streams
            assert result.preview is not None  # run_pipeline always catches the preview's frames
            tap = result.preview
            record.timings["process_s"] = result.seconds
        else:
            chunked = ChunkedInput(
                self.cfg, info, chunks, encoder, out_store, stem, self.work_dir, digest(),
                workers=self.options.workers or max(1, visible_gpus()), make_room=self._make_room,
                deadline=self.deadline,
                registry=self.registry,
            )  # fmt: skip
            done = chunked.run(
                dest, progress=_frames_moving(tracker),
                on_join=lambda parts: tracker.set_phase("joining", f"{parts} parts into {dest.name}"),
            )  # fmt: skip
            tap = chunked.tap
            out = verify_joined(dest, done.frames_out, done.streams, source=info, joined=done.joined)
            check_duration(info, out, dest)
            record.notes.extend(done.notes)
            record.dropped_streams = done.streams.dropped_dicts() if done.streams else []
            record.stages, record.timings["process_s"] = done.stages, done.seconds
            record.chunks = {
                "count": done.chunks,
                "chunk_frames": chunks[0].count,
                "reused": done.reused,
                "processed": done.processed,
            }
            record.notes.append(f"processed in {done.chunks} chunks; {done.reused} reused from the bucket")
            record.notes += list(pixels.notes)
        used = chunked.encoder if chunked is not None else encoder  # a faster preset, when one was chosen
        record.media_out, record.encode = out.to_dict(), used.to_dict()
        record.encode["pixels"] = pixels.to_dict()
        if chunked is not None and chunked.pace is not None:
            record.encode["keep_up"] = chunked.pace.to_dict()
            record.notes.append(f"encoders: {chunked.pace.reason}")

        # the hash of the bytes that were read, before anything of this input is kept or uploaded (the
        # report's images too): the done record's fingerprint holds it; a file written to meanwhile fails
        settings_print = fingerprint(self.cfg, digest(), 0, encoder, pixel_route, decoding)
        if hashing is not None:
            hashing.unchanged()
        labels = (
            f"source {info.width}x{info.height} {float(info.fps):.3g} fps",
            f"result {out.width}x{out.height} {float(out.fps):.3g} fps (before encoding)",
        )
        files = Files(
            source, dest, info.fps, out.fps, start_s=info.start_s
        )  # for frames of parts reused from the bucket
        tracker.set_phase("preview", "making preview.jpg")
        try:
            preview = make_preview(tap, self.work_dir / "preview.jpg", labels, files)
        except Exception as e:  # a courtesy image never fails an output that was made and checked
            log.warning("%s: no preview image (%s)", stem, e, exc_info=True)
            preview = None
        if preview is None:
            record.notes.append("no preview image: frames could not be read back")

        report_page.never_raises("the report's images", lambda: self._collect(record.index, preview))

        tracker.set_phase("uploading")
        t1 = time.perf_counter()
        mime = "video/x-matroska" if container == "mkv" else f"video/{container}"
        self._upload(out_store, record, "video", dest, f"{stem}/{stem}.{container}", mime, tracker)
        if preview is not None:
            self._upload(out_store, record, "preview", preview, f"{stem}/preview.jpg", "image/jpeg", tracker)
        for file in self.registry.files(self.cfg.stages):  # the files the stages wrote
            path = self.work_dir / "artifacts" / file.name
            if path.exists():
                self._upload(
                    out_store, record, file.kind, path, f"{stem}/{file.name}", file.content_type, tracker
                )
        done_record = {
            "fingerprint": settings_print,
            "outputs": record.outputs,
            "media_out": record.media_out,
            "dropped_streams": record.dropped_streams,
        }
        self._keep_previous(out_store, output_record_key(stem), record)
        out_store.write_bytes(done_url, json.dumps(done_record, indent=2).encode(), "application/json")
        if chunked is not None and not self.cfg.keep_parts:
            chunked.delete_parts()  # the final output is verified by the upload; parts are spent
        record.timings["upload_s"] = time.perf_counter() - t1
        record.timings["total_s"] = time.perf_counter() - t0

    @staticmethod
    def _done_record(store: Store, done_url: str) -> dict[str, Any] | None:
        """The record an earlier run wrote when it finished this input; None when there is none."""
        try:
            done = json.loads(store.read_bytes(done_url))
        except (ObjectNotFound, ValueError):
            return None
        return done if isinstance(done, dict) else None

    def _reuse_verified_output(
        self, store: Store, done_url: str, done: dict[str, Any], settings_print: str, record: InputRecord
    ) -> bool:
        """An earlier run finished this input with the same settings and its output is intact."""
        try:
            if done.get("fingerprint") != settings_print:
                return False
            for out in done["outputs"]:
                if not self._intact(store, out):
                    log.warning("%s in the bucket does not match its record; making it again", out["key"])
                    return False
        except (ObjectNotFound, ValueError, KeyError):
            return False
        record.outputs, record.media_out = done["outputs"], done.get("media_out")
        record.dropped_streams = done.get("dropped_streams") or []  # still not in the output
        record.notes.append("skipped: the final output of an earlier run is verified in the bucket")
        log.info("%s: already done in the bucket; skipped", done_url.rsplit("/", 2)[-2])
        return True

    def _intact(self, store: Store, out: dict[str, Any]) -> bool:
        """The object holds the bytes its record names: by the store's own sha256, or (a store that
        keeps none, such as local files) by reading it back; its size alone would pass bytes changed
        in place."""
        info = store.stat(out["url"])
        if info.size != out["size"] or (info.sha256 and info.sha256 != out["sha256"]):
            return False
        if info.sha256:
            return True
        try:
            if parse_url(out["url"])[0] == "file":  # hashed where it lies: no copy of a large output
                return bool(sha256_file(local_path(out["url"])) == out["sha256"])
            self.work_dir.mkdir(parents=True, exist_ok=True)
            check = self.work_dir / f".reuse-check-{PurePosixPath(out['key']).name}"
            try:
                return bool(store.download(out["url"], check).sha256 == out["sha256"])
            finally:
                check.unlink(missing_ok=True)
        except (OSError, BatchError) as e:  # unreadable, or no room for the check: make it again
            log.warning("could not read back %s (%s); making it again", out["key"], e)
            return False

    def _make_room(self, short: int) -> int:
        """Drop kept local copies of verified uploads, oldest first (the watchdog's spares)."""
        if not self.options.keep_outputs:
            return 0
        return disk.evict_oldest(state_file(self.state_dir, KEPT_OUTPUTS))(short)

    def _keep_previous(self, store: Store, key: str, record: InputRecord) -> None:
        """Copy an earlier run's object at ``key`` to previous/<this run's start>/<key> before it is replaced.

        A copy that fails fails the input: the earlier output is never overwritten unarchived.
        """
        stamp = archive_output(store, self.cfg.output, key, self.manifest.started_at)
        if stamp is None:
            return
        record.notes.append(f"an earlier run's {key} was kept as {PREVIOUS_OUTPUTS}/{stamp}/{key}")
        log.info("kept an earlier run's %s as %s/%s/%s", key, PREVIOUS_OUTPUTS, stamp, key)

    def _upload(
        self, store: Store, record: InputRecord, kind: str, local: Path, key: str, mime: str, tracker: Tracker
    ) -> None:
        """Upload one output (verified by the store), list it, keep a copy for the watchdog."""
        self._keep_previous(store, key, record)
        with tracker.transfer("upload", key) as progress:
            uploaded = store.upload(
                local, join_url(self.cfg.output, key), content_type=mime, progress=progress
            )
        record.outputs.append(output_entry(kind, key, uploaded))
        if self.options.keep_outputs:
            kept = state_file(self.state_dir, KEPT_OUTPUTS) / key
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(local, kept)


def _frames_moving(tracker: Tracker) -> Callable[[int, int], None]:
    """The tracker's frame count; the first count (ffmpeg is running) also starts loading what the
    end of the input needs (batch.job.warm_imports), on the core ffmpeg leaves."""

    def frames(done: int, total: int) -> None:
        load_in_background()
        tracker.frames(done, total)

    return frames


def run_job(config_url: str, options: RunOptions) -> int:
    """Load, run, and always leave a manifest somewhere. Returns the exit code."""
    try:
        cfg = load_config(config_url)
    except BatchError as e:
        return _fail_early(e, options, config=None, job_id="unknown")
    except Exception as e:
        log.exception("internal error while loading the config")
        return _fail_early(_internal(e), options, config=None, job_id="unknown")
    job_id = cfg.job_id or "unknown"
    where = {"output": cfg.output, "endpoint_url": cfg.storage.endpoint_url, "region": cfg.storage.region}
    try:
        return Runner(cfg, options).run()
    except BatchError as e:
        return _fail_early(e, options, config=resolved(cfg), job_id=job_id, **where)
    except Exception as e:
        log.exception("internal error")
        return _fail_early(_internal(e), options, config=resolved(cfg), job_id=job_id, **where)


def refuse_run(error: BatchError, config_url: str, options: RunOptions) -> int:
    """A run refused before it starts (a bad ``--shard``): the error once, and a failure manifest in
    the state dir with the config where it loads. Nothing is written under the output."""
    try:
        cfg = load_config(config_url)
    except Exception as e:  # the refusal is the manifest's error; the config's own is logged beside it
        log.error("the config does not load either: %s", e)
        return _fail_early(error, options, config=None, job_id="unknown")
    return _fail_early(error, options, config=resolved(cfg), job_id=cfg.job_id or "unknown")


def _internal(e: Exception) -> InternalError:
    return InternalError(f"{type(e).__name__}: {e}", hint="this is a bug; please report it with the log")


def _fail_early(
    error: BatchError,
    options: RunOptions,
    *,
    config: dict[str, Any] | None,
    job_id: str,
    output: str | None = None,
    endpoint_url: str | None = None,
    region: str | None = None,
) -> int:
    """The job could not run to its end: write a failure manifest where we can, say why once."""
    log.error("%s", error)
    shard = options.shard
    manifest = Manifest(
        job_id=job_id,
        config=config,
        dry_run=options.dry_run,
        shard=shard.to_dict() if shard else None,
        job_errors=[error],
    )
    data = manifest.to_json()
    if output and not isinstance(error, StorageError):
        try:
            store = open_url(output, StorageSettings(endpoint_url=endpoint_url, region=region))
            name = shard.manifest_name if shard else MANIFEST
            publish(data, store, output, name)
            report_page.never_raises(
                "report.html",
                lambda: report_page.publish(
                    store, output, json.loads(data), ReportData(), report_data_name(name)
                ),
            )
        except BatchError as e:
            log.error("could not upload the failure manifest: %s", e)
    state_dir = options.state_dir or Path("state") / job_id
    try:
        log.error("failure manifest written to %s", write_local(data, state_dir))
    except OSError as e:
        log.error("could not write the failure manifest in %s: %s", state_dir, e)
    return manifest.exit_code
