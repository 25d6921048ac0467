"""The raw-frame pipes are widened to 1 MiB (batch/media/pipes.py); a pipe left narrow still works.

Real kernel pipes and real ffmpeg throughout. Widening only changes how many fills a frame takes,
so the tests hold what must not change: each frame the reader hands over is the frame its ffmpeg
wrote, and a job's output decodes to the same frames whether its pipes hold 1 MiB or one page.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from clips import count_frames, framemd5, make_clip

from batch.config import parse_config
from batch.job.pipeline import run_pipeline
from batch.media import pipes
from batch.media.colour import plan_colour
from batch.media.encoder import choose_encoder
from batch.media.probe import probe
from batch.media.reader import FrameReader

pytestmark = pytest.mark.integration

GETSIZE = getattr(fcntl, "F_GETPIPE_SZ", None)
PAGE = os.sysconf("SC_PAGE_SIZE")
DEFAULT = 16 * PAGE  # Linux's default pipe: 64 KiB with 4 KiB pages, 1 MiB with arm64's 64 KiB pages
WIDE = max(1 << 20, DEFAULT)
linux_only = pytest.mark.skipif(GETSIZE is None, reason="pipe sizes are a Linux request")


def _size(fd: int) -> int:
    assert GETSIZE is not None
    return int(fcntl.fcntl(fd, GETSIZE))


def _limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    """Stand in for /proc/sys/fs/pipe-max-size (a system setting the tests must not change)."""
    limit = tmp_path / "pipe-max-size"
    limit.write_text(text)
    monkeypatch.setattr(pipes, "_MAX_SIZE_FILE", limit)


@linux_only
def test_a_pipe_is_widened_to_a_mebibyte_and_the_kernel_agrees() -> None:
    read, write = os.pipe()
    try:
        assert _size(read) == DEFAULT  # what every frame crossed before
        assert pipes.widen(write) == _size(read) == WIDE  # either end names the same pipe
    finally:
        os.close(read)
        os.close(write)


@linux_only
@pytest.mark.parametrize(
    ("limit", "expected"),
    [("131072\n", max(131072, DEFAULT)), ("4096\n", DEFAULT)],  # 4096: a choice below the default
    ids=["caps-the-request", "never-shrinks"],
)
def test_the_system_limit_caps_the_request_and_never_shrinks_a_pipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: str, expected: int
) -> None:
    _limit(tmp_path, monkeypatch, limit)
    read, write = os.pipe()
    try:
        assert pipes.widen(read) == _size(read) == expected
    finally:
        os.close(read)
        os.close(write)


@pytest.mark.parametrize("text", ["", "a lot\n"])
def test_an_unreadable_limit_falls_back_to_a_mebibyte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    _limit(tmp_path, monkeypatch, text)
    assert pipes.pipe_max_bytes() == 1 << 20
    monkeypatch.setattr(pipes, "_MAX_SIZE_FILE", tmp_path / "missing")
    assert pipes.pipe_max_bytes() == 1 << 20


@linux_only
def test_a_refusal_by_the_kernel_is_no_error(tmp_path: Path) -> None:
    # a regular file has no pipe size: the kernel answers EBADF, as it would EPERM past the quota
    with open(tmp_path / "plain", "wb") as f:
        assert pipes.widen(f.fileno()) is None
    read, write = os.pipe()
    os.close(write)
    os.close(read)
    assert pipes.widen(read) is None  # a closed descriptor


def test_without_the_request_nothing_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(fcntl, "F_SETPIPE_SZ", raising=False)  # not Linux
    read, write = os.pipe()
    try:
        assert pipes.widen(read) is None
    finally:
        os.close(read)
        os.close(write)


ONE_PAGE = PAGE


def _one_page(fd: int, want: int = pipes.FRAME_PIPE_BYTES) -> int | None:
    """Stand-in for ``widen`` that leaves the pipe narrower than any real one: the kernel's smallest."""
    assert GETSIZE is not None
    return int(fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, ONE_PAGE))  # (the kernel's smallest: one page)


def _reader(path: Path) -> FrameReader:
    info = probe(path)
    colour = plan_colour(info.color, info.height, info.pix_fmt)
    return FrameReader(info, colour, pix_fmt="rgb24", queue_frames=2)


def _reader_frames(path: Path) -> tuple[list[str], list[str], int]:
    """What the reader handed over, what its own ffmpeg command writes (the oracle), its pipe's size."""
    with _reader(path) as reader:
        assert reader._proc is not None and reader._proc.stdout is not None
        size = _size(reader._proc.stdout.fileno()) if GETSIZE is not None else 0
        seen = [hashlib.sha256(frame).hexdigest() for frame in reader]
    raw = subprocess.run(reader.command, capture_output=True, check=True).stdout
    n = reader.layout.frame_bytes
    return seen, [hashlib.sha256(raw[k : k + n]).hexdigest() for k in range(0, len(raw), n)], size


@linux_only
@pytest.mark.parametrize(
    ("narrow", "expected"), [(False, WIDE), (True, ONE_PAGE)], ids=["widened", "one-page"]
)
def test_the_readers_frames_are_ffmpegs_through_a_wide_or_a_one_page_pipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, narrow: bool, expected: int
) -> None:
    if narrow:  # a frame (160x96x3 = 46080 bytes) now takes a dozen fills
        monkeypatch.setattr("batch.media.reader.widen", _one_page)
    clip = make_clip(tmp_path / "pipes.mp4", frames=24, size="160x96", audio=False)
    seen, expected_frames, size = _reader_frames(clip)
    assert size == expected
    assert seen == expected_frames and len(seen) == 24


@linux_only
def test_a_jobs_frames_are_the_same_through_wide_and_one_page_pipes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2x blend: frames cross the reader's pipe and the writer's; the output must not change."""
    src = make_clip(tmp_path / "blend.mp4", frames=20, size="192x108", audio=True)
    cfg = parse_config(
        "inputs: [x]\noutput: out/\nstages: [{interpolate: {factor: 2, ladder: [blend]}}]\n"
        "encode: {codec: libx264, preset: ultrafast, crf: 18}"
    )
    sizes: list[int | None] = []
    real = pipes.widen

    def noting(fd: int, want: int = pipes.FRAME_PIPE_BYTES) -> int | None:
        sizes.append(real(fd, want))
        return sizes[-1]

    for module in ("batch.media.reader", "batch.media.writer"):
        monkeypatch.setattr(f"{module}.widen", noting)
    wide = tmp_path / "wide.mp4"
    run_pipeline(cfg, src, wide, choose_encoder(cfg.encode))
    assert sizes == [WIDE, WIDE]  # the reader's pipe and the writer's
    for module in ("batch.media.reader", "batch.media.writer"):
        monkeypatch.setattr(f"{module}.widen", lambda fd, want=0: sizes.append(_one_page(fd)))
    narrow = tmp_path / "narrow.mp4"
    run_pipeline(cfg, src, narrow, choose_encoder(cfg.encode))
    assert sizes[2:] == [ONE_PAGE, ONE_PAGE]
    assert count_frames(wide) == count_frames(narrow) == 40
    assert framemd5(wide) == framemd5(narrow)
