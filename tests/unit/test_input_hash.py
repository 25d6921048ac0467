"""A local input's hash on its own thread: the same digest, its errors where it is asked for, and a
cancel that stops it (a stop must not wait for a long file's hash)."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest

from batch.errors import InputChanged, InputUnreadable
from batch.job import input_hash
from batch.job.input_hash import BackgroundHash, sha256_file


def test_the_digest_is_hashlib_s(tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000 + b"tail"  # more than one chunk, and a short last one
    path = tmp_path / "in.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    background = BackgroundHash(path)
    assert background.result() == hashlib.sha256(data).hexdigest()
    assert background.done and background.finished() == background.result()
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert BackgroundHash(empty).result() == hashlib.sha256(b"").hexdigest()


def test_an_unreadable_input_raises_where_the_hash_is_asked_for(tmp_path: Path) -> None:
    background = BackgroundHash(tmp_path / "gone.mp4")
    with pytest.raises(InputUnreadable, match=r"gone\.mp4 could not be read") as caught:
        background.result()
    assert isinstance(caught.value.__cause__, FileNotFoundError) and caught.value.hint
    assert background.finished() is None
    with pytest.raises(InputUnreadable):
        BackgroundHash(tmp_path).result()  # a directory


@pytest.mark.parametrize("how", ["append", "same size, in place", "replaced by another file", "deleted"])
def test_a_file_written_to_after_the_hash_began_is_refused(tmp_path: Path, how: str) -> None:
    """The hash must stand for the bytes the probe and the transcode read (outside review: an
    in-place write after the transcode had read a region the hash had not reached yet made a
    later run reuse the old output for the new bytes)."""
    path = tmp_path / "in.mp4"
    path.write_bytes(b"a" * 100_000)
    background = BackgroundHash(path)
    assert background.result() == hashlib.sha256(b"a" * 100_000).hexdigest()
    background.unchanged()  # nothing happened yet
    if how == "append":
        with path.open("ab") as f:
            f.write(b"b")
    elif how == "same size, in place":
        with path.open("r+b") as f:
            f.seek(10)
            f.write(b"b")
    elif how == "replaced by another file":
        other = tmp_path / "other.mp4"
        other.write_bytes(b"a" * 100_000)
        other.replace(path)
    else:
        path.unlink()
    with pytest.raises(InputChanged, match=r"in\.mp4 changed while the job read it"):
        background.unchanged()
    with pytest.raises(InputChanged):
        background.result()


def test_cancel_stops_a_long_hash_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reading = threading.Event()
    real_open = Path.open

    class Endless:  # a file that never ends, as a very long input would seem
        def read(self, n: int) -> bytes:
            reading.set()
            time.sleep(0.001)
            return b"x" * n

        def __enter__(self) -> Endless:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(
        Path, "open", lambda self, *a, **k: Endless() if self.name == "long.mp4" else real_open(self, *a, **k)
    )
    background = BackgroundHash(tmp_path / "long.mp4")
    assert reading.wait(10)
    assert not background.done
    background.cancel()
    background._thread.join(5)
    assert not background._thread.is_alive() and background.done
    with pytest.raises(RuntimeError, match="cancelled"):
        background.result()
    assert background._thread.daemon  # a process that ends does not wait for it either


def test_the_chunk_is_large_enough_that_hashlib_lets_go_of_the_gil() -> None:
    assert input_hash.CHUNK > 2047  # CPython's hashlib releases the GIL above 2047 bytes
