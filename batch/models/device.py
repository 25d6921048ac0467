"""Devices, precisions, out-of-memory handling and frame conversion for model rungs.

Frames between stages are numpy uint8 (H, W, 3) RGB, or, between two model
stages on one device, float tensors (3, H, W) in [0, 1] that never leave the
device: the chain converts to uint8 once, at its end.

Test hook (documented in docs/models.md): ``BATCH_TEST_OOM=interpolate:4``
makes the interpolate stage's model rungs raise a simulated CUDA
out-of-memory error for every call of batch size 4 or more (for upscale, the
number is the tile side: ``upscale:256``). It exists so the ladders' halving
and fallback can be tested without a GPU.
"""

from __future__ import annotations

import gc
import os
from typing import Any

import numpy as np
import torch

from batch.errors import RungUnavailable, says_out_of_memory
from batch.models import gpu_slot


class SimulatedOutOfMemory(RuntimeError):
    """What BATCH_TEST_OOM raises; handled exactly like torch.cuda.OutOfMemoryError."""


def inject_oom(stage: str, size: int) -> None:
    spec = os.environ.get("BATCH_TEST_OOM", "")
    name, _, limit = spec.partition(":")
    if name == stage and limit.isdigit() and size >= int(limit):
        raise SimulatedOutOfMemory(f"CUDA out of memory (simulated by BATCH_TEST_OOM={spec})")


def is_oom(error: BaseException) -> bool:
    if isinstance(error, (torch.cuda.OutOfMemoryError, SimulatedOutOfMemory)):
        return True
    return says_out_of_memory(error)


def free_cache(device: torch.device) -> None:
    """After a model call, once its tensors are gone (call it outside the ``except`` block).

    Nothing to do: PyTorch's caching allocator already releases this
    device's cached blocks and retries before it raises out of memory, and
    ``torch.cuda.empty_cache()`` would empty every device's cache, making the
    other GPUs' workers allocate (and synchronise) again. Kept as the one
    place to change should a per-device release appear.
    """
    return None


def release_after_oom(device: torch.device) -> None:
    """After an out-of-memory error, outside the ``except`` block: :func:`free_cache`, and on a GPU a
    collection of reference cycles.

    A failed call's tensors live as long as its exception's traceback; a cycle through that
    traceback (one in the device worker held an out-of-memory batch's activations through every
    retry at half the batch) would keep them until the cyclic GC happened to run. The collection
    holds the GIL ~0.1 s, so it runs only here, never after a call that succeeded.
    """
    free_cache(device)
    if device.type != "cpu":
        gc.collect()


def memory_note(device: torch.device) -> str:
    """What the device's memory holds, for an out-of-memory event (CUDA; '' elsewhere): taken while
    the failed call's exception, and so its tensors, are still alive.

    In the manifest's events, so a rung that fell through (seen on an H200 under a 6 GiB cap: RIFE
    halved from 64 to 1 and the ladder went on to blend) says whether its own tensors, the
    allocator's cache or another process held the memory.
    """
    if device.type != "cuda":
        return ""
    try:
        free, total = torch.cuda.mem_get_info(device)
        allocated = torch.cuda.memory_allocated(device)
        reserved = torch.cuda.memory_reserved(device)
    except Exception:  # a broken context: the event stands without the figures
        return ""
    gib = 2**30
    return (
        f" (allocated {allocated / gib:.2f} GiB, reserved {reserved / gib:.2f} GiB, "
        f"free {free / gib:.2f} of {total / gib:.2f} GiB)"
    )


def pick_device(kind: str, slots: gpu_slot.GpuSlots | None = None) -> torch.device:
    """``cuda`` (this worker's GPU in ``slots``, the process's by default) or ``cpu``.

    Raises RungUnavailable without CUDA.
    """
    if kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RungUnavailable("no CUDA device is visible (torch.cuda.is_available() is False)")
    slot = (gpu_slot.SLOTS if slots is None else slots).index()
    device = torch.device("cuda", slot % torch.cuda.device_count())
    torch.cuda.set_device(device)  # per thread: libraries that allocate on "the current device" follow
    return device


def pick_dtype(precision: str, device: torch.device, *, half: bool = True, bf16: bool = True) -> torch.dtype:
    """fp32 on the CPU; on CUDA fp16, else bf16 where the model supports them."""
    if device.type == "cpu" or precision == "fp32":
        return torch.float32
    if precision == "bf16" or (precision == "auto" and not half and bf16):
        if not bf16:
            raise RungUnavailable("precision bf16 asked for, but this model does not support it")
        return torch.bfloat16
    if precision in ("fp16", "auto") and half:
        return torch.float16
    if precision == "fp16":
        raise RungUnavailable("precision fp16 asked for, but this model does not support it")
    return torch.float32


def placement(
    device: torch.device, dtype: torch.dtype, keep_on_device: bool, frames: Any = "uint8"
) -> dict[str, str]:
    """Where a model rung runs and what it hands on (``frames``: the numpy dtype), for the manifest."""
    return {
        "device": str(device),
        "dtype": str(dtype).removeprefix("torch."),
        "hands_on": f"float tensors on {device}" if keep_on_device else str(np.dtype(frames)),
    }


def to_tensor(frame: Any, device: torch.device) -> torch.Tensor:
    """(3, H, W) float32 in [0, 1] on ``device``, from uint8 or uint16 RGB or a tensor already made.

    uint16 frames (rgb48le: 10- and 12-bit sources) are scaled by 65535, so the model sees the
    same [0, 1] signal with the source's finer steps.
    """
    if isinstance(frame, torch.Tensor):
        return frame.to(device=device, dtype=torch.float32)
    arr = np.ascontiguousarray(frame)
    if arr.dtype == np.uint16:  # torch's uint16 has few kernels: widen on the host
        return (
            torch.from_numpy(arr.astype(np.float32))
            .to(device, non_blocking=True)
            .permute(2, 0, 1)
            .div_(65535.0)
        )
    t = torch.from_numpy(arr).to(device, non_blocking=True)
    return t.permute(2, 0, 1).float().div_(255.0)


def frame_dtype(frame: Any, default: Any = np.uint8) -> Any:
    """The numpy dtype frames go back out as: the input's (an array or a HostFrame), or ``default``
    for a device tensor."""
    from batch.models.device_worker import HostFrame

    return frame.dtype if isinstance(frame, (np.ndarray, HostFrame)) else default


def to_uint8(batch: torch.Tensor) -> list[np.ndarray]:
    """(N, 3, H, W) in [0, 1] to N uint8 (H, W, 3) arrays: quantised on the device, one copy back."""
    q = batch.mul(255.0).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu()
    return list(q.numpy())


def to_frames(batch: torch.Tensor, dtype: Any = np.uint8) -> list[np.ndarray]:
    """(N, 3, H, W) in [0, 1] to N (H, W, 3) arrays of ``dtype`` (uint8, or uint16 at 16-bit scale)."""
    if np.dtype(dtype) != np.uint16:
        return to_uint8(batch)
    q = batch.mul(65535.0).add_(0.5).clamp_(0, 65535).to(torch.int32).permute(0, 2, 3, 1).contiguous().cpu()
    return list(q.numpy().astype(np.uint16))


def as_numpy(frame: Any, dtype: Any = np.uint8) -> np.ndarray:
    """RGB for a consumer that is not a model stage: a tensor becomes ``dtype``, an array stays as it
    is, a HostFrame waits for its copy back (in the dtype it was made for)."""
    from batch.models.device_worker import HostFrame

    if isinstance(frame, torch.Tensor):
        return to_frames(frame.unsqueeze(0), dtype)[0]
    if isinstance(frame, HostFrame):
        return frame.numpy()
    return frame
