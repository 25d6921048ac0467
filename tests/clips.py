"""Sample videos made by ffmpeg's lavfi sources, and ffprobe checks on outputs."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

# ffmpeg 5.1's lavfi ``gradients`` picks its colours at random on every run, ``seed`` or not (the seed
# fixes only the points): a test that needs the same frames every run names the colours too
GRADIENT_COLOURS = "c0=0x3060a0:c1=0xa06030:nb_colors=2"


def make_clip(
    path: Path,
    *,
    size: str = "320x240",
    rate: str = "30",
    frames: int = 30,
    audio: bool = True,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    source: str = "testsrc2",
    extra: list[str] | None = None,
) -> Path:
    """A clip of exactly ``frames`` frames; audio (a sine) lasts as long as the video."""
    seconds = float(frames / Fraction(rate))
    cmd = [
        "ffmpeg",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"{source}=size={size}:rate={rate}",
    ]
    if audio:
        cmd += [
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        ]
    cmd += ["-frames:v", str(frames), "-c:v", codec, "-pix_fmt", pix_fmt]
    if codec == "libx264":
        cmd += ["-preset", "ultrafast", "-crf", "18"]
    if audio:
        cmd += ["-c:a", "aac", "-b:a", "96k"]
    cmd += [*(extra or []), str(path)]
    subprocess.run(cmd, check=True)
    return path


def ffprobe(path: Path) -> dict:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-of",
            "json",
            "-show_streams",
            "-show_format",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def video_stream(path: Path) -> dict:
    return next(s for s in ffprobe(path)["streams"] if s["codec_type"] == "video")


def audio_stream(path: Path) -> dict | None:
    return next((s for s in ffprobe(path)["streams"] if s["codec_type"] == "audio"), None)


def count_frames(path: Path) -> int:
    """Frames that actually decode (not what the container claims)."""
    out = subprocess.run(
        [
            "ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
            "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path),
        ],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return int(out.strip().split(",")[0])


def video_duration(path: Path) -> float:
    s = video_stream(path)
    return float(s.get("duration") or ffprobe(path)["format"]["duration"])


def decode_rgb(path: Path, frame: int = 0) -> bytes:
    """One decoded frame as raw RGB24 bytes (for colour checks)."""
    return subprocess.run(
        [
            "ffmpeg", "-v", "error", "-i", str(path), "-vf", f"select=eq(n\\,{frame})",
            "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
        ],
        check=True, capture_output=True,
    ).stdout  # fmt: skip


def framemd5(path: Path) -> list[str]:
    """The md5 of every decoded video frame, in order (ffmpeg's framemd5 muxer)."""
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v", "-f", "framemd5", "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [line.rsplit(",", 1)[1].strip() for line in out.splitlines() if line and not line.startswith("#")]


def clip_at(
    path: Path,
    times_ms: list[int] | str,
    *,
    audio: bool = False,
    mkv_remux: bool = False,
    size: str = "96x64",
    x264: tuple[str, ...] = ("-preset", "ultrafast"),
) -> Path:
    """Distinct lossless frames (testsrc2 moves every frame) shown at ``times_ms``: a list
    of milliseconds (short: a nested expression), or an expression of N and the frame count."""
    if isinstance(times_ms, str):
        expr, count = times_ms.split(";")
        frames = int(count)
    else:
        expr, frames = "0", len(times_ms)
        for n in range(len(times_ms) - 1, -1, -1):
            expr = f"if(eq(N,{n}),{times_ms[n]},{expr})"
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s={size}:r=30"]
    if audio:
        cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=10", "-shortest"]
    cmd += ["-frames:v", str(frames), "-vf", f"settb=1/1000,setpts='{expr}'", "-fps_mode", "vfr",
            "-enc_time_base:v", "1/1000", "-c:v", "libx264", "-qp", "0", *x264]  # fmt: skip
    if audio:
        cmd += ["-c:a", "aac"]
    made = path.with_suffix(".made.mp4") if mkv_remux else path
    subprocess.run([*cmd, str(made)], check=True)
    if mkv_remux:  # Matroska reports equal r_frame_rate and avg_frame_rate for such a stream
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(made), "-c", "copy", str(path)], check=True)
    return path


def frame_hashes(path: Path, vf: str | None = None) -> list[str]:
    """The md5 of each frame as decoded (every one, passed through), or as ``vf`` leaves them."""
    cmd = ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0"]
    cmd += ["-vf", vf] if vf else ["-fps_mode", "passthrough"]
    out = subprocess.run([*cmd, "-f", "framemd5", "-"], capture_output=True, text=True, check=True).stdout
    return [line.rsplit(",", 1)[1].strip() for line in out.splitlines() if line and not line.startswith("#")]


def timed_clip(
    path: Path,
    frames: int,
    pts: str,
    tb: str,
    *encode: str,
    size: str = "96x64",
    fps_mode: str = "passthrough",
) -> Path:
    """``frames`` testsrc2 frames (each distinct) shown at ``pts`` (an expression of N, in ticks of
    ``tb``), encoded by libx264 with ``encode`` (its arguments, then any muxer options)."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s={size}:r=30",
         "-frames:v", str(frames), "-vf", f"settb={tb},setpts='{pts}'", "-fps_mode", fps_mode,
         "-enc_time_base:v", tb, "-c:v", "libx264", *encode, str(path)],
        check=True,
    )  # fmt: skip
    return path


def damaged_vfr_clip(directory: Path) -> tuple[Path, Path]:
    """A variable-rate clip (jittered timestamps, one GOP) and a copy with a quarter of its bytes
    zeroed from the middle: the frames there do not decode."""
    whole = timed_clip(directory / "whole.mp4", 60, "(N/30+0.004*sin(N))/TB", "1/90000",
                       "-preset", "ultrafast", "-g", "300", size="320x240", fps_mode="vfr")  # fmt: skip
    data = bytearray(whole.read_bytes())
    middle = len(data) // 2
    data[middle : middle + len(data) // 4] = bytes(len(data) // 4)
    damaged = directory / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    return whole, damaged


def retimed(src: Path, dest: Path, setts: str) -> Path:
    """``src`` copied to ``dest`` with its video packets' times rewritten (ffmpeg's ``setts``)."""
    cmd = ["ffmpeg", "-v", "error", "-y", "-i", str(src), "-c", "copy", "-bsf:v", f"setts={setts}", str(dest)]
    subprocess.run(cmd, check=True)
    return dest


# A stage list that keeps a 640x360 job busy for many seconds, for tests that act while frames move
# (signals, kills, locks, budgets): an odd size sends RGB frames and Pillow's general resize to about
# 1080p (a whole factor such as scale 3 now resizes the planes with fixed filters, several times faster)
SLOW_STAGES = "[{upscale: {width: 1919, height: 1079}}]"


def lavfi_clip(path: Path, graph: str, options: list[str], frames: int) -> Path:
    """``frames`` frames of the lavfi ``graph``, encoded with ``options`` (codec, pix_fmt, tags), no audio."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", graph, "-frames:v", str(frames), *options,
         str(path)],
        check=True,
    )  # fmt: skip
    return path
