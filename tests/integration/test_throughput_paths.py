"""The fast paths must make what the slow ones made: frames, colours, the preview, the order.

- a job with no stages is transcoded by ffmpeg directly: its decoded frames are
  those the reader -> writer pipes make, its preview rows show the frames they name;
- the stand-in model stage (a fixed sleep per batch) gives bit-identical output at
  any queue depth, in YUV and in RGB;
- the YUV -> RGB -> YUV round trip (colour.rgb_conversion) stays within 1 code value.

Real ffmpeg and ffprobe throughout; tiny clips. No timing is asserted here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from clips import GRADIENT_COLOURS, count_frames, make_clip

from batch.config import JobConfig, parse_config
from batch.errors import Cancelled
from batch.job.pipeline import Segment, preview_tap, run_pipeline, run_segment
from batch.media.colour import plan_colour
from batch.media.encoder import choose_encoder
from batch.media.probe import probe
from batch.stages.registry import REGISTRY
from batch.stages.standin import STANDIN_REGISTRY, StandInStage

pytestmark = pytest.mark.integration

W, H = 64, 48


def job(
    stages: list[StandInStage] | None = None, encode: str = "{codec: libx264, preset: ultrafast}"
) -> JobConfig:
    cfg = parse_config(f"inputs: [x]\noutput: out/\nencode: {encode}")
    return cfg.replace(stages=stages or [])  # the stand-in is in no config union


def ramp_clip(path: Path, frames: int = 30) -> Path:
    """Frame n is flat grey at Y = 16 + 6 n: a frame's level names it."""
    if not path.exists():
        subprocess.run(
            [
                "ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"nullsrc=s={W}x{H}:r=30",
                "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={frames / 30}",
                "-vf", "geq=lum='16+6*N':cb=128:cr=128,format=yuv420p", "-frames:v", str(frames),
                "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-c:a", "aac", str(path),
            ],
            check=True,
        )  # fmt: skip
    return path


def decoded(path: Path, pix_fmt: str = "yuv420p") -> bytes:
    return subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            "0:v:0",
            "-f",
            "rawvideo",
            "-pix_fmt",
            pix_fmt,
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout


def video_bitstream_md5(path: Path) -> str:
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "md5", "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def y_levels(path: Path) -> list[float]:
    raw = np.frombuffer(decoded(path), np.uint8).reshape(-1, W * H * 3 // 2)
    return [float(f[: W * H].mean()) for f in raw]


@pytest.fixture(scope="module")
def ramp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ramp_clip(tmp_path_factory.mktemp("ramp") / "ramp.mp4")


def test_no_stages_goes_direct_and_decodes_to_the_frames_the_pipes_make(ramp: Path, tmp_path: Path) -> None:
    direct = run_pipeline(job(), ramp, tmp_path / "direct.mp4", choose_encoder(job().encode))
    cfg = job([StandInStage()])  # an identity stage: the frames go through the reader and the writer
    piped = run_pipeline(
        cfg, ramp, tmp_path / "piped.mp4", choose_encoder(cfg.encode), registry=STANDIN_REGISTRY
    )
    assert any("directly" in n for n in direct.notes) and not any("directly" in n for n in piped.notes)
    assert direct.frames_out == piped.frames_out == count_frames(tmp_path / "direct.mp4") == 30
    assert decoded(tmp_path / "direct.mp4") == decoded(tmp_path / "piped.mp4")
    assert direct.info_out.audio and direct.info_out.audio[0].codec == "aac"
    assert abs(direct.info_out.duration - direct.info_in.duration) < 1 / 30


def test_the_direct_previews_rows_show_the_frames_they_name(ramp: Path, tmp_path: Path) -> None:
    result = run_pipeline(job(), ramp, tmp_path / "out.mp4", choose_encoder(job().encode))
    tap = result.preview
    assert tap is not None and [r.output for r in tap.rows] == [7, 15, 22]
    for r in tap.rows:
        level = 16 + 6 * r.output  # limited range -> full: (Y - 16) * 255 / 219
        want = (level - 16) * 255 / 219
        for image in (tap.source_seen[r.output], tap.output_seen[r.output]):
            assert image.size == tap.thumbnail_size()
            assert abs(np.asarray(image, np.float32).mean() - want) <= 1.5, r
    crop = tap.source_crops[15]
    assert abs(np.asarray(crop, np.float32).mean() - (6 * 15) * 255 / 219) <= 1.5


def test_a_direct_chunk_holds_exactly_its_frames_and_reports_progress(ramp: Path, tmp_path: Path) -> None:
    info = probe(ramp)
    cfg = job()
    tap = preview_tap(
        info, REGISTRY.plan([], _source(info)), plan_colour(info.color, H, "yuv420p"), "yuv420p"
    )
    steps: list[int] = []
    written, reports = run_segment(
        cfg, info, Segment(10, 12, last=False), tmp_path / "part.mp4", choose_encoder(cfg.encode),
        progress=steps.append, tap=tap, out_start=10,
    )  # fmt: skip
    assert written == 12 == sum(steps) and reports == []
    levels = y_levels(tmp_path / "part.mp4")
    assert [round((v - 16) / 6) for v in levels] == list(range(10, 22))
    assert 15 in tap.source_seen and 7 not in tap.source_seen and 22 not in tap.source_seen


def _source(info):  # type: ignore[no-untyped-def]
    from batch.stages.base import StageInput

    return StageInput(width=info.width, height=info.height, fps=info.fps, total_frames=info.frame_count)


def test_a_cancelled_direct_transcode_leaves_no_encoder_running(ramp: Path, tmp_path: Path) -> None:
    info = probe(ramp)
    dest = tmp_path / "cancelled.mp4"
    with pytest.raises(Cancelled):
        run_segment(
            job(), info, Segment(0, 30, last=True), dest, choose_encoder(job().encode), abort=lambda: True
        )
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            assert str(dest).encode() not in cmdline.read_bytes()
        except OSError:
            continue


@pytest.mark.parametrize("rgb", [False, True])
def test_the_standin_output_is_bit_identical_at_any_queue_depth(tmp_path: Path, rgb: bool) -> None:
    src = make_clip(tmp_path / "src.mp4", size=f"{W}x{H}", frames=15)
    cfg = job([StandInStage(batch=4, seconds=0.002, rgb=rgb)])
    digests = set()
    for depth in (1, 2, 3, 8, 64):
        out = tmp_path / f"q{depth}.mp4"
        result = run_pipeline(
            cfg, src, out, choose_encoder(cfg.encode), registry=STANDIN_REGISTRY, queue_frames=depth
        )
        assert result.frames_out == 15 == count_frames(out)
        assert result.stages[0]["calls"] == 4  # 4 + 4 + 4 + 3
        digests.add(video_bitstream_md5(out))
    assert len(digests) == 1


def test_yuv_to_rgb_and_back_stays_within_one_code_value(tmp_path: Path) -> None:
    src = tmp_path / "gradients.mkv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
         f"gradients=s=128x72:r=30:speed=0.02:seed=7:{GRADIENT_COLOURS}",
         "-frames:v", "6", "-pix_fmt", "yuv420p", "-c:v", "ffv1", str(src)],
        check=True,
    )  # fmt: skip
    cfg = job([StandInStage(rgb=True)], encode="{codec: libx264, preset: ultrafast, crf: 0, container: mkv}")
    out = tmp_path / "out.mkv"
    result = run_pipeline(cfg, src, out, choose_encoder(cfg.encode), registry=STANDIN_REGISTRY)
    assert "frames passed between stages as rgb24" in result.notes
    a = np.frombuffer(decoded(src), np.uint8).astype(int)
    b = np.frombuffer(decoded(out), np.uint8).astype(int)
    assert a.shape == b.shape and np.abs(a - b).max() <= 1


@pytest.mark.parametrize(
    ("pix_fmt", "encode", "direct"),
    [
        ("yuv420p10le", "{codec: libx265, preset: ultrafast}", True),
        ("yuv444p", "{codec: libx264, preset: ultrafast}", True),
        ("yuva444p10le", "{codec: ffv1, container: mkv}", False),
    ],
)
def test_a_deep_wide_or_alpha_source_with_no_stages_keeps_its_format(
    tmp_path: Path, pix_fmt: str, encode: str, direct: bool
) -> None:
    """Written in the source's own format: ffmpeg transcodes directly where nothing converts the
    planes; alpha (which the direct path does not carry) goes through the pipes."""
    codec = "ffv1" if "yuva" in pix_fmt else "libx264"
    src = make_clip(tmp_path / "in.mkv", size=f"{W}x{H}", frames=4, codec=codec, pix_fmt=pix_fmt, audio=False)
    cfg = job(encode=encode)
    dest = tmp_path / "out.mkv"
    result = run_pipeline(cfg, src, dest, choose_encoder(cfg.encode))
    assert any("directly" in n for n in result.notes) is direct, result.notes
    assert (f"frames passed between stages as {pix_fmt}" in result.notes) is not direct
    assert probe(dest).pix_fmt == pix_fmt and count_frames(dest) == 4
