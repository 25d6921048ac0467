"""The batch: pull the config and inputs, run each input, upload, write the manifest.

One input failing never stops the others. The manifest is written on every
path that knows where to write it; when the output store itself cannot be
reached, it is written to the state dir and the exit code says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import FrameType

from batch.config import JobConfig, parse_config, resolved
from batch.errors import (
    BatchError,
    Cancelled,
    ConfigError,
    InternalError,
    ObjectNotFound,
    StorageError,
)
from batch.heartbeat import Heartbeat
from batch.manifest import InputRecord, Manifest, output_entry, publish, write_local
from batch.media.encoder import EncoderChoice, choose_encoder
from batch.media.probe import probe
from batch.pipeline import run_pipeline
from batch.progress import Tracker
from batch.storage import StorageSettings, Store, join_url, open_url, parse_url, redact_url

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


def load_config(url: str) -> JobConfig:
    """Read and validate a config from any storage URL. Raises ConfigError or StorageError."""
    shown = redact_url(url)
    try:
        text = open_url(url).read_bytes(url).decode("utf-8", errors="replace")
    except ObjectNotFound:
        raise ConfigError(
            f"config not found at {shown}", hint="check the --config path or CONFIG_URL"
        ) from None
    return parse_config(text, source=shown)


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
    """One folder name per input: its file stem, suffixed when two inputs share one."""
    seen: dict[str, int] = {}
    stems = []
    for item in urls:
        stem = PurePosixPath(parse_url(item)[2]).stem if isinstance(item, str) else "input"
        stem = stem or "input"
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return stems


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class _Cancel:
    """SIGTERM/SIGINT: finish cleanly, record the rest as cancelled."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _Cancel:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not the main thread (tests)
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.requested = True
        raise Cancelled(
            f"stopped by signal {signal.Signals(signum).name}", hint="run the job again to finish it"
        )

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


class Runner:
    def __init__(self, cfg: JobConfig, options: RunOptions) -> None:
        assert cfg.job_id
        self.cfg = cfg
        self.options = options
        self.settings = StorageSettings(endpoint_url=cfg.storage.endpoint_url, region=cfg.storage.region)
        self.state_dir = options.state_dir or Path("state") / cfg.job_id
        self.work_dir = self.state_dir / "work"
        self.manifest = Manifest(job_id=cfg.job_id, config=resolved(cfg), dry_run=options.dry_run)

    def run(self) -> int:
        out_store = open_url(self.cfg.output, self.settings)
        inputs = expand_inputs(self.cfg, self.settings)
        stems = output_stems(inputs)
        tracker = Tracker(self.cfg.job_id or "", len(inputs), log_every_s=self.cfg.limits.heartbeat_s)
        encoder = choose_encoder(self.cfg.encode)
        with (
            _Cancel() as cancel,
            Heartbeat(tracker, out_store, self.cfg.output, self.state_dir, self.cfg.limits.heartbeat_s),
        ):
            for index, (item, stem) in enumerate(zip(inputs, stems, strict=True), start=1):
                shown = redact_url(item) if isinstance(item, str) else None
                record = InputRecord(index=index, source={"url": shown})
                self.manifest.inputs.append(record)
                if isinstance(item, BatchError):
                    record.status, record.error = "failed", item
                    continue
                if cancel.requested:
                    record.status = "cancelled"
                    continue
                tracker.start_input(index, shown or "")
                try:
                    self._process(item, stem, record, out_store, encoder, tracker)
                    record.status = "succeeded"
                except Cancelled as e:
                    record.status, record.error = "cancelled", e
                except BatchError as e:
                    record.status, record.error = "failed", e
                    log.error("[%d/%d] %s: %s", index, len(inputs), shown, e)
                except Exception as e:  # a bug: record it, keep the other inputs going
                    log.exception("[%d/%d] internal error", index, len(inputs))
                    record.status = "failed"
                    record.error = InternalError(
                        f"{type(e).__name__}: {e}", hint="this is a bug; please report it"
                    )
                finally:
                    shutil.rmtree(self.work_dir, ignore_errors=True)
            tracker.set_phase("writing manifest")
            self._publish(out_store)
            tracker.set_phase(self.manifest.status)
        return self.manifest.exit_code

    def _publish(self, out_store: Store) -> None:
        write_local(self.manifest, self.state_dir)
        try:
            info = publish(self.manifest, out_store, self.cfg.output)
            log.info("manifest: %s (%s)", redact_url(info.url), self.manifest.status)
        except StorageError as e:
            self.manifest.job_errors.append(e)
            write_local(self.manifest, self.state_dir)
            log.error("could not upload the manifest (%s); kept at %s", e, self.state_dir / "manifest.json")

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
        if scheme == "file":
            source = Path(key)
            if not source.is_file():
                raise ObjectNotFound(f"input {url} does not exist", hint="check the path", url=url)
            sha256 = _sha256_file(source)
        else:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            source = self.work_dir / f"source{PurePosixPath(key).suffix or '.bin'}"
            sha256 = store.download(url, source).sha256
        record.source.update({"sha256": sha256, "size": source.stat().st_size})
        record.timings["download_s"] = time.perf_counter() - t0

        info = probe(source)
        record.media_in = info.to_dict()
        tracker.set_phase("processing")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        container = self.cfg.encode.container
        dest = self.work_dir / f"{stem}.{container}"
        result = run_pipeline(self.cfg, source, dest, encoder, info=info, progress=tracker.frames)
        record.media_out = result.info_out.to_dict()
        record.stages, record.encode, record.notes = result.stages, result.encode, result.notes
        record.timings["process_s"] = result.seconds

        tracker.set_phase("uploading")
        t1 = time.perf_counter()
        out_url = join_url(self.cfg.output, stem, f"{stem}.{container}")
        uploaded = out_store.upload(
            dest, out_url, content_type=f"video/{'x-matroska' if container == 'mkv' else container}"
        )
        record.outputs.append(output_entry("video", f"{stem}/{stem}.{container}", uploaded))
        record.timings["upload_s"] = time.perf_counter() - t1
        record.timings["total_s"] = time.perf_counter() - t0


def run_job(config_url: str, options: RunOptions) -> int:
    """Load, run, and always leave a manifest somewhere. Returns the exit code."""
    try:
        cfg = load_config(config_url)
    except BatchError as e:
        return _fail_early(e, options, config=None, job_id="unknown")
    try:
        return Runner(cfg, options).run()
    except Cancelled as e:
        return _fail_early(e, options, config=resolved(cfg), job_id=cfg.job_id or "unknown")
    except BatchError as e:
        return _fail_early(
            e, options, config=resolved(cfg), job_id=cfg.job_id or "unknown", output=cfg.output
        )


def _fail_early(
    error: BatchError, options: RunOptions, *, config: dict | None, job_id: str, output: str | None = None
) -> int:
    """The job could not start: write a failure manifest where we can, say why once."""
    log.error("%s", error)
    manifest = Manifest(job_id=job_id, config=config, dry_run=options.dry_run, job_errors=[error])
    state_dir = options.state_dir or Path("state") / job_id
    path = write_local(manifest, state_dir)
    if output and not isinstance(error, StorageError):
        with contextlib.suppress(BatchError):
            publish(manifest, open_url(output), output)
    log.error("failure manifest written to %s", path)
    return manifest.exit_code
