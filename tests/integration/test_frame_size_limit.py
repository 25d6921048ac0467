"""A frame size no encoder takes is refused before any frame (outside review: width 99999 or two
x16 upscales ran PIL out of memory, an internal error)."""

from __future__ import annotations

from pathlib import Path

import pytest
from clips import make_clip

from batch.config import parse_config
from batch.errors import ConfigError
from batch.job.pipeline import run_pipeline
from batch.media.encoder import choose_encoder

pytestmark = pytest.mark.integration


def test_a_width_beyond_the_limit_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match=r"stages\.0\.upscale\.width: Input should be less than or equal to 16384"
    ):
        parse_config("inputs: [a.mp4]\noutput: out/\nstages: [{upscale: {width: 99999}}]")


def test_chained_upscales_beyond_the_limit_fail_before_any_frame(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=4, size="64x48")
    cfg = parse_config(
        "inputs: [x]\noutput: out/\n"
        # 16384 a side after the second, 32768 after the third
        "stages: [{upscale: {scale: 16}}, {upscale: {scale: 16}}, {upscale: {scale: 2}}]"
    )
    with pytest.raises(
        ConfigError, match=r"stages\.2 \(upscale\) would make 32768x24576 frames from 16384x12288"
    ):
        run_pipeline(cfg, clip, tmp_path / "out.mp4", choose_encoder(cfg.encode))
    assert not (tmp_path / "out.mp4").exists()
