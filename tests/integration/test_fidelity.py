"""Bit depth, HDR, chroma and alpha through the stages, read back from real encoded files.

The corpus is made with ffmpeg (64x48, 5 frames at 25 fps, plus 1- and 2-frame
clips): RGB FFV1, qtrle RGB and ARGB, ProRes 4444 with alpha, HDR10 (HEVC
Main10, PQ, BT.2020, mastering display and content light level), HLG, and
4:2:2 10-bit. Each goes through 2x interpolation (blend) and an upscale
(lanczos); every output is checked with ffprobe (frames, duration, pix_fmt,
colour tags, side data) and, for alpha and the colour round trip, decoded and
compared with numpy.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from clips import GRADIENT_COLOURS, video_stream
from through_pipes import PIPES_REGISTRY

from batch.config import parse_config
from batch.errors import ConfigError
from batch.job.pipeline import PipelineResult, run_pipeline
from batch.media.encoder import choose_encoder
from batch.media.pixel_plan import available
from batch.stages.registry import REGISTRY, StageRegistry
from batch.stages.standin import STANDIN_REGISTRY, StandInStage

pytestmark = pytest.mark.integration

SIZE, RATE, FRAMES = "64x48", 25, 5
MASTER = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"
_SRC = f"testsrc2=s={SIZE}:r={RATE}"
_ALPHA = f"{_SRC},format=rgba,geq=r='r(X,Y)':g='g(X,Y)':b='b(X,Y)':a='if(lt(X,32),255,0)'"
X265 = ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params"]
BT2020 = ["-color_primaries", "bt2020", "-colorspace", "bt2020nc"]

# name: (file, lavfi graph, frames, encoder options)
CORPUS: dict[str, tuple[str, str, int, list[str]]] = {
    "rgb_ffv1": ("rgb_ffv1.mkv", _SRC, FRAMES, ["-c:v", "ffv1", "-pix_fmt", "bgr0"]),
    "qtrle_rgb": ("qtrle_rgb.mov", _SRC, FRAMES, ["-c:v", "qtrle", "-pix_fmt", "rgb24"]),
    "qtrle_argb": ("qtrle_argb.mov", _ALPHA, FRAMES, ["-c:v", "qtrle", "-pix_fmt", "argb"]),
    "prores_alpha": (
        "prores_alpha.mov", _ALPHA, FRAMES,
        ["-c:v", "prores_ks", "-profile:v", "4444", "-pix_fmt", "yuva444p10le"],
    ),
    "hdr10": (
        "hdr10.mp4", _SRC, FRAMES,
        [*X265, f"log-level=error:master-display={MASTER}:max-cll=1000,400",
         "-pix_fmt", "yuv420p10le", "-color_trc", "smpte2084", *BT2020],
    ),
    "hlg": (
        "hlg.mp4", _SRC, FRAMES,
        [*X265, "log-level=error", "-pix_fmt", "yuv420p10le", "-color_trc", "arib-std-b67", *BT2020],
    ),
    "yuv422_10": ("yuv422_10.mkv", _SRC, FRAMES, ["-c:v", "ffv1", "-pix_fmt", "yuv422p10le"]),
    "one_frame": ("one.mkv", _SRC, 1, ["-c:v", "ffv1", "-pix_fmt", "yuv444p"]),
    "two_frames": ("two.mp4", _SRC, 2, [*X265, "log-level=error", "-pix_fmt", "yuv420p10le"]),
}  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("fidelity")
    out = {}
    for name, (file, graph, frames, options) in CORPUS.items():
        path = folder / file
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", graph, "-frames:v", str(frames),
             *options, str(path)],
            check=True,
        )  # fmt: skip
        out[name] = path
    return out


def run(
    src: Path, dest: Path, stages: str, encode: str, registry: StageRegistry = REGISTRY
) -> PipelineResult:
    """``registry``: PIPES_REGISTRY keeps crop and upscale out of the transcode's graph (on pipes)."""
    cfg = parse_config(f"inputs: [x]\noutput: out/\nstages: {stages}\nencode: {encode}")
    return run_pipeline(cfg, src, dest, choose_encoder(cfg.encode), registry=registry)


def stream_facts(path: Path) -> dict:
    """The video stream as ffprobe reads it, with the frames that decode and the duration: one ffprobe."""
    proc = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-select_streams", "v:0", "-count_frames",
         "-show_streams", "-show_format", str(path)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    data = json.loads(proc.stdout)
    stream = dict(data["streams"][0])
    stream["duration"] = float(stream.get("duration") or data["format"]["duration"])
    return stream


def side_data(path: Path) -> list[dict]:
    proc = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-read_intervals", "%+#1", "-show_frames",
         "-show_entries", "frame=side_data_list", str(path)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    frames = json.loads(proc.stdout)["frames"]
    return list(frames[0].get("side_data_list", []))


def decode(path: Path, pix_fmt: str, decoder: list[str] | None = None) -> np.ndarray:
    """Every frame as raw ``pix_fmt`` values (uint16 for the 16-bit formats)."""
    proc = subprocess.run(
        ["ffmpeg", "-v", "error", *(decoder or []), "-i", str(path), "-f", "rawvideo",
         "-pix_fmt", pix_fmt, "pipe:1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return np.frombuffer(proc.stdout, np.uint16 if pix_fmt.endswith("le") else np.uint8)


STAGES = {
    "blend2x": ("[{interpolate: {factor: 2, ladder: [blend]}}]", 2, 1),
    "lanczos2x": ("[{upscale: {scale: 2, ladder: [lanczos]}}]", 1, 2),
}
X265_OUT = "{codec: libx265, preset: ultrafast, crf: 20}"
FFV1_OUT = "{codec: ffv1, container: mkv}"


@dataclass(frozen=True)
class Case:
    clip: str
    encode: str
    pix_fmt: str  # the output's, as ffprobe names it
    alpha: str = "none"  # the pixel plan's verdict: none | kept | flattened


CASES = [
    Case("rgb_ffv1", X265_OUT, "yuv444p"),  # RGB keeps full chroma
    Case("qtrle_rgb", X265_OUT, "yuv444p"),
    Case("qtrle_argb", FFV1_OUT, "bgra", "kept"),
    Case("qtrle_argb", X265_OUT, "yuv444p", "flattened"),
    Case("prores_alpha", "{codec: prores_ks, container: mov}", "yuva444p12le", "kept"),  # decoder says 12
    # ffprobe's native VP9 decoder shows no alpha (yuv420p); libvpx's decoder reads it back below
    Case("qtrle_argb", "{codec: libvpx-vp9, container: mkv, preset: ultrafast}", "yuv420p", "kept"),
    Case("hdr10", X265_OUT, "yuv420p10le"),
    Case("hlg", X265_OUT, "yuv420p10le"),
    Case("yuv422_10", X265_OUT, "yuv422p10le"),
    Case("one_frame", X265_OUT, "yuv444p"),
    Case("two_frames", X265_OUT, "yuv420p10le"),
]


@pytest.mark.parametrize("stage", sorted(STAGES))
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.clip}-{c.alpha}-{c.pix_fmt}")
def test_through_a_stage_the_output_keeps_what_is_promised(
    corpus: dict[str, Path], tmp_path: Path, case: Case, stage: str
) -> None:
    src = corpus[case.clip]
    stages, rate, scale = STAGES[stage]
    ext = (
        "mov" if "mov" in case.encode else "mkv" if "mkv" in case.encode else "mp4"
    )  # as the runner names it
    dest = tmp_path / f"out.{ext}"
    result = run(src, dest, stages, case.encode)
    n = CORPUS[case.clip][2]
    # frames and duration, from the file
    out, inp = stream_facts(dest), video_stream(src)
    assert int(out["nb_read_frames"]) == n * rate == result.frames_out
    assert abs(out["duration"] - n / RATE) <= 1 / (RATE * rate) / 2 + 0.002
    assert (out["width"], out["height"]) == (64 * scale, 48 * scale)
    assert out["pix_fmt"] == case.pix_fmt
    # colour tags carried
    for tag in ("color_transfer", "color_primaries"):
        assert out.get(tag) == inp.get(tag), tag
    if case.clip == "hdr10":
        kinds = {s["side_data_type"]: s for s in side_data(dest)}
        assert kinds["Mastering display metadata"]["red_x"] == "34000/50000"
        assert kinds["Mastering display metadata"]["max_luminance"] == "10000000/10000"
        assert kinds["Content light level metadata"]["max_content"] == 1000
        assert kinds["Content light level metadata"]["max_average"] == 400
    # alpha: kept (decoded alpha matches the source's halves) or flattened against black, and said so
    notes = " ".join(result.notes)
    if case.alpha == "kept":
        vp9 = ["-c:v", "libvpx-vp9"] if "vp9" in case.encode else None
        rgba = decode(dest, "rgba", vp9).reshape(-1, 48 * scale, 64 * scale, 4)
        assert rgba.shape[0] == n * rate
        left, right = rgba[:, :, : 28 * scale, 3], rgba[:, :, 36 * scale :, 3]
        assert left.min() >= 250 and right.max() <= 5
        assert "flattened" not in notes
    elif case.alpha == "flattened":
        rgb = decode(dest, "rgb24").reshape(-1, 48 * scale, 64 * scale, 3)
        assert rgb[:, :, 36 * scale :, :].max() <= 24  # transparent half: black (codec noise aside)
        assert "alpha: alpha -> flattened against black" in notes
    else:
        assert "alpha" not in notes


ROUND_TRIP = [
    ("yuv420p", 1, "ffv1"),
    ("yuv420p10le", 4, "ffv1"),
    ("yuv444p12le", 4, "ffv1"),
    ("yuv420p", 1, "libx264"),
]


@pytest.mark.parametrize(
    ("pix_fmt", "tolerance", "codec", "stage"),
    [*((*r, "rgb") for r in ROUND_TRIP), ("yuv420p10le", 4, "ffv1", "crop")],
)
def test_a_no_op_stage_round_trips_colour_within_a_code_value(
    tmp_path: Path, pix_fmt: str, tolerance: int, codec: str, stage: str
) -> None:
    # named colours: ffmpeg 5.1's gradients picks random ones on every run, seed or not, and the
    # saturated ones among them sometimes put chroma samples 2-3 codes off (clipped in RGB), which read
    # as a difference between CPUs until the source was found to change from run to run
    src = tmp_path / "smooth.mkv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
         f"gradients=s={SIZE}:r={RATE}:speed=0.05:seed=4:{GRADIENT_COLOURS}",
         "-frames:v", "4", "-c:v", "ffv1", "-pix_fmt", pix_fmt, str(src)],
        check=True,
    )  # fmt: skip
    dest = tmp_path / "out.mkv"
    stages = "[]" if stage == "rgb" else "[{crop: {x: 0, y: 0, width: 64, height: 48}}]"
    encode = (
        "{codec: ffv1, container: mkv}" if codec == "ffv1" else "{codec: libx264, crf: 0, container: mkv}"
    )
    # the stand-in of a model stage that asks for RGB and hands its frames on as they came
    cfg = parse_config(f"inputs: [x]\noutput: out/\nstages: {stages}\nencode: {encode}")
    cfg = cfg.replace(stages=[*cfg.stages, StandInStage(rgb=True)])
    result = run_pipeline(cfg, src, dest, choose_encoder(cfg.encode), registry=STANDIN_REGISTRY)
    assert (
        result.notes[0] == f"frames passed between stages as {'rgb24' if pix_fmt == 'yuv420p' else 'rgb48le'}"
    )
    assert video_stream(dest)["pix_fmt"] == pix_fmt
    a, b = decode(src, pix_fmt).astype(np.int32), decode(dest, pix_fmt).astype(np.int32)
    assert a.shape == b.shape
    error = np.abs(a - b).reshape(4, -1)  # a row a frame: luma plane first, then chroma
    luma, chroma = error[:, : 64 * 48], error[:, 64 * 48 :]
    assert int(luma.max()) <= tolerance
    # chroma: a colour whose 4:2:0 chroma, upsampled, leaves the RGB gamut is clipped in RGB, which no
    # converter can undo; zimg and swscale also pick SIMD kernels by CPU. One code of slack there, for a
    # few samples only (a wrong matrix or range moves most samples by many codes).
    assert int(chroma.max()) <= tolerance + 1
    assert float(np.mean(chroma > tolerance)) <= 0.005


def test_an_explicit_pix_fmt_steps_down_with_a_note(corpus: dict[str, Path], tmp_path: Path) -> None:
    dest = tmp_path / "out.mp4"
    result = run(corpus["hdr10"], dest, "[]", "{codec: libx264, preset: ultrafast, pix_fmt: yuv420p}")
    assert video_stream(dest)["pix_fmt"] == "yuv420p"
    notes = " ".join(result.notes)
    assert "bit depth: 10 -> 8 (encode.pix_fmt is yuv420p)" in notes
    assert "smpte2084 (HDR) signal encoded in 8 bits" in notes
    assert "hdr metadata" in notes  # libx264 cannot be given the mastering display


def test_source_mode_on_an_8_bit_codec_records_the_step(corpus: dict[str, Path], tmp_path: Path) -> None:
    """libx264 holds 10 bits here (if this ffmpeg's build does), not 12: the step says so and why."""
    dest = tmp_path / "out.mp4"
    src = corpus["prores_alpha"]  # 12-bit 4:4:4 as decoded, with alpha
    result = run(src, dest, "[]", "{codec: libx264, preset: ultrafast}")
    top = max(int(f[-4:-2]) if f.endswith("le") else 8 for f in available("libx264"))
    assert video_stream(dest)["pix_fmt"] == ("yuv444p10le" if top == 10 else "yuv444p")
    notes = " ".join(result.notes)
    assert f"bit depth: 12 -> {top}" in notes and "set encode.codec: libx265" in notes
    assert "alpha: alpha -> flattened against black (libx264 cannot carry alpha" in notes


def test_an_unknown_pix_fmt_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="pix_fmt"):
        parse_config("inputs: [x]\noutput: out/\nencode: {codec: libx264, pix_fmt: yuv420p12le}")
    with pytest.raises(ConfigError, match="pix_fmt"):
        parse_config("inputs: [x]\noutput: out/\nencode: {pix_fmt: rgb565}")


# (clip, encode, the output's pix_fmt): no stages, the source's own planes in and out
DIRECT = [
    ("hlg", "{codec: ffv1, container: mkv}", "yuv420p10le"),
    ("hdr10", X265_OUT, "yuv420p10le"),
    ("yuv422_10", "{codec: ffv1, container: mkv}", "yuv422p10le"),
    ("yuv422_10", "{codec: prores_ks, container: mov}", "yuv422p10le"),
    ("one_frame", "{codec: libx264, crf: 0, preset: ultrafast, container: mkv}", "yuv444p"),
]


@pytest.mark.parametrize(("clip", "encode", "pix_fmt"), DIRECT, ids=lambda v: str(v)[:24])
def test_no_stages_on_the_sources_own_planes_is_the_direct_transcode(
    corpus: dict[str, Path], tmp_path: Path, clip: str, encode: str, pix_fmt: str
) -> None:
    """10-bit HDR, 4:2:2 and 4:4:4 sources written in their own format: ffmpeg transcodes directly
    (before: raw 16-bit frames through two pipes, ~0.72x plain ffmpeg on a 720p HLG clip), the same
    frames as the pipes gave (bit for bit where lossless), tags, HDR side data and frame count kept."""
    src = corpus[clip]
    ext = "mov" if "mov" in encode else "mkv" if "mkv" in encode else "mp4"
    dest = tmp_path / f"out.{ext}"
    result = run(src, dest, "[]", encode)
    assert result.notes[0].startswith("no stages: ffmpeg transcoded the source directly"), result.notes
    out, inp = stream_facts(dest), video_stream(src)
    n = CORPUS[clip][2]
    assert int(out["nb_read_frames"]) == n == result.frames_out
    assert out["pix_fmt"] == pix_fmt
    for tag in ("color_transfer", "color_primaries"):
        assert out.get(tag) == inp.get(tag), tag
    # (libx264 writes a limited range only beside a matrix: the one players assume, BT.601 at 64x48)
    alone = "libx264" in encode and inp.get("color_range") == "tv" and not inp.get("color_space")
    assert out.get("color_space") == ("smpte170m" if alone else inp.get("color_space"))
    if clip == "hdr10":
        kinds = {s["side_data_type"]: s for s in side_data(dest)}
        assert kinds["Content light level metadata"]["max_content"] == 1000
    lossless = "ffv1" in encode or "crf: 0" in encode
    if lossless:
        assert np.array_equal(decode(dest, pix_fmt), decode(src, pix_fmt))
    # the pipes make the same frames (an RGB-free stage chain of one whole-frame crop)
    piped = tmp_path / f"piped.{ext}"
    crop = "[{crop: {x: 0, y: 0, width: 64, height: 48}}]"
    assert (
        run(src, piped, crop, encode, PIPES_REGISTRY).notes[0] == f"frames passed between stages as {pix_fmt}"
    )
    if lossless:
        assert np.array_equal(decode(dest, pix_fmt), decode(piped, pix_fmt))
    assert stream_facts(piped).get("color_space") == out.get("color_space")


@pytest.mark.parametrize("stored", ["nv12", "yuv420p10be"])
def test_a_source_stored_otherwise_goes_through_the_pipes_untagged_as_before(
    tmp_path: Path, stored: str
) -> None:
    """Semi-planar or big-endian planes are converted by ffmpeg, which marks them limited range; the
    pipes leave an untagged source untagged, so such a source keeps the pipes (a review found the
    direct path tagging it ``tv``). Same frames either way."""
    src = tmp_path / f"{stored}.nut"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", _SRC, "-frames:v", "3", "-vf", f"format={stored}",
         "-c:v", "rawvideo", str(src)],
        check=True,
    )  # fmt: skip
    assert video_stream(src)["pix_fmt"] == stored and "color_range" not in video_stream(src)
    dest = tmp_path / "out.mkv"
    result = run(src, dest, "[]", "{codec: ffv1, container: mkv}")
    planes = "yuv420p" if stored == "nv12" else "yuv420p10le"
    assert result.notes[0] == f"frames passed between stages as {planes}", result.notes
    assert video_stream(dest).get("color_range", "unknown") == "unknown"
    assert np.array_equal(decode(dest, planes), decode(src, planes))


@pytest.mark.parametrize(
    "stages", ["[]", "[{crop: {x: 0, y: 0, width: 64, height: 48}}]"], ids=["direct", "pipes"]
)
def test_a_source_tagged_only_limited_range_keeps_the_tag_through_libx264(
    tmp_path: Path, stages: str
) -> None:
    """x264 writes the range only beside a colour description; a source tagged `tv` and nothing else
    came out untagged. The output names the matrix players assume for its size (BT.601 here)."""
    src = tmp_path / "tv.mkv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", _SRC, "-frames:v", "3", "-pix_fmt", "yuv420p",
         "-color_range", "tv", "-c:v", "ffv1", str(src)],
        check=True,
    )  # fmt: skip
    assert video_stream(src).get("color_range") == "tv" and "color_space" not in video_stream(src)
    dest = tmp_path / "out.mp4"
    run(src, dest, stages, "{codec: libx264, preset: ultrafast}")
    out = video_stream(dest)
    assert (out.get("color_range"), out.get("color_space")) == ("tv", "smpte170m"), out
