"""Frame buffers the reader reuses once no array made from them is alive.

A fresh buffer for every decoded frame costs the kernel a page fault, zeroing and unmapping
for each page (glibc serves buffers this large by mmap): on the 2-core development VM that was
most of the runner's own CPU on an RGB job (docs/benchmarks.md, P1-rgb). A buffer here goes back
to use only when its reference count says nothing else holds it (a frame, a view of a frame, a
queue entry, a memoryview in a writer), so a stage may keep a frame as long as it likes: reuse
cannot change a frame that is still held.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

POOL_BYTES = 256 << 20  # the most idle frames kept: 97 720p rgb24 frames, 5 4K rgb48le ones


class FrameBuffers:
    """Byte buffers of ``nbytes``; at most ``keep`` of them (and POOL_BYTES) are kept for reuse."""

    def __init__(self, nbytes: int, keep: int) -> None:
        self.nbytes = nbytes
        self.keep = max(1, min(keep, POOL_BYTES // max(nbytes, 1)))
        self._buffers: list[np.ndarray] = []
        self._next = 0
        self.reused = 0  # how many times a kept buffer served again (tests read it)

    def take(self) -> np.ndarray:
        """A uint8 buffer of ``nbytes`` that nothing else references (its old contents left in it)."""
        import numpy as np

        kept = self._buffers
        for k in range(len(kept)):
            i = (self._next + k) % len(kept)
            # kept[i] is referenced by the list and by getrefcount's argument: nothing else
            if sys.getrefcount(kept[i]) == 2:
                self._next = i + 1
                self.reused += 1
                return kept[i]
        buf = np.empty(self.nbytes, np.uint8)  # no zeroing: readinto fills it whole
        if len(kept) < self.keep:
            kept.append(buf)
        return buf
