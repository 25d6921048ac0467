"""The reader reuses its frame buffers (batch/media/frame_buffers.py): every frame must still be the
frame ffmpeg wrote, whether the consumer lets each go at once or keeps them all."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import numpy as np
from clips import make_clip

from batch.media.colour import plan_colour
from batch.media.probe import probe
from batch.media.reader import FrameReader


def _reader(path: Path, pix_fmt: str = "rgb24") -> FrameReader:
    info = probe(path)
    colour = plan_colour(info.color, info.height, info.pix_fmt)
    return FrameReader(info, colour, pix_fmt=pix_fmt, queue_frames=2)


def _ffmpeg_frames(reader: FrameReader) -> list[str]:
    """The bytes the reader's own ffmpeg command writes, cut into frames: the oracle."""
    raw = subprocess.run(reader.command, capture_output=True, check=True).stdout
    n = reader.layout.frame_bytes
    assert len(raw) % n == 0
    return [hashlib.sha256(raw[k : k + n]).hexdigest() for k in range(0, len(raw), n)]


def test_frames_let_go_at_once_are_each_the_frame_ffmpeg_wrote(clip_dir: Path) -> None:
    clip = make_clip(clip_dir / "buffers-60.mp4", frames=60, size="160x96", audio=False)
    with _reader(clip) as reader:
        seen = [hashlib.sha256(frame).hexdigest() for frame in reader]
    assert seen == _ffmpeg_frames(reader)
    assert len(seen) == 60 and len(set(seen)) > 50  # testsrc moves: the frames differ
    assert reader.buffers.reused >= 30  # the point of it: buffers served again


def test_frames_a_consumer_keeps_are_not_overwritten_by_later_frames(clip_dir: Path) -> None:
    clip = make_clip(clip_dir / "buffers-60.mp4", frames=60, size="160x96", audio=False)
    with _reader(clip, "rgb48le") as reader:
        kept: list[np.ndarray] = []
        for k, frame in enumerate(reader):
            if k % 3 == 0:
                kept.append(frame)  # every third frame kept to the end, the rest let go
    expected = _ffmpeg_frames(reader)
    assert [hashlib.sha256(f).hexdigest() for f in kept] == expected[::3]
    assert all(f.dtype == np.uint16 and f.shape == (96, 160, 3) for f in kept)
    assert reader.buffers.reused > 0
