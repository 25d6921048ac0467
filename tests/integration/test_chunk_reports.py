"""A chunked input's stage report counts over every chunk, as one pass does (outside review: it
showed one arbitrary chunk's scene cuts and frames, 0 cuts chunked against 1 in one pass)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from batch.config import parse_config
from batch.job.runner import Runner, RunOptions

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cuts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """90 frames at 30 fps: testsrc2, red from frame 40, SMPTE bars from frame 60 (a chunk boundary
    at 1 s chunks): two cuts."""
    path = tmp_path_factory.mktemp("cuts") / "cuts.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=s=160x120:r=30", "-f", "lavfi", "-i", "color=red:s=160x120:r=30",
         "-f", "lavfi", "-i", "smptebars=s=160x120:r=30",
         "-filter_complex", "[0]trim=end_frame=40[a];[1]trim=end_frame=20[b];[2]trim=end_frame=30[c];"
                            "[a][b][c]concat=n=3[v]",
         "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", str(path)],
        check=True,
    )  # fmt: skip
    return path


def stage_report(src: Path, tmp: Path, chunk_s: float) -> dict[str, Any]:
    cfg = parse_config(
        f"job_id: cuts\ninputs: [{src}]\noutput: {tmp}/out/\nencode: {{codec: ffv1, container: mkv}}\n"
        f"stages: [{{interpolate: {{factor: 2, ladder: [blend]}}}}]\nlimits: {{chunk_s: {chunk_s}}}"
    )
    assert Runner(cfg, RunOptions(state_dir=tmp / "state")).run() == 0
    (record,) = json.loads((tmp / "out" / "manifest.json").read_text())["inputs"]
    assert bool(record.get("chunks")) == (chunk_s < 3)
    (report,) = record["stages"]
    return report


def test_chunked_reports_count_what_one_pass_counts(cuts: Path, tmp_path: Path) -> None:
    one = stage_report(cuts, tmp_path / "one", 60)
    chunked = stage_report(cuts, tmp_path / "chunked", 1)
    assert one["scene_cuts"] == chunked["scene_cuts"] == 2
    made = [sum(s.get("frames", 0) for s in r["steps"]) for r in (one, chunked)]
    assert made[0] == made[1] > 0
    assert sum(s.get("units", 0) for s in chunked["steps"]) >= 3  # a unit or more from each chunk


def test_parts_of_an_earlier_run_with_other_chunks_are_cleared(cuts: Path, tmp_path: Path) -> None:
    """Parts a run kept (or left when killed) under another chunk length are not this plan's names:
    they were left in the bucket for good (outside review)."""

    def run(chunk_s: float, keep: bool, state: str) -> None:
        cfg = parse_config(
            f"job_id: parts\ninputs: [{cuts}]\n"
            f"output: {{url: {tmp_path}/out/, keep_parts: {str(keep).lower()}}}\n"
            f"encode: {{codec: ffv1, container: mkv}}\nstages: [{{upscale: {{scale: 1}}}}]\n"
            f"limits: {{chunk_s: {chunk_s}}}"
        )
        assert Runner(cfg, RunOptions(state_dir=tmp_path / state)).run() == 0

    parts = tmp_path / "out" / "cuts" / "parts"
    run(0.4, True, "s1")
    assert len(list(parts.glob("part-*.mkv"))) == 8  # 90 frames in chunks of 12
    (tmp_path / "out" / "cuts" / "output.json").unlink()  # as if that run had been killed before its end
    run(1, False, "s2")  # chunks of 30: part-00000..00002 only
    assert not list(parts.glob("part-*")), sorted(p.name for p in parts.iterdir())


def test_a_join_that_makes_no_end_fails_within_its_timeout(cuts: Path, tmp_path: Path) -> None:
    """The join shows no progress: one still running after limits.stall_s fails instead of holding
    the instance (a stopped ffmpeg had waited for max_runtime_s)."""
    from batch.errors import FFmpegFailed
    from batch.media.concat import join_parts

    parts = []
    for k in range(3):
        part = tmp_path / f"part-{k}.mkv"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(cuts), "-c", "copy", str(part)], check=True)
        parts.append(part)
    with pytest.raises(FFmpegFailed, match=r"made no end in 0\.001 s \(limits\.stall_s\)"):
        join_parts(parts, tmp_path / "joined.mkv", container="mkv", timeout_s=0.001)
    join_parts(parts, tmp_path / "joined.mkv", container="mkv", timeout_s=60)  # in time: joined
    assert (tmp_path / "joined.mkv").stat().st_size > 0
