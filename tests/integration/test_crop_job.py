"""A real job with the crop stage: ffmpeg in, the crop, ffmpeg out, checked with ffprobe.

The source has four flat quadrants of known colours; the crop straddles the
centre, so each quadrant of the output must hold its source quadrant's colour.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from clips import count_frames, decode_rgb, video_stream

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ENTRY = ROOT / "run_with_config_batch_sync.py"
FRAMES = 45
QUADRANT = (64, 48)  # each colour's size in the source, which is 128x96
COLOURS = {"red": (255, 0, 0), "lime": (0, 255, 0), "blue": (0, 0, 255), "white": (255, 255, 255)}
LAYOUT = (("red", "lime"), ("blue", "white"))  # top row, bottom row


def make_quadrants(path: Path) -> Path:
    w, h = QUADRANT
    inputs = []
    for name in COLOURS:
        inputs += ["-f", "lavfi", "-i", f"color=c={name}:size={w}x{h}:rate=30"]
    graph = "[0][1]hstack[top];[2][3]hstack[bottom];[top][bottom]vstack[v]"
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[v]",
            "-frames:v", str(FRAMES), "-c:v", "libx264", "-preset", "ultrafast", "-crf", "10",
            "-pix_fmt", "yuv420p", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


def run_job(
    tmp_path: Path, src: Path, stages: str, chunk_s: float = 60, also: Path | None = None
) -> subprocess.CompletedProcess:
    cfg = tmp_path / "job.yaml"
    inputs = f"[{src}, {also}]" if also else f"[{src}]"
    cfg.write_text(
        f"job_id: crop\ninputs: {inputs}\noutput: {tmp_path / 'out'}/\nstages: {stages}\n"
        "encode: {codec: libx264, preset: ultrafast, crf: 10}\n"
        f"limits: {{chunk_s: {chunk_s}, heartbeat_s: 0.2}}\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CONFIG_URL"}
    return subprocess.run(
        [sys.executable, str(ENTRY), "--no-watchdog", "--config", str(cfg), "--dry-run",
         "--state-dir", str(tmp_path / "state")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=240,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("stages", "chunk_s", "size", "passed_as"),
    [
        ("[{crop: {width: 64, height: 48, x: 32, y: 24}}]", 60, (64, 48), "yuv420p"),
        ("[{crop: {width: 64, height: 48, x: 32, y: 24}}]", 0.5, (64, 48), "yuv420p"),  # 3 chunks
        ("[{upscale: {scale: 2}}, {crop: {width: 128, height: 96, x: 64, y: 48}}]", 60, (128, 96), "yuv420p"),
    ],
)
def test_a_job_with_crop_keeps_the_window_and_every_frame(
    tmp_path: Path, stages: str, chunk_s: float, size: tuple[int, int], passed_as: str
) -> None:
    src = make_quadrants(tmp_path / "quads.mp4")
    out = tmp_path / "out"
    proc = run_job(tmp_path, src, stages, chunk_s)
    assert proc.returncode == 0, proc.stderr
    video = out / "quads" / "quads.mp4"
    stream = video_stream(video)
    assert (stream["width"], stream["height"]) == size
    assert count_frames(video) == FRAMES

    manifest = json.loads((out / "manifest.json").read_text())
    record = manifest["inputs"][0]
    assert record["status"] == "succeeded"
    assert (record["media_out"]["width"], record["media_out"]["height"]) == size
    crop = record["stages"][-1]
    assert crop["name"] == "crop" and crop["size_out"] == list(size)
    # (the stages run in the transcode's graph where they can: the source's planes, no pipes)
    in_graph = f"own ffmpeg graph (on the source's {passed_as} planes"
    assert any(in_graph in n for n in record["notes"]), record["notes"]
    assert record["encode"]["pixels"]["frames"] == passed_as
    if chunk_s < 1:
        assert record["chunks"]["count"] == 3
    assert [o["kind"] for o in record["outputs"]] == ["video", "preview"]  # crop writes no files

    w, h = size
    qw, qh = w // 2, h // 2
    for frame in (0, FRAMES - 1):
        rgb = np.frombuffer(decode_rgb(video, frame), np.uint8).reshape(h, w, 3).astype(int)
        for row, names in enumerate(LAYOUT):
            for col, name in enumerate(names):
                # the middle of each output quadrant, away from the edges 4:2:0 blurs
                top, left = row * qh + qh // 4, col * qw + qw // 4
                mean = rgb[top : top + qh // 2, left : left + qw // 2].reshape(-1, 3).mean(axis=0)
                assert np.abs(mean - COLOURS[name]).max() < 12, (frame, name, mean.round())


def test_a_crop_larger_than_the_input_fails_that_input_with_the_fix(tmp_path: Path) -> None:
    src = make_quadrants(tmp_path / "quads.mp4")
    wide = tmp_path / "wide.mp4"  # the other input is large enough: it runs, and the job is partial
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=192x96:rate=30:duration=0.5",
         "-pix_fmt", "yuv420p", str(wide)],
        check=True,
    )  # fmt: skip
    proc = run_job(tmp_path, src, "[{crop: {width: 128, height: 96, x: 2}}]", also=wide)
    assert proc.returncode == 1, proc.stderr  # some inputs failed, not "the config cannot run" (2)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["status"] == "partial" and manifest["exit_code"] == 1
    assert manifest["inputs"][1]["status"] == "succeeded"
    record = manifest["inputs"][0]
    assert record["status"] == "failed" and record["error"]["type"] == "config_invalid"
    assert "does not fit in the 128x96 frames" in record["error"]["message"]
    assert record["error"]["problems"] == ["x + width = 2 + 128 = 130 > frame width 128"]
    assert "x + width <= 128" in record["error"]["hint"]
    assert not (tmp_path / "out" / "quads").exists()  # nothing uploaded for it
