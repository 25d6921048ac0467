"""A hang outside the frame loop is a stall too (outside review: a stopped join ffmpeg was caught only
by max_runtime_s, six hours by default). The Watchdog's own
stall rule against status.json files the runner's Tracker writes; the clock is the real one, with a
short stall_s."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from batch.contracts import STATUS, state_file
from batch.job.progress import Tracker
from batch.providers.local import LocalProvider
from batch.watchdog.watch import Watchdog, WatchdogSettings


def watchdog(tmp_path: Path) -> Watchdog:
    settings = WatchdogSettings(
        state_dir=tmp_path, provider=LocalProvider(tmp_path), output=None, stall_s=0.4
    )
    return Watchdog(settings)


def beat(tmp_path: Path, tracker: Tracker) -> None:
    state_file(tmp_path, STATUS).write_text(json.dumps(tracker.snapshot() | {"t": time.monotonic()}))


@pytest.mark.parametrize("phase", ["joining", "processing"])
def test_a_phase_with_progress_that_shows_none_is_stalled(phase: str, tmp_path: Path) -> None:
    tracker = Tracker("j", 1, log_every_s=60)
    tracker.set_phase(phase)
    wd = watchdog(tmp_path)
    stalled = None
    for _ in range(12):  # the heartbeat goes on (its own thread), the phase does not move
        beat(tmp_path, tracker)
        stalled = wd._stalled_or_over_budget()
        if stalled:
            break
        time.sleep(0.1)
    assert stalled is not None and stalled[0] == "stalled" and f"in phase {phase}" in stalled[1]


def test_bytes_that_move_keep_a_transfer_alive(tmp_path: Path) -> None:
    tracker = Tracker("j", 1, log_every_s=60)
    tracker.set_phase("uploading")
    wd = watchdog(tmp_path)
    with tracker.transfer("upload", "x.mp4") as progress:
        for k in range(12):
            progress((k + 1) * 1000, 20000)
            beat(tmp_path, tracker)
            assert wd._stalled_or_over_budget() is None
            time.sleep(0.1)


@pytest.mark.parametrize("phase", ["hashing", "uploading", "downloading", "preview"])
def test_phases_without_progress_of_their_own_are_left_to_the_heartbeat(phase: str, tmp_path: Path) -> None:
    """A server-side copy of a large earlier output, or a hash of a large input, shows no progress:
    left to the heartbeat, the SDKs' timeouts and max_runtime_s, not taken for a hang."""
    tracker = Tracker("j", 1, log_every_s=60)
    tracker.set_phase(phase)
    wd = watchdog(tmp_path)
    for _ in range(8):
        beat(tmp_path, tracker)
        assert wd._stalled_or_over_budget() is None
        time.sleep(0.1)
