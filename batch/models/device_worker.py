"""The device stage: one worker per device, its streams, pinned host buffers, frames uploaded once.

On CUDA each device has one :class:`DeviceWorker`: a thread that runs every
model call for that device, in the order submitted, whichever chunk worker
submits it (several chunk workers on one GPU share its queue, so their
batches do not compete for memory). It owns three streams:

* upload: source frames are copied into pinned host memory (the stage
  thread's numpy array, one memcpy) and from there to the device with
  ``non_blocking=True``, then converted to float;
* compute: waits for the upload's event, runs the model;
* download: waits for the compute's event, copies the uint8 (or uint16) result into
  pinned host memory with ``non_blocking=True`` and records a "ready" event.

The model call returns as soon as its work is queued: the frames it hands
back are :class:`HostFrame` objects whose bytes are read (``numpy()``) after
the ready event, so the copy back of one batch runs while the next batch
computes. A unit waits for the previous unit's compute before it returns,
so at most two units are in flight (memory stays bounded, and the ladder's
clock measures the device's pace, not the queueing).

Pinned buffers come from PyTorch's caching host allocator: a block is reused
once the copy that used it has completed and nothing refers to it (a
HostFrame's numpy array keeps its block alive).

On the CPU the same calls run synchronously in the calling thread: the
streams and events are no-ops, nothing is pinned, and results are plain
numpy arrays, bit-identical to a direct call.
"""

from __future__ import annotations

import collections
import contextlib
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch

if TYPE_CHECKING:
    from batch.media.yuv_rgb import YuvRgb

T = TypeVar("T")


class NullEvent:
    """A CPU event: everything already happened in order."""

    def record(self, stream: Any = None) -> None:
        return None

    def synchronize(self) -> None:
        return None

    def query(self) -> bool:
        return True


class NullStream:
    """A CPU stream: work runs when it is called."""

    def wait_event(self, event: Any) -> None:
        return None

    def synchronize(self) -> None:
        return None


class Streams:
    """Upload, compute and download streams of one device, and the events between them."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        if self.cuda:
            self.upload: Any = torch.cuda.Stream(device)  # type: ignore[no-untyped-call]
            self.compute: Any = torch.cuda.Stream(device)  # type: ignore[no-untyped-call]
            self.download: Any = torch.cuda.Stream(device)  # type: ignore[no-untyped-call]
        else:
            self.upload = self.compute = self.download = NullStream()

    def on(self, stream: Any) -> contextlib.AbstractContextManager[Any]:
        """Make ``stream`` current for the work in the block (nothing on the CPU)."""
        return torch.cuda.stream(stream) if self.cuda else contextlib.nullcontext()

    def event(self) -> Any:
        return torch.cuda.Event() if self.cuda else NullEvent()  # type: ignore[no-untyped-call]

    def mark(self, stream: Any) -> Any:
        """An event recorded now on ``stream``: work queued so far on it."""
        event = self.event()
        event.record(stream)
        return event

    def hand_over(self, tensors: list[torch.Tensor], src: Any, dst: Any) -> None:
        """``dst`` waits for what ``src`` queued so far; the tensors' memory is kept while ``dst`` reads.

        record_stream: memory allocated on ``src`` and freed while ``dst``
        still reads it would otherwise go back to ``src``'s pool too early.
        """
        if not self.cuda:
            return
        dst.wait_event(self.mark(src))
        for t in tensors:
            t.record_stream(dst)

    def host(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """A host buffer: pinned on CUDA (so copies are asynchronous), plain on the CPU."""
        return torch.empty(shape, dtype=dtype, pin_memory=self.cuda)


class HostFrame:
    """A uint8 or uint16 (H, W, 3) frame being copied back from the device: ``numpy()`` waits for its copy.

    uint16 frames travel as int16 (torch's uint16 has few kernels) and are viewed back as uint16.
    """

    __slots__ = ("_host", "_ready", "dtype")

    def __init__(self, host: torch.Tensor, ready: Any, dtype: Any = np.uint8) -> None:
        self._host = host
        self._ready = ready
        self.dtype = np.dtype(dtype)

    @property
    def pending(self) -> bool:
        return not bool(self._ready.query())

    def numpy(self) -> np.ndarray:
        self._ready.synchronize()
        array: np.ndarray = self._host.numpy()  # a view of the pinned block; it keeps the block alive
        return array if array.dtype == self.dtype else array.view(self.dtype)


class FrameCache:
    """Device tensors made from a source frame (uploaded, padded, encoded), kept for the next pair.

    Keyed by the frame object; an entry holds the frame itself, so its id is
    not reused while the entry lives.
    """

    def __init__(self) -> None:
        self._entries: OrderedDict[int, tuple[Any, dict[str, torch.Tensor]]] = OrderedDict()
        self.uploads = 0  # frames uploaded (for tests and the manifest: one per source frame)

    def get(self, frame: Any) -> dict[str, torch.Tensor] | None:
        entry = self._entries.get(id(frame))
        return None if entry is None else entry[1]

    def put(self, frame: Any, values: dict[str, torch.Tensor]) -> None:
        self._entries[id(frame)] = (frame, values)

    def keep_only(self, frames: list[Any]) -> None:
        """Forget every entry but these frames' (each kept one is cloned out of its batch's tensor)."""
        wanted = {id(f) for f in frames}
        for key in list(self._entries):
            if key not in wanted:
                del self._entries[key]
        for key, (frame, values) in self._entries.items():
            self._entries[key] = (frame, {k: v.clone() for k, v in values.items()})

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def upload(streams: Streams, frames: list[Any], device: torch.device) -> torch.Tensor:
    """(N, 3, H, W) float32 in [0, 1] on ``device`` from uint8 or uint16 RGB frames or tensors, on the
    upload stream.

    uint16 frames (rgb48le: sources above 8 bits) are scaled by 65535, uint8 by 255. The caller
    makes the compute stream wait (:meth:`Streams.hand_over`). On the CPU: the same operations as
    ``batch.models.device.to_tensor``, so the values are bit-identical.
    """
    if all(isinstance(f, torch.Tensor) for f in frames):  # from a model stage before: already on the device
        return torch.stack([f.to(device=device, dtype=torch.float32) for f in frames])
    # a tensor among arrays (a model stage's frames beside the source's anchors) joins them in their dtype
    host = next((f.dtype for f in frames if isinstance(f, (np.ndarray, HostFrame))), np.uint8)
    arrays = [np.ascontiguousarray(f) if isinstance(f, np.ndarray) else _as_array(f, host) for f in frames]
    deep = arrays[0].dtype == np.uint16
    if any((a.dtype == np.uint16) != deep for a in arrays):
        raise TypeError("a batch mixes uint8 and uint16 frames")
    if not streams.cuda:
        if deep:  # as to_tensor: widened on the host
            return torch.stack(
                [torch.from_numpy(a.astype(np.float32)).permute(2, 0, 1).div_(65535.0) for a in arrays]
            )
        return torch.stack([torch.from_numpy(a).permute(2, 0, 1).float().div_(255.0) for a in arrays])
    raw = _send(streams, [a.view(np.int16) if deep else a for a in arrays], device)
    with streams.on(streams.upload):
        from batch.models.yuv_rgb_torch import float_codes  # (the int16 bits back to 0..65535)

        return float_codes(raw).permute(0, 3, 1, 2).div_(65535.0 if deep else 255.0)


def fill_to(batch: torch.Tensor, size: int) -> torch.Tensor:
    """``batch`` with its last item repeated up to ``size`` items (a fixed shape for the model)."""
    short = size - len(batch)
    return batch if short <= 0 else torch.cat([batch, batch[-1:].expand(short, *batch.shape[1:])])


def _as_array(frame: Any, dtype: Any = np.uint8) -> np.ndarray:
    if isinstance(frame, torch.Tensor):  # a tensor on another device: through the host
        from batch.models.device import as_numpy

        return as_numpy(frame, dtype)
    if isinstance(frame, HostFrame):
        return frame.numpy()
    raise TypeError(f"a frame must be a numpy array or a tensor, not {type(frame).__name__}")


def download(streams: Streams, batch: torch.Tensor, dtype: Any = np.uint8) -> list[Any]:
    """(N, 3, H, W) in [0, 1] to N (H, W, 3) frames of ``dtype`` (uint8, or uint16 at 16-bit scale):
    HostFrames on CUDA, numpy arrays on the CPU.

    Quantised on the compute stream as ``batch.models.device.to_frames`` does;
    on CUDA copied on the download stream into pinned memory without waiting.
    """
    deep = np.dtype(dtype) == np.uint16
    if deep:
        q = batch.mul(65535.0).add_(0.5).clamp_(0, 65535).to(torch.int32).permute(0, 2, 3, 1).contiguous()
        if not streams.cuda:
            return list(q.cpu().numpy().astype(np.uint16))
        q = q.to(torch.int16)  # the low 16 bits: viewed back as uint16 on the host
    else:
        q = batch.mul(255.0).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
        if not streams.cuda:
            return list(q.cpu().numpy())
    return _copy_home(streams, q, np.uint16 if deep else np.uint8)


def _copy_home(streams: Streams, batch: torch.Tensor, dtype: Any) -> list[HostFrame]:
    """A device batch copied into pinned memory on the download stream, without waiting: a HostFrame each."""
    host = streams.host(tuple(batch.shape), batch.dtype)
    streams.hand_over([batch], streams.compute, streams.download)
    with streams.on(streams.download):
        host.copy_(batch, non_blocking=True)
    ready = streams.mark(streams.download)
    return [HostFrame(host[k], ready, dtype) for k in range(host.shape[0])]


@dataclass(frozen=True)
class Yuv420Frames:
    """Frames travel as flat 4:2:0 planes of this size, 8-bit yuv420p (uint8) or yuv420p10le (uint16)
    as ``conv.depth`` says; RGB is made and unmade on the device."""

    conv: YuvRgb
    width: int
    height: int

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.conv.sample_dtype

    @property
    def name(self) -> str:
        return self.conv.yuv_pix_fmt


def upload_yuv(streams: Streams, frames: list[Any], device: torch.device, fmt: Yuv420Frames) -> torch.Tensor:
    """(N, 3, H, W) float32 RGB in [0, 1] on ``device`` from flat 4:2:0 frames, on the upload stream.

    Half the bytes of rgb24 (rgb48le for 10 bits) cross the bus; the conversion (the source's matrix
    and range, zscale's chroma kernels: :mod:`batch.models.yuv_rgb_torch`) runs on the device and is
    rounded to RGB code values, so the model sees what ffmpeg's rgb24 / rgb48le would have given it
    (within one code value). 10-bit samples cross as int16 (every code fits).
    """
    from batch.models import yuv_rgb_torch

    arrays = [_flat_codes(f, fmt) for f in frames]
    flat = _send(streams, arrays, device) if streams.cuda else torch.from_numpy(np.stack(arrays))
    with streams.on(streams.upload):
        return yuv_rgb_torch.to_rgb(*yuv_rgb_torch.planes(flat, fmt.width, fmt.height), fmt.conv)


def _send(streams: Streams, arrays: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """Same-shape host arrays to ``device`` on the upload stream, through one pinned buffer (CUDA)."""
    staged = streams.host((len(arrays), *arrays[0].shape), torch.from_numpy(arrays[0]).dtype)
    for k, a in enumerate(arrays):
        staged[k].copy_(torch.from_numpy(a))  # one memcpy into pinned memory
    with streams.on(streams.upload):
        return staged.to(device, non_blocking=True)  # the host allocator keeps `staged` until the copy ends


def _flat_codes(frame: Any, fmt: Yuv420Frames) -> np.ndarray:
    """A frame as the flat array that crosses to the device: uint8, or uint16 viewed as int16."""
    array = frame.numpy() if isinstance(frame, HostFrame) else frame
    if not isinstance(array, np.ndarray) or array.dtype != fmt.dtype:
        what = f"{array.dtype} array" if isinstance(array, np.ndarray) else type(frame).__name__
        raise TypeError(f"a {fmt.name} frame must be a {fmt.dtype} numpy array, not a {what}")
    flat = np.ascontiguousarray(array).reshape(-1)
    return flat.view(np.int16) if flat.dtype == np.uint16 else flat


def download_yuv(streams: Streams, batch: torch.Tensor, fmt: Yuv420Frames) -> list[Any]:
    """(N, 3, H, W) RGB in [0, 1] to N flat 4:2:0 frames of ``fmt``, converted on the device.

    HostFrames on CUDA (the copy back of half the bytes of rgb24 / rgb48le runs on the download
    stream), numpy arrays on the CPU.
    """
    from batch.models import yuv_rgb_torch

    flat = yuv_rgb_torch.flatten(*yuv_rgb_torch.to_yuv(batch, fmt.conv))
    if not streams.cuda:
        host = flat.cpu().numpy()
        return list(host.view(np.uint16) if host.dtype == np.int16 else host)
    return _copy_home(streams, flat, fmt.dtype)


class DeviceWorker:
    """Runs model calls for one device in submission order: a thread on CUDA, the caller on the CPU."""

    def __init__(self, device: torch.device, threaded: bool | None = None) -> None:
        self.device = device
        self.streams = Streams(device)
        self.threaded = self.streams.cuda if threaded is None else threaded  # (tests thread on the CPU)
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.in_flight = 2  # units queued on the device at once: the one computing and the next
        self._units: collections.deque[Any] = collections.deque()  # compute events of the queued units
        if self.streams.cuda:
            torch.backends.cudnn.benchmark = True  # fixed shapes per job: let cuDNN pick its fastest kernels

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the device's thread, with its streams; its exception is raised here."""
        if not self.threaded:
            with torch.inference_mode():
                return fn()
        done: Future[T] = Future()
        self._start()
        self._queue.put((fn, done))
        try:
            return done.result()
        finally:
            # a raised exception's traceback holds this frame: with `done` in it, frame -> Future ->
            # exception -> traceback -> frame is a cycle that kept the failed call's tensors (every
            # activation of an out-of-memory batch) alive until the cyclic GC ran, so the retry at
            # half the batch ran out of memory too (an H200: RIFE fell from batch 64 to blend)
            del done

    def end_unit(self) -> None:
        """Called by a rung after queueing a unit: wait until fewer than ``in_flight`` units are queued
        (with two, for the previous unit's compute)."""
        self._units.append(self.streams.mark(self.streams.compute))
        while len(self._units) >= max(1, self.in_flight):
            try:  # the CPU's worker is shared by chunk threads: another may have taken it
                oldest = self._units.popleft()
            except IndexError:
                break
            oldest.synchronize()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                name = f"device-{self.device}"
                self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        if self.streams.cuda:
            torch.cuda.set_device(self.device)
        while (item := self._queue.get()) is not None:
            fn, done = item
            if not done.set_running_or_notify_cancel():
                continue
            try:
                with torch.inference_mode(), self.streams.on(self.streams.compute):
                    result = fn()
            except BaseException as e:  # handed to the caller, which decides (OOM halves the batch)
                done.set_exception(e)
                del e
            else:
                done.set_result(result)
                del result  # the caller owns it now (pinned blocks, device tensors): not this loop
            del fn, done, item

    def stop(self) -> None:
        """End the thread (tests); a later call starts a new one."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()


_WORKERS: dict[str, DeviceWorker] = {}
_WORKERS_LOCK = threading.Lock()


def worker_for(device: torch.device) -> DeviceWorker:
    """The process's worker for ``device`` (one per GPU; one for the CPU, which runs calls inline)."""
    key = str(device)
    with _WORKERS_LOCK:
        worker = _WORKERS.get(key)
        if worker is None:
            worker = _WORKERS[key] = DeviceWorker(device)
        return worker


def pending(frames: list[Any]) -> bool:
    """Whether any of these frames is still being copied back from a device."""
    return any(isinstance(f, HostFrame) for f in frames)


def iter_numpy(frames: list[Any]) -> Iterator[Any]:
    """HostFrames read back (each waits for its copy), everything else as it is."""
    for f in frames:
        yield f.numpy() if isinstance(f, HostFrame) else f
