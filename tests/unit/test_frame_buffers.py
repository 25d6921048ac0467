"""The reader's reused frame buffers: a buffer serves again only when nothing holds what was made of it."""

from __future__ import annotations

import gc

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from batch.media.frame_buffers import POOL_BYTES, FrameBuffers


def test_a_released_buffer_serves_again_and_a_held_one_never_does() -> None:
    pool = FrameBuffers(64, keep=4)
    first = pool.take()
    frame = first.view(np.uint16).reshape(4, 8)  # as the reader makes a frame
    del first
    second = pool.take()
    assert second.base is not frame.base and not np.shares_memory(second, frame)
    del second
    third = pool.take()
    assert pool.reused == 1 and not np.shares_memory(third, frame)
    del frame, third
    assert pool.take() is not None and pool.reused == 2


def test_views_slices_and_memoryviews_keep_a_buffer_busy() -> None:
    makers = [
        lambda b: b[:6].reshape(2, 3),
        lambda b: memoryview(b),
        lambda b: b.view(np.uint16)[3:],
        lambda b: np.asarray(b.reshape(4, 4, 3)[1:]),
        lambda b: [b.reshape(16, 3)[::2]],  # inside a list, as in a queue or a batch
    ]
    for make in makers:
        pool = FrameBuffers(48, keep=1)
        buf = pool.take()
        holder = make(buf)
        del buf
        again = pool.take()
        assert pool.reused == 0
        del again
        del holder
        gc.collect()
        pool.take()
        assert pool.reused == 1


def test_the_pool_keeps_no_more_than_its_bytes() -> None:
    big = FrameBuffers(POOL_BYTES // 3 + 1, keep=100)
    assert big.keep == 2
    assert FrameBuffers(POOL_BYTES * 2, keep=8).keep == 1  # a frame larger than the pool still gets one


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 20)), min_size=1, max_size=120), st.integers(1, 6))
def test_no_frame_a_consumer_holds_is_ever_overwritten(steps: list[tuple[bool, int]], keep: int) -> None:
    """Random takes and releases, as the reader, stages and writer would: every held frame keeps its bytes."""
    pool = FrameBuffers(32, keep=keep)
    held: list[tuple[int, np.ndarray]] = []
    for tag, (take, which) in enumerate(steps):
        if take or not held:
            buf = pool.take()
            buf[:] = tag % 251  # the reader's readinto fills the whole buffer
            held.append((tag % 251, buf.reshape(4, 8)))
            del buf
        else:
            held.pop(which % len(held))
        for value, frame in held:
            assert (frame == value).all()
