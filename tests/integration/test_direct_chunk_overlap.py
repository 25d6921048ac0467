"""A chunk that one ffmpeg transcodes starts while the part before it uploads (batch/job/chunks.py).

Parts of inputs without stages were made one after another: ffmpeg, then the part's upload and its
record, then the next ffmpeg, so a bucket's upload time (a part of a minute of 1080p is tens of MB)
was added to every chunk. The job here is real (real ffmpeg, the runner, a local output folder);
only the upload is slowed (a sleep before the real copy: no bucket is that slow on a loopback), so
the order of events shows. The output must be the one-pass output's frames, and never two
transcodes at once on one worker.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from clips import framemd5, make_clip

from batch.config import parse_config
from batch.job import chunks as chunks_module
from batch.job import pipeline
from batch.job.runner import Runner, RunOptions
from batch.storage.local import LocalStore

pytestmark = pytest.mark.integration

UPLOAD_DELAY_S = 0.6


def _job(tmp: Path, src: Path, chunk_s: float, stages: str = "[]") -> dict[str, Any]:
    cfg = parse_config(
        f"job_id: overlap\ninputs: [{src}]\noutput: {tmp}/out/\nstages: {stages}\n"
        f"encode: {{codec: ffv1, container: mkv}}\nlimits: {{chunk_s: {chunk_s}}}\n"
    )
    assert Runner(cfg, RunOptions(state_dir=tmp / "state", workers=1)).run() == 0
    manifest: dict[str, Any] = json.loads((tmp / "out" / "manifest.json").read_text())
    return manifest["inputs"][0]


@pytest.fixture
def timeline(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, float]]:
    """(event, what, time) for each transcode's start and end and each part's upload start and end."""
    events: list[tuple[str, str, float]] = []
    lock = threading.Lock()

    def note(event: str, what: str) -> None:
        with lock:
            events.append((event, what, time.monotonic()))

    real_upload, real_transcode = LocalStore.upload, pipeline._transcode

    def slow_upload(self: LocalStore, local: Path, url: str, *args: Any, **kwargs: Any) -> Any:
        if "/parts/" not in url or not url.endswith(".mkv"):
            return real_upload(self, local, url, *args, **kwargs)
        note("upload-start", Path(url).name)
        time.sleep(UPLOAD_DELAY_S)
        try:
            return real_upload(self, local, url, *args, **kwargs)
        finally:
            note("upload-end", Path(url).name)

    def noted_transcode(*args: Any, **kwargs: Any) -> int:
        what = f"start={kwargs.get('start', 0)}"
        note("transcode-start", what)
        try:
            return real_transcode(*args, **kwargs)
        finally:
            note("transcode-end", what)

    monkeypatch.setattr(LocalStore, "upload", slow_upload)
    monkeypatch.setattr(pipeline, "_transcode", noted_transcode)
    return events


def test_the_next_transcode_runs_while_the_part_before_uploads(
    tmp_path: Path, timeline: list[tuple[str, str, float]]
) -> None:
    src = make_clip(tmp_path / "src.mp4", size="160x96", frames=90, audio=True)
    entry = _job(tmp_path / "chunked", src, chunk_s=1)  # three parts of 30 frames
    assert entry["chunks"]["count"] == 3 and entry["media_out"]["frame_count"] == 90
    starts = [t for e, _, t in timeline if e == "transcode-start"]
    upload_ends = [t for e, w, t in timeline if e == "upload-end" and w.startswith("part-")]
    assert len(starts) == 3 and len(upload_ends) == 3
    # each later transcode began before the part before it had finished uploading
    assert starts[1] < upload_ends[0] and starts[2] < upload_ends[1]
    # and never two transcodes at once on the one worker (the gate)
    running = 0
    for event, _, _ in sorted(timeline, key=lambda e: e[2]):
        running += {"transcode-start": 1, "transcode-end": -1}.get(event, 0)
        assert running <= 1
    one_pass = _job(tmp_path / "one", src, chunk_s=60)
    assert "chunks" not in one_pass or not one_pass.get("chunks")
    chunked_out = tmp_path / "chunked" / "out" / "src" / "src.mkv"
    assert framemd5(chunked_out) == framemd5(tmp_path / "one" / "out" / "src" / "src.mkv")


def test_a_failed_upload_stops_the_transcode_beside_it_and_fails_the_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, timeline: list[tuple[str, str, float]]
) -> None:
    """The fault lands while the next chunk transcodes: the job must end, not hang or go on, and the
    chunk waiting for the gate meanwhile must not start an ffmpeg after it (found by the review)."""
    # parts slow enough to encode (640x360, x264 veryslow) that the next one is mid-transcode when the
    # upload fails and the one after waits for the gate
    src = make_clip(tmp_path / "src.mp4", size="640x360", frames=150, audio=False)
    real_upload = LocalStore.upload  # (the timeline's slow upload)
    failed_at: list[float] = []
    stopped_at: list[float] = []

    class NotedEvent(threading.Event):
        """The job's stop flag, noting when it is raised (the chunks' ``abort``)."""

        def set(self) -> None:
            stopped_at.append(time.monotonic())
            super().set()

    real_init = chunks_module.ChunkedInput.__init__

    def noting_init(self: chunks_module.ChunkedInput, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        self.abort = NotedEvent()

    monkeypatch.setattr(chunks_module.ChunkedInput, "__init__", noting_init)

    def failing(self: LocalStore, local: Path, url: str, *args: Any, **kwargs: Any) -> Any:
        if url.endswith("part-00000.mkv"):
            time.sleep(0.3)  # the next transcode is under way by now
            failed_at.append(time.monotonic())
            raise OSError(28, "No space left on device")
        return real_upload(self, local, url, *args, **kwargs)

    monkeypatch.setattr(LocalStore, "upload", failing)
    cfg = parse_config(
        f"job_id: overlap\ninputs: [{src}]\noutput: {tmp_path}/out/\nstages: []\n"
        "encode: {codec: libx264, preset: veryslow, container: mkv}\nlimits: {chunk_s: 1}\n"
    )
    started = time.monotonic()
    code = Runner(cfg, RunOptions(state_dir=tmp_path / "state", workers=1)).run()
    assert code != 0 and time.monotonic() - started < 60
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["inputs"][0]["status"] != "ok"
    assert not (tmp_path / "out" / "src" / "src.mkv").exists()
    starts = [t for e, _, t in timeline if e == "transcode-start"]
    assert failed_at and stopped_at and len(starts) >= 2  # the first part's and the one beside its upload
    # (a transcode that took the gate just before the flag rose may start a moment after it)
    assert all(t < stopped_at[0] + 0.15 for t in starts), "a transcode started after the job was stopped"
