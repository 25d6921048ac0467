"""A Lanczos upscale resizes the source's planes: no RGB round trip, colours as zimg makes them.

Before, ``upscale`` always asked for RGB: every frame went YUV -> RGB in the reader's ffmpeg, was
resized in RGB, and went back to YUV in the writer's (two conversions, 2x the pipe bytes, and the
gamut clipping of the round trip). Now a ladder without a model rung resizes the planes the source
has (8/10-bit, 4:2:0/4:2:2/4:4:4, full range too). The oracle is real ffmpeg: ``zscale``'s Lanczos
on the source's own planes, into the same lossless codec. Where planes cannot hold the new size
(odd, subsampled) or carry alpha (resized premultiplied), frames still travel as RGB: tested too.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from clips import lavfi_clip, video_stream
from test_stages_in_graph import UP2, one_pass_and_chunked
from through_pipes import PIPES_REGISTRY

from batch.config import parse_config
from batch.job.pipeline import PipelineResult, run_pipeline
from batch.media.encoder import choose_encoder
from batch.media.layout import FrameLayout
from batch.stages.registry import REGISTRY

pytestmark = pytest.mark.integration

W, H, RATE, FRAMES = 64, 48, 25, 8
FFV1 = "{codec: ffv1, container: mkv}"


def make(path: Path, graph: str, options: list[str], frames: int = FRAMES) -> Path:
    return lavfi_clip(path, graph, options, frames)


def planes(path: Path, pix_fmt: str, vf: str = "null", size: tuple[int, int] = (2 * W, 2 * H)) -> np.ndarray:
    """Every ``size`` frame's planes as coded (no range conversion), a row a frame; ``vf`` first."""
    proc = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-vf", vf, "-f", "rawvideo", "-pix_fmt", pix_fmt,
         "pipe:1"],
        check=True, capture_output=True,
    )  # fmt: skip
    dtype = np.uint16 if "10" in pix_fmt else np.uint8
    data = np.frombuffer(proc.stdout, dtype)
    return data.reshape(-1, FrameLayout(pix_fmt, *size).elements)


def _size(path: Path) -> tuple[int, int]:
    v = video_stream(path)
    return int(v["width"]), int(v["height"])


def travelled(notes: list[str]) -> str:
    """How frames crossed the pipes (or, the stages in the transcode's graph, which planes it kept),
    from the notes the manifest carries."""
    found = re.findall(
        r"^frames passed between stages as (\S+)$|ffmpeg graph \(on the source's (\S+) planes:",
        "\n".join(notes),
        re.M,
    )
    (fmt,) = ["".join(f) for f in found]
    return fmt


def in_graph(notes: list[str]) -> bool:
    return any("ran in the transcode's own ffmpeg graph" in n for n in notes)


def run(src: Path, dest: Path, stages: str, encode: str = FFV1, route: str = "graph") -> PipelineResult:
    """``route``: "graph" (the product's choice where it can) or "pipes" (the stage on frames)."""
    cfg = parse_config(f"inputs: [x]\noutput: out/\nstages: {stages}\nencode: {encode}")
    registry = PIPES_REGISTRY if route == "pipes" else REGISTRY
    return run_pipeline(cfg, src, dest, choose_encoder(cfg.encode), registry=registry)


def worst(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape
    return int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max())


# name: (lavfi graph, encoder options, planes to compare in, zscale options, largest difference)
SOURCES = {
    "yuv420p": (f"testsrc2=s={W}x{H}:r={RATE}", ["-pix_fmt", "yuv420p", "-c:v", "ffv1"], "yuv420p", "", 1),
    "yuv422p10le": (
        f"testsrc2=s={W}x{H}:r={RATE}", ["-pix_fmt", "yuv422p10le", "-c:v", "ffv1"], "yuv422p10le", "", 4,
    ),
    "yuv444p": (f"testsrc2=s={W}x{H}:r={RATE}", ["-pix_fmt", "yuv444p", "-c:v", "ffv1"], "yuv444p", "", 1),
    # full range: the planes keep their codes; zscale told both sides are full range only resizes
    "yuvj420p": (
        f"testsrc2=s={W}x{H}:r={RATE},scale=out_range=full",
        ["-pix_fmt", "yuvj420p", "-c:v", "libx264", "-qp", "0"], "yuv420p", ":rangein=full:range=full", 1,
    ),
    # chroma sited at the centre (MJPEG's, and what a tag may say): kept, not read as "left"
    "center": (
        f"testsrc2=s={W}x{H}:r={RATE}",
        ["-pix_fmt", "yuv420p", "-chroma_sample_location", "center", "-c:v", "ffv1"], "yuv420p",
        ":chromalin=center:chromal=center", 1,
    ),
}  # fmt: skip


@pytest.mark.parametrize("route", ["graph", "pipes"])
@pytest.mark.parametrize("name", sorted(SOURCES))
def test_a_lanczos_upscale_resizes_the_planes_as_zscale_does(tmp_path: Path, name: str, route: str) -> None:
    """Both routes: in the transcode's graph (zscale itself, with the frames' siting and range) and
    as a stage on the planes through the pipes (PlanarLanczosRung)."""
    graph, options, fmt, zopts, tolerance = SOURCES[name]
    src = make(tmp_path / "src.mkv", graph, options)
    out = tmp_path / "out.mkv"
    result = run(src, out, "[upscale: {scale: 2, ladder: [lanczos]}]", route=route)
    assert travelled(result.notes) == fmt  # the planes travelled, not RGB
    assert in_graph(result.notes) == (route == "graph")
    assert result.frames_out == FRAMES and _size(out) == (2 * W, 2 * H)
    ours = planes(out, fmt, "scale=in_range=full:out_range=full" if "range=full" in zopts else "null")
    theirs = planes(src, fmt, f"zscale=w={2 * W}:h={2 * H}:filter=lanczos{zopts}")
    assert len(ours) == FRAMES and worst(ours, theirs) <= tolerance


def test_the_rgb_path_it_replaced_lands_far_from_zscale(tmp_path: Path) -> None:
    """The claim behind the change: on saturated bars, resizing in RGB (what frames still get after
    a stage that asks for RGB, here the stand-in of a model) lands far from zscale's resize of the
    planes; resizing the planes lands within a code."""
    from batch.stages.standin import STANDIN_REGISTRY, StandInStage

    graph, options, fmt, _, _ = SOURCES["yuv420p"]
    src = make(tmp_path / "src.mkv", graph, options)
    theirs = planes(src, fmt, f"zscale=w={2 * W}:h={2 * H}:filter=lanczos")
    cfg = parse_config(f"inputs: [x]\noutput: out/\nstages: [upscale: {{scale: 2}}]\nencode: {FFV1}")
    cfg = cfg.replace(stages=[StandInStage(rgb=True), *cfg.stages])
    rgb = tmp_path / "rgb.mkv"
    result = run_pipeline(cfg, src, rgb, choose_encoder(cfg.encode), registry=STANDIN_REGISTRY)
    assert travelled(result.notes) == "rgb24"
    assert worst(planes(rgb, fmt), theirs) > 8
    out = tmp_path / "planes.mkv"
    run(src, out, "[upscale: {scale: 2}]")
    assert worst(planes(out, fmt), theirs) <= 1


def test_an_odd_size_sends_rgb_and_the_job_still_keeps_every_frame(tmp_path: Path) -> None:
    graph, options, _, _, _ = SOURCES["yuv420p"]
    src = make(tmp_path / "src.mkv", graph, options)
    out = tmp_path / "odd.mkv"
    result = run(src, out, "[upscale: {width: 97, height: 73, ladder: [lanczos]}]")
    assert travelled(result.notes) == "rgb24"
    assert any("97x73" in n and "RGB" in n for n in result.notes), result.notes
    assert result.frames_out == FRAMES
    w, h = _size(out)
    assert (w, h) in ((97, 73), (98, 74))  # padded for 4:2:0 where the codec needs it (a note says so)


def test_alpha_is_resized_premultiplied_in_rgb(tmp_path: Path) -> None:
    """Planes with alpha travel as RGBA, where the resize is premultiplied (no bleeding from under
    transparent pixels), and the alpha is kept."""
    graph = (
        f"color=red:s={W // 2}x{H}:r={RATE},format=rgba[l];"
        f"color=0x00ff0000:s={W // 2}x{H}:r={RATE},format=rgba[r];[l][r]hstack"
    )
    src = make(tmp_path / "alpha.mkv", graph, ["-pix_fmt", "yuva420p", "-c:v", "ffv1"])
    out = tmp_path / "out.mkv"
    result = run(src, out, "[upscale: {scale: 2, ladder: [lanczos]}]")
    assert travelled(result.notes) == "rgba"
    assert any("alpha is resized premultiplied" in n for n in result.notes), result.notes
    # alpha kept; the colour next to the edge is what the conversion to RGBA makes of the source's
    # 4:2:0 chroma (the no-bleed rule of the premultiplied resize: tests/unit/test_deep_frames.py)
    v = video_stream(out)
    assert v["pix_fmt"] == "yuva420p" and (v["width"], v["height"]) == (2 * W, 2 * H)
    assert result.frames_out == FRAMES


def test_chunks_give_the_one_pass_frames_and_hdr_tags_stay(tmp_path: Path) -> None:
    """10-bit HLG through the whole command, one pass and in chunks: the same frames, the tags kept."""
    src = make(
        tmp_path / "hlg.mkv", f"testsrc2=s={W}x{H}:r={RATE}",
        ["-pix_fmt", "yuv420p10le", "-color_primaries", "bt2020", "-color_trc", "arib-std-b67",
         "-colorspace", "bt2020nc", "-c:v", "ffv1"],
        frames=50,
    )  # fmt: skip
    outs = {}
    for label, (record, made) in one_pass_and_chunked(tmp_path, src, UP2, "lanczos").items():
        assert record["encode"]["pixels"]["frames"] == "yuv420p10le"
        v = video_stream(made)
        assert (v["width"], v["height"], v["pix_fmt"]) == (2 * W, 2 * H, "yuv420p10le")
        assert (v["color_transfer"], v["color_primaries"]) == ("arib-std-b67", "bt2020")
        outs[label] = planes(made, "yuv420p10le")
        assert len(outs[label]) == 50
    assert np.array_equal(outs["one"], outs["chunks"])


@pytest.mark.parametrize(
    ("siting", "stages"),
    [
        ("topleft", "[upscale: {scale: 2, ladder: [lanczos]}]"),  # UHD HEVC's
        ("center", "[upscale: {scale: 2, ladder: [lanczos]}]"),  # MJPEG's
        ("topleft", "[crop: {width: 32, height: 24}]"),  # planes cut as they are keep it too
        ("top", "[interpolate: {factor: 2, ladder: [blend]}]"),
    ],
)
@pytest.mark.parametrize("route", ["graph", "pipes"])
def test_the_output_is_tagged_with_the_siting_its_planes_keep(
    tmp_path: Path, siting: str, stages: str, route: str
) -> None:
    """Planes resized, cut or mixed as they are keep the source's chroma siting; the output must say
    so, or players put its chroma half a sample off (they read an untagged stream as "left")."""
    src = make(
        tmp_path / "sited.mp4", f"testsrc2=s={W}x{H}:r={RATE}",
        ["-pix_fmt", "yuv420p", "-chroma_sample_location", siting, "-c:v", "libx264", "-qp", "0"],
    )  # fmt: skip
    for codec, encode in (("mkv", FFV1), ("mp4", "{codec: libx264, preset: ultrafast}")):
        out = tmp_path / f"out.{codec}"
        result = run(src, out, stages, encode, route)
        assert travelled(result.notes) == "yuv420p"
        assert in_graph(result.notes) == (route == "graph" and "interpolate" not in stages)
        assert video_stream(out).get("chroma_location") == siting, codec


@pytest.mark.parametrize("route", ["graph", "pipes"])
def test_a_left_sited_source_is_never_tagged_otherwise(tmp_path: Path, route: str) -> None:
    """ "left" is what readers take when none is written: such outputs stay as before (no tag), also
    in the transcode's graph, where the decoded frames would carry the source's own "left" along."""
    src = make(
        tmp_path / "left.mkv", f"testsrc2=s={W}x{H}:r={RATE}",
        ["-pix_fmt", "yuv420p", "-chroma_sample_location", "left", "-c:v", "ffv1"],
    )  # fmt: skip
    out = tmp_path / "out.mkv"
    run(src, out, "[upscale: {scale: 2, ladder: [lanczos]}]", route=route)
    assert video_stream(out).get("chroma_location") in (None, "unspecified")


def test_an_odd_size_between_two_stages_sends_rgb(tmp_path: Path) -> None:
    """Upscale to 99x75, then crop back to 96x72: the last size fits 4:2:0 planes, the one between the
    stages does not, so frames travel as RGB (planes of 99x75 would carry misplaced chroma)."""
    graph, options, _, _, _ = SOURCES["yuv420p"]
    src = make(tmp_path / "src.mkv", graph, options)
    out = tmp_path / "out.mkv"
    result = run(
        src, out, "[upscale: {width: 99, height: 75, ladder: [lanczos]}, crop: {width: 96, height: 72}]"
    )
    assert travelled(result.notes) == "rgb24" and any("99x75" in n for n in result.notes), result.notes
    assert result.frames_out == FRAMES and _size(out) == (96, 72)


@pytest.mark.parametrize("route", ["graph", "pipes"])
@pytest.mark.parametrize(
    ("pix_fmt", "encode"),
    [("yuv420p", "{codec: libx264, preset: ultrafast}"), ("yuv420p10le", FFV1), ("yuv420p", FFV1)],
)
def test_an_untagged_sd_source_made_hd_names_its_matrix(
    tmp_path: Path, pix_fmt: str, encode: str, route: str
) -> None:
    """320x240 with no colour tags is BT.601 by its size; upscaled 4x it is 1280x960, which players
    read as BT.709 unless told: the output names the matrix (the RGB route's zscale marked it so)."""
    src = make(
        tmp_path / "sd.mkv", "testsrc2=s=320x240:r=25", ["-pix_fmt", pix_fmt, "-c:v", "ffv1"], frames=3
    )
    assert video_stream(src).get("color_space") is None
    out = tmp_path / ("out.mp4" if "libx264" in encode else "out.mkv")
    result = run(src, out, "[upscale: {scale: 4, ladder: [lanczos]}]", encode, route)
    assert travelled(result.notes) == pix_fmt and in_graph(result.notes) == (route == "graph")
    v = video_stream(out)
    assert (v.get("color_space"), v.get("color_range")) == ("smpte170m", "tv")


def test_a_siting_the_output_cannot_record_sends_rgb_and_lands_left(tmp_path: Path) -> None:
    """Top-left 4:2:0 into ProRes (4:2:2, no siting field): through RGB, as before, written left-sited,
    and the note says why; the same source into libx265 keeps its planes and says top-left."""
    src = make(
        tmp_path / "tl.mkv", f"testsrc2=s={W}x{H}:r={RATE}",
        ["-pix_fmt", "yuv420p", "-chroma_sample_location", "topleft", "-c:v", "ffv1"],
    )  # fmt: skip
    prores = tmp_path / "out.mov"
    result = run(
        src, prores, "[upscale: {scale: 2, ladder: [lanczos]}]", "{codec: prores_ks, container: mov}"
    )
    assert travelled(result.notes) == "rgb24"
    assert any("sited topleft" in n and "cannot record" in n for n in result.notes), result.notes
    hevc = tmp_path / "out.mp4"
    result = run(src, hevc, "[upscale: {scale: 2, ladder: [lanczos]}]", "{codec: libx265, preset: ultrafast}")
    assert travelled(result.notes) == "yuv420p" and video_stream(hevc).get("chroma_location") == "topleft"
