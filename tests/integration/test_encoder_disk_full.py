"""ffmpeg running out of disk is a full disk, not "check the encode settings" (outside review: a
part's encode on a full work disk failed as ffmpeg_failed). ffmpeg's own words, from a real run
onto /dev/full (every write refused with ENOSPC, as on a full file system), are what the writer,
the direct transcode and the join read."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from clips import make_clip

from batch.disk import full_in_stderr
from batch.errors import DiskFull

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("container", ["mkv", "mp4"])
def test_ffmpegs_words_for_a_full_disk_are_disk_full(container: str, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=10)
    dest = tmp_path / f"out.{container}"
    dest.symlink_to("/dev/full")
    proc = subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-c:v", "libx264", "-preset", "ultrafast",
         str(dest)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode != 0 or container == "mkv"  # ffmpeg 5.1's Matroska muxer exits 0 all the same
    full = full_in_stderr(proc.stderr, tmp_path, f"the encode of {dest.name}")
    assert isinstance(full, DiskFull) and full.code == "disk_full"
    assert f"the disk filled up during the encode of out.{container}" in str(full)


def test_other_failures_are_not_disk_full(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(tmp_path / "missing.mp4"), str(tmp_path / "o.mp4")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode != 0 and full_in_stderr(proc.stderr, tmp_path, "x") is None


@pytest.mark.parametrize("container", ["mkv", "mp4"])
@pytest.mark.parametrize(
    "stages", ["[]", "[{interpolate: {factor: 2, ladder: [blend]}}]"], ids=["direct", "writer"]
)
def test_an_encode_onto_a_full_disk_is_disk_full(stages: str, container: str, tmp_path: Path) -> None:
    """Through the product's own ffmpeg runs, Matroska's exit 0 included (it had ended as "out.mkv
    is empty: re-upload the input")."""
    from batch.config import parse_config
    from batch.job.pipeline import run_pipeline
    from batch.media.encoder import choose_encoder

    clip = make_clip(tmp_path / "in.mp4", frames=10)
    dest = tmp_path / f"out.{container}"
    dest.symlink_to("/dev/full")
    codec = "{codec: ffv1, container: mkv}" if container == "mkv" else "{codec: libx264, preset: ultrafast}"
    cfg = parse_config(f"inputs: [x]\noutput: out/\nstages: {stages}\nencode: {codec}")
    with pytest.raises(
        DiskFull, match=rf"the disk filled up during the (transcode to|encode of) out\.{container}"
    ):
        run_pipeline(cfg, clip, dest, choose_encoder(cfg.encode))
