"""A Lanczos-only upscale and a crop run inside the transcode's own ffmpeg graph: no frames through
the pipes. A crop there cuts the very samples the stage's slices cut (bit-identical, tested below).

Its result is zimg's Lanczos on the source's planes, what the stage makes of them through the pipes
within a code (tests/integration/test_planar_lanczos_job.py holds both routes to zscale). Here: which
jobs take the graph and which do not, that nothing else of the job changes (frame counts and
durations by ffprobe, audio, the preview's frames, the manifest's stage report, chunks), and that
outputs made by the stage route are made again, not reused (the route is in the fingerprint).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from clips import audio_stream, clip_at, count_frames, lavfi_clip, video_stream
from test_runner_local import run_cli, write_config
from through_pipes import PIPES_REGISTRY

from batch.config import JobConfig, parse_config
from batch.errors import FFmpegFailed
from batch.job.pipeline import PipelineResult, pixel_plan_for, run_pipeline
from batch.media.colour import rgb_conversion
from batch.media.encoder import choose_encoder
from batch.media.pixel_plan import IN_GRAPH, PLANES_RESIZED
from batch.media.preview import crop_boxes
from batch.media.probe import probe
from batch.stages.registry import REGISTRY, StageRegistry

pytestmark = pytest.mark.integration

W, H, RATE = 96, 64, 25
UP2 = "[upscale: {scale: 2, ladder: [lanczos]}]"


def clip(
    path: Path, options: list[str], frames: int = 12, graph: str = f"testsrc2=s={W}x{H}:r={RATE}"
) -> Path:
    return lavfi_clip(path, graph, options, frames)


def config(stages: str, encode: str = "{codec: ffv1, container: mkv}") -> JobConfig:
    return parse_config(f"inputs: [x]\noutput: out/\nstages: {stages}\nencode: {encode}")


def run(
    src: Path, dest: Path, stages: str = UP2, encode: str = "{codec: ffv1, container: mkv}",
    registry: StageRegistry = REGISTRY,
) -> PipelineResult:  # fmt: skip
    cfg = config(stages, encode)
    return run_pipeline(cfg, src, dest, choose_encoder(cfg.encode), registry=registry)


def rule(src: Path, stages: str, encode: str = "{codec: ffv1, container: mkv}") -> str:
    """GRAPH where the stages run in the transcode's graph, else how the planes are resized."""
    cfg = config(stages, encode)
    pixels = pixel_plan_for(cfg, probe(src), choose_encoder(cfg.encode))
    return GRAPH if pixels.in_graph else pixels.resize_rule


GRAPH = "in the graph"


def test_which_upscales_run_in_the_graph(tmp_path: Path) -> None:
    """In the graph: Lanczos-only ladders on planes that go from decoder to encoder as they are.
    Not: a model rung (its fallback decides at run time), another stage beside it, a variable rate
    (chunks take frames by slot), a depth the codec does not hold, alpha, an odd size (RGB)."""
    plain = clip(tmp_path / "plain.mkv", ["-pix_fmt", "yuv420p", "-c:v", "ffv1"])
    assert rule(plain, UP2) == GRAPH
    assert rule(plain, "[upscale: {width: 160, height: 96}]") == GRAPH  # default ladder
    assert rule(plain, "[upscale: {scale: 1}]") == GRAPH  # (the filter is "null")
    assert rule(plain, "[upscale: {scale: 2}, upscale: {scale: 2}]") == GRAPH
    model = f'{{url: "https://example.com/sr.pth", sha256: "{"0" * 64}"}}'
    assert rule(plain, f"[upscale: {{scale: 2, model: {model}, ladder: [model, lanczos]}}]") not in (
        GRAPH,
        PLANES_RESIZED,
    )  # RGB for the model (its fallback's planes on the device are another rule)
    assert rule(plain, "[upscale: {scale: 2}, crop: {width: 64, height: 64}]") == GRAPH
    assert rule(plain, "[crop: {width: 64, height: 32, x: 16}]") == GRAPH
    assert rule(plain, "[upscale: {scale: 2}, analyze: {}]") == PLANES_RESIZED  # analyze has no filter
    assert rule(plain, "[upscale: {width: 97, height: 73}]") == ""  # RGB: 4:2:0 cannot hold it
    ten = clip(tmp_path / "ten.mkv", ["-pix_fmt", "yuv420p10le", "-c:v", "ffv1"])
    assert rule(ten, UP2) == GRAPH
    assert rule(ten, UP2, "{codec: libx264, pix_fmt: yuv420p}") == PLANES_RESIZED  # 10 -> 8 bits: the writer
    alpha = clip(tmp_path / "alpha.mkv", ["-pix_fmt", "yuva420p", "-c:v", "ffv1"])
    assert rule(alpha, UP2) == ""  # RGBA, resized premultiplied
    vfr = clip_at(tmp_path / "vfr.mp4", [0, 33, 66, 133, 166, 250, 283])
    assert probe(vfr).vfr
    assert rule(vfr, UP2) == PLANES_RESIZED


def test_the_graph_keeps_every_frame_the_audio_and_the_duration(tmp_path: Path) -> None:
    src = tmp_path / "src.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=s={W}x{H}:r={RATE}:d=2", "-f", "lavfi",
         "-i", "sine=d=2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(src)],
        check=True,
    )  # fmt: skip
    out = tmp_path / "out.mp4"
    result = run(src, out, UP2, "{codec: libx264, preset: ultrafast}")
    assert any("ran in the transcode's own ffmpeg graph" in n for n in result.notes), result.notes
    assert count_frames(out) == count_frames(src) == 50 == result.frames_out
    v = video_stream(out)
    assert (v["width"], v["height"]) == (2 * W, 2 * H)
    assert abs(probe(out).duration - probe(src).duration) < 1 / RATE
    a = audio_stream(out)
    assert a is not None and a["codec_name"] == "aac"
    (report,) = result.stages
    assert (report["frames_in"], report["frames_out"], report["used"]) == (50, 50, "lanczos")
    (step,) = report["steps"]
    assert step["frames"] == 50 and step["backend"]["filter"] == f"zscale=w={2 * W}:h={2 * H}:filter=lanczos"
    assert "seconds" not in step  # the transcode's time is not the stage's own (encode, decode, other stages)


def test_the_preview_shows_the_upscaled_frames(tmp_path: Path) -> None:
    """The rows' source cells come from the decoded source, their result cells from the upscaled
    stream, at the output's size; the full-size crop of the result is the output's own pixels.
    The rows are the stage route's (frames through the pipes, thumbnails made there)."""
    src = clip(tmp_path / "src.mkv", ["-pix_fmt", "yuv420p", "-c:v", "ffv1"], frames=20)
    stages = "[upscale: {width: 192, height: 96, ladder: [lanczos]}]"  # the aspect changes: sizes tell
    out = tmp_path / "graph.mkv"
    tg = run(src, out, stages).preview
    tp = run(src, tmp_path / "pipes.mkv", stages, registry=PIPES_REGISTRY).preview
    assert tg is not None and tp is not None
    assert sorted(tg.output_seen) == sorted(tp.output_seen) and sorted(tg.source_seen) == sorted(
        tp.source_seen
    )
    box_in, box_out = crop_boxes(tg.layout_in, tg.layout_out)
    for k in tp.output_seen:
        assert tg.output_seen[k].size == tp.output_seen[k].size == tg.thumbnail_size(made=True)
        assert tg.source_seen[k].size == tg.thumbnail_size() != tg.output_seen[k].size
    (k,) = tg.output_crops
    assert tg.output_crops[k].size == box_out[2:] and tg.source_crops[k].size == box_in[2:]
    x, y, w, h = box_out
    to_rgb = rgb_conversion(tg.colour, to_rgb=True)  # the product's conversion of the output's frame
    own = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(out), "-vf", f"select=eq(n\\,{k}),crop={w}:{h}:{x}:{y},{to_rgb}",
         "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    diff = np.abs(np.asarray(tg.output_crops[k], np.int16) - np.frombuffer(own, np.uint8).reshape(h, w, 3))
    assert int(diff.max()) <= 1, int(diff.max())


def one_pass_and_chunked(tmp_path: Path, src: Path, stages: str, name: str) -> dict[str, tuple[dict, Path]]:
    """The whole command on ``src`` into ffv1/mkv, in one pass ("one") and in chunks of 0.5 s
    ("chunks"): each run's manifest record and video."""
    runs = {}
    for label, limits in (("one", ""), ("chunks", "limits: {chunk_s: 0.5}\n")):
        out = tmp_path / f"out-{label}"
        cfg = write_config(
            tmp_path / f"{label}.yaml",
            f"job_id: {name}-{label}\ninputs: [{src}]\noutput: {out}/\n{limits}stages: {stages}\n"
            "encode: {codec: ffv1, container: mkv}\n",
        )
        proc = run_cli("--config", str(cfg), "--state-dir", str(tmp_path / f"state-{label}"))
        assert proc.returncode == 0, proc.stderr
        (record,) = json.loads((out / "manifest.json").read_text())["inputs"]
        (video,) = sorted(out.glob("*/*.mkv"))
        runs[label] = (record, video)
    return runs


def test_chunks_in_the_graph_report_every_part_and_equal_one_pass(tmp_path: Path) -> None:
    """The whole command, in chunks of 0.5 s: each part runs the upscale in its own transcode; the
    manifest's stage report sums them, the preview has its rows, the frames equal one pass's."""
    src = clip(tmp_path / "src.mkv", ["-pix_fmt", "yuv420p", "-c:v", "ffv1"], frames=40)
    made = {}
    for label, (record, video) in one_pass_and_chunked(tmp_path, src, UP2, "graph").items():
        (report,) = record["stages"]
        assert report["used"] == "lanczos"
        assert sum(s["frames"] for s in report["steps"]) == 40
        assert all(s["backend"]["filter"].startswith("zscale=") for s in report["steps"])
        assert any("ran in the transcode's own ffmpeg graph" in n for n in record["notes"]), record["notes"]
        assert (video.parent / "preview.jpg").exists()
        assert count_frames(video) == 40
        made[label] = raw(video, "yuv420p").tobytes()
    assert made["one"] == made["chunks"]


def test_an_output_made_through_the_pipes_is_made_again(tmp_path: Path) -> None:
    """The route is in the settings' fingerprint: an output an earlier rule resized (the stage on the
    planes) is not taken as this rule's."""
    src = clip(tmp_path / "src.mkv", ["-pix_fmt", "yuv420p", "-c:v", "ffv1"])
    cfg = config(UP2)
    info = probe(src)
    graph = pixel_plan_for(cfg, info, choose_encoder(cfg.encode))
    pipes = pixel_plan_for(cfg, info, choose_encoder(cfg.encode), PIPES_REGISTRY)
    assert graph.route != pipes.route
    assert graph.route.endswith(f"{PLANES_RESIZED}/{IN_GRAPH}") and pipes.route.endswith(PLANES_RESIZED)


# sources whose decoding the transcode's graph does itself (rotation, deinterlacing, a late start, full
# range MJPEG): name -> (ffmpeg options making it from testsrc2, file name)
ODD_SOURCES = {
    "mjpeg yuvj422p": (
        ["-vf", "scale=out_range=full,format=yuvj422p", "-c:v", "mjpeg", "-q:v", "2"], "s.avi",
    ),
    "rotated 90": (
        ["-pix_fmt", "yuv420p", "-c:v", "libx264", "-qp", "0", "-metadata:s:v:0", "rotate=90"], "s.mp4",
    ),
    "interlaced": (
        ["-vf", "setfield=tff,format=yuv420p", "-c:v", "libx264", "-qp", "0", "-flags", "+ildct+ilme",
         "-x264opts", "tff=1"],
        "s.mkv",
    ),
    "anamorphic": (["-vf", "setsar=16/11", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-qp", "0"], "s.mp4"),
    "starts late, B-frames": (
        ["-pix_fmt", "yuv420p", "-c:v", "libx264", "-bf", "3", "-output_ts_offset", "0.5"], "s.mp4",
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "stages"),
    [(name, UP2) for name in sorted(ODD_SOURCES)]
    + [
        ("anamorphic", "[upscale: {width: 288, height: 64}]"),
        ("plain", "[upscale: {width: 288, height: 64}]"),
    ],
)
def test_the_graph_gives_the_stage_s_frames_on_odd_sources(tmp_path: Path, name: str, stages: str) -> None:
    """The same frames, sizes, durations and pixel aspect by either route; pixels within a code (the
    stage's own rung against zimg), on sources the transcode decodes otherwise than plain ones and on
    a size of another shape (zscale, left alone, rescales the aspect, which the pipes do not carry)."""
    options, filename = ODD_SOURCES.get(name, (["-pix_fmt", "yuv420p", "-c:v", "ffv1"], "s.mkv"))
    src = clip(tmp_path / filename, options, frames=16)
    outs = {}
    for route, registry in (("graph", REGISTRY), ("pipes", PIPES_REGISTRY)):
        out = tmp_path / f"{route}.mkv"
        result = run(src, out, stages, registry=registry)
        assert any("own ffmpeg graph" in n for n in result.notes) == (route == "graph"), result.notes
        v = video_stream(out)
        outs[route] = (
            count_frames(out), v["width"], v["height"], v["pix_fmt"], probe(out).duration,
            v.get("sample_aspect_ratio"),
        )  # fmt: skip
        outs[route + " planes"] = raw(out, v["pix_fmt"])
    assert outs["graph"] == outs["pipes"]
    worst = np.abs(outs["graph planes"].astype(np.int32) - outs["pipes planes"].astype(np.int32)).max()
    assert worst <= 2, worst  # (zimg's fixed-point kernels round otherwise on noisy content)


def raw(path: Path, pix_fmt: str) -> np.ndarray:
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", pix_fmt, "pipe:1"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    return np.frombuffer(out, np.uint16 if "10" in pix_fmt else np.uint8)


CROP_SOURCES = {
    "yuv420p": ["-pix_fmt", "yuv420p", "-c:v", "ffv1"],
    "yuv422p10le": ["-pix_fmt", "yuv422p10le", "-c:v", "ffv1"],
    "yuv444p": ["-pix_fmt", "yuv444p", "-c:v", "ffv1"],
    "topleft": ["-pix_fmt", "yuv420p", "-chroma_sample_location", "topleft", "-c:v", "ffv1"],
    # a siting that means nothing at 4:4:4: the plan records none, and the decoder's must not ride along
    "yuv444p center": ["-pix_fmt", "yuv444p", "-chroma_sample_location", "center", "-c:v", "ffv1"],
    "yuv422p topleft": ["-pix_fmt", "yuv422p", "-chroma_sample_location", "topleft", "-c:v", "ffv1"],
}


@pytest.mark.parametrize("name", sorted(CROP_SOURCES))
def test_a_crop_in_the_graph_cuts_the_stage_s_very_samples(tmp_path: Path, name: str) -> None:
    src = clip(tmp_path / "src.mkv", CROP_SOURCES[name], frames=10)
    stages = "[crop: {width: 48, height: 32, x: 22, y: 14}]"  # even, off-centre: a half-offset shows
    made = {}
    for route, registry in (("graph", REGISTRY), ("pipes", PIPES_REGISTRY)):
        out = tmp_path / f"{route}.mkv"
        result = run(src, out, stages, registry=registry)
        assert any("own ffmpeg graph" in n for n in result.notes) == (route == "graph"), result.notes
        (report,) = result.stages
        assert report["frames_in"] == report["frames_out"] == 10
        assert report["used"] == ("numpy" if route == "pipes" else "ffmpeg crop (in the transcode's graph)")
        v = video_stream(out)
        made[route] = (v["width"], v["height"], v["pix_fmt"], v.get("chroma_location"), count_frames(out))
        made[route + " planes"] = raw(out, v["pix_fmt"]).tobytes()
    assert made["graph planes"] == made["pipes planes"]
    assert made["graph"][:3] == made["pipes"][:3] == (48, 32, made["graph"][2])
    assert made["graph"][4] == made["pipes"][4] == 10
    # the siting tag: the plan's where it names one (top-left 4:2:0), else none by either route
    none = (None, "unspecified")
    sited = made["graph"][3], made["pipes"][3]
    assert sited == ("topleft", "topleft") if name == "topleft" else all(s in none for s in sited), sited


def test_an_encoder_refusing_the_stages_frames_says_so(tmp_path: Path) -> None:
    """libx265 refuses 8x8 frames: the error names the stages' size first, not a damaged input."""
    src = clip(tmp_path / "src.mkv", ["-pix_fmt", "yuv420p", "-c:v", "ffv1"], frames=4)
    with pytest.raises(FFmpegFailed) as failed:
        run(src, tmp_path / "out.mp4", "[crop: {width: 8, height: 8}]", "{codec: libx265, preset: ultrafast}")
    assert (
        "the stages' 8x8 frames" in (failed.value.hint or "") and "8x8" in failed.value.fields["stderr_tail"]
    )
