"""Anamorphic sources keep their display shape through every route, read back with ffprobe.

A DVD's 720x480 is shown at 16:9 because its pixels are 32:27 wide. Frames through the pipes carry
no aspect, so before this every job with a stage wrote square pixels: the picture squeezed to 3:2.
Each case here runs the real pipeline (or the real entrypoint) on a small clip marked with an aspect
and checks the output's sample and display aspect ratios, and its frame count, with ffprobe; the
expected aspect is worked out here from the sizes, not taken from the code under test.
"""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from clips import count_frames, lavfi_clip, video_stream
from test_runner_local import run_cli, write_config
from through_pipes import PIPES_REGISTRY

from batch.config import parse_config
from batch.job.chunks import ASPECT, decoding_rule, fingerprint
from batch.job.pipeline import PipelineResult, pixel_plan_for, run_pipeline
from batch.media.encoder import choose_encoder
from batch.media.preview import ROW_HEIGHT, WIDEST_SHOWN, crop_boxes, frame_at
from batch.media.probe import probe
from batch.stages.registry import REGISTRY, StageRegistry
from batch.stages.segment_files import Overlay

pytestmark = pytest.mark.integration

W, H, RATE, FRAMES = 96, 64, 25, 12
H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]


def marked(path: Path, sar: str, options: list[str] = H264, frames: int = FRAMES) -> Path:
    """A clip whose pixels are ``sar`` wide ("32:27")."""
    num, den = sar.split(":")
    return lavfi_clip(path, f"testsrc2=s={W}x{H}:r={RATE},setsar={num}/{den}:max=65535", options, frames)


def aspect(path: Path) -> tuple[int, int, Fraction]:
    """Width, height and pixel aspect as ffprobe reads them (square: 1, whether unset or 1:1)."""
    s = video_stream(path)
    text = s.get("sample_aspect_ratio") or "0:1"
    num, den = (int(v) for v in text.split(":"))
    return int(s["width"]), int(s["height"]), Fraction(num, den) if num else Fraction(1)


def shown(width: int, height: int, sar: Fraction) -> Fraction:
    return Fraction(width, height) * sar


def run(
    src: Path, dest: Path, stages: str, registry: StageRegistry = REGISTRY, encode: str = ""
) -> PipelineResult:
    cfg = parse_config(f"inputs: [x]\noutput: out/\nstages: {stages}\nencode: {encode or '{crf: 18}'}")
    return run_pipeline(cfg, src, dest, choose_encoder(cfg.encode), registry=registry)


INTERPOLATE = "[{interpolate: {factor: 2, ladder: [blend]}}]"


@pytest.mark.parametrize(
    ("stages", "registry", "frames"),
    [
        ("[]", REGISTRY, FRAMES),  # the direct transcode (ffmpeg carried it before too)
        (INTERPOLATE, REGISTRY, 2 * FRAMES),  # frames through the pipes
        ("[{upscale: {scale: 2}}]", REGISTRY, FRAMES),  # in the transcode's graph (zscale)
        ("[{upscale: {scale: 2}}]", PIPES_REGISTRY, FRAMES),  # the planes through the pipes
        ("[{analyze: {}}, {upscale: {scale: 1.5}}]", REGISTRY, FRAMES),  # RGB through the pipes
    ],
    ids=["direct", "interpolate", "upscale-graph", "upscale-pipes", "rgb-pipes"],
)
def test_a_uniform_resize_or_none_keeps_the_pixels_aspect(
    tmp_path: Path, stages: str, registry: StageRegistry, frames: int
) -> None:
    src = marked(tmp_path / "dvd.mp4", "32:27")
    out = tmp_path / "out.mp4"
    run(src, out, stages, registry)
    width, height, sar = aspect(out)
    assert sar == Fraction(32, 27)
    assert shown(width, height, sar) == shown(W, H, Fraction(32, 27))
    assert count_frames(out) == frames


@pytest.mark.parametrize("registry", [REGISTRY, PIPES_REGISTRY], ids=["graph", "pipes"])
def test_a_crop_keeps_the_pixels_shape(tmp_path: Path, registry: StageRegistry) -> None:
    """A crop is a part of the picture, pixel for pixel: its pixels are as wide as the source's."""
    src = marked(tmp_path / "dvd.mp4", "32:27")
    out = tmp_path / "out.mp4"
    run(src, out, "[{crop: {width: 64, height: 48, x: 16, y: 8}}]", registry)
    assert aspect(out) == (64, 48, Fraction(32, 27))
    assert count_frames(out) == FRAMES


@pytest.mark.parametrize(
    ("stages", "size"),
    [
        ("[{upscale: {width: 192, height: 96}}]", (192, 96)),
        ("[{upscale: {width: 160}}]", (160, 107)),  # the height by the frame's shape: odd pixels
        ("[{crop: {width: 80, height: 64, x: 8}}, {upscale: {width: 120, height: 128}}]", (120, 128)),
    ],
)
def test_a_resize_to_another_shape_keeps_what_is_shown(
    tmp_path: Path, stages: str, size: tuple[int, int]
) -> None:
    src = marked(tmp_path / "dvd.mp4", "32:27")
    out = tmp_path / "out.mp4"
    run(src, out, stages, encode="{codec: libx264, pix_fmt: yuv444p}")
    width, height, sar = aspect(out)
    assert (width, height) == size
    cropped_w = 80 if "crop" in stages else W
    assert shown(width, height, sar) == shown(cropped_w, H, Fraction(32, 27))


def test_resized_to_square_pixels_is_written_square(tmp_path: Path) -> None:
    """96x64 at 32:27 is shown at 16:9: made 256x144, its pixels are square, and no aspect is marked."""
    src = marked(tmp_path / "dvd.mp4", "32:27")
    out = tmp_path / "out.mp4"
    run(src, out, "[{upscale: {width: 256, height: 144}}]")
    assert aspect(out) == (256, 144, Fraction(1))
    assert video_stream(out).get("sample_aspect_ratio") in (None, "N/A", "0:1", "1:1")


def test_square_sources_are_written_as_before(tmp_path: Path) -> None:
    src = lavfi_clip(tmp_path / "sq.mp4", f"testsrc2=s={W}x{H}:r={RATE}", H264, FRAMES)
    for stages in (INTERPOLATE, "[{upscale: {width: 192, height: 64}}]"):
        out = tmp_path / "out.mp4"
        run(src, out, stages)
        assert aspect(out)[2] == 1


def test_a_fine_aspect_is_not_rounded(tmp_path: Path) -> None:
    """setsar's default rounds to 100 a side: 301:300 would have become 1:1."""
    src = marked(tmp_path / "fine.mp4", "301:300")
    out = tmp_path / "out.mp4"
    run(src, out, INTERPOLATE)
    assert aspect(out)[2] == Fraction(301, 300)


def test_matroska_and_ffv1_keep_it_too(tmp_path: Path) -> None:
    """PAL 16:9 (64:45) in Matroska, into FFV1 in Matroska: DisplayWidth/Height, not a VUI."""
    src = marked(tmp_path / "pal.mkv", "64:45", ["-c:v", "ffv1", "-pix_fmt", "yuv420p"])
    out = tmp_path / "out.mkv"
    run(src, out, INTERPOLATE, encode="{codec: ffv1, container: mkv}")
    width, height, sar = aspect(out)
    assert shown(width, height, sar) == shown(W, H, Fraction(64, 45))


def test_a_rotated_anamorphic_source_is_shown_as_plain_ffmpeg_shows_it(tmp_path: Path) -> None:
    """A quarter turn swaps the pixels' sides with the frame's (ffmpeg's transpose does the same)."""
    flat = marked(tmp_path / "flat.mp4", "32:27")
    src = tmp_path / "turned.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(flat), "-c", "copy", "-metadata:s:v:0", "rotate=90",
         str(src)],
        check=True,
    )  # fmt: skip
    plain = tmp_path / "plain.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), *H264, str(plain)], check=True)
    assert aspect(plain) == (H, W, Fraction(27, 32))
    for stages in ("[]", INTERPOLATE):
        out = tmp_path / "out.mp4"
        run(src, out, stages)
        assert aspect(out) == aspect(plain)


def test_the_entrypoint_s_chunks_keep_it_and_the_manifest_says_it(tmp_path: Path) -> None:
    """The real command, three chunks encoded apart and joined: the joined file keeps the aspect, and
    the manifest records it for the input and the output."""
    src = marked(tmp_path / "dvd.mp4", "32:27")
    cfg = write_config(
        tmp_path / "job.yaml",
        f"job_id: sar\ninputs: [{src}]\noutput: {tmp_path / 'out'}/\nstages: {INTERPOLATE}\n"
        "encode: {codec: libx264, preset: ultrafast, crf: 18}\nlimits: {chunk_s: 0.2}\n",
    )
    proc = run_cli("--config", str(cfg), "--dry-run", "--state-dir", str(tmp_path / "state"))
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out" / "dvd" / "dvd.mp4"
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    entry = manifest["inputs"][0]
    assert len(entry["chunks"]) >= 3
    assert aspect(out) == (W, H, Fraction(32, 27)) and count_frames(out) == 2 * FRAMES
    assert entry["media_in"]["sar"] == "32:27" and entry["media_out"]["sar"] == "32:27"


def test_outputs_made_square_before_are_made_again_and_then_reused(tmp_path: Path) -> None:
    """An earlier run's output of an anamorphic source was written square: its fingerprint differs
    (the decoding rule names the aspect), so it is made again; a square source's is unchanged, and
    the second run of the new rule reuses its own output."""
    cfg = parse_config(f"inputs: [x]\noutput: out/\nstages: {INTERPOLATE}")
    anamorphic = probe(marked(tmp_path / "dvd.mp4", "32:27"))
    square = probe(lavfi_clip(tmp_path / "sq.mp4", f"testsrc2=s={W}x{H}:r={RATE}", H264, FRAMES))
    assert ASPECT in decoding_rule(cfg, anamorphic)
    assert decoding_rule(cfg, square) == ""  # fingerprints of square sources stay as they were
    encoder = choose_encoder(cfg.encode)
    before = fingerprint(cfg, "ab" * 32, 0, encoder, "", "")
    assert fingerprint(cfg, "ab" * 32, 0, encoder, "", decoding_rule(cfg, anamorphic)) != before

    job = write_config(
        tmp_path / "job.yaml",
        f"job_id: sar\ninputs: [{tmp_path / 'dvd.mp4'}]\noutput: {tmp_path / 'out'}/\nstages: {INTERPOLATE}\n"
        "encode: {codec: libx264, preset: ultrafast, crf: 18}\n",
    )
    for run_no in (1, 2):
        proc = run_cli("--config", str(job), "--dry-run", "--state-dir", str(tmp_path / f"state{run_no}"))
        assert proc.returncode == 0, proc.stderr
        notes = json.loads((tmp_path / "out" / "manifest.json").read_text())["inputs"][0]["notes"]
        assert any("earlier run" in n for n in notes) == (run_no == 2), notes
    assert aspect(tmp_path / "out" / "dvd" / "dvd.mp4")[2] == Fraction(32, 27)


@pytest.mark.parametrize(
    ("stages", "registry", "made"),
    [
        ("[]", REGISTRY, (W, H)),  # the direct transcode's grabs
        (INTERPOLATE, REGISTRY, (W, H)),  # caught from the frames through the pipes
        ("[{upscale: {scale: 2}}]", REGISTRY, (2 * W, 2 * H)),  # the graph's grabs
        ("[{upscale: {width: 256, height: 144}}]", PIPES_REGISTRY, (256, 144)),  # made square
    ],
    ids=["direct", "pipes", "graph", "square-out"],
)
def test_the_preview_draws_frames_at_the_shape_they_are_shown(
    tmp_path: Path, stages: str, registry: StageRegistry, made: tuple[int, int]
) -> None:
    """The report's rows: a DVD frame is drawn 16:9, not 3:2; the crop row stays pixel for pixel."""
    src = marked(tmp_path / "dvd.mp4", "32:27")
    result = run(src, tmp_path / "out.mp4", stages, registry)
    tap = result.preview
    assert tap is not None and tap.source_seen and tap.output_seen
    sixteen_nine = round(ROW_HEIGHT * 16 / 9)
    assert {im.size for im in tap.source_seen.values()} == {(sixteen_nine, ROW_HEIGHT)}
    assert {im.size for im in tap.output_seen.values()} == {(sixteen_nine, ROW_HEIGHT)}
    assert (tap.layout_out.width, tap.layout_out.height) == made
    box_in, box_out = crop_boxes(tap.layout_in, tap.layout_out)
    assert tap.source_crops and tap.output_crops
    assert {im.size for im in tap.source_crops.values()} == {box_in[2:]}  # the crop row: pixel for pixel
    assert {im.size for im in tap.output_crops.values()} == {box_out[2:]}
    read_back = frame_at(tmp_path / "out.mp4", 0.1)  # a frame the tap missed (a resumed job)
    assert read_back is not None and abs(read_back.width - sixteen_nine) <= 1


@pytest.mark.parametrize(
    "stages", ["[]", INTERPOLATE, "[{upscale: {scale: 2}}]"], ids=["direct", "pipes", "graph"]
)
def test_an_absurd_aspect_is_written_and_its_preview_is_bounded(tmp_path: Path, stages: str) -> None:
    """2000:1 (a broken or hostile file): plain ffmpeg writes it; the job must too. Its preview's
    width (270 x 3000) had failed the transcode's grabs ("Picture size 720000x270 is invalid") and
    taken 11 GB through the pipes: a row's image is at most WIDEST_SHOWN row heights wide."""
    src = marked(tmp_path / "wide.mkv", "2000:1", ["-c:v", "ffv1", "-pix_fmt", "yuv420p"])
    out = tmp_path / "out.mkv"
    result = run(src, out, stages, encode="{codec: ffv1, container: mkv}")
    assert aspect(out)[2] == Fraction(2000, 1)
    assert result.preview is not None
    widths = {im.width for im in [*result.preview.source_seen.values(), *result.preview.output_seen.values()]}
    assert widths == {WIDEST_SHOWN * ROW_HEIGHT}
    read_back = frame_at(out, 0.1)
    assert read_back is not None and read_back.width == WIDEST_SHOWN * ROW_HEIGHT


def test_the_segment_overlay_keeps_the_aspect(tmp_path: Path) -> None:
    """overlay.mp4 (the masks drawn on the frames) is shown at the shape of the stage's output."""
    overlay = Overlay(tmp_path / "overlay.mp4", 97, 64, Fraction(25), Fraction(32, 27))  # odd: padded
    frame = np.zeros((64, 97, 3), np.uint8)
    for _ in range(3):
        overlay.write(frame, [])
    assert overlay.close() is None
    assert aspect(tmp_path / "overlay.mp4") == (98, 64, Fraction(32, 27))
    square = Overlay(tmp_path / "square.mp4", 96, 64, Fraction(25))
    square.write(frame[:, :96], [])
    assert square.close() is None and aspect(tmp_path / "square.mp4")[2] == 1


def test_outputs_that_were_right_before_are_still_reused(tmp_path: Path) -> None:
    """The aspect joins the fingerprint only where it was lost: not for the direct transcode of a job
    with no stage (ffmpeg carried it), nor for a resize whose pixels come out square."""
    info = probe(marked(tmp_path / "dvd.mp4", "32:27"))
    plain = parse_config("inputs: [x]\noutput: out/\nstages: []")
    pixels = pixel_plan_for(plain, info, choose_encoder(plain.encode))
    assert decoding_rule(plain, info, REGISTRY, pixels) == ""
    assert decoding_rule(plain, info, REGISTRY, None) == ASPECT  # the route unknown: made again
    to_square = parse_config("inputs: [x]\noutput: out/\nstages: [{upscale: {width: 256, height: 144}}]")
    assert decoding_rule(to_square, info, REGISTRY, pixels) == ""


@pytest.mark.parametrize("size", ["298x180", "321x181", "1440x1080", "720x480"])
def test_a_square_frame_read_back_is_as_wide_as_before(tmp_path: Path, size: str) -> None:
    """A frame the tap missed is read back at ``-2``'s width, as before the aspect was counted: a width
    from ``dar`` in floating point had rounded 298x180's exact 447.0 (a half) down to 446."""
    src = lavfi_clip(tmp_path / "sq.mp4", f"testsrc2=s={size}:r={RATE}", H264, 3)
    png = tmp_path / "plain.png"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(src), "-frames:v", "1", "-vf", f"scale=-2:{ROW_HEIGHT}",
         str(png)],
        check=True,
    )  # fmt: skip
    plain = video_stream(png)
    read_back = frame_at(src, 0.0)
    assert read_back is not None and read_back.size == (int(plain["width"]), ROW_HEIGHT)


def test_a_read_back_of_a_needle_thin_aspect_is_still_an_image(tmp_path: Path) -> None:
    """1:70000: the read-back's square intermediate keeps a few pixels, so ``-2`` never makes 0."""
    src = marked(tmp_path / "thin.mkv", "1:70000", ["-c:v", "ffv1", "-pix_fmt", "yuv420p"], frames=2)
    read_back = frame_at(src, 0.0)
    assert read_back is not None and read_back.size == (2, ROW_HEIGHT)
