"""A worker pinned to GPU k encodes with NVENC on GPU k (``-gpu k``), not every worker on GPU 0.

No GPU here: the NVENC choice is built by hand (its probe cannot pass on this machine)
and the visible GPUs come from CUDA_VISIBLE_DEVICES, as on a rented instance.
"""

from __future__ import annotations

import threading

import pytest

from batch.config import EncodeConfig
from batch.media.encoder import EncoderChoice, _args, choose_encoder
from batch.models import gpu_slot


def nvenc() -> EncoderChoice:
    args, pix_fmt = _args("h264_nvenc", EncodeConfig(codec="h264_nvenc"))
    return EncoderChoice(codec="h264_nvenc", pix_fmt=pix_fmt, args=args, requested="auto")


@pytest.mark.parametrize(("visible", "want"), [("0,1", [0, 1, 0]), ("3", [0, 0, 0]), ("", [0, 0, 0])])
def test_each_worker_gets_its_own_gpu(monkeypatch: pytest.MonkeyPatch, visible: str, want: list[int]) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    gpu_slot.visible_gpus.cache_clear()
    slots = gpu_slot.GpuSlots()
    got: list[int] = []

    def worker() -> None:
        slots.claim()
        args = nvenc().on_gpu(gpu_slot.gpu_index(slots)).args
        assert args.count("-gpu") == 1
        got.append(int(args[args.index("-gpu") + 1]))

    for _ in want:  # one after the other: slot order is claim order
        t = threading.Thread(target=worker)
        t.start()
        t.join()
    gpu_slot.visible_gpus.cache_clear()
    assert got == want


def test_a_cpu_encoder_is_left_alone() -> None:
    x264 = choose_encoder(EncodeConfig(codec="libx264"))
    assert x264.on_gpu(1) is x264 and "-gpu" not in x264.args
