"""``encode.colour_on_device``: a RIFE job whose frames cross the pipes as yuv420p, RGB made on the device.

The CLI on real clips; RIFE weights are random, written in the official layout (tests/model_weights.py).
Torch runs on the CPU (``rife-cpu``; no GPU here), where ``colour_on_device: true`` asks for the
device conversion that a GPU machine gets by default. Outputs are ffv1 (lossless), so the frames
compared are the frames the stages handed to the encoder.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from clips import count_frames, make_clip, video_stream
from model_weights import sha256_of, write_rife4
from test_runner_local import run_cli, write_config

pytestmark = pytest.mark.integration

W, H = 96, 64


def yuv_frames(path: Path, w: int = W, h: int = H, pix_fmt: str = "yuv420p") -> np.ndarray:
    """The decoded 4:2:0 frames, flat: uint8 for yuv420p, uint16 for yuv420p10le."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", pix_fmt, "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint16 if "10" in pix_fmt else np.uint8).reshape(-1, w * h * 3 // 2)


def colour_tags(path: Path) -> dict[str, str]:
    stream = video_stream(path)
    return {
        k: stream.get(k, "unknown")
        for k in ("color_space", "color_range", "color_primaries", "color_transfer")
    }


@pytest.fixture
def rife(tmp_path: Path) -> str:
    path = tmp_path / "flownet.pkl"
    write_rife4(path, "4.22-lite")
    return f'{{url: "{path}", sha256: {sha256_of(path)}}}'


def job(tmp_path: Path, clip: Path, name: str, stage: str, encode: str) -> tuple[Path, dict]:
    out = tmp_path / f"out-{name}"
    body = f"inputs: [{clip}]\noutput: {out}\nstages:\n  - interpolate: {stage}\nencode: {encode}\n"
    cfg = write_config(tmp_path / f"{name}.yaml", body)
    result = run_cli("--config", str(cfg), env={"WEIGHTS_DIR": str(tmp_path / "weights")})
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    return out / clip.stem / f"{clip.stem}.mkv", manifest["inputs"][0]


def on_and_off(tmp_path: Path, clip: Path, name: str, stage: str) -> tuple[Path, dict, Path, dict]:
    """The same lossless job with the device conversion on and off: (output, record) of each."""
    lossless = "{codec: ffv1, container: mkv, colour_on_device: %s}"
    on, on_record = job(tmp_path, clip, f"{name}-on", stage, lossless % "true")
    off, off_record = job(tmp_path, clip, f"{name}-off", stage, lossless % "false")
    return on, on_record, off, off_record


def test_rife_on_yuv_frames_keeps_the_source_frames_bit_exact_and_matches_the_rgb_path(
    tmp_path: Path, rife: str
) -> None:
    clip = make_clip(tmp_path / "in.mp4", size=f"{W}x{H}", frames=10, audio=False)
    stage = f"{{factor: 2, model: {rife}, ladder: [rife-cpu], batch: 4}}"
    on, on_record = job(tmp_path, clip, "on", stage, "{codec: ffv1, container: mkv, colour_on_device: true}")
    off, off_record = job(
        tmp_path, clip, "off", stage, "{codec: ffv1, container: mkv, colour_on_device: false}"
    )

    pixels = on_record["encode"]["pixels"]
    assert (pixels["frames"], pixels["colour_on_device"]) == ("yuv420p", True)
    assert off_record["encode"]["pixels"]["frames"] == "rgb24"
    assert not off_record["encode"]["pixels"]["colour_on_device"]
    (step,) = [s for s in on_record["stages"][0]["steps"] if s["status"] == "used"]
    assert step["backend"]["colour_on_device"].endswith(" tv")
    assert any("colour converted on the model's device" in n for n in on_record["notes"])

    # an untagged SD source: the RGB path's zscale marks its output BT.601 limited; so must this one
    # (an outside review found it untagged, which a player of an HD result would read as BT.709)
    assert colour_tags(on) == colour_tags(off)
    assert colour_tags(on)["color_space"] == "smpte170m" and colour_tags(on)["color_range"] == "tv"
    source, with_yuv, with_rgb = yuv_frames(clip), yuv_frames(on), yuv_frames(off)
    assert count_frames(on) == count_frames(off) == 20
    # the source frames (even positions at 2x) never left YUV: bit-identical to the decoded source
    assert np.array_equal(with_yuv[0::2], source)
    # through RGB and back (ffmpeg both ways) testsrc2's saturated bars lose ~2 levels on average
    gap = np.abs(with_yuv.astype(np.int16) - with_rgb.astype(np.int16))
    assert gap[0::2].mean() > 1.0
    # the made frames agree with the RGB path's: the model saw the same RGB within a code value
    # (measured: mean 0.2, 99th percentile 6 levels; random weights amplify a code at a few edges)
    assert gap[1::2].mean() < 0.5, gap[1::2].mean()
    assert np.percentile(gap[1::2], 99) <= 10, np.percentile(gap[1::2], 99)


def test_auto_uses_ffmpegs_conversion_without_a_gpu(tmp_path: Path, rife: str) -> None:
    clip = make_clip(tmp_path / "in.mp4", size=f"{W}x{H}", frames=4, audio=False)
    stage = f"{{factor: 2, model: {rife}, ladder: [rife-cpu]}}"
    _, record = job(tmp_path, clip, "auto", stage, "{codec: ffv1, container: mkv}")
    assert record["encode"]["pixels"]["frames"] == "rgb24"
    assert record["encode"]["pixels"]["colour_on_device"] is False


def yuv10_frames(path: Path, w: int = W, h: int = H) -> np.ndarray:
    return yuv_frames(path, w, h, "yuv420p10le")


def test_a_10_bit_source_crosses_as_10_bit_planes_and_keeps_its_source_frames(
    tmp_path: Path, rife: str
) -> None:
    """yuv420p10le in and out (an HDR master, BT.2020 PQ): the planes cross the pipes (half the bytes of
    rgb48le), RGB is made on the device at 16 bits, and the output stays 10-bit with the HDR tags."""
    clip = make_clip(
        tmp_path / "deep.mkv", size=f"{W}x{H}", frames=5, audio=False, codec="ffv1", pix_fmt="yuv420p10le",
        extra=["-colorspace", "bt2020nc", "-color_primaries", "bt2020", "-color_trc", "smpte2084",
               "-color_range", "tv"],
    )  # fmt: skip
    stage = f"{{factor: 2, model: {rife}, ladder: [rife-cpu], batch: 4}}"
    on, on_record, off, off_record = on_and_off(tmp_path, clip, "deep", stage)

    pixels = on_record["encode"]["pixels"]
    assert (pixels["frames"], pixels["colour_on_device"]) == ("yuv420p10le", True)
    assert (off_record["encode"]["pixels"]["frames"], off_record["encode"]["pixels"]["colour_on_device"]) == (
        "rgb48le",
        False,
    )
    (step,) = [s for s in on_record["stages"][0]["steps"] if s["status"] == "used"]
    assert step["backend"]["colour_on_device"].startswith("yuv420p10le ")
    assert any("colour converted on the model's device: yuv420p10le" in n for n in on_record["notes"])
    assert video_stream(on)["pix_fmt"] == video_stream(off)["pix_fmt"] == "yuv420p10le"
    assert colour_tags(on) == colour_tags(off)
    assert (colour_tags(on)["color_space"], colour_tags(on)["color_transfer"]) == ("bt2020nc", "smpte2084")
    assert count_frames(on) == count_frames(off) == 10
    source, with_yuv, with_rgb = yuv10_frames(clip), yuv10_frames(on), yuv10_frames(off)
    assert np.array_equal(with_yuv[0::2], source)  # never left 10-bit YUV
    assert np.count_nonzero(with_yuv[1::2] % 4) > with_yuv[1::2].size // 4  # made frames use all 10 bits
    gap = np.abs(with_yuv.astype(np.int32) - with_rgb.astype(np.int32))
    # the made frames agree with the rgb48le path's (measured: 87% of samples equal, mean 1.5 10-bit
    # codes, 99th percentile 40: at testsrc2's saturated bars, where the rgb48le path itself moves the
    # source frames by 8 codes on average; at 8 bits the same test measures 0.2 and 6 in 8-bit codes)
    assert gap[1::2].mean() < 2.5, gap[1::2].mean()
    assert np.percentile(gap[1::2], 99) <= 48, np.percentile(gap[1::2], 99)
    assert np.count_nonzero(gap[1::2] == 0) > 0.8 * gap[1::2].size


def fade_clip(path: Path, pix_fmt: str) -> Path:
    """Three black frames, then three of level 8: a cut in RGB luma (0 -> 8), but both sit in one
    histogram bin as limited-range Y codes (16 -> 23), unless the planes are measured as RGB is."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"color=c=black:size={W}x{H}:rate=24:duration=0.125",
         "-f", "lavfi", "-i", f"color=c=0x080808:size={W}x{H}:rate=24:duration=0.125",
         "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]",
         "-c:v", "ffv1", "-pix_fmt", pix_fmt, str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv420p10le"])
def test_scene_cuts_and_metrics_do_not_depend_on_where_colour_is_converted(
    tmp_path: Path, rife: str, pix_fmt: str
) -> None:
    """The same job on a GPU host (planes through the pipes) and on a host without one (RGB): the same
    cuts, the same dark frames on a fade from black (an outside review found 0 cuts against 1, dark
    share 0 against 1). Greys measure alike exactly; see docs/config.md for what still differs."""
    clip = fade_clip(tmp_path / f"fade-{pix_fmt}.mkv", pix_fmt)
    records = {}
    for on in (True, False):
        out = tmp_path / f"out-{pix_fmt}-{on}"
        body = (
            f"inputs: [{clip}]\noutput: {out}\nstages:\n"
            f"  - interpolate: {{factor: 2, model: {rife}, ladder: [rife-cpu]}}\n"
            "  - analyze: {}\n"
            f"encode: {{codec: ffv1, container: mkv, colour_on_device: {str(on).lower()}}}\n"
        )
        cfg = write_config(tmp_path / f"fade-{pix_fmt}-{on}.yaml", body)
        result = run_cli("--config", str(cfg), env={"WEIGHTS_DIR": str(tmp_path / "weights")})
        assert result.returncode == 0, result.stderr
        records[on] = json.loads((out / "manifest.json").read_text())["inputs"][0]
    assert records[True]["encode"]["pixels"]["colour_on_device"] is True
    assert records[False]["encode"]["pixels"]["colour_on_device"] is False
    cuts = [records[on]["stages"][0]["scene_cuts"] for on in (True, False)]
    assert cuts == [1, 1], cuts
    dark = [records[on]["stages"][1]["summary"]["dark_share"] for on in (True, False)]
    assert dark[0] == dark[1] == 1.0, dark


def test_a_source_the_device_does_not_convert_keeps_rgb_frames_and_says_why(
    tmp_path: Path, rife: str
) -> None:
    clip = make_clip(
        tmp_path / "deep.mkv", size=f"{W}x{H}", frames=4, audio=False, codec="ffv1", pix_fmt="yuv422p10le"
    )
    stage = f"{{factor: 2, model: {rife}, ladder: [rife-cpu]}}"
    out, record = job(tmp_path, clip, "deep", stage, "{codec: ffv1, container: mkv, colour_on_device: true}")
    assert record["encode"]["pixels"]["frames"] == "rgb48le"
    assert record["encode"]["pixels"]["colour_on_device"] is False
    why = "on the device only 4:2:0 of 8 or 10 bits"
    assert any(why in n and "yuv422p10le" in n for n in record["notes"])
    assert count_frames(out) == 8


def test_a_fallback_to_blend_mixes_the_yuv_planes(tmp_path: Path) -> None:
    """RIFE's weights are missing: the ladder's next rung blends the yuv420p frames it was given."""
    clip = make_clip(tmp_path / "in.mp4", size=f"{W}x{H}", frames=6, audio=False)
    missing = f'{{url: "{tmp_path / "none.pkl"}", sha256: "{"0" * 64}"}}'
    stage = f"{{factor: 2, model: {missing}, ladder: [rife-cpu, blend]}}"
    out, record = job(tmp_path, clip, "blend", stage, "{codec: ffv1, container: mkv, colour_on_device: true}")
    assert record["encode"]["pixels"]["frames"] == "yuv420p"
    assert record["stages"][0]["used"] == "blend"
    frames, source = yuv_frames(out), yuv_frames(clip).astype(np.uint16)
    assert len(frames) == 12
    assert np.array_equal(frames[0::2], source)
    assert np.array_equal(frames[1:-1:2], ((source[:-1] + source[1:] + 1) >> 1).astype(np.uint8))


def test_a_chain_of_model_stages_keeps_rgb_frames(tmp_path: Path, rife: str) -> None:
    """RIFE then an upscaler: frames stay on the device between them, so RGB crosses the pipes."""
    from model_weights import compact_shapes, write_sr

    sr = tmp_path / "sr.pth"
    write_sr(sr, compact_shapes(), "params")
    clip = make_clip(tmp_path / "in.mp4", size=f"{W}x{H}", frames=4, audio=False)
    out = tmp_path / "out-chain"
    body = (
        f"inputs: [{clip}]\noutput: {out}\nstages:\n"
        f"  - interpolate: {{factor: 2, model: {rife}, ladder: [rife-cpu]}}\n"
        f'  - upscale: {{scale: 2, model: {{url: "{sr}", sha256: {sha256_of(sr)}}}, ladder: [model-cpu]}}\n'
        "encode: {codec: ffv1, container: mkv, colour_on_device: true}\n"
    )
    result = run_cli("--config", str(write_config(tmp_path / "chain.yaml", body)),
                     env={"WEIGHTS_DIR": str(tmp_path / "weights")})  # fmt: skip
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "manifest.json").read_text())["inputs"][0]
    assert record["encode"]["pixels"]["frames"] == "rgb24"
    assert count_frames(out / "in" / "in.mkv") == 8


def test_the_setting_is_checked(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "in.mp4", size=f"{W}x{H}", frames=2, audio=False)
    cfg = write_config(
        tmp_path / "bad.yaml",
        f"inputs: [{clip}]\noutput: {tmp_path / 'o'}\nencode: {{colour_on_device: sometimes}}\n",
    )
    result = run_cli("--config", str(cfg))
    assert result.returncode != 0
    assert "colour_on_device" in result.stderr


@pytest.fixture
def sr_model(tmp_path: Path) -> str:
    from model_weights import compact_shapes, write_sr

    path = tmp_path / "sr.pth"
    write_sr(path, compact_shapes(scale=2), "params")
    return f'{{url: "{path}", sha256: {sha256_of(path)}}}'


def _upscale_job(tmp_path: Path, clip: Path, name: str, stage: str, on: bool) -> tuple[Path, dict]:
    out = tmp_path / f"out-{name}"
    encode = f"{{codec: ffv1, container: mkv, colour_on_device: {'true' if on else 'false'}}}"
    body = f"inputs: [{clip}]\noutput: {out}\nstages:\n  - upscale: {stage}\nencode: {encode}\n"
    cfg = write_config(tmp_path / f"{name}.yaml", body)
    result = run_cli("--config", str(cfg), env={"WEIGHTS_DIR": str(tmp_path / "weights")})
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "manifest.json").read_text())["inputs"][0]
    return out / clip.stem / f"{clip.stem}.mkv", record


def test_an_upscaler_on_yuv_frames_matches_the_rgb_path(tmp_path: Path, sr_model: str) -> None:
    clip = make_clip(tmp_path / "in.mp4", size=f"{W}x{H}", frames=6, audio=False)
    stage = f"{{scale: 2, model: {sr_model}, ladder: [model-cpu], batch: 2}}"
    on, on_record = _upscale_job(tmp_path, clip, "sr-on", stage, True)
    off, off_record = _upscale_job(tmp_path, clip, "sr-off", stage, False)
    assert on_record["encode"]["pixels"]["frames"] == "yuv420p"
    assert on_record["encode"]["pixels"]["colour_on_device"] is True
    assert off_record["encode"]["pixels"]["frames"] == "rgb24"
    (step,) = [s for s in on_record["stages"][0]["steps"] if s["status"] == "used"]
    assert step["backend"]["colour_on_device"].endswith(" tv")
    assert colour_tags(on) == colour_tags(off)
    with_yuv, with_rgb = yuv_frames(on, 2 * W, 2 * H), yuv_frames(off, 2 * W, 2 * H)
    assert len(with_yuv) == len(with_rgb) == 6
    gap = np.abs(with_yuv.astype(np.int16) - with_rgb.astype(np.int16))
    assert gap.mean() < 0.5, gap.mean()  # the model saw the same RGB within a code value
    assert np.percentile(gap, 99) <= 10, np.percentile(gap, 99)


def zscaled_2x(clip: Path, dest: Path, pix_fmt: str) -> Path:
    """``clip`` enlarged 2x by ffmpeg's zscale Lanczos, losslessly (FFV1): the planes' oracle."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(clip), "-vf", f"zscale=w={2 * W}:h={2 * H}:filter=lanczos",
         "-c:v", "ffv1", "-pix_fmt", pix_fmt, str(dest)],
        check=True,
    )  # fmt: skip
    return dest


def test_lanczos_after_a_failed_model_resizes_the_yuv_frames_as_zscale_does(tmp_path: Path) -> None:
    """The model's weights are missing: lanczos resizes the yuv420p planes themselves (no RGB), as
    ffmpeg's zscale does; without colour on the device the frames are RGB, resized there."""
    clip = make_clip(tmp_path / "in.mp4", size=f"{W}x{H}", frames=4, audio=False)
    missing = f'{{url: "{tmp_path / "none.pth"}", sha256: "{"0" * 64}"}}'
    stage = f"{{scale: 2, model: {missing}, ladder: [model-cpu, lanczos]}}"
    on, on_record = _upscale_job(tmp_path, clip, "lz-on", stage, True)
    off, off_record = _upscale_job(tmp_path, clip, "lz-off", stage, False)
    assert (on_record["encode"]["pixels"]["frames"], off_record["encode"]["pixels"]["frames"]) == (
        "yuv420p",
        "rgb24",
    )
    assert on_record["stages"][0]["used"] == off_record["stages"][0]["used"] == "lanczos"
    assert len(yuv_frames(on, 2 * W, 2 * H)) == len(yuv_frames(off, 2 * W, 2 * H)) == 4
    zscaled = zscaled_2x(clip, tmp_path / "zscaled.mkv", "yuv420p")
    gap = np.abs(yuv_frames(on, 2 * W, 2 * H).astype(np.int16) - yuv_frames(zscaled, 2 * W, 2 * H))
    assert int(gap.max()) <= 1, gap.max()


def test_a_10_bit_upscale_and_its_lanczos_fallback_keep_10_bit_planes(tmp_path: Path, sr_model: str) -> None:
    """The model on 10-bit planes (RGB at 16 bits on the device), as the rgb48le path gives it; and
    lanczos after a model that fails to load: the yuv420p10le planes resized as they are, as zscale
    resizes them (without colour on the device, RGB at 16 bits is resized: another answer)."""
    clip = make_clip(
        tmp_path / "deep.mkv", size=f"{W}x{H}", frames=3, audio=False, codec="ffv1", pix_fmt="yuv420p10le"
    )
    missing = f'{{url: "{tmp_path / "none.pth"}", sha256: "{"0" * 64}"}}'
    zscaled = zscaled_2x(clip, tmp_path / "zscaled.mkv", "yuv420p10le")
    for name, stage in [
        ("sr10", f"{{scale: 2, model: {sr_model}, ladder: [model-cpu], batch: 2}}"),
        ("lz10", f"{{scale: 2, model: {missing}, ladder: [model-cpu, lanczos]}}"),
    ]:
        on, on_record = _upscale_job(tmp_path, clip, f"{name}-on", stage, True)
        off, off_record = _upscale_job(tmp_path, clip, f"{name}-off", stage, False)
        assert (on_record["encode"]["pixels"]["frames"], off_record["encode"]["pixels"]["frames"]) == (
            "yuv420p10le",
            "rgb48le",
        )
        assert on_record["stages"][0]["used"] == off_record["stages"][0]["used"]
        assert video_stream(on)["pix_fmt"] == "yuv420p10le"
        with_yuv, with_rgb = yuv10_frames(on, 2 * W, 2 * H), yuv10_frames(off, 2 * W, 2 * H)
        assert len(with_yuv) == len(with_rgb) == 3
        like = with_rgb if name == "sr10" else yuv10_frames(zscaled, 2 * W, 2 * H)
        gap = np.abs(with_yuv.astype(np.int32) - like.astype(np.int32))
        if name == "sr10":
            assert gap.mean() < 0.5, (name, gap.mean())  # in 10-bit codes
        else:
            assert int(gap.max()) <= 4, (name, gap.max())  # one 8-bit code
        assert np.count_nonzero(with_yuv % 4) > with_yuv.size // 4  # all 10 bits in use


def test_an_odd_output_size_keeps_rgb_frames(tmp_path: Path, sr_model: str) -> None:
    clip = make_clip(tmp_path / "in.mp4", size=f"{W}x{H}", frames=2, audio=False)
    stage = f"{{width: 99, height: 66, model: {sr_model}, ladder: [model-cpu]}}"
    out, record = _upscale_job(tmp_path, clip, "odd", stage, True)
    assert record["encode"]["pixels"]["frames"] == "rgb24"
    assert any("not converted on the device: the stages make 99x66 frames" in n for n in record["notes"])
    assert count_frames(out) == 2


def test_a_tagged_source_keeps_its_own_tags(tmp_path: Path, rife: str) -> None:
    """Tags the source carries go through as they are, with the device's conversion as with ffmpeg's."""
    clip = make_clip(
        tmp_path / "tagged.mp4", size=f"{W}x{H}", frames=4, audio=False,
        extra=["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
               "-color_range", "tv"],
    )  # fmt: skip
    stage = f"{{factor: 2, model: {rife}, ladder: [rife-cpu]}}"
    on, record, off, _ = on_and_off(tmp_path, clip, "tag", stage)
    assert record["encode"]["pixels"]["colour_on_device"] is True
    assert colour_tags(on) == colour_tags(off)
    assert colour_tags(on)["color_space"] == "bt709" and colour_tags(on)["color_primaries"] == "bt709"


@pytest.mark.parametrize("site", ["center", "topleft"])
def test_chroma_sited_elsewhere_keeps_ffmpegs_conversion(tmp_path: Path, rife: str, site: str) -> None:
    """The device converts with chroma sited left; a source that says otherwise goes through zscale,
    which reads its chroma_location (an outside review measured 1.1 levels off, 12 at the 99th)."""
    clip = make_clip(
        tmp_path / f"{site}.mkv", size=f"{W}x{H}", frames=4, audio=False, codec="ffv1",
        extra=["-chroma_sample_location", site],
    )  # fmt: skip
    assert video_stream(clip).get("chroma_location") == site
    stage = f"{{factor: 2, model: {rife}, ladder: [rife-cpu]}}"
    out, record = job(tmp_path, clip, site, stage, "{codec: ffv1, container: mkv, colour_on_device: true}")
    assert record["encode"]["pixels"]["frames"] == "rgb24"
    assert record["media_in"]["chroma_location"] == site
    assert any(f"chroma {site}" in n for n in record["notes"])
    assert count_frames(out) == 8


def test_a_full_range_source_crosses_as_planes_and_keeps_full_range(tmp_path: Path, rife: str) -> None:
    """yuvj420p (full-range H.264, as phones record): yuv420p planes with their codes as coded, the
    device converting with full range; the output tagged full range, its source frames bit-exact and
    its made frames as the RGB path's (before: RGB through the pipes, a code or two lost each way)."""
    clip = tmp_path / "phone.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=s={W}x{H}:r=25,scale=out_range=full",
         "-frames:v", "6", "-pix_fmt", "yuvj420p", "-c:v", "libx264", "-qp", "0", str(clip)],
        check=True,
    )  # fmt: skip
    assert (video_stream(clip)["pix_fmt"], video_stream(clip)["color_range"]) == ("yuvj420p", "pc")
    stage = f"{{factor: 2, model: {rife}, ladder: [rife-cpu], batch: 4}}"
    on, record, off, _ = on_and_off(tmp_path, clip, "full", stage)
    pixels = record["encode"]["pixels"]
    assert (pixels["frames"], pixels["colour_on_device"]) == ("yuv420p", True)
    (step,) = [s for s in record["stages"][0]["steps"] if s["status"] == "used"]
    assert step["backend"]["colour_on_device"].endswith(" pc")
    assert colour_tags(on)["color_range"] == colour_tags(off)["color_range"] == "pc"

    def planes(path: Path) -> np.ndarray:  # full range as coded (no squeeze into 16-235)
        raw = subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(path), "-vf", "scale=in_range=full:out_range=full",
             "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
        return np.frombuffer(raw, np.uint8).reshape(-1, W * H * 3 // 2)

    source, with_yuv, with_rgb = planes(clip), planes(on), planes(off)
    assert count_frames(on) == count_frames(off) == 12
    assert np.array_equal(with_yuv[0::2], source)
    assert int(source.min()) < 16 and int(with_yuv[1::2].min()) < 16  # full range, both kinds of frame
    assert np.array_equal(with_yuv[-1], source[-1])  # the last frame held, not made
    # the made frames agree with the RGB path's (the held last one there went through RGB and back)
    gap = np.abs(with_yuv.astype(np.int16) - with_rgb.astype(np.int16))
    assert gap[1:-1:2].mean() < 0.5, gap[1:-1:2].mean()
