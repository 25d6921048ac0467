"""The ``analyze`` stage: frame quality metrics, frames passed on unchanged.

It can sit anywhere in a chain (it measures the frames as they are at that
point). When the stream ends it writes ``metrics.parquet`` (one row per frame)
to the artifacts folder the pipeline gives it; the runner uploads it as
``<output>/<stem>/metrics.parquet`` and the summary goes into the manifest.

Parquet layout (fixed, documented in docs/manifest.md): zstd compression,
row groups of 10,000 rows, 1 MiB data pages.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from batch.config import AnalyzeStage
from batch.stages.base import Caps, Stage, StageFile, StageInput
from batch.stages.frame_metrics import Analyzer, duplicate_groups, idle_intervals, summarize
from batch.stages.frames import as_numpy, layout_of, stretch_planes

ROW_GROUP_ROWS = 10_000
DATA_PAGE_BYTES = 1 << 20


METRICS_FILE = "metrics.parquet"


class Analyze(Stage[AnalyzeStage]):
    name = "analyze"
    # works on the Y plane of yuv420p, or on RGB; duplicate groups and idle intervals span the input
    caps = Caps(
        spans_input=True, files=(StageFile("metrics", METRICS_FILE, "application/vnd.apache.parquet"),)
    )

    def __init__(self, spec: AnalyzeStage, context: StageInput) -> None:
        super().__init__(spec, context)
        self.fps = context.fps
        self.artifacts = context.artifacts
        self.analyzer = Analyzer(
            context.width,
            context.height,
            context.fps,
            dark_threshold=spec.dark_threshold,
            max_value=layout_of(context.pix_fmt, context.width, context.height).max_value,
            limited=stretch_planes(context),
        )
        self.summary: dict[str, Any] = {}
        self.analyzer_dtype = layout_of(context.pix_fmt, context.width, context.height).dtype

    def run(self, frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        for frame in frames:
            self.analyzer.add(as_numpy(frame, self.analyzer_dtype))
            yield frame
        c = self.config
        self.summary = summarize(
            self.analyzer.rows,
            self.fps,
            blur_threshold=c.blur_threshold,
            duplicate_distance=c.duplicate_distance,
            duplicate_motion=c.duplicate_motion,
            idle_motion=c.idle_motion,
            idle_s=c.idle_s,
            cut_threshold=c.cut_threshold,
        )
        if self.artifacts is not None:
            self.write_parquet(self.artifacts / METRICS_FILE)

    def write_parquet(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows, c = self.analyzer.rows, self.config
        groups = duplicate_groups(rows, c.duplicate_distance, c.duplicate_motion)
        group_of = {f: i for i, g in enumerate(groups) for f in g}
        idle = {
            f for a, b in idle_intervals(rows, self.fps, c.idle_motion, c.idle_s) for f in range(a, b + 1)
        }
        table = pa.table(
            {
                "frame": pa.array([r.frame for r in rows], pa.int32()),
                "time_s": pa.array([r.time_s for r in rows], pa.float64()),
                "sharpness": pa.array([r.sharpness for r in rows], pa.float32()),
                "sharpness_rel": pa.array([r.sharpness_rel for r in rows], pa.float32()),
                "brightness": pa.array([r.brightness for r in rows], pa.float32()),
                "brightness_p5": pa.array([r.brightness_p5 for r in rows], pa.float32()),
                "brightness_p95": pa.array([r.brightness_p95 for r in rows], pa.float32()),
                "underexposed": pa.array([r.underexposed for r in rows], pa.bool_()),
                "blurry": pa.array([r.sharpness_rel < c.blur_threshold for r in rows], pa.bool_()),
                "phash": pa.array([r.phash for r in rows], pa.uint64()),
                "motion": pa.array([r.motion for r in rows], pa.float32()),
                "cut_score": pa.array([r.cut_score for r in rows], pa.float32()),
                "scene_cut": pa.array([r.cut_score > c.cut_threshold for r in rows], pa.bool_()),
                "duplicate_group": pa.array([group_of.get(r.frame) for r in rows], pa.int32()),
                "idle": pa.array([r.frame in idle for r in rows], pa.bool_()),
            }
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            table, path, compression="zstd", row_group_size=ROW_GROUP_ROWS, data_page_size=DATA_PAGE_BYTES
        )

    def report(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "requested": self.config.to_data(exclude={"stage"}),
            "frames_in": len(self.analyzer.rows),
            "frames_out": len(self.analyzer.rows),
            "used": "numpy",
            "summary": self.summary,
        }
