"""Encoders that keep up without NVENC: more chunk encoders in parallel, or a faster preset.

Measured over the first wave of chunks (one chunk per worker, as the job runs
them anyway): from the stages' first frame to their last (``stages_s``), how
long of that they waited on the encoder's queue (``write_wait_s``), from their
first frame to the encoder done (``encode_s``, its lookahead flush included),
and the CPU the wave used (ffmpeg's decoders and encoders plus this process).
Waiting on the encoder means the encoder is the limit: the stages could have
made ``frames / (stages - wait)`` frames a second, the encoder ``frames / encode``.

The decision, within the cores this process may use (``os.sched_getaffinity``):

- ``keep``: the stages waited on the encoder for less than ``WAIT_SHARE`` of the time.
- ``parallel``: more chunk workers (each with its own encoder) until the
  encoders together match the stages' rate, as far as the cores allow. The
  output's bits do not change (every chunk is encoded with the same settings).
- ``preset``: the cores cannot encode at the stages' rate even in parallel,
  and a faster preset is allowed (``encode.auto_preset``): the slowest preset
  whose estimated CPU cost per frame fits, when the time it saves on the chunks
  left exceeds redoing the parts already made (they are redone, so every part
  of the output has the same settings).

Pure functions; :mod:`batch.job.chunks` measures and applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from batch.config import PRESETS

WAIT_SHARE = 0.10  # the stages waited on the encoder for less than this share of the time: it keeps up
CPU_HEADROOM = 0.85  # share of the cores the encoders may plan to fill (decode, Python, the OS need some)
MAX_WORKERS_PER_GPU = 4  # each chunk worker holds its own model: more per GPU would crowd its memory

# CPU time per frame of each x264/x265 preset relative to medium: an estimate (x264's own
# preset comparisons; the ratios for x265 are similar). Used only to pick a preset, and
# recorded as an estimate.
PRESET_COST: dict[str, float] = {
    "ultrafast": 0.12,
    "superfast": 0.2,
    "veryfast": 0.3,
    "faster": 0.45,
    "fast": 0.6,
    "medium": 1.0,
    "slow": 1.6,
    "slower": 2.8,
    "veryslow": 6.0,
}
assert tuple(PRESET_COST) == PRESETS


@dataclass(frozen=True)
class WaveFigures:
    """What the first wave of chunks measured (seconds summed over its workers, except ``wall_s``)."""

    workers: int  # chunks that ran at once (one per GPU)
    frames: int  # output frames the wave wrote, all workers together
    wall_s: float  # the wave's wall time (start to the last part uploaded)
    stages_s: float  # the stages' first frame asked for to their last frame handed over
    write_wait_s: float  # of which the stages waited on the encoders' queues
    encode_s: float  # the stages' first frame to the encoder done (its lookahead flushed)
    cpu_s: float  # CPU seconds the wave used (ffmpeg children and this process)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "frames": self.frames,
            "wall_s": round(self.wall_s, 3),
            "stages_s": round(self.stages_s, 3),
            "write_wait_s": round(self.write_wait_s, 3),
            "encode_s": round(self.encode_s, 3),
            "cpu_s": round(self.cpu_s, 3),
        }


@dataclass(frozen=True)
class PaceDecision:
    action: Literal["keep", "parallel", "preset"]
    workers: int  # chunk workers for the rest of the input
    preset: str  # the preset for every part of the output
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "workers": self.workers,
            "preset": self.preset,
            "reason": self.reason,
            "figures": self.figures,
        }


def decide(
    wave: WaveFigures,
    *,
    cores: int,
    preset: str,
    may_change_preset: bool,
    chunks_left: int,
    may_add_workers: bool = True,
    cpu_encoder: bool = True,
    preset_kept: str = "set in the config, or encode.auto_preset: false",
) -> PaceDecision:
    """What the rest of the input runs with, and why (figures included for the manifest).

    ``cores``: the CPUs this process may use; ``chunks_left``: chunks not yet made (more
    workers than that would idle); ``cpu_encoder``: False for NVENC (nothing to decide);
    ``preset_kept``: why the preset may not change, for the reason.
    """
    g = max(1, wave.workers)
    cap = g * MAX_WORKERS_PER_GPU if may_add_workers else g
    figures: dict[str, Any] = {"measured": wave.to_dict(), "cores": cores}
    if not cpu_encoder:
        return PaceDecision("keep", g, preset, "the encoder runs on the GPU (NVENC)", figures)
    if wave.frames <= 0 or wave.stages_s <= 0 or wave.encode_s <= 0:
        return PaceDecision("keep", g, preset, "nothing measured (no frames in the first wave)", figures)
    wait = min(max(wave.write_wait_s, 0.0), wave.stages_s)
    share = wait / wave.stages_s
    figures["write_wait_share"] = round(share, 3)
    if share < WAIT_SHARE:
        why = f"the stages waited on the encoder {share:.0%} of the time (< {WAIT_SHARE:.0%}): it keeps up"
        return PaceDecision("keep", g, preset, why, figures)
    stage_fps = wave.frames / max((wave.stages_s - wait) / g, 1e-3)  # the g workers' stages, unhindered
    per_encoder = wave.frames / (wave.encode_s / g) / g  # one encoder, its lookahead flush included
    encoder_fps = per_encoder * g
    cpu_per_frame = max(wave.cpu_s, 0.0) / wave.frames
    budget = cores * CPU_HEADROOM
    cpu_fps = budget / cpu_per_frame if cpu_per_frame > 0 else math.inf  # what the cores can encode
    figures.update(
        stage_fps=round(stage_fps, 2),
        encoder_fps=round(encoder_fps, 2),
        cpu_s_per_frame=round(cpu_per_frame, 4),
        cores_fps=round(cpu_fps, 2) if math.isfinite(cpu_fps) else None,
    )
    want = math.ceil(stage_fps / per_encoder - 1e-9)  # encoders that together match the stages
    fit = max(g, math.floor(cpu_fps / per_encoder)) if math.isfinite(cpu_fps) else want
    workers = max(g, min(want, fit, cap, max(g, chunks_left)))
    reaches = min(workers * per_encoder, cpu_fps)
    figures.update(encoders_wanted=want, encoders_cores_allow=fit, expected_fps=round(reaches, 2))
    short = reaches < stage_fps * (1 - WAIT_SHARE)
    if short and may_change_preset and preset != PRESETS[0]:
        faster = _faster(
            wave, preset, stage_fps, reaches, per_encoder, cpu_fps, want, cap, chunks_left, figures
        )
        if faster is not None:
            return faster
    if workers == g:
        why = (
            f"the encoder is the limit ({encoder_fps:.1f} of {stage_fps:.1f} fps the stages make) "
            "and no more encoders fit"
        )
        if not may_change_preset:
            why += f"; the preset is kept ({preset_kept})"
        elif "preset_not_worth_s" in figures:
            why += "; a faster preset would not pay for redoing the parts made"
        return PaceDecision("keep", g, preset, why, figures)
    why = (
        f"{workers} chunk encoders in parallel instead of {g}: one encodes {per_encoder:.1f} fps, "
        f"the stages make {stage_fps:.1f}; {cores} cores allow {fit}"
    )
    if short and not may_change_preset:
        why += f"; still short, and the preset is kept ({preset_kept})"
    return PaceDecision("parallel", workers, preset, why, figures)


def _faster(
    wave: WaveFigures,
    preset: str,
    stage_fps: float,
    reaches: float,
    per_encoder: float,
    cpu_fps: float,
    want: int,
    cap: int,
    chunks_left: int,
    figures: dict[str, Any],
) -> PaceDecision | None:
    """A faster preset, when the time it saves on the chunks left exceeds redoing the wave's."""
    g = max(1, wave.workers)
    faster = faster_preset(preset, need=stage_fps / reaches)
    factor = PRESET_COST[preset] / PRESET_COST[faster]
    cpu_fast, per_fast = cpu_fps * factor, per_encoder * factor
    fit_fast = max(g, math.floor(cpu_fast / per_fast)) if math.isfinite(cpu_fast) else want
    want_fast = math.ceil(stage_fps / per_fast - 1e-9)
    workers = max(g, min(want_fast, fit_fast, cap, max(g, chunks_left + g)))
    expected = min(workers * per_fast, cpu_fast, stage_fps)
    left = wave.frames / g * chunks_left  # output frames still to make
    keep_s = left / reaches
    switch_s = (left + wave.frames) / expected  # the wave's parts are redone
    if switch_s >= keep_s:
        figures["preset_not_worth_s"] = {"keep": round(keep_s, 1), "switch": round(switch_s, 1)}
        return None
    figures.update(preset_speedup_estimate=round(factor, 2), expected_fps=round(expected, 2))
    cores = figures["cores"]
    why = (
        f"preset {faster} instead of {preset} (an estimated {factor:.1f}x less CPU a frame) with {workers} "
        f"encoders: at {preset} the {cores} cores encode at most {min(reaches, cpu_fps):.1f} fps, the stages "
        f"make {stage_fps:.1f}; the parts already made are redone at {faster} "
        f"(about {switch_s:.0f} s for the rest instead of {keep_s:.0f} s)"
    )
    return PaceDecision("preset", workers, faster, why, figures)


def faster_preset(preset: str, need: float) -> str:
    """The slowest preset estimated at least ``need`` times cheaper than ``preset`` (else the fastest)."""
    for name in reversed(PRESETS[: PRESETS.index(preset)]):
        if PRESET_COST[preset] / PRESET_COST[name] >= need:
            return name
    return PRESETS[0]
