"""One ffprobe per input, end to end: the job command on three local clips runs ffprobe three
times (once per input, none for the outputs), and each input after the first is probed while
the one before it is being transcoded; nvidia-smi is not run (no input is cut into chunks).

Real ffmpeg and ffprobe behind a logging shim on PATH (the shim only records and execs them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from clips import count_frames, make_clip

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SHIM = """#!/bin/sh
echo "$(date +%s.%N) start {name} $(basename "$(eval echo \\${{$#}})")" >> {log}
{real} "$@"
rc=$?
echo "$(date +%s.%N) end {name}" >> {log}
exit $rc
"""


def shims(where: Path, log: Path) -> dict[str, str]:
    where.mkdir()
    for name in ("ffmpeg", "ffprobe"):
        real = shutil.which(name)
        assert real is not None
        (where / name).write_text(SHIM.format(name=name, log=log, real=real))
        (where / name).chmod(0o755)
    # no GPU here: the shim only records that the GPU count was asked for
    (where / "nvidia-smi").write_text(f'#!/bin/sh\necho "0 start nvidia-smi x" >> {log}\nexit 9\n')
    (where / "nvidia-smi").chmod(0o755)
    return {**os.environ, "PATH": f"{where}:{os.environ['PATH']}"}


def test_three_inputs_take_three_probes_each_started_during_the_transcode_before(
    tmp_path: Path, clip_dir: Path
) -> None:
    clips = [make_clip(clip_dir / f"p{k}.mp4", frames=45 + 15 * k) for k in range(3)]
    log = tmp_path / "calls.log"
    env = shims(tmp_path / "bin", log)
    cfg = tmp_path / "job.yaml"
    out = tmp_path / "out"
    cfg.write_text(
        f"job_id: probes\ninputs: {json.dumps([str(c) for c in clips])}\noutput: {out}/\n"
        "encode: {codec: libx264, preset: ultrafast}\n"
    )
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run_with_config_batch_sync.py"), "--config", str(cfg), "--no-watchdog",
         "--state-dir", str(tmp_path / "state"), "-q"],
        capture_output=True, text=True, env=env, timeout=240, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    calls = [line.split() for line in log.read_text().splitlines()]
    assert not [c for c in calls if c[2] == "nvidia-smi"]  # no chunk workers to count GPUs for
    probed = [c[3] for c in calls if c[1:3] == ["start", "ffprobe"]]
    assert sorted(probed) == sorted(c.name for c in clips)  # once each, and never an output
    # the ffprobe of input k+1 starts before input k's transcode ends
    transcodes = [(float(c[0]), c) for c in calls if c[2] == "ffmpeg"]
    ends = [t for t, c in transcodes if c[1] == "end"]
    starts = {c[3]: float(c[0]) for c in calls if c[1:3] == ["start", "ffprobe"]}
    assert len(ends) == 3
    for k in (1, 2):
        assert starts[clips[k].name] < ends[k - 1]
    manifest = json.loads((out / "manifest.json").read_text())
    for record, clip in zip(manifest["inputs"], clips, strict=True):
        assert record["status"] == "succeeded"
        assert record["media_in"]["frame_count"] == count_frames(clip)
        video = out / clip.stem / f"{clip.stem}.mp4"
        assert count_frames(video) == record["media_out"]["frame_count"] == record["media_in"]["frame_count"]
