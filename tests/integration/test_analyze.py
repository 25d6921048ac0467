"""The analyze stage on a clip with known defects at known frames (tests/metrics_clip.py).

Each defect is found where it was put and nowhere else; the Parquet file has
the documented schema and one row per frame; the manifest carries the summary.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import metrics_clip as mc
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = [
    "frame", "time_s", "sharpness", "sharpness_rel", "brightness", "brightness_p5", "brightness_p95",
    "underexposed", "blurry", "phash", "motion", "cut_score", "scene_cut", "duplicate_group", "idle",
]  # fmt: skip


@pytest.fixture(scope="module")
def analyzed(clip_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    tmp = tmp_path_factory.mktemp("analyze")
    clip = mc.make(clip_dir / "defects.mp4")
    cfg = tmp / "job.yaml"
    cfg.write_text(
        f"inputs: [{clip}]\noutput: {tmp}/out/\nstages: [analyze: {{}}]\n"
        "encode: {codec: libx264, preset: ultrafast}\n"
    )
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run_with_config_batch_sync.py"), "--no-watchdog", "--config", str(cfg),
         "--state-dir", str(tmp / "state")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((tmp / "out" / "manifest.json").read_text())
    table = pq.read_table(tmp / "out" / "defects" / "metrics.parquet")
    parquet = pq.ParquetFile(tmp / "out" / "defects" / "metrics.parquet")
    return manifest, {"table": table, "rows": table.to_pydict(), "file": parquet}


def frames_where(rows: dict, column: str) -> set[int]:
    return {f for f, v in zip(rows["frame"], rows[column], strict=True) if v}


def test_parquet_schema_and_layout(analyzed: tuple[dict, dict]) -> None:
    manifest, data = analyzed
    table = data["table"]
    assert table.column_names == COLUMNS
    assert table.num_rows == mc.FRAMES
    assert str(table.schema.field("phash").type) == "uint64"
    meta = data["file"].metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    outputs = {o["kind"]: o for o in manifest["inputs"][0]["outputs"]}
    assert outputs["metrics"]["key"] == "defects/metrics.parquet"


def test_each_defect_is_found_where_it_was_put_and_nowhere_else(analyzed: tuple[dict, dict]) -> None:
    _, data = analyzed
    rows = data["rows"]
    assert frames_where(rows, "blurry") == set(mc.BLURRY)
    dark = frames_where(rows, "underexposed")
    assert set(mc.DARK_CORE) <= dark <= set(mc.DARK_RAMP)
    assert frames_where(rows, "scene_cut") == {mc.CUT}
    assert frames_where(rows, "idle") == set(mc.STILL)
    duplicates = {f for f, g in zip(rows["frame"], rows["duplicate_group"], strict=True) if g is not None}
    assert duplicates == set(mc.REPEATED) | set(mc.STILL)


def test_the_manifest_carries_the_summary(analyzed: tuple[dict, dict]) -> None:
    manifest, _ = analyzed
    stage = manifest["inputs"][0]["stages"][0]
    assert stage["name"] == "analyze"
    summary = stage["summary"]
    assert summary["cut_count"] == 1 and summary["cuts"] == [mc.CUT]
    assert summary["blurry_share"] == round(len(mc.BLURRY) / mc.FRAMES, 4)
    assert summary["idle_intervals"][0]["frames"] == [mc.STILL.start, mc.STILL.stop - 1]
    assert summary["idle_intervals"][0]["seconds"] == [6.0, 7.5]
    # repeated stretch: 15 pairs; still stretch: one group of 45
    assert summary["duplicate_share"] == round((15 + 44) / mc.FRAMES, 4)
    assert manifest["inputs"][0]["media_out"]["frame_count"] == mc.FRAMES  # frames passed on unchanged


def test_rgb_frames_after_another_stage_give_the_same_findings(clip_dir: Path, tmp_path: Path) -> None:
    from batch.config import parse_config
    from batch.job.pipeline import run_pipeline
    from batch.media.encoder import choose_encoder
    from batch.stages.standin import STANDIN_REGISTRY, StandInStage

    clip = mc.make(clip_dir / "defects-rgb.mp4")
    cfg = parse_config(
        "inputs: [x]\noutput: o/\nstages: [analyze: {}]\nencode: {codec: libx264, preset: ultrafast}"
    )
    # a stage that asks for RGB (as a model does) before analyze: analyze then reads RGB frames
    cfg = cfg.replace(stages=[StandInStage(rgb=True), *cfg.stages])
    result = run_pipeline(
        cfg,
        clip,
        tmp_path / "out.mp4",
        choose_encoder(cfg.encode),
        artifacts=tmp_path,
        registry=STANDIN_REGISTRY,
    )
    assert "frames passed between stages as rgb24" in result.notes
    rows = pq.read_table(tmp_path / "metrics.parquet").to_pydict()
    assert frames_where(rows, "blurry") == set(mc.BLURRY)
    assert frames_where(rows, "scene_cut") == {mc.CUT}
    assert frames_where(rows, "idle") == set(mc.STILL)
