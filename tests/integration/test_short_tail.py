"""A chunked input's last chunk is never a frame or two: such a tail joins the chunk before it.

x265 3.5 (as ffmpeg 5.1 drives it) gives the frames of an encode shorter than its B-frame delay a
DTS from memory it never set, which the MP4 muxer refuses ("pts/dts pair unsupported"): every
no-stage job in chunks of 0.5 s on a 2 s clip into libx265 failed on its 2-frame last part (an
outside review). Real ffmpeg and x265 here; the whole command for the jobs.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from clips import count_frames, video_duration
from test_runner_local import run_cli, write_config

from batch.config import parse_config
from batch.job.chunks import MIN_TAIL_FRAMES, plan_chunks
from batch.media.probe import probe

pytestmark = pytest.mark.integration


def clip(path: Path, pix_fmt: str, seconds: float = 2.0) -> Path:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
         f"testsrc2=size=160x120:rate=25:duration={seconds}", "-c:v", "libx264", "-pix_fmt", pix_fmt,
         str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.mark.parametrize(
    ("frames", "chunk_s", "counts"),
    [
        (50, 0.5, [12, 12, 12, 14]),  # a tail of 2 joins the chunk before
        (49, 0.5, [12, 12, 12, 13]),  # a tail of 1
        (51, 0.5, [12, 12, 12, 12, 3]),  # 3: a part of its own
        (13, 0.5, [13]),  # one chunk and a frame: one chunk (not a pass: the input is longer than it)
    ],
)
def test_a_tail_of_a_frame_or_two_joins_the_chunk_before(
    tmp_path: Path, frames: int, chunk_s: float, counts: list[int]
) -> None:
    src = clip(tmp_path / "src.mp4", "yuv420p", frames / 25)
    info = probe(src)
    assert info.delivered_frames == frames
    cfg = parse_config(f"inputs: [x]\noutput: out/\nlimits: {{chunk_s: {chunk_s}}}\n")
    chunks = plan_chunks(cfg, info)
    assert chunks is not None and [c.count for c in chunks] == counts
    assert all(c.count >= MIN_TAIL_FRAMES for c in chunks) and chunks[-1].last
    assert [c.start for c in chunks] == [sum(counts[:k]) for k in range(len(counts))]


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv444p"])
def test_a_no_stage_job_into_libx265_in_chunks_keeps_every_frame(tmp_path: Path, pix_fmt: str) -> None:
    src = clip(tmp_path / "src.mp4", pix_fmt)
    out = tmp_path / "out"
    body = (
        f"inputs: [{src}]\noutput: {out}\nstages: []\nencode: {{codec: libx265, preset: ultrafast}}\n"
        "limits: {chunk_s: 0.5}\n"
    )
    result = run_cli("--config", str(write_config(tmp_path / "job.yaml", body)))
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((out / "manifest.json").read_text())["inputs"][0]
    assert record["status"] == "succeeded" and record["chunks"]["count"] == 4
    made = out / "src" / "src.mp4"
    assert count_frames(made) == 50 and abs(video_duration(made) - 2.0) < 0.03
