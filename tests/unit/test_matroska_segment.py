"""Whether a Matroska file holds its whole Segment (batch.media.matroska): a complete file whose last
frame is held against a copy cut short, which ffprobe cannot tell apart."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch.media.matroska import segment_complete


def _mkv(path: Path, *args: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=64x48:r=10:d=1", *args, str(path)],
        check=True,
    )
    return path


@pytest.mark.parametrize("name", ["a.mkv", "a.webm"])
def test_a_whole_file_is_complete_and_any_cut_of_it_is_not(name: str, tmp_path: Path) -> None:
    whole = _mkv(tmp_path / name, *(["-c:v", "libvpx"] if name.endswith("webm") else []))
    assert segment_complete(whole) is True
    data = whole.read_bytes()
    for keep in (len(data) - 1, len(data) // 2, 200, 60):
        cut = tmp_path / f"cut-{keep}{whole.suffix}"
        cut.write_bytes(data[:keep])
        assert segment_complete(cut) is False, keep
    whole.write_bytes(data + b"\0" * 10)  # (bytes after the Segment: still all of it)
    assert segment_complete(whole) is True


def test_a_live_segment_of_unknown_size_or_another_container_cannot_tell(tmp_path: Path) -> None:
    piped = tmp_path / "piped.mkv"
    with open(piped, "wb") as out:  # written to a pipe: the Segment's size is "unknown"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=64x48:r=10:d=1", "-f", "matroska",
             "-"],
            stdout=out, check=True,
        )  # fmt: skip
    assert segment_complete(piped) is None
    assert segment_complete(_mkv(tmp_path / "a.mp4")) is None
    assert segment_complete(tmp_path / "missing.mkv") is None
    (tmp_path / "empty.mkv").write_bytes(b"")
    assert segment_complete(tmp_path / "empty.mkv") is None


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.binary(max_size=64),
    st.sampled_from([b"", b"\x1a\x45\xdf\xa3", b"\x1a\x45\xdf\xa3\x80\x18\x53\x80\x67"]),
)
def test_any_bytes_are_an_answer_not_an_exception(tail: bytes, head: bytes) -> None:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".mkv") as f:
        f.write(head + tail)
        f.flush()
        assert segment_complete(Path(f.name)) in (True, False, None)
