"""Clips made once per session by ffmpeg's lavfi sources."""

from __future__ import annotations

from pathlib import Path

import pytest
from clips import make_clip


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def small_clip(clip_dir: Path) -> Path:
    """320x240, 30 fps, 30 frames (1 s), AAC audio."""
    return make_clip(clip_dir / "small.mp4")


@pytest.fixture(scope="session")
def ntsc_clip(clip_dir: Path) -> Path:
    """24000/1001 fps, 24 frames, audio."""
    return make_clip(clip_dir / "ntsc.mp4", rate="24000/1001", frames=24)
