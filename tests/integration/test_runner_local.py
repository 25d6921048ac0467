"""The entrypoint end to end on local files: good and bad inputs in one batch.

Each bad input gets one clear error, a failure entry in the manifest and the
documented exit code, while the other inputs still complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from clips import count_frames, make_clip, video_duration

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ENTRY = ROOT / "run_with_config_batch_sync.py"


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "CONFIG_URL"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, str(ENTRY), "--no-watchdog", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or ROOT,
        timeout=240,
    )


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def bad_inputs(tmp_path: Path, small_clip: Path, clip_dir: Path) -> dict[str, Path]:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "readme.mp4"
    text.write_text("not a video\n" * 50)
    full = make_clip(clip_dir / "tocut.mp4", frames=60, extra=["-movflags", "+faststart"])
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.6)])
    return {"missing": tmp_path / "nope.mp4", "empty": empty, "text": text, "truncated": cut}


def test_batch_with_bad_inputs_completes_the_good_ones(
    tmp_path: Path, small_clip: Path, bad_inputs: dict[str, Path]
) -> None:
    out = tmp_path / "out"
    inputs = [
        bad_inputs["missing"],
        small_clip,
        bad_inputs["empty"],
        bad_inputs["text"],
        bad_inputs["truncated"],
    ]
    cfg = write_config(
        tmp_path / "job.yaml",
        f"""
job_id: mixed
inputs: {json.dumps([str(p) for p in inputs])}
stages: [{{interpolate: {{factor: 2}}}}]
encode: {{codec: libx264, preset: ultrafast}}
output: {out}/
""",
    )
    proc = run_cli("--config", str(cfg), "--dry-run", "--state-dir", str(tmp_path / "state"))
    assert proc.returncode == 1, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["schema"] == "batch-manifest/1"
    assert manifest["status"] == "partial" and manifest["exit_code"] == 1
    by_status = [(r["status"], (r["error"] or {}).get("type")) for r in manifest["inputs"]]
    assert by_status == [
        ("failed", "object_not_found"),
        ("succeeded", None),
        ("failed", "input_empty"),
        ("failed", "not_a_video"),
        ("failed", "video_truncated"),
    ]
    for r in manifest["inputs"]:
        if r["error"]:
            assert r["error"]["hint"], r  # every error says how to fix it
    good = manifest["inputs"][1]
    video = out / "small" / "small.mp4"
    assert good["outputs"][0]["key"] == "small/small.mp4"
    assert good["outputs"][0]["size"] == video.stat().st_size
    assert count_frames(video) == 60 == good["media_out"]["frame_count"]
    assert abs(video_duration(video) - 1.0) <= 1 / 60 + 1e-3
    assert good["stages"][0]["used"] == "blend"
    assert good["encode"]["used"] == "libx264"
    pixels = good["encode"]["pixels"]  # what the output kept of the source's picture
    assert (pixels["source"], pixels["output"], pixels["alpha"], pixels["steps"]) == (
        "yuv420p",
        "yuv420p",
        "none",
        [],
    )
    assert good["media_out"]["pix_fmt"] == "yuv420p"
    # one line per bad input on stderr, naming the file
    for name in ("nope.mp4", "empty.mp4", "readme.mp4", "cut.mp4"):
        assert sum(name in line and "ERROR" in line for line in proc.stderr.splitlines()) == 1, name
    assert (tmp_path / "state" / "manifest.json").exists()
    status = json.loads((out / "status.json").read_text())
    assert status["phase"] == "partial" and status["input_count"] == 5


def test_malformed_config_fails_with_exit_2_and_a_failure_manifest(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "broken.yaml", "inputs: [a.mp4\noutput: out/\n")
    proc = run_cli("--config", str(cfg), "--state-dir", str(tmp_path / "state"))
    assert proc.returncode == 2
    assert "not valid YAML or JSON at line" in proc.stderr
    manifest = json.loads((tmp_path / "state" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["exit_code"] == 2
    assert manifest["errors"][0]["type"] == "config_invalid"


def test_config_with_several_errors_lists_them_all(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "bad.yaml",
        "inputs: []\nstages: [{interpolate: {factor: 0}}]\nencode: {crf: 80}\noutput: o/\nextra: 1\n",
    )
    proc = run_cli("--config", str(cfg), "--validate")
    assert proc.returncode == 2
    for needle in (
        "inputs:",
        "stages.0.interpolate.factor",
        "encode.crf",
        "extra: unknown key",
        "4 problem(s)",
    ):
        assert needle in proc.stderr, needle


def test_validate_prints_the_resolved_config(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "ok.yaml", "inputs: [a.mp4]\noutput: o\nstages: [{interpolate: {fps: 60}}]\n"
    )
    proc = run_cli("--config", str(cfg), "--validate")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["output"] == "o/" and data["stages"][0] == {
        "stage": "interpolate",
        "factor": None,
        "fps": "60",
        "model": None,
        "ladder": ["blend", "duplicate"],  # the default without a model
        "batch": 8,
        "precision": "auto",
        "flow_scale": 1.0,
        "scene_threshold": 0.3,
        "dedupe": False,
        "dedupe_threshold": 0.5,
        "compile": "none",  # torch.compile for model rungs (off by default)
    }
    assert data["job_id"].startswith("job-")


def test_config_url_from_the_environment_and_missing_config(tmp_path: Path, small_clip: Path) -> None:
    cfg = write_config(
        tmp_path / "env.yaml",
        f"inputs: [{small_clip}]\noutput: {tmp_path / 'o'}\nencode: {{codec: libx264, preset: ultrafast}}\n",
    )
    proc = run_cli("--state-dir", str(tmp_path / "s"), env={"CONFIG_URL": f"file://{cfg}"})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o" / "small" / "small.mp4").exists()

    proc = run_cli()
    assert proc.returncode == 2 and "no config given" in proc.stderr
    proc = run_cli("--config", str(tmp_path / "absent.yaml"), "--state-dir", str(tmp_path / "s2"))
    assert proc.returncode == 2 and "config not found" in proc.stderr


def test_a_rerun_archives_the_earlier_manifest(tmp_path: Path, small_clip: Path) -> None:
    out = tmp_path / "o"
    cfg = write_config(
        tmp_path / "j.yaml",
        f"inputs: [{small_clip}]\noutput: {out}\nencode: {{codec: libx264, preset: ultrafast}}\n",
    )
    for _ in range(2):
        assert run_cli("--config", str(cfg), "--state-dir", str(tmp_path / "s")).returncode == 0
    archived = list((out / "manifests").glob("manifest.*.json"))
    assert len(archived) == 1
    assert json.loads(archived[0].read_text())["status"] == "succeeded"


def test_prefix_input_takes_every_video_under_it(tmp_path: Path, clip_dir: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "a.mp4", frames=10)
    make_clip(src / "b.mkv", frames=12, audio=False)
    (src / "notes.txt").write_text("ignored")
    out = tmp_path / "o"
    cfg = write_config(
        tmp_path / "j.yaml",
        f"inputs: [{src}/]\noutput: {out}\nencode: {{codec: libx264, preset: ultrafast}}\n",
    )
    proc = run_cli("--config", str(cfg), "--state-dir", str(tmp_path / "s"))
    assert proc.returncode == 0, proc.stderr
    assert count_frames(out / "a" / "a.mp4") == 10
    assert count_frames(out / "b" / "b.mp4") == 12


def test_inputs_sharing_a_stem_never_share_an_output(tmp_path: Path) -> None:
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        make_clip(tmp_path / sub / "clip.mp4", frames=5, audio=False)
    make_clip(tmp_path / "clip-2.mp4", frames=6, audio=False)
    out = tmp_path / "o"
    inputs = [tmp_path / "x" / "clip.mp4", tmp_path / "y" / "clip.mp4", tmp_path / "clip-2.mp4"]
    cfg = write_config(
        tmp_path / "j.yaml",
        f"inputs: {json.dumps([str(p) for p in inputs])}\noutput: {out}\n"
        "encode: {codec: libx264, preset: ultrafast}\n",
    )
    assert run_cli("--config", str(cfg), "--state-dir", str(tmp_path / "s")).returncode == 0
    manifest = json.loads((out / "manifest.json").read_text())
    keys = [r["outputs"][0]["key"] for r in manifest["inputs"]]
    assert len(set(keys)) == 3
    assert keys[2] == "clip-2/clip-2.mp4"  # an input keeps its own stem
    for r in manifest["inputs"]:
        path = out / r["outputs"][0]["key"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == r["outputs"][0]["sha256"]


def test_directory_input_and_secrets_in_config(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    cfg = write_config(
        tmp_path / "j.yaml",
        f"inputs: [{tmp_path / 'folder'}]\noutput: {tmp_path / 'o'}\n"
        "storage: {endpoint_url: 'https://AKIAUSER:TOPSECRET@s3.example.com'}\n"
        "instance: {provider: command, command: 'curl -H \"Authorization: Bearer TOKEN123\" x'}\n",
    )
    proc = run_cli("--config", str(cfg), "--state-dir", str(tmp_path / "s"))
    assert proc.returncode == 1
    manifest_text = (tmp_path / "o" / "manifest.json").read_text()
    manifest = json.loads(manifest_text)
    assert "is a directory" in manifest["inputs"][0]["error"]["message"]
    assert "end the URL with '/'" in manifest["inputs"][0]["error"]["hint"]
    validate = run_cli("--config", str(cfg), "--validate")
    for text in (manifest_text, proc.stderr, validate.stdout):
        assert "TOPSECRET" not in text and "TOKEN123" not in text


def test_state_dir_that_is_a_file_still_uploads_the_manifest(tmp_path: Path, small_clip: Path) -> None:
    state = tmp_path / "state-file"
    state.write_text("in the way")
    out = tmp_path / "o"
    cfg = write_config(
        tmp_path / "j.yaml",
        f"inputs: [{small_clip}]\noutput: {out}\nencode: {{codec: libx264, preset: ultrafast}}\n",
    )
    proc = run_cli("--config", str(cfg), "--state-dir", str(state))
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr.split("internal error")[0]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["exit_code"] == 4 and manifest["inputs"][0]["error"]["type"] == "internal"


def test_a_preview_that_cannot_be_made_leaves_a_note_not_a_failed_input(
    tmp_path: Path, small_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The preview is a courtesy: the video was made and checked, so the input succeeds."""
    from batch.job import runner

    def broken(*_a: object, **_k: object) -> Path:
        raise OSError("no space for the preview")  # as PIL would raise on a full disk

    monkeypatch.setattr(runner, "make_preview", broken)
    cfg = tmp_path / "job.yaml"
    cfg.write_text(f"job_id: pv\ninputs: [{small_clip}]\noutput: {tmp_path / 'out'}/\n")
    assert runner.run_job(str(cfg), runner.RunOptions(dry_run=True, state_dir=tmp_path / "state")) == 0
    record = json.loads((tmp_path / "out" / "manifest.json").read_text())["inputs"][0]
    assert record["status"] == "succeeded"
    assert "no preview image: frames could not be read back" in record["notes"]
    assert [o["kind"] for o in record["outputs"]] == ["video"]
