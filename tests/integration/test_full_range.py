"""Full-range YUV sources (phones, webcams, MJPEG: ``yuvj420p``/``yuvj422p``, or planes tagged ``pc``).

Before, such a source was always converted to RGB and back, even with no stage that needs RGB:
a no-stage job ran the slow frame path instead of the direct transcode, and the round trip
through RGB clipped saturated colours (chroma 31-33 dB against 42 for plain ffmpeg on testsrc2).
Planes keep their codes now: a lossless output decodes to the source's own planes, bit for bit,
tagged full range, on every path that needs no RGB (the direct transcode, blend, crop, chunks).
A stage that does need RGB still converts with the full-range rule (checked within a code).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from clips import lavfi_clip, video_stream
from test_runner_local import run_cli, write_config
from through_pipes import PIPES_REGISTRY

from batch.config import parse_config
from batch.job.pipeline import PipelineResult, run_pipeline
from batch.media.encoder import choose_encoder
from batch.stages.registry import REGISTRY, StageRegistry
from batch.stages.standin import STANDIN_REGISTRY, StandInStage

pytestmark = pytest.mark.integration

W, H, RATE, FRAMES = 64, 48, 25, 6
# testsrc2's saturated bars: colours whose 4:2:0 chroma leaves the RGB gamut, which an RGB round trip
# clips (the loss the planes now avoid); made full range by the scaler, not merely tagged so
_FULL = f"testsrc2=s={W}x{H}:r={RATE},scale=out_range=full"
# a ramp from near black to near white, nearly grey, inside the RGB gamut (the lavfi ``gradients``
# filter picks random points and colours even with a seed): what a round trip through RGB keeps
_SMOOTH = (
    f"color=black:s={W}x{H}:r={RATE},format=gbrp,geq=r='4+3.9*X':g='3+3.95*X':b='6+3.8*X+0.1*Y',"
    "scale=out_range=full:out_color_matrix=bt601"
)

# name: (file, encoder options, the pix_fmt ffmpeg decodes it as)
SOURCES = {
    "h264_yuvj420p": ("h264.mp4", ["-pix_fmt", "yuvj420p", "-c:v", "libx264", "-qp", "0"], "yuvj420p"),
    "mjpeg_yuvj422p": ("mjpeg.avi", ["-pix_fmt", "yuvj422p", "-c:v", "mjpeg", "-q:v", "3"], "yuvj422p"),
    "ffv1_tagged_pc": ("ffv1.mkv", ["-pix_fmt", "yuv420p", "-color_range", "pc", "-c:v", "ffv1"], "yuv420p"),
}  # fmt: skip


def make(folder: Path, name: str, graph: str = _FULL) -> Path:
    file, options, _ = SOURCES[name]
    return lavfi_clip(folder / file, graph, options, FRAMES)


def planes(path: Path, pix_fmt: str) -> np.ndarray:
    """Every frame's planes as coded: ``pix_fmt`` without a range conversion (``scale`` told both
    sides are full range), a row a frame."""
    proc = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-vf", "scale=in_range=full:out_range=full",
         "-f", "rawvideo", "-pix_fmt", pix_fmt.replace("yuvj", "yuv"), "pipe:1"],
        check=True, capture_output=True,
    )  # fmt: skip
    data = np.frombuffer(proc.stdout, np.uint8)
    return data.reshape(len(data) // _frame_bytes(pix_fmt), -1)


def _frame_bytes(pix_fmt: str) -> int:
    chroma = {"420": W * H // 2, "422": W * H, "444": 2 * W * H}[pix_fmt.replace("yuvj", "yuv")[3:6]]
    return W * H + chroma


def run(
    src: Path, dest: Path, stages: str, encode: str, registry: StageRegistry = REGISTRY
) -> PipelineResult:
    """``registry``: PIPES_REGISTRY keeps crop and upscale out of the transcode's graph (on pipes)."""
    cfg = parse_config(f"inputs: [x]\noutput: out/\nstages: {stages}\nencode: {encode}")
    return run_pipeline(cfg, src, dest, choose_encoder(cfg.encode), registry=registry)


LOSSLESS = {
    "libx264": "{codec: libx264, crf: 0, preset: ultrafast, container: mkv}",
    "ffv1": "{codec: ffv1, container: mkv}",
}


@pytest.mark.parametrize("codec", sorted(LOSSLESS))
@pytest.mark.parametrize("name", sorted(SOURCES))
def test_no_stages_keeps_full_range_planes_bit_for_bit_in_the_direct_transcode(
    tmp_path: Path, name: str, codec: str
) -> None:
    src = make(tmp_path, name)
    pix_fmt = SOURCES[name][2]
    assert video_stream(src)["pix_fmt"] == pix_fmt and video_stream(src).get("color_range") == "pc"
    dest = tmp_path / "out.mkv"
    result = run(src, dest, "[]", LOSSLESS[codec])
    out = video_stream(dest)
    assert out.get("color_range") == "pc", out  # tagged as full range, or a player crushes the blacks
    assert result.frames_out == FRAMES
    a, b = planes(src, pix_fmt), planes(dest, pix_fmt)
    assert a.shape == b.shape == (FRAMES, _frame_bytes(pix_fmt))
    assert np.array_equal(a, b), f"{int(np.count_nonzero(a != b))} samples changed"
    if pix_fmt == "yuvj420p":  # 8-bit 4:2:0: ffmpeg transcodes it itself, no frames through pipes
        assert result.notes[0].startswith("no stages: ffmpeg transcoded the source directly"), result.notes


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_blend_and_crop_on_full_range_planes_keep_the_source_frames_exact(tmp_path: Path, name: str) -> None:
    src = make(tmp_path, name)
    pix_fmt = SOURCES[name][2]
    dest = tmp_path / "out.mkv"
    crop = f"{{crop: {{x: 0, y: 0, width: {W}, height: {H}}}}}"
    stages = f"[{crop}, {{interpolate: {{factor: 2, ladder: [blend]}}}}]"
    result = run(src, dest, stages, LOSSLESS["ffv1"])
    assert result.notes[0] == f"frames passed between stages as {pix_fmt.replace('yuvj', 'yuv')}"
    assert video_stream(dest).get("color_range") == "pc"
    a, b = planes(src, pix_fmt), planes(dest, pix_fmt)
    assert b.shape == (2 * FRAMES, a.shape[1]) == (result.frames_out, a.shape[1])
    assert np.array_equal(b[0::2], a)  # the source's frames, untouched
    # a blended frame is the mean of its neighbours (the last is held): not squeezed into 16-235
    mean = (a[:-1].astype(np.int32) + a[1:]) / 2
    assert np.abs(b[1:-1:2].astype(np.int32) - mean).max() <= 1
    assert int(b.min()) < 16 and int(b.max()) > 235


@pytest.mark.parametrize("name", ["h264_yuvj420p", "mjpeg_yuvj422p"])
def test_an_rgb_stage_on_a_full_range_source_converts_with_the_full_range_rule(
    tmp_path: Path, name: str
) -> None:
    """A stage that needs RGB still converts (full range both ways): within a code on luma, and the
    output is not squeezed into limited range (a wrong range moves most samples by many codes)."""
    src = make(tmp_path, name, _SMOOTH)
    pix_fmt = SOURCES[name][2]
    dest = tmp_path / "out.mkv"
    # the stand-in of a model stage that asks for RGB and hands its frames on as they came
    cfg = parse_config(f"inputs: [x]\noutput: out/\nencode: {LOSSLESS['ffv1']}")
    cfg = cfg.replace(stages=[StandInStage(rgb=True)])
    result = run_pipeline(cfg, src, dest, choose_encoder(cfg.encode), registry=STANDIN_REGISTRY)
    assert result.notes[0] == "frames passed between stages as rgb24"
    assert video_stream(dest).get("color_range") == "pc"
    a, b = planes(src, pix_fmt).astype(np.int32), planes(dest, pix_fmt).astype(np.int32)
    assert a.shape == b.shape
    assert int(a[:, : W * H].min()) < 16 and int(a[:, : W * H].max()) > 235  # codes a squeeze would move
    luma = np.abs(a[:, : W * H] - b[:, : W * H])
    assert int(luma.max()) <= 1, float(np.mean(luma))


@pytest.mark.parametrize("chunked", [False, True], ids=["one-pass", "chunks"])
def test_the_users_command_on_a_phone_style_clip_keeps_full_range(tmp_path: Path, chunked: bool) -> None:
    """The whole command (CLI, probe, manifest): no stages in one pass (the direct transcode), and 2x
    blend in chunks of 2 frames joined: yuv420p frames, full range kept, the source frames exact."""
    src = make(tmp_path, "h264_yuvj420p")
    out = tmp_path / "out"
    encode = "{codec: libx264, crf: 0, preset: ultrafast}"
    blend = "stages: [{interpolate: {factor: 2, ladder: [blend]}}]\nlimits: {chunk_s: 0.08}\n"
    extra = blend if chunked else ""
    body = f"inputs: [{src}]\noutput: {out}\nencode: {encode}\n{extra}"
    result = run_cli("--config", str(write_config(tmp_path / "job.yaml", body)))
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "manifest.json").read_text())["inputs"][0]
    assert record["status"] == "succeeded"
    assert record["encode"]["pixels"]["frames"] == "yuv420p"
    made = out / src.stem / f"{src.stem}.mp4"
    assert video_stream(made).get("color_range") == "pc"
    if chunked:
        assert record["chunks"]["count"] == 3, record["chunks"]
    ours = planes(made, "yuvj420p")
    assert np.array_equal(ours[0::2] if chunked else ours, planes(src, "yuvj420p"))


def test_full_range_to_another_depth_spans_the_whole_range(tmp_path: Path) -> None:
    """8-bit full range written at 10 bits: white 255 is 1023 (zimg's full-range rule), not 1020 as
    swscale's shift made it; and back from 10 bits to 8, 1023 is 255 again (found by a review)."""
    src = make(tmp_path, "h264_yuvj420p", _SMOOTH)
    ten = tmp_path / "ten.mkv"
    result = run(src, ten, "[]", "{codec: ffv1, container: mkv, pix_fmt: yuv420p10le}")
    assert result.frames_out == FRAMES and video_stream(ten).get("color_range") == "pc"
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(ten), "-f", "rawvideo", "-pix_fmt", "yuv420p10le", "pipe:1"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    deep = np.frombuffer(raw, np.uint16).reshape(FRAMES, -1)[:, : W * H].astype(np.int64)
    y8 = planes(src, "yuvj420p")[:, : W * H].astype(np.int64)
    assert np.array_equal(deep, (y8 * 1023 + 127) // 255)  # v * 1023 / 255, rounded
    back = tmp_path / "back.mkv"
    run(ten, back, "[]", "{codec: ffv1, container: mkv, pix_fmt: yuv420p}")
    assert np.array_equal(planes(back, "yuvj420p")[:, : W * H], planes(src, "yuvj420p")[:, : W * H])


def test_prores_cannot_mark_full_range_so_it_is_written_limited_with_a_step(tmp_path: Path) -> None:
    """ProRes has no range flag (decoders read limited): full-range codes written as they are played
    washed out. They are squeezed into 16-235 and the manifest's step says why; the colour tags reach
    the file (prores_ks writes the frames' own, which planes from a pipe lacked: found by a review)."""
    src = make(tmp_path, "mjpeg_yuvj422p", _SMOOTH)
    dest = tmp_path / "out.mov"
    result = run(src, dest, "[]", "{codec: prores_ks, container: mov}")
    out = video_stream(dest)
    assert out.get("color_range", "tv") == "tv" and out.get("color_space") == "bt470bg", out
    assert any(n.startswith("range: full -> limited (prores_ks cannot mark full range") for n in result.notes)
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(dest), "-f", "rawvideo", "-pix_fmt", "yuv422p10le", "pipe:1"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    luma = np.frombuffer(raw, np.uint16).reshape(FRAMES, -1)[:, : W * H] / 4.0  # in 8-bit codes
    full = planes(src, "yuvj422p")[:, : W * H].astype(np.float64)
    squeezed = 16 + full * 219 / 255
    assert np.abs(luma - squeezed).mean() < 0.5, np.abs(luma - squeezed).mean()  # ProRes is lossy
    assert luma.min() >= 15 and luma.max() <= 236


def test_prores_keeps_a_limited_sources_colour_tags(tmp_path: Path) -> None:
    """A limited-range BT.709 source into ProRes, direct and through the pipes: its matrix, primaries
    and transfer reach the file (before: none of them, as prores_ks writes the frames' properties)."""
    src = tmp_path / "tagged.mkv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=s={W}x{H}:r={RATE}", "-frames:v", "3",
         "-pix_fmt", "yuv422p10le", "-c:v", "ffv1", "-colorspace", "bt709", "-color_primaries", "bt709",
         "-color_trc", "bt709", "-color_range", "tv", str(src)],
        check=True,
    )  # fmt: skip
    for stages, how in [
        ("[]", "no stages: ffmpeg transcoded the source directly"),
        (f"[{{crop: {{x: 0, y: 0, width: {W}, height: {H}}}}}]", "frames passed between stages"),
    ]:
        dest = tmp_path / f"out-{len(stages)}.mov"
        result = run(src, dest, stages, "{codec: prores_ks, container: mov}", PIPES_REGISTRY)
        assert result.notes[0].startswith(how), result.notes
        out = video_stream(dest)
        assert (out.get("color_space"), out.get("color_primaries"), out.get("color_transfer")) == (
            "bt709",
            "bt709",
            "bt709",
        ), out
