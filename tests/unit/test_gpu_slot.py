"""Worker threads get distinct GPU slots (batch.models.gpu_slot), as the chunk scheduler hands them out."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from batch.models import gpu_slot


def test_each_worker_thread_claims_its_own_slot() -> None:
    gpu_slot.reset()
    seen: dict[str, int] = {}
    barrier = threading.Barrier(3)

    def work(_: int) -> None:
        barrier.wait()  # all three threads alive at once, so each task runs on its own thread
        seen[threading.current_thread().name] = gpu_slot.index()

    with ThreadPoolExecutor(max_workers=3, initializer=gpu_slot.claim) as pool:
        list(pool.map(work, range(3)))
    assert sorted(seen.values()) == [0, 1, 2]
    assert gpu_slot.index() == 0  # the main thread claimed none


def test_own_slots_number_apart_from_the_process_slots() -> None:
    mine = gpu_slot.GpuSlots()
    gpu_slot.reset()
    gpu_slot.claim()  # the main thread claims slot 0 of the process's numbering
    try:
        seen: list[int] = []
        lock = threading.Lock()
        barrier = threading.Barrier(4)

        def work(_: int) -> None:
            barrier.wait()
            with lock:
                seen.append(mine.index())

        with ThreadPoolExecutor(max_workers=4, initializer=mine.claim) as pool:
            list(pool.map(work, range(4)))
        assert sorted(seen) == [0, 1, 2, 3]  # not shifted by the process's claim
        mine.reset()
        mine.claim()
        assert mine.index() == 0 and gpu_slot.SLOTS.index() == 0
        assert gpu_slot.index() == gpu_slot.SLOTS.index()
    finally:
        gpu_slot.SLOTS._local.__dict__.clear()  # the main thread back to "claimed none"
