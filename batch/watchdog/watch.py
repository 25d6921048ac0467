"""The watchdog: decides when and why the instance shuts down, after checking the bucket.

It shuts down in exactly these cases (see docs/watchdog.md):

1. the runner exited and its manifest is in the bucket, and every object it
   lists passed ``confirm`` checks ``interval`` seconds apart (an object
   missing or wrong is uploaded again from the local copy first);
2. the runner exited without a manifest in the bucket: a failure manifest
   (exit status, log tail) is uploaded, then it shuts down;
3. no heartbeat, or no frame moved, for ``stall_s``: the runner is stopped
   (SIGTERM, then SIGKILL), then as in 2;
4. the job ran past ``max_runtime_s``: as in 3.

Its state lives in ``<state dir>/watchdog.json``. A shutdown is recorded as
decided, then requested before each provider call and confirmed after it
(batch.watchdog.shutdown), so a restarted watchdog carries on a shutdown that was
started and never repeats one that was confirmed. Whatever raises in here,
a bug included, still ends in a shutdown whose reason says what failed.
When the provider itself is stopping the container (SIGTERM to the
entrypoint), it makes sure the manifest is uploaded and exits without
calling the control plane.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from batch import console, faults
from batch.contracts import (
    KEPT_OUTPUTS,
    MANIFEST,
    PROVIDER_STOP_FLAG,
    RUNNER_EXIT,
    RUNNER_LOG,
    STATUS,
    UNPUBLISHED_MANIFEST,
    WATCHDOG_STATE,
    manifest_url,
    report_data_name,
    state_file,
)
from batch.errors import BatchError, StorageError, UploadVerificationFailed
from batch.job.manifest import Manifest, publish
from batch.providers.base import Action, Provider
from batch.retry import RetryPolicy, log_before_sleep, retrying
from batch.storage import StorageSettings, Store, open_url
from batch.watchdog import shutdown
from batch.watchdog.life_sign import LifeSign
from batch.watchdog.supervisor_news import SupervisorNews
from batch.watchdog.supervisor_news import pid_alive as _pid_alive
from batch.watchdog.verify import ObjectCheck, manifest_check, objects_in, problem_with, reupload

log = logging.getLogger("batch.watchdog.watch")

# The phases whose progress the heartbeat shows, and what moves in each. Transfers are left to their
# SDKs' own timeouts and retries (a server-side copy of a large earlier output shows no bytes), the
# hash and the preview to the heartbeat and max_runtime_s.
STALL_PHASES = {"processing": "frame moved", "joining": "end of the join"}

RUNNER_EXIT_FILE = RUNNER_EXIT  # kept for callers of the old name
# A failure manifest's upload: 0.5 s, doubled up to 10 s, until the watchdog's upload_timeout_s.
MANIFEST_UPLOAD = RetryPolicy(attempts=None, base_wait_s=0.5, max_wait_s=10.0, jitter=False)
# The verdict's report.html may take this long (its writes retry) before the stop goes on without it.
REPORT_BUDGET_S = 30.0
# runner.exit read again while the entrypoint writes it, right after reaping: 20 reads 0.1 s apart.
RECORD_REREAD = RetryPolicy(attempts=20, base_wait_s=0.1, max_wait_s=0.1, jitter=False)


class RunnerExited(BatchError):
    """The runner ended without a manifest in the bucket."""

    code = "runner_exited"


@dataclass
class WatchdogSettings:
    state_dir: Path
    provider: Provider
    output: str | None  # the job's output prefix; None when the config could not be read
    manifest_name: str = MANIFEST  # manifest.shard-I-of-N.json for a shard
    job_id: str = "unknown"
    launch_id: str | None = None  # this container start's id: only a manifest with it is this run's
    config: dict[str, Any] | None = None
    storage: StorageSettings = field(default_factory=StorageSettings)
    on_success: Action = "destroy"
    on_failure: Action = "stop"
    dry_run: bool = False
    confirm: int = 3
    interval_s: float = 5.0
    stall_s: float = 900.0
    max_runtime_s: float = 21600.0
    poll_s: float = 1.0
    grace_s: float = 20.0  # SIGTERM -> SIGKILL
    upload_timeout_s: float = 120.0  # how long to keep trying a failure manifest
    shutdown_budget_s: float = shutdown.DEFAULT_BUDGET_S  # how long to keep asking the provider
    runner_pid: int | None = None  # None: the job runs elsewhere; -1: ours, pid not known yet
    settings_error: str | None = None  # why the settings are a fallback (config unreadable, a bug)
    news: SupervisorNews | None = None  # PID 1's word on the runner, by pipe (supervised runs)
    beat_fd: int | None = None  # PID 1's pipe for the watch loop's sign of life (batch.watchdog.life_sign)
    shard: dict[str, Any] | None = None  # {"index", "count", "run_id"} when this instance runs a shard


@dataclass
class WatchState:
    """What the watchdog has done, kept on disk across restarts."""

    phase: str = "watching"  # watching | verifying | uploading | done
    started_at: float = field(default_factory=time.time)
    # CLOCK_MONOTONIC is one clock for every process of a boot: budgets survive a
    # restarted watchdog and ignore wall-clock jumps (NTP, a suspended VM)
    started_mono: float = field(default_factory=time.monotonic)
    boot_id: str | None = field(default_factory=lambda: _boot_id())
    checks_done: int = 0
    objects: list[dict[str, Any]] = field(default_factory=list)
    # a manifest already at --manifest-url when the watchdog started belongs to an earlier run
    stale_manifest: dict[str, Any] | None = None
    shutdown: dict[str, Any] | None = None
    launch_id: str | None = None  # whose state this is: another launch's is not carried on


class Watchdog:
    def __init__(self, settings: WatchdogSettings) -> None:
        self.s = settings
        self.path = state_file(settings.state_dir, WATCHDOG_STATE)
        self.state = self._load()
        now = time.monotonic()
        self._beat: tuple[bytes | None, float] = (None, now)  # last status.json bytes seen, and when
        self._progress: tuple[Any, float] = (None, now)  # last (input, frames_done) seen, and when
        self._published: dict[str, Any] | None = None  # the manifest in the bucket the verdict is about
        self._manifest_bytes: dict[int, bytes] = {}  # id() of a manifest read -> the bytes it was read from
        self._life = LifeSign(settings.beat_fd)  # beats while the loop watches, then says it is finishing

    # --- state on disk ----------------------------------------------------------

    def _load(self) -> WatchState:
        try:
            state = WatchState(**json.loads(self.path.read_text()))
        except (OSError, ValueError, TypeError):
            return WatchState(launch_id=self.s.launch_id)
        if self.s.launch_id and state.launch_id != self.s.launch_id:
            log.warning("%s is another launch's (%s); starting afresh", self.path, state.launch_id)
            return WatchState(launch_id=self.s.launch_id)
        if state.shutdown is not None and not (
            shutdown.well_formed(state.shutdown) or shutdown.is_final(state.shutdown)
        ):
            log.error("malformed shutdown record in %s (%r); deciding afresh", self.path, state.shutdown)
            state.shutdown = None
        return state

    def _save(self) -> None:
        faults.state_write()
        self.s.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self.state), indent=2))
        tmp.replace(self.path)

    def _try_save(self) -> None:
        """Save when the disk allows: nothing the watchdog must do waits on a write."""
        try:
            self._save()
        except Exception as e:
            log.warning("could not save %s (%s); carrying on", self.path, e)

    # --- the loop -------------------------------------------------------------------

    def run(self) -> int:
        """Watch until one shutdown case holds, act on it once. 0 unless the shutdown was not confirmed.

        Nothing in here may leave the instance running: an exception in the
        watch loop goes to the failure path, one in the failure path to the
        last resort (a shutdown that needs no storage and no disk), and a
        shutdown that was started by an earlier watchdog is carried on.
        """
        record = self.state.shutdown
        if shutdown.is_final(record):
            assert record is not None
            log.info("shutdown already %s at %s; nothing more to do", record.get("status"), record.get("at"))
            return 0
        if record:
            log.warning("carrying on the shutdown decided at %s (%s)", record.get("at"), record.get("status"))
            return self._carry_out()
        try:
            faults.bug("watch")
            return self._watch()
        except Exception as e:
            log.exception("watchdog error")
            if self.state.shutdown:
                return self._carry_out()
            with contextlib.suppress(Exception):  # it cannot be watched any more: let it write its manifest
                self._stop_runner()
            return self._fail("watchdog_error", f"the watchdog failed: {type(e).__name__}: {e}")

    def _provider_stop_requested(self) -> bool:
        return state_file(self.s.state_dir, PROVIDER_STOP_FLAG).exists()

    def _watch(self) -> int:
        self._try_save()
        # The verdict's page needs jinja2 and the report modules (~0.1 s of imports): loaded now, while
        # the job runs, not between the job's end and the stop. Any failure here only means the verdict
        # imports them itself later (and reports what is wrong then).
        threading.Thread(target=_preload_report, name="report-preload", daemon=True).start()
        if self.s.settings_error and self.s.runner_pid is None:
            return self._fail("watchdog_error", self.s.settings_error)
        if self.s.runner_pid is None and self.state.stale_manifest is None and not self.s.launch_id:
            self._note_stale_manifest()
        while True:
            self._life.beat()
            if self._provider_stop_requested():
                return self._provider_stopping()
            exited = self._runner_exit()
            if exited is None:  # still running
                overdue = self._stalled_or_over_budget()
                if overdue:
                    self._stop_runner()
                    return self._fail(*overdue)
            else:
                if self.s.runner_pid is not None:  # every way on from here ends the watch
                    self._life.finishing()
                manifest = self._bucket_manifest()
                wrote_one = self.s.output is not None and self._runner_left_manifest()
                if manifest is None and self.s.runner_pid is not None and wrote_one:
                    manifest = self._wait_for_bucket_manifest()  # the runner wrote one: a read may just fail
                if manifest is None and self.s.runner_pid is not None:
                    manifest = self._publish_for_runner()
                if manifest is not None:
                    return self._verify_and_shut_down(manifest)
                if self.s.runner_pid is not None:
                    return self._fail(*self._why_no_manifest(exited))
                if self._elapsed() > self.s.max_runtime_s:
                    return self._fail("max_runtime_exceeded", "no manifest appeared within max_runtime_s")
            if self.s.news is not None:
                self.s.news.wait(self.s.poll_s)  # the runner's exit wakes the loop at once
            else:
                time.sleep(self.s.poll_s)

    def _elapsed(self) -> float:
        """Seconds since this watchdog first started (restarts included), on the monotonic clock."""
        if self.state.boot_id is not None and self.state.boot_id == _boot_id():
            return time.monotonic() - self.state.started_mono
        return time.time() - self.state.started_at  # another boot: only the wall clock spans it

    # --- the runner ---------------------------------------------------------------------

    def _runner_exit(self) -> dict[str, Any] | None:
        """None while the runner runs; else its exit record (code may be None if unknown)."""
        if self.s.runner_pid is None:
            return {"code": None, "signal": None, "elsewhere": True}
        news = self.s.news
        if news is not None:
            if news.exit is not None:
                return news.exit
            if self.s.runner_pid <= 0 and news.pid is not None:
                self.s.runner_pid = news.pid
        record_path = state_file(self.s.state_dir, RUNNER_EXIT)
        if self.s.runner_pid <= 0 and not record_path.exists():
            # pid unknown (no pid file, no word yet): running while PID 1 lives and says nothing
            if news is not None and news.supervisor_alive():
                return None
        elif _pid_alive(self.s.runner_pid) and not record_path.exists():
            return None
        try:  # the entrypoint writes the record right after reaping
            for attempt in retrying(RECORD_REREAD, retry_on=lambda e: isinstance(e, OSError | ValueError)):
                with attempt:
                    record: dict[str, Any] = json.loads(record_path.read_text())
                    return record
        except (OSError, ValueError):
            pass
        return {"code": None, "signal": "unknown (killed, or the entrypoint died too)"}

    def _stalled_or_over_budget(self) -> tuple[str, str] | None:
        """Both measured on the monotonic clock: a wall-clock jump neither fires nor hides them.

        A beat is a change of ``status.json``'s bytes (each beat stamps a new
        ``updated_at``); progress is a change of the input or its frame count.
        Both are timed from when this watchdog saw the change, so the runner's
        clock and the file's mtime play no part.
        """
        if self._elapsed() > self.s.max_runtime_s:
            return "max_runtime_exceeded", f"the job ran past max_runtime_s={self.s.max_runtime_s:g}"
        now = time.monotonic()
        try:
            raw: bytes | None = state_file(self.s.state_dir, STATUS).read_bytes()
            status = json.loads(raw or b"{}")
        except (OSError, ValueError):
            raw, status = None, {}
        if raw is not None and raw != self._beat[0]:
            self._beat = (raw, now)
        moved = tuple(status.get(k) for k in ("input_index", "frames_done", "phase", "progress_at"))
        if moved != self._progress[0]:
            self._progress = (moved, now)
        if now - self._beat[1] > self.s.stall_s:
            return "stalled", f"no heartbeat for {now - self._beat[1]:.0f} s (stall_s={self.s.stall_s:g})"
        # a heartbeat comes from its own thread: a main thread stuck in a step whose progress shows
        # (frames; a join, which must end within stall_s) is caught by the lack of it
        phase = status.get("phase")
        if phase in STALL_PHASES and now - self._progress[1] > self.s.stall_s:
            waited, what = now - self._progress[1], STALL_PHASES[phase]
            return "stalled", f"no {what} for {waited:.0f} s in phase {phase} (stall_s={self.s.stall_s:g})"
        return None

    def _stop_runner(self) -> None:
        self._life.finishing()  # the watch is over: PID 1 stops listening for beats
        pid = self.s.runner_pid
        if pid is None or not _pid_alive(pid):
            return
        log.warning("stopping the runner (pid %d): SIGTERM", pid)
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.s.grace_s
        while time.monotonic() < deadline and _pid_alive(pid):
            time.sleep(0.2)
        if _pid_alive(pid):
            log.warning("the runner ignored SIGTERM for %g s: SIGKILL", self.s.grace_s)
            _signal(pid, signal.SIGKILL)
            for _ in range(50):
                if not _pid_alive(pid):
                    break
                time.sleep(0.1)

    def _why_no_manifest(self, exited: dict[str, Any]) -> tuple[str, str]:
        code = exited.get("code")
        if self.s.settings_error and self.s.output is None and code != 2:
            return "watchdog_error", f"{self.s.settings_error}; the upload could not be verified"
        if code == 2 and self.s.output is None:
            why = f" ({self.s.settings_error})" if self.s.settings_error else ""
            return "config_invalid", f"the config could not be read, so there is no output to write to{why}"
        how = f"exit status {code}" if code is not None else f"signal {exited.get('signal')}"
        return "runner_exited_without_manifest", f"the runner ended ({how}) without a manifest in the bucket"

    # --- the bucket -------------------------------------------------------------------------

    def _store(self) -> Store | None:
        return open_url(self.s.output, self.s.storage) if self.s.output else None

    def _local_manifest(self, name: str = MANIFEST) -> dict[str, Any] | None:
        try:
            found = json.loads(state_file(self.s.state_dir, name).read_text())
        except (OSError, ValueError):
            return None
        return found if isinstance(found, dict) else None

    def _this_run(self, manifest: dict[str, Any] | None) -> bool:
        """The manifest was written by this run (its run id, else its job id and start)."""
        if manifest is None:
            return False
        if self.s.launch_id:
            return manifest.get("launch_id") == self.s.launch_id
        return manifest.get("job_id") == self.s.job_id

    def _read_bucket_manifest(self) -> dict[str, Any] | None:
        store = self._store()
        if store is None or self.s.output is None:
            return None
        try:
            data = store.read_bytes(manifest_url(self.s.output, self.s.manifest_name))
            found = json.loads(data)
        except (StorageError, ValueError):
            return None
        if not isinstance(found, dict):
            return None
        self._manifest_bytes = {id(found): data}  # the one verified is checked byte for byte
        return found

    def _note_stale_manifest(self) -> None:
        """Remember the manifest already at --manifest-url: an earlier run's, not the one awaited."""
        found = self._read_bucket_manifest()
        if found is not None:
            self.state.stale_manifest = _identity(found)
            log.info(
                "a manifest from an earlier run is at the prefix (%s); waiting for a new one",
                found.get("started_at"),
            )
            self._try_save()

    def _bucket_manifest(self) -> dict[str, Any] | None:
        """This run's manifest from the bucket, or None (absent, stale, unreachable)."""
        found = self._read_bucket_manifest()
        if found is None:
            return None
        if self.s.launch_id:  # only this launch's manifest; no local copy needed (a full disk)
            return found if found.get("launch_id") == self.s.launch_id else None
        if self.s.runner_pid is None:  # a job started elsewhere
            return None if _identity(found) == self.state.stale_manifest else found
        local = self._local_manifest()
        same = local is not None and all(
            local.get(k) == found.get(k) for k in ("job_id", "launch_id", "started_at", "finished_at")
        )
        return found if same else None

    def _runner_left_manifest(self) -> bool:
        """The runner's local manifest says it reached the bucket (no storage error of its own)."""
        local = self._local_manifest()
        if local is None or local.get("job_id") != self.s.job_id:
            return False
        return not any(
            str(e.get("type", "")).startswith(("storage", "credentials")) for e in local.get("errors") or []
        )

    def _wait_for_bucket_manifest(self) -> dict[str, Any] | None:
        """Keep reading for upload_timeout_s: an unreachable bucket is not a missing manifest."""
        deadline = time.monotonic() + self.s.upload_timeout_s
        wait = self.s.upload_timeout_s
        log.info("the runner wrote its manifest; reading the bucket for it for up to %g s", wait)
        while time.monotonic() < deadline:
            if self._provider_stop_requested():
                return None
            time.sleep(min(2.0, self.s.poll_s * 2))
            manifest = self._bucket_manifest()
            if manifest is not None:
                return manifest
        return None

    def _publish_for_runner(self) -> dict[str, Any] | None:
        """The runner could not publish its manifest (a bucket outage at the end): publish it now.

        The job's outputs may all be in the bucket; a brief outage at the
        last write must not turn a succeeded job into a failed one. The
        manifest is then verified like any other.
        """
        pending = self._local_manifest(UNPUBLISHED_MANIFEST)
        note = "published by the watchdog: the runner's upload failed"
        if not self._this_run(pending):
            # published, but not in the bucket now (deleted, or replaced by bytes that are no manifest):
            # its local copy is put up again
            pending = self._local_manifest(MANIFEST)
            note = "published again by the watchdog: the runner's was gone from the bucket, or unreadable"
        if not self._this_run(pending) or self.s.output is None:
            return None
        assert pending is not None
        pending.setdefault("watchdog", {})["note"] = note
        data = (json.dumps(pending, indent=2) + "\n").encode()
        if not self._upload_manifest(data):
            return None
        log.info("published the runner's manifest for it (%s)", pending.get("status"))
        self._manifest_bytes = {id(pending): data}  # verified byte for byte like one the runner put up
        return pending

    def _verify_and_shut_down(self, manifest: dict[str, Any]) -> int:
        self._life.finishing()  # the watch is over: PID 1 stops listening for beats
        assert self.s.output
        self._published = manifest
        store = open_url(self.s.output, self.s.storage)
        checks = objects_in(manifest, self.s.output)
        data = self._manifest_bytes.get(id(manifest))
        if data is not None:  # the manifest too: replaced or deleted after the runner's end, it is put back
            url = manifest_url(self.s.output, self.s.manifest_name)  # (first: an output's failed upload
            checks.insert(0, manifest_check(url, self.s.manifest_name, data))  # ends the round early)
        self.state.phase = "verifying"
        self._try_save()
        deadline = time.monotonic() + self.s.confirm * self.s.interval_s + self.s.upload_timeout_s
        line = console.StatusLine(sys.stderr, console.progress_mode(sys.stderr))
        log.info(
            "verifying %d object(s) in the bucket: %d checks %g s apart before the shutdown",
            len(checks), self.s.confirm, self.s.interval_s,
        )  # fmt: skip
        while not all(c.passes >= self.s.confirm for c in checks):
            if self._provider_stop_requested():  # the provider is stopping us: call nothing
                return self._provider_stopping()
            if time.monotonic() > deadline:
                # objects that passed every check there was time for are not failed (a large local
                # output's read-back can outlast the rounds): only one whose last check found a problem
                bad = [c for c in checks if c.passes < self.s.confirm and c.problem is not None]
                if not bad:
                    break
                detail = "; ".join(f"{c.key}: {c.problem}" for c in bad)
                self._amend_as_failed(manifest, detail)
                return self._shut_down(self.s.on_failure, "verification_failed", detail)
            try:
                self._check_round(store, checks)
            except StorageError as e:
                log.warning("bucket check failed (%s); trying again", e.message)
            done = min(c.passes for c in checks)
            passed = sum(c.problem is None for c in checks)
            log.info(
                "check round %d: %d of %d object(s) as uploaded (%d of %d checks done)",
                self.state.checks_done, passed, len(checks), done, self.s.confirm,
            )  # fmt: skip
            if not all(c.passes >= self.s.confirm for c in checks):
                console.countdown(self.s.interval_s, "watchdog: next bucket check", line)
        shutil.rmtree(state_file(self.s.state_dir, KEPT_OUTPUTS), ignore_errors=True)
        if self._provider_stop_requested():
            return self._provider_stopping()
        action = self.s.on_success if manifest.get("status") == "succeeded" else self.s.on_failure
        reuploaded = sum(c.reuploads for c in checks)
        done = min((c.passes for c in checks), default=self.s.confirm)
        times = (
            f"{self.s.confirm} times"
            if done >= self.s.confirm
            else f"{done} of {self.s.confirm} times in time"
        )
        detail = f"{len(checks)} object(s) checked {times}, {reuploaded} re-uploaded"
        return self._shut_down(action, "verified", detail)

    def _amend_as_failed(self, manifest: dict[str, Any], detail: str) -> None:
        """The bucket's manifest stops saying "succeeded" for objects that are not there intact (its
        status, exit code and errors had stayed as the runner wrote them). Best effort: the stop
        goes on whatever the bucket does."""
        error = UploadVerificationFailed(
            f"the watchdog could not confirm the upload: {detail}",
            hint="the outputs named are missing or wrong in the bucket; run the job again to redo them",
        )
        amended = dict(
            manifest, status="failed", exit_code=max(int(manifest.get("exit_code") or 0), error.exit_code)
        )
        amended["errors"] = [*(manifest.get("errors") or []), error.to_dict()]
        note = "amended by the watchdog: the upload was not verified"
        amended["watchdog"] = {**(manifest.get("watchdog") or {}), "note": note}  # (the original: unchanged)
        if self._upload_manifest((json.dumps(amended, indent=2) + "\n").encode()):
            self._published = amended

    def _check_round(self, store: Store, checks: list[ObjectCheck]) -> None:
        for c in checks:
            if c.passes >= self.s.confirm:
                continue
            c.problem = problem_with(store, c)
            if c.problem is None:
                c.passes += 1
                continue
            log.warning("%s: %s", c.key, c.problem)
            cannot = reupload(store, c, state_file(self.s.state_dir, KEPT_OUTPUTS))
            if cannot:
                c.problem = f"{c.problem}; {cannot}"
        self.state.checks_done += 1
        self.state.objects = [c.to_dict() for c in checks]
        self._try_save()

    def _upload_manifest(self, data: bytes) -> bool:
        """Publish a manifest (the one there is archived first), retrying with backoff for upload_timeout_s.

        True when it landed. Never raises: a store that cannot even be
        opened (a bad URL, an SDK bug) is a manifest that did not land.
        """
        loop = retrying(
            MANIFEST_UPLOAD,
            retry_on=lambda e: isinstance(e, StorageError),
            deadline=time.monotonic() + self.s.upload_timeout_s,
            before_sleep=log_before_sleep(log, "the manifest upload"),
        )
        try:
            for attempt in loop:
                with attempt:
                    store = self._store()
                    if store is None or self.s.output is None:
                        return False
                    publish(data, store, self.s.output, self.s.manifest_name)
                    self._merge_shards(store)
                    return True
        except Exception as e:
            said = e.message if isinstance(e, BatchError) else f"{type(e).__name__}: {e}"
            log.error("could not upload the manifest: %s", said)
        return False

    def _merge_shards(self, store: Store) -> None:
        """A shard's manifest put up here may be the last one in: merge, or the run has none."""
        shard = self.s.shard
        if not shard or self.s.output is None:
            return
        try:
            from batch.job.shards import Shard, merge_if_complete

            said = merge_if_complete(
                store, self.s.output, Shard(shard["index"], shard["count"]), self.s.job_id
            )
            log.info("merged manifest.json: %s", said)
        except Exception as e:  # the shard's own manifest is up; the merge is the next shard's to retry
            log.error("could not merge the shard manifests: %s", e)

    def _failure_manifest(self, reason: str, detail: str) -> bytes:
        """The runner's own manifest if it left one, else one written here."""
        local = self._local_manifest()
        exited = self._runner_exit() or {}
        if local is not None and local.get("job_id") == self.s.job_id:
            local.setdefault("watchdog", {})["note"] = f"uploaded by the watchdog: {detail}"
            return (json.dumps(local, indent=2) + "\n").encode()
        error = RunnerExited(
            detail,
            hint="see log_tail; run the job again to redo it",
            reason=reason,
            exit_code=exited.get("code"),
            signal=exited.get("signal"),
            log_tail=_log_tail(state_file(self.s.state_dir, RUNNER_LOG)),
        )
        s = self.s
        manifest = Manifest(
            job_id=s.job_id, config=s.config, dry_run=s.dry_run, shard=s.shard, job_errors=[error]
        )
        if s.launch_id:
            manifest.launch_id = s.launch_id
        return manifest.to_json()

    def _fail(self, reason: str, detail: str) -> int:
        """Leave a failure manifest if the bucket takes it, then shut down whatever happened."""
        self._life.finishing()  # the watch is over: PID 1 stops listening for beats
        log.error("%s: %s", reason, detail)
        self.state.phase = "uploading"
        self._try_save()
        try:
            faults.bug("fail")
            data = self._failure_manifest(reason, detail)
            landed = self._upload_manifest(data)
            if landed:
                self._published = json.loads(data)
        except Exception as e:  # a bug in the failure path: the shutdown still happens
            log.exception("the failure manifest could not be made")
            detail = f"{detail}; the failure path failed too: {type(e).__name__}: {e}"
            landed = False
        if not landed:
            detail = f"{detail}; the failure manifest could not be uploaded"
            if self.s.output is not None and reason != "watchdog_error":
                reason = "bucket_unreachable"
        return self._shut_down(self.s.on_failure, reason, detail)

    # --- shutting down -------------------------------------------------------------------------

    def _shut_down(self, action: Action, reason: str, detail: str) -> int:
        self.state.shutdown = self.state.shutdown or {}
        shutdown.decide(self.state.shutdown, self.s.provider.name, action, reason, detail)
        self._try_save()  # the decision first: a watchdog that dies on the page still stops the instance
        self._report_verdict(self.state.shutdown)
        return self._carry_out()

    def _report_verdict(self, record: dict[str, Any]) -> None:
        """The verdict onto report.html, within REPORT_BUDGET_S; whatever happens, the stop goes on.

        Only for a manifest that is in the bucket (a verdict on an earlier run's page would mislead).
        """
        manifest, output = self._published, self.s.output
        if manifest is None or output is None:
            return
        shard = self.s.shard or {}
        verdict = {
            k: str(record[k]) for k in ("provider", "action", "reason", "detail", "at") if record.get(k)
        }
        if shard:
            verdict["shard"] = f"{shard.get('index')}/{shard.get('count')}"
        name = report_data_name(self.s.manifest_name)

        def write() -> None:
            try:  # imported here: a broken jinja2 must not keep the watchdog from starting
                from batch.report import page as report_page

                store = self._store()
                if store is not None:
                    report_page.add_verdict(store, output, manifest, verdict, name)
            except Exception as e:
                log.warning("report.html: the verdict not added (%s: %s); carrying on", type(e).__name__, e)

        worker = threading.Thread(target=write, name="report", daemon=True)
        worker.start()
        worker.join(REPORT_BUDGET_S)
        if worker.is_alive():
            log.warning("report.html: not written within %g s; stopping without it", REPORT_BUDGET_S)

    def _carry_out(self) -> int:
        """Ask the provider until it confirms (see batch.watchdog.shutdown); a restart carries this on."""
        self._life.finishing()  # the watch is over: PID 1 stops listening for beats
        record = self.state.shutdown
        assert record is not None
        self.state.phase = "done"
        log.warning(shutdown.stopping_line(record["provider"], record["action"], record["reason"]))
        log.info("reason detail: %s", record.get("detail"))
        return shutdown.carry_out(self.s.provider, record, self._save, budget_s=self.s.shutdown_budget_s)

    def _provider_stopping(self) -> int:
        """The provider is stopping the container: make sure a manifest is up, call nothing."""
        self._life.finishing()  # the watch is over: PID 1 stops listening for beats
        pid = self.s.runner_pid
        deadline = time.monotonic() + self.s.grace_s
        while pid is not None and _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        uploaded = self._bucket_manifest() is not None
        if not uploaded:
            data = self._failure_manifest("provider_stopping", "the provider stopped the job")
            uploaded = self._upload_manifest(data)
        self.state.shutdown = {
            "action": "none",
            "reason": "provider_stopping",
            "detail": f"the provider is stopping the instance; manifest in bucket: {uploaded}",
            "provider": self.s.provider.name,
            "at": shutdown.utc(),
            "status": "provider_stopping",
        }
        self.state.phase = "done"
        self._try_save()
        log.warning("the provider is stopping the instance; no control-plane call (manifest: %s)", uploaded)
        return 0


def _identity(manifest: dict[str, Any]) -> dict[str, Any]:
    return {k: manifest.get(k) for k in ("job_id", "launch_id", "started_at", "finished_at")}


def _boot_id() -> str | None:
    """This boot's id: monotonic times from another boot cannot be compared."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _signal(pid: int, sig: int) -> None:
    if pid <= 0:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _log_tail(path: Path, lines: int = 40) -> str | None:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return None


def _preload_report() -> None:
    with contextlib.suppress(Exception):
        # the page imports render (and jinja2) only when it renders: both are loaded here
        from batch.report import page, render  # noqa: F401
