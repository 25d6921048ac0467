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
