"""The ladder's deadline estimate leaves out warm-up (a first batch, a compilation), and only that."""

from __future__ import annotations

import time

import pytest

from batch.errors import StageError
from batch.stages import ladder as ladder_mod
from batch.stages.ladder import Ladder, deadline_after


class Rung:
    """Takes ``slow`` seconds on the calls listed in ``slow_calls``, 1 ms on the others."""

    def __init__(self, slow: float, slow_calls: set[int], flag_warmup: bool = False) -> None:
        self.slow, self.slow_calls, self.flag_warmup = slow, slow_calls, flag_warmup
        self.calls = 0
        self.warming_up = False

    def work(self) -> int:
        self.calls += 1
        slow = self.calls in self.slow_calls
        self.warming_up = slow and self.flag_warmup  # e.g. torch.compile ran for a new shape
        time.sleep(self.slow if slow else 0.001)
        return self.calls


def _ladder(rung: Rung, total: int, left_s: float) -> Ladder[Rung]:
    return Ladder(
        "interpolate",
        [("rife", lambda: rung), ("blend", lambda: Rung(0, set()))],
        total,
        deadline_after(left_s),
    )


@pytest.fixture(autouse=True)
def _estimate_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ladder_mod, "ESTIMATE_AFTER_S", 0.0)


def test_a_slow_first_batch_does_not_refuse_the_rung() -> None:
    rung = Rung(0.6, {1})  # the first call compiles / autotunes: 0.6 s; 200 frames at 1 ms fit in 3 s
    ladder = _ladder(rung, total=200, left_s=3.0)
    for _ in range(5):
        ladder.run(lambda r: r.work())
    step = ladder.steps[0]
    assert (step.rung, step.status) == ("rife", "used") and "within the limit" in (step.reason or "")
    assert step.warmup_seconds >= 0.6 and step.to_dict()["warmup_seconds"] >= 0.6
    # counted in, the first call alone would have projected 0.6 s x 199 frames, far past 3 s


def test_a_later_unit_the_rung_calls_warm_up_is_left_out_too() -> None:
    rung = Rung(0.6, {3}, flag_warmup=True)  # a new batch shape recompiles on the 3rd call
    ladder = _ladder(rung, total=200, left_s=3.0)
    for _ in range(2):
        ladder.run(lambda r: r.work())
    ladder.steps[0].reason = None  # (the estimate is made once; look again after the slow unit)
    for _ in range(3):
        ladder.run(lambda r: r.work())
    assert ladder.steps[0].status == "used"


def test_a_rung_slow_on_every_unit_is_still_refused() -> None:
    rung = Rung(0.05, set(range(1, 100)))  # 50 ms a frame: 1000 frames need 50 s, 3 s are left
    ladder = _ladder(rung, total=1000, left_s=3.0)
    ladder.run(lambda r: r.work())
    assert ladder.steps[0].status == "used"  # the first unit alone decides nothing
    ladder.run(lambda r: r.work())
    assert ladder.steps[0].status == "refused" and "(after warm-up)" in (ladder.steps[0].reason or "")
    ladder.run(lambda r: r.work())
    assert ladder.steps[1].rung == "blend"


def test_refused_with_no_rung_left_is_a_stage_error() -> None:
    rung = Rung(0.05, set(range(1, 100)))
    ladder: Ladder[Rung] = Ladder("upscale", [("model", lambda: rung)], 1000, deadline_after(3.0))
    ladder.run(lambda r: r.work())
    with pytest.raises(StageError, match="would take too long"):
        ladder.run(lambda r: r.work())


def test_the_next_rung_is_built_once_the_failed_units_objects_are_gone() -> None:
    """A rung gives up with the unit's objects in its exception's traceback (SAM2 raises from inside
    its own ``except``): the next rung, which loads its model onto the same GPU, is built after they
    are freed (by reference counting: the cyclic GC is off here)."""
    import gc
    import weakref

    from batch.errors import RungUnavailable

    class Held:
        """Stands for the failed unit's tensors."""

    refs: list[weakref.ref[Held]] = []
    alive_when_built: list[bool] = []

    def gives_up(_: object) -> int:
        held = Held()
        refs.append(weakref.ref(held))
        raise RungUnavailable("out of memory at batch 1 on cuda")

    def next_rung() -> Rung:
        alive_when_built.append(any(r() is not None for r in refs))
        return Rung(0, set())

    rungs = [("rife", lambda: object()), ("blend", next_rung)]
    ladder: Ladder[object] = Ladder("interpolate", rungs, 10, None)
    gc.disable()
    try:
        assert ladder.run(lambda r: r.work() if isinstance(r, Rung) else gives_up(r)) == 1
    finally:
        gc.enable()
    assert alive_when_built == [False]
    assert [(s.rung, s.status) for s in ladder.steps] == [("rife", "failed"), ("blend", "used")]


def _outside(rungs: int, total: int, left_s: float) -> Ladder[Rung]:
    """A ladder whose first rung runs elsewhere (ffmpeg's graph: Stage.graph_filter)."""
    return Ladder("upscale", [("lanczos", lambda: Rung(0, set()))] * rungs, total, deadline_after(left_s))


def test_work_in_the_transcode_is_paced_from_its_first_frames_out() -> None:
    """The transcode's first frames come late (ffmpeg's start, the encoder's lookahead); the estimate
    takes the steady pace after them: 100 frames in 2 s, 890 left, 18 s of 30."""
    ladder = _outside(1, total=1000, left_s=30.0)
    ladder.paced_outside(10, 3.0)
    ladder.paced_outside(110, 5.0)
    (step,) = ladder.steps
    assert "within the limit" in (step.reason or "")
    # counted from the start, 110 frames in 5 s would have projected 40 s for the 890 left: refused
    ladder.ran_outside(1000, backend=None)
    assert "seconds" not in step.to_dict() and "warmup_seconds" not in step.to_dict()
    assert step.to_dict()["frames"] == 1000


@pytest.mark.parametrize("rungs", [1, 2])
def test_a_transcode_too_slow_for_the_deadline_fails_early(rungs: int) -> None:
    """No other rung can take over a transcode under way: past the deadline the stage fails."""
    ladder = _outside(rungs, total=1000, left_s=30.0)
    ladder.paced_outside(10, 1.0)
    with pytest.raises(StageError, match="rung lanczos would take too long"):
        ladder.paced_outside(20, 3.0)  # 5 frames/s: 196 s for the 980 left
