#!/usr/bin/env python3
"""Raw frames through a default (64 KiB) pipe and a widened one, as the reader and writer move them.

    .venv/bin/python scripts/bench_pipes.py [--runs 5] [--clip CLIP]

A decoder ffmpeg (yuv420p -> rgb24 by the project's zscale chain) writes frames into one pipe,
this process reads each whole frame and writes it into a second pipe, and an ffmpeg converts back
to yuv420p and drops the result (``-f null``): the reader/writer's pipe traffic and conversions
without an encoder. Runs alternate the two sizes; prints medians of wall time, this process's
CPU seconds and the ffmpegs' CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from batch.media.colour import plan_colour, rgb_conversion  # noqa: E402
from batch.media.pipes import widen  # noqa: E402
from batch.media.probe import ColorInfo  # noqa: E402


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def once(clip: Path, width: int, height: int, wide: bool) -> dict:
    """Wall seconds, this process's CPU seconds and the two ffmpegs' CPU seconds."""
    plan = plan_colour(ColorInfo(), height, "yuv420p")  # untagged: BT.709 at 720p and above, limited range
    n = width * height * 3
    decode = ["ffmpeg", "-v", "error", "-i", str(clip), "-an", "-vf", rgb_conversion(plan, to_rgb=True),
              "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]  # fmt: skip
    encode = ["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
              "-i", "pipe:0", "-vf", rgb_conversion(plan, to_rgb=False), "-f", "null", "-"]  # fmt: skip
    self0, kids0, t0 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    reader = subprocess.Popen(decode, stdout=subprocess.PIPE, bufsize=0)
    writer = subprocess.Popen(encode, stdin=subprocess.PIPE, bufsize=0)
    assert reader.stdout is not None and writer.stdin is not None
    if wide:
        widen(reader.stdout.fileno())
        widen(writer.stdin.fileno())
    frame = bytearray(n)
    view = memoryview(frame)
    frames = 0
    while True:
        got = 0
        while got < n:
            k = reader.stdout.readinto(view[got:])  # type: ignore[attr-defined]
            if not k:
                break
            got += k
        if got < n:
            break
        writer.stdin.write(view)
        frames += 1
    writer.stdin.close()
    writer.wait()
    reader.wait()
    return {
        "frames": frames,
        "wall_s": time.perf_counter() - t0,
        "python_cpu_s": _cpu(resource.RUSAGE_SELF) - self0,
        "ffmpeg_cpu_s": _cpu(resource.RUSAGE_CHILDREN) - kids0,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--clip", type=Path, help="an H.264 clip (default: 10 s of 720p30 testsrc2, made here)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = args.clip or Path(tmp) / "clip.mp4"
        if args.clip is None:
            subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=1280x720:r=30",
                            "-frames:v", "300", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18",
                            "-pix_fmt", "yuv420p", str(clip)], check=True)  # fmt: skip
        size = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                               "stream=width,height", "-of", "csv=p=0", str(clip)],
                              check=True, capture_output=True, text=True).stdout  # fmt: skip
        width, height = (int(v) for v in size.strip().split(",")[:2])
        runs: dict[str, list[dict]] = {"64 KiB (default)": [], "widened": []}
        for _ in range(args.runs):
            runs["64 KiB (default)"].append(once(clip, width, height, wide=False))
            runs["widened"].append(once(clip, width, height, wide=True))
    rows = {name: {key: round(statistics.median(r[key] for r in rs), 3) for key in rs[0]}
            for name, rs in runs.items()}  # fmt: skip
    print(json.dumps({"clip": f"{width}x{height}", "runs": args.runs, "medians": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
