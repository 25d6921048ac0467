"""batch.models.loaded.ModelCache: one load per key, concurrent callers wait for it, own caches stay apart."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import torch

from batch.models import loaded


def test_a_key_is_loaded_once_however_many_threads_ask() -> None:
    cache = loaded.ModelCache()
    calls: list[str] = []

    def load() -> object:
        calls.append("a")
        time.sleep(0.05)  # the other threads arrive while this load runs
        return object()

    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda _: cache.cached(("a",), load), range(8)))
    assert len(calls) == 1 and all(g is got[0] for g in got)
    assert ("a",) in cache and len(cache) == 1


def test_a_slow_load_does_not_hold_up_another_key() -> None:
    cache = loaded.ModelCache()
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(5)
        return "slow"

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(cache.cached, ("slow",), slow)
        assert started.wait(5)
        assert cache.cached(("fast",), lambda: "fast") == "fast"  # not blocked by the slow load
        release.set()
        assert pending.result(5) == "slow"


def test_own_caches_are_apart_from_the_process_cache() -> None:
    mine = loaded.ModelCache()
    mine.cached(("only-mine",), lambda: 1)
    assert ("only-mine",) not in loaded.MODELS
    assert not mine or len(mine) == 1  # an empty cache is falsy: callers compare with None, never `or`
    assert loaded.ModelCache().__len__() == 0 and not loaded.ModelCache()
    mine.clear()
    assert len(mine) == 0


def test_on_device_keeps_the_cpu_fp32_base_and_caches_other_copies() -> None:
    cache = loaded.ModelCache()
    base = torch.nn.Linear(2, 2)
    assert cache.on_device(("m",), base, torch.device("cpu")) is base
    half = cache.on_device(("m",), base, torch.device("cpu"), torch.float16)
    assert half is not base and half.weight.dtype == torch.float16
    assert cache.on_device(("m",), base, torch.device("cpu"), torch.float16) is half
    assert base.weight.dtype == torch.float32  # the base was copied, not converted
