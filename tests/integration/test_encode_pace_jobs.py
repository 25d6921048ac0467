"""Encoders that keep up, through the runner: the first wave's decision, applied and recorded.

The stand-in stage (batch.stages.standin, no CPU) plays a fast model. Where a test needs a given
decision it replaces ``batch.job.chunks.decide`` (the measured figures on a shared 2-core VM are
noise); the decision's own rules are tested in tests/unit/test_encode_pace.py. Frames are checked
with ffprobe and by their luma: frame k of the source is a flat grey of 20 + 5k, so a dropped,
doubled or reordered frame shows.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clips import count_frames, framemd5

from batch.config import JobConfig, parse_config
from batch.job import chunks as chunks_module
from batch.job.encode_pace import PaceDecision, WaveFigures, decide
from batch.job.runner import Runner, RunOptions
from batch.stages.standin import STANDIN_REGISTRY, StandIn, StandInStage

pytestmark = pytest.mark.integration

FRAMES, W, H = 40, 64, 48
CHUNK_S = 10 / 30  # four chunks of 10 frames
# figures that pick a faster preset where allowed: the stages waited 90% of the time, every core busy
HEAVY = WaveFigures(
    workers=1, frames=10, wall_s=10.0, stages_s=10.0, write_wait_s=9.0, encode_s=10.0, cpu_s=10.0 * 64
)


@pytest.fixture(scope="module")
def ramp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ramp") / "ramp.mkv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
         f"color=c=black:s={W}x{H}:r=30,geq=lum='20+N*5':cb=128:cr=128",
         "-frames:v", str(FRAMES), "-c:v", "ffv1", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path


def job(tmp: Path, src: Path, encode: str, *, chunk_s: float = CHUNK_S, seconds: float = 0.0) -> JobConfig:
    text = f"job_id: pace\ninputs: [{src}]\noutput: {tmp}/out/\nencode: {encode}\n"
    cfg = parse_config(text + f"limits: {{chunk_s: {chunk_s}}}\n")
    return cfg.replace(stages=[StandInStage(batch=4, seconds=seconds)])


def run(cfg: JobConfig, tmp: Path, workers: int = 1) -> tuple[dict[str, Any], Path]:
    code = Runner(cfg, RunOptions(state_dir=tmp / "state", workers=workers), STANDIN_REGISTRY).run()
    manifest = json.loads((tmp / "out" / "manifest.json").read_text())
    assert code == 0, manifest
    (record,) = manifest["inputs"]
    out = tmp / "out" / "ramp" / f"ramp.{cfg.encode.container}"
    return record, out


def lumas(path: Path) -> np.ndarray:
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(-1, H * W).mean(axis=1)


def assert_every_frame_once_in_order(out: Path, ramp: Path) -> None:
    assert count_frames(out) == FRAMES
    means, source = lumas(out), lumas(ramp)
    assert len(means) == len(source) == FRAMES and np.all(np.diff(source) > 4)
    assert np.abs(means - source).max() < 2  # each frame where it belongs (frames differ by 5 or more)


def x264_subme(out: Path) -> list[str]:
    """The ``subme`` of each x264 settings SEI in the file: one per part (ultrafast 0, medium 7)."""
    return re.findall(rb"subme=(\d+)", out.read_bytes())  # type: ignore[return-value]


class Spy:
    """Stands in for ``decide``: records its arguments and returns ``answer`` (or the real decision)."""

    def __init__(self, answer: PaceDecision | None = None, figures: WaveFigures | None = None) -> None:
        self.answer, self.figures = answer, figures
        self.calls: list[tuple[WaveFigures, dict[str, Any]]] = []

    def __call__(self, wave: WaveFigures, **kw: Any) -> PaceDecision:
        self.calls.append((wave, kw))
        if self.answer is not None:
            return self.answer
        return decide(self.figures or wave, **kw)


def test_a_faster_preset_redoes_the_first_parts_so_every_part_has_it(
    ramp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = Spy(PaceDecision("preset", 2, "ultrafast", "test: the cores cannot keep up"))
    monkeypatch.setattr(chunks_module, "decide", spy)
    record, out = run(job(tmp_path, ramp, "{codec: libx264}"), tmp_path)  # no preset written: medium
    ((wave, kw),) = spy.calls
    assert wave.workers == 1 and wave.frames == 10 and wave.cpu_s > 0
    assert 0 <= wave.write_wait_s <= wave.stages_s <= wave.encode_s <= wave.wall_s
    assert kw["preset"] == "medium" and kw["may_change_preset"] is True and kw["chunks_left"] == 3
    assert record["encode"]["keep_up"]["action"] == "preset"
    assert record["encode"]["keep_up"]["preset"] == "ultrafast"
    assert any(n.startswith("encoders: test:") for n in record["notes"])
    assert [s.decode() for s in x264_subme(out)] == ["0"] * 4  # four parts, all ultrafast (none medium)
    assert_every_frame_once_in_order(out, ramp)
    assert record["media_out"]["frame_count"] == FRAMES
    assert abs(record["media_out"]["duration"] - FRAMES / 30) < 1 / 30 + 0.002


def test_a_preset_written_in_the_config_is_never_changed(
    ramp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = Spy(figures=HEAVY)
    monkeypatch.setattr(chunks_module, "decide", spy)
    record, out = run(job(tmp_path, ramp, "{codec: libx264, preset: veryslow}"), tmp_path)
    assert spy.calls[0][1]["may_change_preset"] is False
    assert record["encode"]["keep_up"]["preset"] == "veryslow"
    assert record["encode"]["keep_up"]["action"] != "preset"
    assert "preset is kept" in record["encode"]["keep_up"]["reason"]
    assert [s.decode() for s in x264_subme(out)] == ["10"] * 4  # veryslow, every part
    assert_every_frame_once_in_order(out, ramp)


def test_auto_preset_true_lets_a_written_preset_change(
    ramp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chunks_module, "decide", Spy(figures=HEAVY))
    record, out = run(job(tmp_path, ramp, "{codec: libx264, preset: veryslow, auto_preset: true}"), tmp_path)
    assert record["encode"]["keep_up"]["action"] == "preset"
    subme = {s.decode() for s in x264_subme(out)}
    assert len(subme) == 1 and subme != {"10"}  # one faster preset for every part
    assert_every_frame_once_in_order(out, ramp)


def test_parallel_encoders_keep_every_frame_in_order(
    ramp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chunks_module, "decide", Spy(PaceDecision("parallel", 3, "ultrafast", "test")))
    record, out = run(job(tmp_path, ramp, "{codec: libx264, preset: ultrafast}"), tmp_path)
    assert record["encode"]["keep_up"]["workers"] == 3
    assert record["chunks"]["count"] == 4 and record["chunks"]["processed"] == 4
    assert_every_frame_once_in_order(out, ramp)


def test_the_measured_decision_lands_in_the_manifest(ramp: Path, tmp_path: Path) -> None:
    record, out = run(job(tmp_path, ramp, "{codec: libx264, preset: ultrafast}"), tmp_path)
    pace = record["encode"]["keep_up"]
    assert pace["action"] in ("keep", "parallel", "preset") and pace["reason"]
    measured = pace["figures"]["measured"]
    assert measured["frames"] == 10 and measured["workers"] == 1 and measured["wall_s"] > 0
    assert 0 <= measured["write_wait_s"] <= measured["stages_s"] <= measured["encode_s"] <= measured["wall_s"]
    assert pace["figures"]["cores"] >= 1
    assert_every_frame_once_in_order(out, ramp)


def test_no_decision_for_one_pass_inputs_or_when_both_keys_are_off(ramp: Path, tmp_path: Path) -> None:
    record, out = run(
        job(tmp_path / "a", ramp, "{codec: libx264, preset: ultrafast}", chunk_s=60), tmp_path / "a"
    )
    assert "keep_up" not in record["encode"] and record["chunks"] is None
    off = "{codec: libx264, preset: ultrafast, auto_workers: false, auto_preset: false}"
    record, out = run(job(tmp_path / "b", ramp, off), tmp_path / "b")
    assert "keep_up" not in record["encode"] and record["chunks"]["count"] == 4
    assert_every_frame_once_in_order(out, ramp)


@pytest.mark.parametrize("workers", [1, 2])
def test_one_chunk_at_a_time_in_the_stages_of_each_worker(
    ramp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """The next chunk overlaps the previous one's encoder drain, never its stages."""
    lock, inside, most = threading.Lock(), [0], [0]
    real = StandIn.run

    def counted(self: StandIn, frames: Any) -> Any:
        first = True
        for frame in real(self, frames):
            if first:
                with lock:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                first = False
            yield frame
            time.sleep(0.002)
        with lock:
            inside[0] -= 1

    monkeypatch.setattr(StandIn, "run", counted)
    off = "{codec: ffv1, container: mkv, auto_workers: false}"
    _, out = run(job(tmp_path / "c", ramp, off, seconds=0.01), tmp_path / "c", workers=workers)
    assert most[0] == workers  # never more chunks in their stages than workers
    _, one_pass = run(job(tmp_path / "d", ramp, off, chunk_s=60), tmp_path / "d")
    assert framemd5(out) == framemd5(one_pass)  # lossless: the same frames, bit for bit
    assert count_frames(out) == FRAMES


def test_a_one_frame_last_chunk_and_an_odd_size_under_parallel_encoders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """23 frames of 63x47 in chunks of 10: the last chunk holds three frames (the fewest a part is
    made of: a tail of one or two joins the chunk before it); three encoders at once."""
    src = tmp_path / "odd.mkv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
         "color=c=black:s=63x47:r=30,geq=lum='20+N*9':cb=128:cr=128",
         "-frames:v", "23", "-c:v", "ffv1", "-pix_fmt", "yuv444p", str(src)],
        check=True,
    )  # fmt: skip
    monkeypatch.setattr(chunks_module, "decide", Spy(PaceDecision("parallel", 3, "ultrafast", "test")))
    cfg = job(tmp_path, src, "{codec: libx264, preset: ultrafast}")
    code = Runner(cfg, RunOptions(state_dir=tmp_path / "state"), STANDIN_REGISTRY).run()
    (record,) = json.loads((tmp_path / "out" / "manifest.json").read_text())["inputs"]
    assert code == 0 and record["chunks"]["count"] == 3 and record["encode"]["keep_up"]["workers"] == 3
    out = tmp_path / "out" / "odd" / "odd.mp4"
    assert count_frames(out) == 23
    grey = ["-f", "rawvideo", "-pix_fmt", "gray", "-"]
    a, b = (
        np.frombuffer(subprocess.run(["ffmpeg", "-v", "error", "-i", str(p), *grey], capture_output=True,
                                     check=True).stdout, np.uint8).reshape(23, -1).mean(axis=1)
        for p in (src, out)
    )  # fmt: skip
    assert np.abs(a - b).max() < 3 and np.all(np.diff(a) > 7)  # every frame once, in order


class Preempted(BaseException):
    """The instance goes away mid-job (not an error the runner could report)."""


class SameMachine(Spy):
    """Decides a faster preset whenever it may, as the same machine would on every run; else the real rule."""

    def __call__(self, wave: WaveFigures, **kw: Any) -> PaceDecision:
        self.calls.append((wave, kw))
        if kw["may_change_preset"]:
            return PaceDecision("preset", 1, "ultrafast", "test: the cores cannot keep up")
        return decide(HEAVY, **kw)


def preempted_after(monkeypatch: pytest.MonkeyPatch, parts: int) -> None:
    """The instance dies when the job starts making part number ``parts + 1`` (counting redone parts),
    once the parts before it are done: with stages the next part starts while the one before still
    drains its encoder and uploads, and on a loaded machine that one had not always finished (and been
    recorded) when the "instance" died, which made the rerun's reuse count depend on timing."""
    made, finished = [0], [0]
    turn = threading.Condition()
    real = chunks_module.ChunkedInput._make

    def make(self: chunks_module.ChunkedInput, *a: Any, **k: Any) -> Any:
        with turn:
            made[0] += 1
            mine = made[0]
        if mine > parts:
            with turn:
                turn.wait_for(lambda: finished[0] >= parts, timeout=120)
            raise Preempted
        try:
            return real(self, *a, **k)
        finally:
            with turn:
                finished[0] += 1
                turn.notify_all()

    monkeypatch.setattr(chunks_module.ChunkedInput, "_make", make)


def first_run_dies(cfg: JobConfig, tmp: Path, monkeypatch: pytest.MonkeyPatch, parts: int) -> None:
    with monkeypatch.context() as m:
        preempted_after(m, parts)
        with contextlib.suppress(Preempted):
            Runner(cfg, RunOptions(state_dir=tmp / "state-1", workers=1), STANDIN_REGISTRY).run()


def test_a_rerun_after_a_preset_switch_carries_on_with_that_preset_and_reuses_its_parts(
    ramp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run 1: the wave at medium, a switch to ultrafast, two parts remade, then the instance dies."""
    spy = SameMachine()
    monkeypatch.setattr(chunks_module, "decide", spy)
    cfg = job(tmp_path, ramp, "{codec: libx264}")  # no preset written: it may change
    first_run_dies(cfg, tmp_path, monkeypatch, parts=3)  # the wave's part, then 2 at ultrafast
    spy.calls.clear()
    record, out = run(cfg, tmp_path)
    assert record["chunks"]["reused"] == 2 and record["chunks"]["processed"] == 2
    assert all(kw["may_change_preset"] is False for _, kw in spy.calls)  # the earlier parts fix it
    assert [s.decode() for s in x264_subme(out)] == ["0"] * 4  # one preset, the one switched to
    assert_every_frame_once_in_order(out, ramp)


def test_a_rerun_that_reuses_parts_never_switches_preset_under_them(
    ramp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run 1 dies right after its wave's part (medium) landed; run 2 reuses it, so medium it stays."""
    spy = SameMachine()
    monkeypatch.setattr(chunks_module, "decide", spy)
    cfg = job(tmp_path, ramp, "{codec: libx264}")
    first_run_dies(cfg, tmp_path, monkeypatch, parts=1)
    spy.calls.clear()
    record, out = run(cfg, tmp_path)
    assert record["chunks"]["reused"] == 1
    assert spy.calls and all(kw["may_change_preset"] is False for _, kw in spy.calls)
    assert record["encode"]["keep_up"]["action"] != "preset"
    # the reason names what fixed the preset (it had said "set in the config", which it was not)
    assert all(kw["preset_kept"] == "the parts an earlier run made use it" for _, kw in spy.calls)
    assert [s.decode() for s in x264_subme(out)] == ["7"] * 4  # medium in every part, none mixed
    assert_every_frame_once_in_order(out, ramp)
