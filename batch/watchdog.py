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

Its state lives in ``<state dir>/watchdog.json`` so a restarted watchdog
carries on and never shuts down twice. When the provider itself is stopping
the container (SIGTERM to the entrypoint), it makes sure the manifest is
uploaded and exits without calling the control plane.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from batch.errors import BatchError, ControlPlaneError, StorageError
from batch.instance.base import Action, Provider, stopping_line
from batch.manifest import Manifest
from batch.storage import StorageSettings, Store, join_url, open_url
from batch.verify import ObjectCheck, objects_in, problem_with, reupload

log = logging.getLogger("batch.watchdog")

PROVIDER_STOP_FLAG = "provider_stop"  # written by the entrypoint when it gets SIGTERM
RUNNER_EXIT_FILE = "runner.exit"  # {"code": int, "signal": str | None}, written by the entrypoint


class RunnerExited(BatchError):
    """The runner ended without a manifest in the bucket."""

    code = "runner_exited"


@dataclass
class WatchdogSettings:
    state_dir: Path
    provider: Provider
    output: str | None  # the job's output prefix; None when the config could not be read
    manifest_name: str = "manifest.json"  # manifest.shard-I-of-N.json for a shard
    job_id: str = "unknown"
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
    runner_pid: int | None = None  # None: the job runs elsewhere; wait for its manifest


@dataclass
class WatchState:
    """What the watchdog has done, kept on disk across restarts."""

    phase: str = "watching"  # watching | verifying | uploading | done
    started_at: float = field(default_factory=time.time)
    checks_done: int = 0
    objects: list[dict[str, Any]] = field(default_factory=list)
    shutdown: dict[str, Any] | None = None


class Watchdog:
    def __init__(self, settings: WatchdogSettings) -> None:
        self.s = settings
        self.path = settings.state_dir / "watchdog.json"
        self.state = self._load()

    # --- state on disk ----------------------------------------------------------

    def _load(self) -> WatchState:
        try:
            return WatchState(**json.loads(self.path.read_text()))
        except (OSError, ValueError, TypeError):
            return WatchState()

    def _save(self) -> None:
        self.s.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self.state), indent=2))
        tmp.replace(self.path)

    # --- the loop -------------------------------------------------------------------

    def run(self) -> int:
        """Watch until one shutdown case holds, act on it once. 0 unless the shutdown call failed.

        A bug in here must not leave the instance running: any unexpected
        exception still ends in a failure manifest and a shutdown.
        """
        if self.state.shutdown:
            log.info("shutdown already handled at %s; nothing more to do", self.state.shutdown.get("at"))
            return 0
        try:
            return self._watch()
        except Exception as e:
            log.exception("watchdog error")
            if self.state.shutdown:
                return 1
            return self._fail("watchdog_error", f"the watchdog failed: {type(e).__name__}: {e}")

    def _provider_stop_requested(self) -> bool:
        return (self.s.state_dir / PROVIDER_STOP_FLAG).exists()

    def _watch(self) -> int:
        self._save()
        while True:
            if self._provider_stop_requested():
                return self._provider_stopping()
            exited = self._runner_exit()
            if exited is None:  # still running
                overdue = self._stalled_or_over_budget()
                if overdue:
                    self._stop_runner()
                    return self._fail(*overdue)
            else:
                manifest = self._bucket_manifest()
                wrote_one = self.s.output is not None and self._runner_left_manifest()
                if manifest is None and self.s.runner_pid is not None and wrote_one:
                    manifest = self._wait_for_bucket_manifest()  # the runner wrote one: a read may just fail
                if manifest is not None:
                    return self._verify_and_shut_down(manifest)
                if self.s.runner_pid is not None:
                    return self._fail(*self._why_no_manifest(exited))
                if time.time() - self.state.started_at > self.s.max_runtime_s:
                    return self._fail("max_runtime_exceeded", "no manifest appeared within max_runtime_s")
            time.sleep(self.s.poll_s)

    # --- the runner ---------------------------------------------------------------------

    def _runner_exit(self) -> dict[str, Any] | None:
        """None while the runner runs; else its exit record (code may be None if unknown)."""
        if self.s.runner_pid is None:
            return {"code": None, "signal": None, "elsewhere": True}
        record_path = self.s.state_dir / RUNNER_EXIT_FILE
        if _pid_alive(self.s.runner_pid) and not record_path.exists():
            return None
        for _ in range(20):  # the entrypoint writes the record right after reaping
            try:
                return json.loads(record_path.read_text())
            except (OSError, ValueError):
                time.sleep(0.1)
        return {"code": None, "signal": "unknown (killed, or the entrypoint died too)"}

    def _stalled_or_over_budget(self) -> tuple[str, str] | None:
        now = time.time()
        if now - self.state.started_at > self.s.max_runtime_s:
            return "max_runtime_exceeded", f"the job ran past max_runtime_s={self.s.max_runtime_s:g}"
        status_path = self.s.state_dir / "status.json"
        try:
            # a status file older than this watchdog belongs to an earlier run
            beat_at = max(status_path.stat().st_mtime, self.state.started_at)
            status = json.loads(status_path.read_text())
        except (OSError, ValueError):
            beat_at, status = self.state.started_at, {}
        if now - beat_at > self.s.stall_s:
            return "stalled", f"no heartbeat for {now - beat_at:.0f} s (stall_s={self.s.stall_s:g})"
        progress_at = max(float(status.get("progress_at") or beat_at), self.state.started_at)
        if status.get("phase") == "processing" and now - progress_at > self.s.stall_s:
            return "stalled", f"no frame moved for {now - progress_at:.0f} s (stall_s={self.s.stall_s:g})"
        return None

    def _stop_runner(self) -> None:
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
        if code == 2 and self.s.output is None:
            return "config_invalid", "the config could not be read, so there is no output to write to"
        how = f"exit status {code}" if code is not None else f"signal {exited.get('signal')}"
        return "runner_exited_without_manifest", f"the runner ended ({how}) without a manifest in the bucket"

    # --- the bucket -------------------------------------------------------------------------

    def _store(self) -> Store | None:
        return open_url(self.s.output, self.s.storage) if self.s.output else None

    def _local_manifest(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.s.state_dir / "manifest.json").read_text())
        except (OSError, ValueError):
            return None

    def _bucket_manifest(self) -> dict[str, Any] | None:
        """This run's manifest from the bucket, or None (absent, stale, unreachable)."""
        store = self._store()
        if store is None or self.s.output is None:
            return None
        try:
            found = json.loads(store.read_bytes(join_url(self.s.output, self.s.manifest_name)))
        except (StorageError, ValueError):
            return None
        if self.s.runner_pid is None:
            return found  # a job started elsewhere: any manifest at the prefix is its manifest
        local = self._local_manifest()
        same = local is not None and all(
            local.get(k) == found.get(k) for k in ("job_id", "started_at", "finished_at")
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
        while time.monotonic() < deadline:
            if self._provider_stop_requested():
                return None
            time.sleep(min(2.0, self.s.poll_s * 2))
            manifest = self._bucket_manifest()
            if manifest is not None:
                return manifest
        return None

    def _verify_and_shut_down(self, manifest: dict[str, Any]) -> int:
        assert self.s.output
        store = open_url(self.s.output, self.s.storage)
        checks = objects_in(manifest, self.s.output)
        self.state.phase = "verifying"
        self._save()
        deadline = time.monotonic() + self.s.confirm * self.s.interval_s + self.s.upload_timeout_s
        while not all(c.passes >= self.s.confirm for c in checks):
            if self._provider_stop_requested():  # the provider is stopping us: call nothing
                return self._provider_stopping()
            if time.monotonic() > deadline:
                bad = [c for c in checks if c.passes < self.s.confirm]
                detail = "; ".join(f"{c.key}: {c.problem}" for c in bad)
                return self._shut_down(self.s.on_failure, "verification_failed", detail)
            try:
                self._check_round(store, checks)
            except StorageError as e:
                log.warning("bucket check failed (%s); trying again", e.message)
            if not all(c.passes >= self.s.confirm for c in checks):
                time.sleep(self.s.interval_s)
        shutil.rmtree(self.s.state_dir / "outputs", ignore_errors=True)
        if self._provider_stop_requested():
            return self._provider_stopping()
        action = self.s.on_success if manifest.get("status") == "succeeded" else self.s.on_failure
        reuploaded = sum(c.reuploads for c in checks)
        detail = f"{len(checks)} object(s) checked {self.s.confirm} times, {reuploaded} re-uploaded"
        return self._shut_down(action, "verified", detail)

    def _check_round(self, store: Store, checks: list[ObjectCheck]) -> None:
        for c in checks:
            if c.passes >= self.s.confirm:
                continue
            c.problem = problem_with(store, c)
            if c.problem is None:
                c.passes += 1
                continue
            log.warning("%s: %s", c.key, c.problem)
            cannot = reupload(store, c, self.s.state_dir / "outputs")
            if cannot:
                c.problem = f"{c.problem}; {cannot}"
        self.state.checks_done += 1
        self.state.objects = [c.to_dict() for c in checks]
        self._save()

    def _upload_manifest(self, data: bytes) -> bool:
        """Upload a manifest, retrying with backoff for upload_timeout_s. True when it landed."""
        store = self._store()
        if store is None or self.s.output is None:
            return False
        deadline = time.monotonic() + self.s.upload_timeout_s
        wait = 0.5
        while True:
            try:
                store.write_bytes(join_url(self.s.output, self.s.manifest_name), data, "application/json")
                return True
            except StorageError as e:
                if time.monotonic() + wait > deadline:
                    log.error("could not upload the manifest: %s", e.message)
                    return False
                log.warning("manifest upload failed (%s); retrying in %.1f s", e.message, wait)
                time.sleep(wait)
                wait = min(wait * 2, 10.0)

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
            log_tail=_log_tail(self.s.state_dir / "runner.log"),
        )
        s = self.s
        return Manifest(job_id=s.job_id, config=s.config, dry_run=s.dry_run, job_errors=[error]).to_json()

    def _fail(self, reason: str, detail: str) -> int:
        log.error("%s: %s", reason, detail)
        self.state.phase = "uploading"
        self._save()
        data = self._failure_manifest(reason, detail)
        if not self._upload_manifest(data):
            detail = f"{detail}; the failure manifest could not be uploaded"
            if self.s.output is not None:
                reason = "bucket_unreachable"
        return self._shut_down(self.s.on_failure, reason, detail)

    # --- shutting down -------------------------------------------------------------------------

    def _shut_down(self, action: Action, reason: str, detail: str) -> int:
        provider = self.s.provider
        self.state.shutdown = {
            "action": action,
            "reason": reason,
            "detail": detail,
            "provider": provider.name,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self.state.phase = "done"
        self._save()  # before the call: a restarted watchdog never calls twice
        log.warning(stopping_line(provider.name, action, reason))
        log.info("reason detail: %s", detail)
        code = 0
        if action == "keep" and provider.name != "local":
            self.state.shutdown["result"] = "kept running as configured"
        elif (why := provider.unsupported(action)) is not None:
            log.warning("provider %s cannot %s: %s", provider.name, action, why)
            self.state.shutdown["result"] = f"not supported: {why}"
        else:
            try:
                result = provider.shutdown(action, reason)
                self.state.shutdown["result"] = result.detail
            except ControlPlaneError as e:
                log.error("the control plane did not %s the instance: %s", action, e)
                self.state.shutdown["result"] = f"failed: {e.message}"
                code = 1
        self._save()
        return code

    def _provider_stopping(self) -> int:
        """The provider is stopping the container: make sure a manifest is up, call nothing."""
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
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self.state.phase = "done"
        self._save()
        log.warning("the provider is stopping the instance; no control-plane call (manifest: %s)", uploaded)
        return 0


def _pid_alive(pid: int) -> bool:
    """True while the process runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _log_tail(path: Path, lines: int = 40) -> str | None:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return None
