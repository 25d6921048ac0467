"""What the user's command has loaded when it starts the transcode: nothing heavy it does not use.

Every import before ffmpeg starts is wall time while the encoder waits (numpy ~0.13 s, Pillow ~0.05 s
on the 2-core VM). A job with no stages, and one whose stages run inside the transcode's own graph
(a crop, a Lanczos-only upscale), builds its ffmpeg command without them: they load where frames
pass through Python. Checked on the real entrypoint with real ffmpeg: an audit hook notes which
modules are loaded at the moment the transcode's ffmpeg is started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from clips import lavfi_clip

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ENTRY = ROOT / "run_with_config_batch_sync.py"
# (tenacity: ~10 ms, only for the retries of remote stores and a sharded run's input snapshot)
HEAVY = ("numpy", "PIL", "cv2", "torch", "jinja2", "tenacity")

# Runs the entrypoint as `python run_with_config_batch_sync.py ...` does, with a hook that writes, at the
# first ffmpeg started with an input, its arguments and which of HEAVY are loaded.
HOOKED = f"""
import json, os, runpy, sys
seen = []
def hook(event, args):
    if event != "subprocess.Popen" or seen:
        return
    argv = [str(a) for a in (args[1] or [])]
    if argv and os.path.basename(argv[0]) == "ffmpeg" and "-i" in argv:
        seen.append(1)
        with open(os.environ["LOADED_AT_FFMPEG"], "w") as f:
            json.dump({{"argv": argv, "loaded": sorted(m for m in {HEAVY!r} if m in sys.modules)}}, f)
sys.addaudithook(hook)
sys.argv = [{str(ENTRY)!r}, *sys.argv[1:]]
sys.path.insert(0, {str(ROOT)!r})
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def loaded_at_transcode(tmp_path: Path, stages: str) -> tuple[list[str], list[str]]:
    options = ["-c:v", "libx264", "-pix_fmt", "yuv420p"]
    src = lavfi_clip(tmp_path / "in.mp4", "testsrc2=s=320x240:r=25", options, 10)
    cfg = tmp_path / "job.yaml"
    cfg.write_text(
        f"job_id: light\ninputs: [{src}]\noutput: {tmp_path / 'out'}/\nstages: {stages}\n"
        "encode: {codec: libx264, preset: ultrafast}\n"
    )
    record = tmp_path / "loaded.json"
    env = {**os.environ, "LOADED_AT_FFMPEG": str(record)}
    done = subprocess.run(
        [sys.executable, "-c", HOOKED, "--config", str(cfg), "--no-watchdog",
         "--state-dir", str(tmp_path / "s"), "-q"],
        env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "out" / "in" / "in.mp4").is_file()
    seen = json.loads(record.read_text())
    return seen["argv"], seen["loaded"]


@pytest.mark.parametrize(
    ("stages", "in_graph"),
    [
        ("[]", None),
        ("[{crop: {width: 160, height: 120, x: 8, y: 4}}]", "crop=w=160:h=120:x=8:y=4"),
        ("[{upscale: {scale: 2}}]", "zscale=w=640:h=480:filter=lanczos"),
        ("[{crop: {width: 160, height: 120}}, {upscale: {width: 480}}]", "zscale=w=480:h=360:filter=lanczos"),
        ("[{upscale: {scale: 1}}]", "null"),
    ],
)
def test_the_transcode_starts_before_numpy_pillow_or_jinja_load(
    tmp_path: Path, stages: str, in_graph: str | None
) -> None:
    argv, loaded = loaded_at_transcode(tmp_path, stages)
    graph = argv[argv.index("-filter_complex") + 1] if "-filter_complex" in argv else ""
    if in_graph is not None:  # the ffmpeg seen is the transcode that runs the stages, not a frame reader
        assert in_graph in graph, argv
    assert "-f" not in argv or "rawvideo" not in argv  # no pipes
    assert loaded == []


def test_a_job_through_the_pipes_is_seen_loading_numpy(tmp_path: Path) -> None:
    """The hook can tell: ``analyze`` reads frames in Python, so numpy is loaded by the time its
    ffmpeg starts (the stage is built before the reader)."""
    argv, loaded = loaded_at_transcode(tmp_path, "[{analyze: {}}]")
    assert "rawvideo" in argv
    assert "numpy" in loaded
