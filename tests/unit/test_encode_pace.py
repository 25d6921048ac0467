"""The encoder pacing decision (batch.job.encode_pace): pure figures in, a decision out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batch.config import PRESETS, parse_config
from batch.job.chunks import fingerprint
from batch.job.encode_pace import MAX_WORKERS_PER_GPU, PaceDecision, WaveFigures, decide, faster_preset
from batch.media.encoder import choose_encoder


def wave(
    *, workers: int = 1, frames: int = 300, wall: float = 10.0, wait: float = 0.0, cpu: float = 10.0
) -> WaveFigures:
    """One worker's stages busy ``wall`` s (``wait`` of it on the encoder), the encoder done at ``wall``."""
    span = wall * workers
    return WaveFigures(
        workers=workers, frames=frames, wall_s=wall, stages_s=span, write_wait_s=wait * workers,
        encode_s=span, cpu_s=cpu,
    )  # fmt: skip


def run(w: WaveFigures, **kw: object) -> PaceDecision:
    args: dict = {"cores": 16, "preset": "medium", "may_change_preset": True, "chunks_left": 20}
    args.update(kw)
    return decide(w, **args)


def test_an_encoder_that_keeps_up_changes_nothing() -> None:
    d = run(wave(wait=0.5))  # 5% of the time waiting
    assert (d.action, d.workers, d.preset) == ("keep", 1, "medium")
    assert "keeps up" in d.reason and d.figures["write_wait_share"] == 0.05


def test_a_slow_encoder_with_idle_cores_gets_parallel_encoders() -> None:
    # 300 frames in 10 s, waiting 7.5 s: the stage makes 120 fps, one encoder 30 fps, 2 cores used of 16
    d = run(wave(wait=7.5, cpu=20.0))
    assert d.action == "parallel" and d.workers == 4 and d.preset == "medium"
    assert d.figures["stage_fps"] == 120 and d.figures["encoder_fps"] == 30
    assert "4 chunk encoders" in d.reason


def test_parallel_encoders_stop_at_the_cores_and_the_chunks_left() -> None:
    d = run(wave(wait=7.5, cpu=20.0), cores=8, may_change_preset=False)  # 8 * 0.85 / (20/300) = 102 fps
    assert (d.action, d.workers) == ("parallel", 3)  # 3 x 30 fps fit, 4 would not
    assert "still short" in d.reason and "preset is kept" in d.reason
    d = run(wave(wait=7.5, cpu=20.0), cores=4, may_change_preset=False)  # 51 fps: one encoder's worth
    assert (d.action, d.workers) == ("keep", 1) and "no more encoders fit" in d.reason
    d = run(wave(wait=7.5, cpu=20.0), chunks_left=2)
    assert d.workers == 2


def test_more_workers_per_gpu_than_the_cap_are_never_asked_for() -> None:
    d = run(wave(wait=9.9, cpu=1.0), cores=512)  # stage 3000 fps, one encoder 30 fps
    assert d.workers == MAX_WORKERS_PER_GPU


def test_cores_that_cannot_keep_up_pick_a_faster_preset_when_allowed() -> None:
    # 8 cores fully used by one encoder: more encoders cannot help; the stages make 4x its rate
    d = run(wave(wait=7.5, cpu=80.0), cores=8)
    assert d.action == "preset"
    assert PRESETS.index(d.preset) < PRESETS.index("medium")
    assert d.figures["preset_speedup_estimate"] >= 1.0 and "redone" in d.reason


def test_a_faster_preset_that_would_not_pay_for_the_redo_is_not_taken() -> None:
    d = run(wave(wait=7.5, cpu=80.0), cores=8, chunks_left=0)  # nothing left to gain on
    assert d.action == "keep" and d.preset == "medium"
    assert "would not pay" in d.reason and d.figures["preset_not_worth_s"]["keep"] == 0


def test_the_encoders_lookahead_flush_counts_against_the_encoder() -> None:
    w = WaveFigures(workers=1, frames=300, wall_s=14, stages_s=10, write_wait_s=5, encode_s=12, cpu_s=10)
    d = run(w)
    assert d.figures["stage_fps"] == 60 and d.figures["encoder_fps"] == 25  # 300 / 5 and 300 / 12
    assert (d.action, d.workers) == ("parallel", 3)


def test_a_preset_the_user_set_is_never_changed() -> None:
    d = run(wave(wait=7.5, cpu=80.0), cores=8, may_change_preset=False)
    assert d.preset == "medium" and d.action != "preset"
    assert "preset is kept" in d.reason


def test_ultrafast_has_nowhere_faster_to_go() -> None:
    d = run(wave(wait=7.5, cpu=80.0), cores=8, preset="ultrafast")
    assert d.preset == "ultrafast" and d.action != "preset"


def test_nvenc_and_empty_waves_decide_nothing() -> None:
    assert run(wave(wait=9.0), cpu_encoder=False).action == "keep"
    assert run(wave(frames=0, wait=9.0)).action == "keep"
    assert run(wave(wall=0.0, wait=0.0)).action == "keep"


def test_no_extra_workers_when_auto_workers_is_off() -> None:
    d = run(wave(wait=7.5, cpu=20.0), may_add_workers=False, may_change_preset=False)
    assert (d.action, d.workers) == ("keep", 1)


def test_a_wait_longer_than_the_wall_does_not_divide_by_zero() -> None:
    d = run(wave(wait=50.0, cpu=5.0))  # clock noise: the wait is capped at the wall time
    assert d.action in ("parallel", "preset") and d.workers >= 1


@given(
    workers=st.integers(1, 8),
    frames=st.integers(0, 10_000),
    wall=st.floats(0, 1e4, allow_nan=False),
    wait=st.floats(0, 1e5, allow_nan=False),
    cpu=st.floats(0, 1e6, allow_nan=False),
    cores=st.integers(1, 256),
    preset=st.sampled_from(PRESETS),
    may=st.booleans(),
    add=st.booleans(),
    left=st.integers(0, 100),
)
def test_any_figures_give_a_sane_decision(
    workers: int, frames: int, wall: float, wait: float, cpu: float, cores: int, preset: str,
    may: bool, add: bool, left: int,
) -> None:  # fmt: skip
    w = wave(workers=workers, frames=frames, wall=wall, wait=wait, cpu=cpu)
    d = decide(w, cores=cores, preset=preset, may_change_preset=may, chunks_left=left, may_add_workers=add)
    assert workers <= d.workers <= workers * MAX_WORKERS_PER_GPU
    if not add:
        assert d.workers == workers
    assert PRESETS.index(d.preset) <= PRESETS.index(preset)
    if not may:
        assert d.preset == preset
    assert (d.action == "preset") == (d.preset != preset)
    assert d.reason and d.to_dict()["figures"] is d.figures


def test_faster_preset_picks_the_slowest_that_is_fast_enough() -> None:
    assert faster_preset("medium", 1.5) == "fast"
    assert faster_preset("medium", 2.0) == "faster"
    assert faster_preset("medium", 2.5) == "veryfast"
    assert faster_preset("medium", 100) == "ultrafast"
    assert faster_preset("slow", 1.0) == "medium"


@pytest.mark.parametrize(
    ("encode", "may"),
    [
        ("{codec: libx264}", True),  # no preset written: the default may change
        ("{codec: libx264, preset: medium}", False),  # written, even as the default: never
        ("{codec: libx264, preset: slow, auto_preset: true}", True),
        ("{codec: libx264, auto_preset: false}", False),
    ],
)
def test_who_may_change_the_preset(encode: str, may: bool) -> None:
    cfg = parse_config(f"inputs: [x]\noutput: o/\nencode: {encode}")
    assert cfg.encode.preset_may_change is may


def test_the_pacing_keys_do_not_change_the_parts_fingerprint() -> None:
    a = parse_config("inputs: [x]\noutput: o/\nencode: {codec: libx264}")
    b = parse_config(
        "inputs: [x]\noutput: o/\nencode: {codec: libx264, auto_preset: true, auto_workers: false}"
    )
    enc = choose_encoder(a.encode)
    assert fingerprint(a, "s", 30, enc) == fingerprint(b, "s", 30, enc)
    c = parse_config("inputs: [x]\noutput: o/\nencode: {codec: libx264, preset: fast}")
    assert fingerprint(c, "s", 30, choose_encoder(c.encode)) != fingerprint(a, "s", 30, enc)


@pytest.mark.parametrize("setting", ["", ", colour_on_device: true", ", colour_on_device: false"])
def test_parts_made_before_colour_on_device_existed_keep_their_fingerprint(setting: str) -> None:
    """The key is new this round; where colour is converted shows in ``pixels`` (the frames' format).
    The figure below was computed by the code before the key existed (a859882): an upgrade must not
    throw away the parts and outputs already in the bucket (an outside review found it did)."""
    cfg = parse_config(f"inputs: [x]\noutput: o/\nencode: {{codec: libx264{setting}}}")
    got = fingerprint(cfg, "s", 30, choose_encoder(cfg.encode), "yuv420p/rgb24")
    assert got == "760c263c5656e0fab2877091ddec115904a515b7203d8001730c9ec0a060d29d"
