"""Plots for the page, made by the job only: ``analyze``'s metrics over time.

matplotlib is imported when a plot is drawn (never at import: start-up time
matters, and the watchdog must never load it). The Agg canvas is used
directly, without pyplot's global state. However many frames the metrics hold,
at most ``MAX_POINTS`` per line are drawn (each point the min/max/mean of its
bin, so a single spike still shows), so the PNG stays a fixed, small size.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np

MAX_POINTS = 1500
MAX_MARKS = 400  # cut lines / duplicate spans drawn at most (the rest are counted in the title)
SIZE_IN, DPI = (10.0, 6.0), 90
SERIES = (
    ("sharpness_rel", "sharpness (relative)"),
    ("brightness", "brightness (0-255)"),
    ("motion", "motion"),
)


def bins(values: np.ndarray, points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(low, mean, high) of ``values`` in at most ``points`` equal bins (NaN ignored)."""
    n = len(values)
    if n <= points:
        return values, values, values
    edges = np.linspace(0, n, points + 1).astype(np.int64)
    low = np.fmin.reduceat(values, edges[:-1])
    high = np.fmax.reduceat(values, edges[:-1])
    sums = np.add.reduceat(np.nan_to_num(values), edges[:-1])
    return low, sums / np.diff(edges), high


def _spans(groups: np.ndarray, times: np.ndarray) -> list[tuple[float, float]]:
    """(start, width) in seconds of each duplicate group."""
    valid = ~np.isnan(groups)
    if not valid.any():
        return []
    ids, t = groups[valid].astype(np.int64), times[valid]
    order = np.argsort(ids, kind="stable")
    ids, t = ids[order], t[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    first = np.minimum.reduceat(t, starts)
    last = np.maximum.reduceat(t, starts)
    return [(float(a), float(max(b - a, 1e-3))) for a, b in zip(first, last, strict=True)]


def analyze_plot(metrics: Path, title: str = "") -> bytes:
    """A PNG: sharpness, brightness and motion over time; cuts (red lines) and duplicate groups (shaded)."""
    import pyarrow.parquet as pq
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = ["time_s", *(s for s, _ in SERIES), "scene_cut", "duplicate_group"]
    table = pq.read_table(metrics, columns=names)
    col: dict[str, Any] = {
        n: table.column(n).to_numpy(zero_copy_only=False).astype(np.float64) for n in names
    }
    times = col["time_s"]
    if len(times) == 0:
        raise ValueError(f"{metrics.name} has no rows")
    cuts = times[col["scene_cut"] > 0]
    spans = _spans(col["duplicate_group"], times)
    fig = Figure(figsize=SIZE_IN, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(SERIES), 1, sharex=True)
    t_low, t_mid, _ = bins(times)
    for ax, (name, label) in zip(axes, SERIES, strict=True):
        low, mean, high = bins(col[name])
        ax.fill_between(t_low, low, high, color="tab:blue", alpha=0.25, linewidth=0)
        ax.plot(t_mid, mean, color="tab:blue", linewidth=0.8)
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(labelsize=8)
        if spans:
            ax.broken_barh(spans[:MAX_MARKS], (0, 1), transform=ax.get_xaxis_transform(), color="tab:orange",
                           alpha=0.3)  # fmt: skip
        if len(cuts):
            ax.vlines(
                cuts[:MAX_MARKS], 0, 1, transform=ax.get_xaxis_transform(), color="tab:red", linewidth=0.8
            )
    axes[-1].set_xlabel("time (s)", fontsize=8)
    more = f"; first {MAX_MARKS} drawn" if len(cuts) > MAX_MARKS or len(spans) > MAX_MARKS else ""
    fig.suptitle(
        f"{title}{' - ' if title else ''}{len(times)} frames, {len(cuts)} cuts (red), "
        f"{len(spans)} duplicate groups (orange){more}",
        fontsize=9,
    )
    out = BytesIO()
    fig.savefig(out, format="png", dpi=DPI)
    return out.getvalue()
