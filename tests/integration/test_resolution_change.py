"""A source whose resolution changes midway is transcoded as plain ffmpeg transcodes it.

Clips joined end to end, a recorded stream that switched quality: until this, every route failed on
them as "truncated or damaged" (re-upload the input) or with a duration mismatch, because ffmpeg
rebuilt the graph at the change and its counters started again. Now the graph is built once and the
frames after the change are scaled to the first frame's size (batch.media.steady), as plain
``ffmpeg -i in out`` does: every frame kept, the same pixels as plain ffmpeg's where no stage runs.
Real ffmpeg, real jobs through the entrypoint; frames counted and sized by ffprobe.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from clips import count_frames, framemd5, lavfi_clip, video_duration, video_stream
from test_runner_local import run_cli, write_config

from batch.media.probe import probe
from batch.media.steady import head_filters, input_options, pinned

pytestmark = pytest.mark.integration

SMALL, LARGE = (160, 120), (240, 136)


def _h264(path: Path, size: tuple[int, int], frames: int = 12) -> Path:
    return lavfi_clip(
        path, f"testsrc2=s={size[0]}x{size[1]}:r=25", ["-c:v", "libx264", "-bf", "0", "-f", "h264"], frames
    )


@pytest.fixture(scope="module")
def changing(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """H.264 growing and shrinking at frame 12, in MP4, Matroska and MPEG-TS; VP9 in WebM growing."""
    d = tmp_path_factory.mktemp("changing")
    a, b = _h264(d / "a.h264", SMALL), _h264(d / "b.h264", LARGE)
    out: dict[str, Path] = {}
    for name, parts in (("up", (a, b)), ("down", (b, a))):
        raw = d / f"{name}.h264"
        raw.write_bytes(b"".join(p.read_bytes() for p in parts))
        mp4 = d / f"{name}.mp4"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-r", "25", "-i", str(raw), "-c", "copy", str(mp4)], check=True
        )
        out[f"{name}.mp4"] = mp4
        for ext in ("mkv", "ts"):
            dest = d / f"{name}.{ext}"
            subprocess.run(
                ["ffmpeg", "-v", "error", "-y", "-i", str(mp4), "-c", "copy", str(dest)], check=True
            )
            out[f"{name}.{ext}"] = dest
    vp9 = [lavfi_clip(d / f"v{k}.webm", f"testsrc2=s={w}x{h}:r=25", ["-c:v", "libvpx-vp9", "-deadline",
                      "realtime"], 12) for k, (w, h) in enumerate((SMALL, LARGE))]  # fmt: skip
    listing = d / "list.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in vp9))
    out["up.webm"] = d / "up.webm"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing),
                    "-c", "copy", str(out["up.webm"])], check=True)  # fmt: skip
    for path in out.values():  # each really changes size midway
        sizes = subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "frame=width,height",
             "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        assert len({s.strip(",") for s in sizes}) == 2, path
    return out


def plain_ffmpeg(src: Path, dest: Path) -> Path:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(src), "-an", "-c:v", "ffv1", str(dest)], check=True
    )
    return dest


def job(
    tmp_path: Path, src: Path, stages: str, encode: str = "{codec: ffv1, container: mkv}"
) -> tuple[Path, dict]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    text = f"inputs: [{src}]\noutput: {tmp_path / 'out'}/\nstages: {stages}\nencode: {encode}\n"
    cfg = write_config(tmp_path / "job.yaml", text)
    done = run_cli("--config", str(cfg), "--state-dir", str(tmp_path / "state"), "-q")
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    found = list((tmp_path / "out" / src.stem).glob(f"{src.stem}.*"))
    assert len(found) == 1, found
    return found[0], manifest["inputs"][0]


@pytest.mark.parametrize("name", ["up.mp4", "down.mp4", "up.mkv", "down.ts", "up.webm"])
def test_no_stages_gives_plain_ffmpegs_frames(tmp_path: Path, changing: dict[str, Path], name: str) -> None:
    src = changing[name]
    out, record = job(tmp_path, src, "[]")
    reference = plain_ffmpeg(src, tmp_path / "plain.mkv")
    first = (probe(src).width, probe(src).height)
    assert (video_stream(out)["width"], video_stream(out)["height"]) == first
    assert count_frames(out) == count_frames(reference) >= 22
    assert framemd5(out) == framemd5(reference)  # the frames after the change scaled as ffmpeg scales them
    assert abs(video_duration(out) - video_duration(reference)) < 0.05
    assert record["status"] == "succeeded"


# each route once growing and once shrinking (one pairing each: the suite's time)
@pytest.mark.parametrize(
    ("name", "stages", "size", "factor"),
    [
        ("up.mp4", "[{crop: {width: 96, height: 64, x: 8, y: 8}}]", (96, 64), 1),  # in the transcode's graph
        ("down.ts", "[{crop: {width: 96, height: 64, x: 8, y: 8}}]", (96, 64), 1),
        ("down.ts", "[{upscale: {scale: 2}}]", None, 1),  # in the graph
        ("up.mp4", "[{analyze: {}}]", None, 1),  # frames through the pipes
        ("down.ts", "[{interpolate: {factor: 2, ladder: [blend]}}]", None, 2),  # the pipes, rate doubled
    ],
)
def test_every_route_keeps_every_frame_at_the_first_size(
    tmp_path: Path,
    changing: dict[str, Path],
    name: str,
    stages: str,
    size: tuple[int, int] | None,
    factor: int,
) -> None:
    src = changing[name]
    info = probe(src)
    out, _ = job(tmp_path, src, stages)
    if size is None:
        scale = 2 if "upscale" in stages else 1
        size = (info.width * scale, info.height * scale)
    assert (video_stream(out)["width"], video_stream(out)["height"]) == size
    reference = plain_ffmpeg(src, tmp_path / "plain.mkv")
    assert count_frames(out) == factor * count_frames(reference)
    assert abs(video_duration(out) - video_duration(reference)) < 0.05


def test_chunks_after_the_change_are_made_at_the_first_size(
    tmp_path: Path, changing: dict[str, Path]
) -> None:
    """A chunk decoded from after the change starts on a frame of the new size: it is scaled to the
    probed (first) size as the frames of one pass are, so the parts join into the one-pass output."""
    src = changing["up.mkv"]
    one, _ = job(tmp_path / "one", src, "[]")
    (tmp_path / "chunked").mkdir()
    cfg = write_config(
        tmp_path / "chunked" / "job.yaml",
        f"inputs: [{src}]\noutput: {tmp_path / 'chunked' / 'out'}/\nstages: []\n"
        "encode: {codec: ffv1, container: mkv}\nlimits: {chunk_s: 0.3}\n",
    )
    done = run_cli("--config", str(cfg), "--state-dir", str(tmp_path / "chunked" / "state"), "-q")
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((tmp_path / "chunked" / "out" / "manifest.json").read_text())["inputs"][0]
    assert record["chunks"]["count"] >= 3  # (0.96 s in chunks of 0.3 s: one starts after the change)
    (chunked,) = (tmp_path / "chunked" / "out" / "up").glob("up.*")
    assert framemd5(chunked) == framemd5(one)


@pytest.mark.parametrize(
    ("pix_fmt", "options"),
    [
        ("yuv420p", ["-c:v", "libx264"]),
        ("yuv422p10le", ["-c:v", "libx264"]),
        ("yuv444p12le", ["-c:v", "ffv1"]),
        ("yuvj420p", ["-c:v", "mjpeg"]),
        ("gray", ["-c:v", "ffv1"]),
        ("gbrp", ["-c:v", "libx264rgb"]),
        ("gbrp10le", ["-c:v", "ffv1"]),
        ("bgr0", ["-c:v", "ffv1"]),
        ("rgb24", ["-c:v", "png"]),
        ("yuva420p", ["-c:v", "ffv1"]),
        ("rgba", ["-c:v", "png"]),
        ("yuv420p", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-color_range", "pc"]),  # full range
    ],
)
def test_a_steady_stream_passes_the_pin_untouched(tmp_path: Path, pix_fmt: str, options: list[str]) -> None:
    """The pin (a scaler at the stream's own size and format) hands every frame on as it is."""
    src = lavfi_clip(tmp_path / "src.mkv", "testsrc2=s=66x50:r=25", [*options, "-pix_fmt", pix_fmt], 5)
    info = probe(src)
    assert info.pix_fmt == pix_fmt and pinned(info)

    def hashes(pin: bool) -> list[str]:
        filters = ",".join([*(head_filters(info) if pin else []), "null"])
        cmd = ["ffmpeg", "-v", "error", *(input_options(info) if pin else []), "-i", str(src), "-vf", filters,
               "-f", "framemd5", "-"]  # fmt: skip
        lines = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()
        return [line for line in lines if not line.startswith("#")]

    assert hashes(True) == hashes(False)
    assert len(hashes(True)) == 5


def test_a_palette_rotated_or_interlaced_source_is_not_pinned(tmp_path: Path) -> None:
    """The scaler cannot write palette frames; a rotated source's frames pass ffmpeg's own
    transposition (one size) before the graph; an interlaced frame scaled before its deinterlacer
    would have its two fields blended (an outside review saw the clock of the other field in the
    frames after a change): all three keep the graph as it was."""
    pal = lavfi_clip(
        tmp_path / "pal.avi", "testsrc2=s=64x48:r=25", ["-c:v", "rawvideo", "-pix_fmt", "pal8"], 3
    )
    rotated = lavfi_clip(tmp_path / "rot.mp4", "testsrc2=s=64x48:r=25", ["-c:v", "libx264"], 3)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(rotated), "-c", "copy", "-metadata:s:v",
                    "rotate=90", str(tmp_path / "rot90.mp4")], check=True)  # fmt: skip
    interlaced = lavfi_clip(
        tmp_path / "tff.mkv", "testsrc2=s=64x48:r=50,tinterlace=interleave_top",
        ["-c:v", "libx264", "-flags", "+ildct+ilme", "-x264-params", "tff=1", "-field_order", "tt"], 4,
    )  # fmt: skip
    for path in (pal, tmp_path / "rot90.mp4", interlaced):
        info = probe(path)
        assert not pinned(info) and head_filters(info) == [] and input_options(info) == [], info.pix_fmt
    assert pinned(probe(rotated))  # (the same clip unrotated is)


def test_audio_that_changes_rate_and_channels_midway_is_still_reencoded(tmp_path: Path) -> None:
    """The graph is pinned for the video only (``-reinit_filter:v``): the video changes size and is
    pinned, while a re-encoded audio stream whose rate and channels change midway (joined clips, a
    broadcast recording going from 5.1 to stereo) still has its graph rebuilt; pinned with the
    video's, ffmpeg refused the frames after the change (an outside review found it)."""
    parts = []
    for k, (rate, channels, size) in enumerate(((48000, 2, "96x64"), (44100, 1, "128x72"))):
        part = tmp_path / f"a{k}.ts"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s={size}:r=25", "-f", "lavfi",
             "-i", f"sine=r={rate}", "-t", "1", "-c:v", "libx264", "-bf", "0", "-c:a", "mp2",
             "-ac", str(channels), str(part)], check=True,
        )  # fmt: skip
        parts.append(part)
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in parts))
    src = tmp_path / "audio-change.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing),
                    "-c", "copy", str(src)], check=True)  # fmt: skip
    assert pinned(probe(src))
    out, record = job(tmp_path / "job", src, "[]", "{codec: libx264, preset: ultrafast}")
    assert out.suffix == ".mp4" and record["status"] == "succeeded"
    # (the join leaves an 11 ms gap: the rate rule repeats a frame to hold the timing, and says so)
    assert count_frames(out) == record["media_out"]["frame_count"] >= 50
    assert (video_stream(out)["width"], video_stream(out)["height"]) == (96, 64)  # the video pinned too
    audio = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a", "-show_entries", "stream=codec_name,duration",
         "-of", "csv=p=0", str(out)], capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    codec, seconds = audio.split(",")
    assert codec == "aac" and abs(float(seconds) - 2.0) < 0.1


def test_full_range_frames_after_the_change_stay_full_range(tmp_path: Path) -> None:
    """VP9 (and AV1) decode full range as yuv420p tagged pc: the scaler kept the frames before the
    change and squeezed the ones after it into limited range, inside a file tagged pc (an outside
    review saw them washed out). They are scaled full range to full range, the codes kept."""
    parts = []
    for k, size in enumerate(("160x120", "240x136")):
        parts.append(lavfi_clip(
            tmp_path / f"f{k}.webm", f"testsrc2=s={size}:r=25,scale=out_range=full,format=yuv420p",
            ["-color_range", "pc", "-c:v", "libvpx-vp9", "-deadline", "realtime", "-lossless", "1"], 12,
        ))  # fmt: skip
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in parts))
    src = tmp_path / "full.webm"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing),
                    "-c", "copy", str(src)], check=True)  # fmt: skip
    info = probe(src)
    assert info.color.range == "pc" and info.pix_fmt == "yuv420p"
    out, _ = job(tmp_path / "job", src, "[]")
    assert video_stream(out).get("color_range") == "pc"

    def hashes(path: Path, vf: str, first: int = 0) -> list[str]:
        cmd = ["ffmpeg", "-v", "error", "-i", str(path), "-vf", f"select=gte(n\\,{first}),{vf}",
               "-vsync", "0", "-f", "framemd5", "-"]  # fmt: skip
        lines = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()
        return [line.rsplit(",", 1)[-1] for line in lines if not line.startswith("#")]

    kept = hashes(parts[1], "scale=160:120:in_range=pc:out_range=pc,format=yuv420p")
    squeezed = hashes(parts[1], "scale=160:120:in_range=pc:out_range=tv,format=yuv420p")
    assert kept != squeezed  # (the check can tell the two apart)
    assert hashes(out, "null", first=12) == kept
