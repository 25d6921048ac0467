"""Model stages end to end: the CLI on a real clip with RIFE then a Real-ESRGAN compact model.

Weights are random, written in the official layouts (tests/model_weights.py);
torch runs on the CPU, so the CUDA rungs are recorded as unavailable and the
``-cpu`` rungs named in the ladders do the work.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clips import count_frames, make_clip, video_duration, video_stream
from model_weights import compact_shapes, sha256_of, write_rife4, write_sr
from test_runner_local import run_cli, write_config

pytestmark = pytest.mark.integration


@pytest.fixture
def weights(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    rife_path, sr_path = tmp_path / "flownet.pkl", tmp_path / "realesr-compact.pth"
    write_rife4(rife_path, "4.22-lite")
    write_sr(sr_path, compact_shapes(), "params")
    return {"rife": (rife_path, sha256_of(rife_path)), "sr": (sr_path, sha256_of(sr_path))}


def run_job(tmp_path: Path, clip: Path, body: str) -> Path:
    """The CLI on ``clip`` with ``body`` (YAML: stages, encode); it must succeed. Returns the output dir."""
    out = tmp_path / "out"
    cfg = write_config(tmp_path / "job.yaml", f"inputs: [{clip}]\noutput: {out}\n{body}")
    result = run_cli("--config", str(cfg), env={"WEIGHTS_DIR": str(tmp_path / "weights")})
    assert result.returncode == 0, result.stderr
    return out


def test_rife_then_upscale_on_the_cpu_rungs(tmp_path: Path, weights: dict[str, tuple[Path, str]]) -> None:
    clip = make_clip(tmp_path / "in.mp4", size="96x64", frames=12)
    (rife_path, rife_sha), (sr_path, sr_sha) = weights["rife"], weights["sr"]
    out = run_job(
        tmp_path,
        clip,
        f"""stages:
  - interpolate:
      factor: 2
      model: {{url: "{rife_path}", sha256: {rife_sha}}}
      ladder: [rife, rife-cpu, blend]
      batch: 4
  - upscale: {{scale: 2, model: {{url: "{sr_path}", sha256: {sr_sha}}}, ladder: [model, model-cpu, lanczos]}}
encode: {{preset: ultrafast}}
""",
    )
    video = out / "in" / "in.mp4"
    assert count_frames(video) == 24
    stream = video_stream(video)
    assert (stream["width"], stream["height"]) == (192, 128)
    assert abs(video_duration(video) - 0.4) < 1 / 60 + 0.002
    manifest = json.loads((out / "manifest.json").read_text())
    interp, up = manifest["inputs"][0]["stages"]
    assert interp["used"] == "rife-cpu" and up["used"] == "model-cpu"
    assert "no CUDA device" in interp["steps"][0]["reason"] and "no CUDA device" in up["steps"][0]["reason"]
    # the interpolated frames stay float tensors into the upscaler: one uint8 conversion, at the end
    assert interp["steps"][1]["backend"]["hands_on"] == "float tensors on cpu"
    assert up["steps"][1]["backend"]["hands_on"] == "uint8"
    assert interp["steps"][1]["backend"]["version"] == "4.22-lite"
    assert (interp["frames_out"], up["frames_in"]) == (24, 24)
    # the config copy in the manifest names the weights by checksum
    assert manifest["config"]["stages"][0]["model"]["sha256"] == rife_sha


def test_a_10_bit_source_reaches_the_models_and_the_output_at_16_bits(
    tmp_path: Path, weights: dict[str, tuple[Path, str]]
) -> None:
    clip = make_clip(
        tmp_path / "in.mkv", size="64x48", frames=3, codec="ffv1", pix_fmt="yuv420p10le", audio=False
    )
    (rife_path, rife_sha), (sr_path, sr_sha) = weights["rife"], weights["sr"]
    out = run_job(
        tmp_path,
        clip,
        f"""stages:
  - interpolate: {{factor: 2, model: {{url: "{rife_path}", sha256: {rife_sha}}}, ladder: [rife-cpu]}}
  - upscale: {{scale: 2, model: {{url: "{sr_path}", sha256: {sr_sha}}}, ladder: [model-cpu]}}
encode: {{codec: libx265, preset: ultrafast}}
""",
    )
    video = out / "in" / "in.mp4"
    assert count_frames(video) == 6
    assert video_stream(video)["pix_fmt"] == "yuv420p10le"
    record = json.loads((out / "manifest.json").read_text())["inputs"][0]
    assert record["encode"]["pixels"]["frames"] == "rgb48le"
    interp, up = record["stages"]
    assert interp["steps"][0]["backend"]["hands_on"] == "float tensors on cpu"
    assert up["steps"][0]["backend"]["hands_on"] == "uint16"


def test_missing_weights_fall_back_and_say_why(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "in.mp4", size="64x48", frames=6, audio=False)
    out = run_job(
        tmp_path,
        clip,
        f"""stages:
  - interpolate:
      factor: 2
      model: {{url: "{tmp_path}/nowhere/flownet.pkl", sha256: "{"ab" * 32}"}}
      ladder: [rife-cpu, blend]
""",
    )
    assert count_frames(out / "in" / "in.mp4") == 12
    step = json.loads((out / "manifest.json").read_text())["inputs"][0]["stages"][0]["steps"][0]
    assert step["rung"] == "rife-cpu" and step["status"] == "unavailable"
    assert "not in the cache" in step["reason"] and "could not be fetched" in step["reason"]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("rife-4.99", "unknown model 'rife-4.99'"),
        ("sam2.1-hiera-tiny", "is a sam2 model; this stage needs a rife model"),
    ],
)
def test_a_bad_model_name_is_a_config_error(
    tmp_path: Path, small_clip: Path, model: str, message: str
) -> None:
    cfg = write_config(
        tmp_path / "job.yaml",
        f"inputs: [{small_clip}]\noutput: {tmp_path}/out\n"
        f"stages: [{{interpolate: {{factor: 2, model: {model}}}}}]\n",
    )
    result = run_cli("--config", str(cfg))
    assert result.returncode == 2
    assert message in result.stderr and "stages.0.interpolate.model" in result.stderr


def test_segment_job_uploads_masks_and_lists_them(tmp_path: Path) -> None:
    """SAM 2.1 tiny with random weights at 256 px (BATCH_SAM2_IMAGE_SIZE) on the cpu rung, via the CLI."""
    import torch
    from sam2.build_sam import build_sam2_video_predictor

    torch.manual_seed(0)
    ckpt = tmp_path / "sam2_tiny.pt"
    model = build_sam2_video_predictor("configs/sam2.1/sam2.1_hiera_t.yaml", ckpt_path=None, device="cpu")
    torch.save({"model": model.state_dict()}, ckpt)
    clip = make_clip(tmp_path / "in.mp4", size="96x64", frames=5)
    out = tmp_path / "out"
    cfg = write_config(
        tmp_path / "job.yaml",
        f"""
inputs: [{clip}]
output: {out}
stages:
  - segment:
      model: {{url: "{ckpt}", sha256: {sha256_of(ckpt)}}}
      objects:
        - {{id: 7, frame: 0, points: [[40, 30]], labels: [1]}}
        - {{id: 9, frame: 1, box: [5, 5, 30, 40]}}
      window: 3
      ladder: [cuda, cpu]
encode: {{preset: ultrafast}}
""",
    )
    env = {"WEIGHTS_DIR": str(tmp_path / "weights"), "BATCH_SAM2_IMAGE_SIZE": "256"}
    result = run_cli("--config", str(cfg), env=env)
    assert result.returncode == 0, result.stderr
    assert count_frames(out / "in" / "in.mp4") == 5  # frames pass through unchanged in number
    import pyarrow.parquet as pq

    table = pq.read_table(out / "in" / "masks.parquet")
    assert table.num_rows == 10 and sorted(set(table.column("object_id").to_pylist())) == [7, 9]
    record = json.loads((out / "manifest.json").read_text())["inputs"][0]
    assert [o["kind"] for o in record["outputs"]] == ["video", "preview", "masks"]
    stage = record["stages"][0]
    assert stage["used"] == "cpu" and "no CUDA" in stage["steps"][0]["reason"]


def test_a_stage_that_cannot_finish_in_time_fails_early_and_says_why(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "in.mp4", size="320x240", frames=240, audio=False)
    out = tmp_path / "out"
    cfg = write_config(
        tmp_path / "job.yaml",
        f"inputs: [{clip}]\noutput: {out}\nstages: [{{upscale: {{scale: 4}}}}]\n"
        "limits: {max_runtime_s: 1}\nencode: {preset: ultrafast}\n",
    )
    result = run_cli("--config", str(cfg), env={"BATCH_ESTIMATE_AFTER_S": "0.2"})
    assert result.returncode == 1
    record = json.loads((out / "manifest.json").read_text())["inputs"][0]
    assert record["status"] == "failed" and record["error"]["type"] == "stage_failed"
    assert "rung lanczos would take too long" in record["error"]["message"]
    assert (
        "of limits.max_runtime_s" in record["error"]["message"]
        and "raise limits.max_runtime_s" in record["error"]["hint"]
    )
    assert not (out / "in" / "in.mp4").exists()  # nothing half-made is uploaded
