#!/usr/bin/env python3
"""Throughput and memory of the pipeline against a plain ffmpeg transcode.

    .venv/bin/python scripts/bench.py [--seconds 10] [--long-seconds 60] [--preset medium]

    .venv/bin/python scripts/bench.py --models   # frames/s of each model rung

    .venv/bin/python scripts/bench.py --command [--runs 5] [--preset veryfast]

    .venv/bin/python scripts/bench.py --png-flow [--runs 3] [--preset veryfast]  # P2: 2x blend vs PNGs

    .venv/bin/python scripts/bench.py --colour [--seconds 2]   # YUV<->RGB filters: speed, round trip

    .venv/bin/python scripts/bench.py --standin [--seconds 10]  # P3: overlap with a stand-in model

    .venv/bin/python scripts/bench.py --standin-job 3.3 [--runs 1]  # P3, the job as a whole process

    .venv/bin/python scripts/bench.py --keep-up 60   # encoders that keep up (fast stand-in, x264 medium)

``--command`` times what a user runs, as whole processes, against plain
ffmpeg doing the same transcode: the job alone (``--no-watchdog``) and the
whole product (supervisor, runner, watchdog verifying the output, dry-run
stop; ``confirm: 1``, ``interval_s: 0.5``). Runs alternate with the
reference; the table gives medians and ratios (ffmpeg seconds / ours).

(a) plain ffmpeg transcode with the job's encoder settings, (b) the pipeline
with no stages, (c) 2x interpolation with ``blend``. Each measurement runs in
its own process; peak memory is that process's max RSS (ffmpeg's own
processes excluded: they do not grow with length either way). Results go to
stdout as a table and, with --json, as JSON. Record them in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from batch.contracts import MANIFEST, STOPPED_SENTINEL, state_file  # noqa: E402


def make_clip(path: Path, seconds: int) -> Path:
    if not path.exists():
        subprocess.run(
            [
                "ffmpeg", "-v", "error", "-y",
                "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}",
                "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-b:a", "128k", str(path),
            ],
            check=True,
        )  # fmt: skip
    return path


def one(mode: str, clip: Path, out_dir: Path, preset: str, crf: int) -> dict:
    """Run one measurement in this process and report it."""
    from batch.config import parse_config
    from batch.job.pipeline import run_pipeline
    from batch.media.encoder import choose_encoder
    from batch.media.probe import probe

    frames_in = probe(clip).frame_count
    out = out_dir / f"{mode}.mp4"
    started = time.perf_counter()
    if mode == "ffmpeg":
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-c:v", "libx264", "-preset", preset,
             "-crf", str(crf), "-pix_fmt", "yuv420p", "-c:a", "copy", str(out)],
            check=True,
        )  # fmt: skip
        frames_out = frames_in
    else:
        stages = "[]" if mode == "pipeline" else "[{interpolate: {factor: 2, ladder: [blend]}}]"
        encode = f"{{codec: libx264, preset: {preset}, crf: {crf}}}"
        cfg = parse_config(f"inputs: [x]\noutput: o/\nstages: {stages}\nencode: {encode}")
        frames_out = run_pipeline(cfg, clip, out, choose_encoder(cfg.encode)).frames_out
    seconds = time.perf_counter() - started
    return {
        "mode": mode,
        "clip": clip.name,
        "frames_in": frames_in,
        "frames_out": frames_out,
        "seconds": round(seconds, 2),
        "fps_in": round(frames_in / seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def watchdog_latency(work: Path, confirm: int, interval: float) -> dict:
    """Seconds from the manifest landing at the output to the shutdown call (dry run).

    Runs the real entrypoint (supervisor, runner, monitor.py) on a short clip
    with a local output prefix; "landing" is the manifest's mtime, "shutdown"
    the dry-run sentinel's.
    """
    clip = make_clip(work / "clip-720p-2s.mp4", 2)
    out, state = work / "wd-out", work / "wd-state"
    cfg = work / "wd-job.yaml"
    cfg.write_text(
        f"job_id: bench-wd\ninputs: [{clip}]\noutput: {out}/\nencode: {{codec: libx264, preset: ultrafast}}\n"
        f"watchdog: {{confirm: {confirm}, interval_s: {interval}}}\n"
    )
    cmd = [sys.executable, str(ROOT / "run_with_config_batch_sync.py"), "--config", str(cfg)]
    subprocess.run([*cmd, "--dry-run", "--state-dir", str(state), "-q"], check=True, capture_output=True)
    landed = (out / MANIFEST).stat().st_mtime  # a local output prefix
    stopped = state_file(state, STOPPED_SENTINEL).stat().st_mtime
    return {
        "confirm": confirm,
        "interval_s": interval,
        "manifest_to_shutdown_s": round(stopped - landed, 2),
        "aim_s": confirm * interval + 2,
    }


COMMAND_STAGES = {
    "no stages": "[]",
    # a Lanczos-only upscale runs in the transcode's own ffmpeg graph (since 2026-12-05 13:30 UTC; before,
    # as a stage on the planes through the pipes, and before 11:15 UTC through RGB); at scale 1 its filter
    # is "null"
    "upscale x1 lanczos": "[{upscale: {scale: 1, ladder: [lanczos]}}]",
    "upscale x2 lanczos": "[{upscale: {scale: 2, ladder: [lanczos]}}]",
    "2x blend": "[{interpolate: {factor: 2, ladder: [blend]}}]",
    # a crop runs in the transcode's graph too (since 2026-12-05 14:20 UTC; before, numpy slices on pipes)
    "crop 960x540": "[{crop: {width: 960, height: 540, x: 160, y: 90}}]",
    # P1-rgb: a stage that asks for RGB and costs nothing (the stand-in of a model, which no config can
    # name): the runner in this script's process (--standin-job-once), "job" mode only
    "rgb (stand-in asking for RGB)": None,
}
# what plain ffmpeg adds to do the same as a row (the reference's filter), e.g. zscale's own Lanczos
COMMAND_REFERENCE_VF = {
    "upscale x2 lanczos": "zscale=w=iw*2:h=ih*2:filter=lanczos",
    "crop 960x540": "crop=960:540:160:90",
}


def as_in_the_image() -> None:
    """Compile byte-code as the Docker image does at build (compileall, the report template).

    A checkout run with PYTHONDONTWRITEBYTECODE=1 would otherwise compile ~60 modules in every
    process (~0.3 s), a cost the user's image does not have.
    """
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "batch"),
                    str(ROOT / "run_with_config_batch_sync.py"), str(ROOT / "monitor.py")],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run([sys.executable, "-m", "batch.report.render", "--compile"], cwd=ROOT, check=True)


def _timed(cmd: list[str], cwd: Path | None = None) -> float:
    return _timed_cpu(cmd, cwd)[0]


def _timed_cpu(cmd: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + sys of the process and everything it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=cwd)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def command_bench(
    work: Path, clip: Path, preset: str, crf: int, runs: int, only: list[str] | None = None
) -> list[dict]:
    """Medians of alternating whole-process runs: plain ffmpeg, then our command per stage list.

    ``only``: the rows whose stage label starts with one of these (e.g. "no stages")."""
    import statistics

    rows = []
    for label, stages in COMMAND_STAGES.items():
        if only and not any(label.startswith(o) for o in only):
            continue
        vf = ["-vf", COMMAND_REFERENCE_VF[label]] if label in COMMAND_REFERENCE_VF else []
        reference = [
            "ffmpeg", "-v", "error", "-y", "-i", str(clip), *vf, "-c:v", "libx264", "-preset", preset,
            "-crf", str(crf), "-pix_fmt", "yuv420p", "-c:a", "copy", str(work / "ref.mp4"),
        ]  # fmt: skip
        for mode in ("job", "product") if stages is not None else ("job",):
            cfg = work / "cmd-job.yaml"
            # the product runs as the user's command does: no --state-dir, so PID 1 names
            # state/<job id> (under the working directory) from the config, as in the image
            out, state = (
                work / "cmd-out",
                (work / "state" / "bench-cmd" if mode == "product" else work / "cmd-state"),
            )
            cfg.write_text(
                f"job_id: bench-cmd\ninputs: [{clip}]\noutput: {out}/\nstages: {stages}\n"
                f"encode: {{codec: libx264, preset: {preset}, crf: {crf}}}\n"
                "watchdog: {confirm: 1, interval_s: 0.5}\n"
            )
            ours = [sys.executable, str(ROOT / "run_with_config_batch_sync.py"), "--config", str(cfg), "-q"]
            ours += ["--no-watchdog", "--state-dir", str(state)] if mode == "job" else ["--dry-run"]
            if stages is None:
                ours = [sys.executable, __file__, "--standin-job-once", str(clip), "--work", str(work),
                        "--preset", preset, "--crf", str(crf), "--standin-rgb"]  # fmt: skip
            ref_s, ours_s, ref_cpu, ours_cpu = [], [], [], []
            for _ in range(runs):
                wall, cpu = _timed_cpu(reference)
                ref_s.append(wall)
                ref_cpu.append(cpu)
                for stale in (out, state):
                    subprocess.run(["rm", "-rf", str(stale)], check=True)
                wall, cpu = _timed_cpu(ours, cwd=work)
                ours_s.append(wall)
                ours_cpu.append(cpu)
            a, b = statistics.median(ref_s), statistics.median(ours_s)
            rows.append({"stages": label, "mode": mode, "ffmpeg_s": round(a, 2), "ours_s": round(b, 2),
                         "ratio": round(a / b, 3), "runs": runs,
                         "ffmpeg_cpu_s": round(statistics.median(ref_cpu), 2),
                         "ours_cpu_s": round(statistics.median(ours_cpu), 2)})  # fmt: skip
            print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def png_flow(clip: Path, work: Path, preset: str, crf: int) -> None:
    """The reference 2x flow: every frame to PNG, each pair blended from disk, mids as PNG, re-encode.

    OpenCV reads, blends (``cv2.addWeighted`` 0.5/0.5) and writes; ffmpeg extracts and
    re-encodes with the source's audio. The last frame is held, as our 2x does.
    """
    import shutil

    import cv2

    frames_dir = work / "png-frames"
    shutil.rmtree(frames_dir, ignore_errors=True)
    frames_dir.mkdir(parents=True)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip), str(frames_dir / "src-%06d.png")], check=True)
    sources = sorted(frames_dir.glob("src-*.png"))
    previous = None
    for k, path in enumerate(sources):
        current = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if previous is not None:
            mid = cv2.addWeighted(previous, 0.5, current, 0.5, 0)
            cv2.imwrite(str(frames_dir / f"out-{2 * k - 1:06d}.png"), mid)
        path.rename(frames_dir / f"out-{2 * k:06d}.png")
        previous = current
    shutil.copy(
        frames_dir / f"out-{2 * len(sources) - 2:06d}.png", frames_dir / f"out-{2 * len(sources) - 1:06d}.png"
    )
    rate = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=r_frame_rate",
         "-of", "csv=p=0", str(clip)], check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    from fractions import Fraction

    fps = Fraction(rate) * 2
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-framerate", f"{fps.numerator}/{fps.denominator}",
         "-i", str(frames_dir / "out-%06d.png"), "-i", str(clip), "-map", "0:v", "-map", "1:a",
         "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
         "-c:a", "copy", str(work / "png-flow.mp4")],
        check=True,
    )  # fmt: skip
    shutil.rmtree(frames_dir, ignore_errors=True)


def png_flow_bench(work: Path, clip: Path, preset: str, crf: int, runs: int) -> dict:
    """P2: our 2x blend (the job, whole process) against the PNG flow, alternating.

    Also ffmpeg alone doing a 2x blend (``framerate=fps=2x``: decode, blend, encode in one
    process, no checks), the floor a Python pipeline can approach. Wall and CPU seconds
    (user + sys, children included): CPU time holds up on a shared machine, wall time does not.
    """
    import statistics

    cfg = work / "png-job.yaml"
    out = work / "png-out"
    cfg.write_text(
        f"job_id: bench-png\ninputs: [{clip}]\noutput: {out}/\n"
        f"stages: {COMMAND_STAGES['2x blend']}\nencode: {{codec: libx264, preset: {preset}, crf: {crf}}}\n"
    )
    ours = [sys.executable, str(ROOT / "run_with_config_batch_sync.py"), "--config", str(cfg), "-q"]
    ours += ["--no-watchdog", "--state-dir", str(work / "png-state")]
    flow = [sys.executable, __file__, "--png-flow-once", str(clip), "--work", str(work), "--preset", preset,
            "--crf", str(crf)]  # fmt: skip
    rate = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=r_frame_rate",
         "-of", "csv=p=0", str(clip)], check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    from fractions import Fraction

    fps = Fraction(rate) * 2
    floor = [
        "ffmpeg", "-v", "error", "-y", "-i", str(clip),
        "-vf", f"framerate=fps={fps.numerator}/{fps.denominator}",
        "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p", "-c:a", "copy",
        "-movflags", "+faststart", str(work / "ffmpeg-blend.mp4"),
    ]  # fmt: skip
    runs_of: dict[str, list[tuple[float, float]]] = {"png_flow": [], "ours": [], "ffmpeg_blend": []}
    for _ in range(runs):
        runs_of["png_flow"].append(_timed_cpu(flow))
        subprocess.run(["rm", "-rf", str(out), str(work / "png-state")], check=True)
        runs_of["ours"].append(_timed_cpu(ours))
        runs_of["ffmpeg_blend"].append(_timed_cpu(floor))
    wall = {k: statistics.median(w for w, _ in v) for k, v in runs_of.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in runs_of.items()}
    return {
        **{f"{k}_s": round(v, 2) for k, v in wall.items()},
        **{f"{k}_cpu_s": round(v, 2) for k, v in cpu.items()},
        "speedup": round(wall["png_flow"] / wall["ours"], 2),
        "cpu_speedup": round(cpu["png_flow"] / cpu["ours"], 2),
        "runs": runs,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


COLOUR_FILTERS = {
    "swscale bicubic+accurate_rnd (before)": (
        "scale=in_color_matrix=bt709:in_range=tv:flags=bicubic+accurate_rnd+full_chroma_int,format=rgb24",
        "scale=out_color_matrix=bt709:out_range=tv:flags=bicubic+accurate_rnd+full_chroma_int,format=yuv420p",
    ),
    "swscale bicubic, no accurate_rnd": (
        "scale=in_color_matrix=bt709:in_range=tv:flags=bicubic+full_chroma_int,format=rgb24",
        "scale=out_color_matrix=bt709:out_range=tv:flags=bicubic+full_chroma_int,format=yuv420p",
    ),
    "zscale bicubic, dither none (now)": (None, None),  # batch.media.colour.rgb_conversion
    "zscale bicubic, error_diffusion out": (
        "zscale=matrixin=1:rangein=limited:filter=bicubic:dither=none,format=gbrp,format=rgb24",
        "format=gbrp,zscale=matrix=1:range=limited:filter=bicubic:dither=error_diffusion,format=yuv420p",
    ),
    "zscale bilinear, dither none": (
        "zscale=matrixin=1:rangein=limited:filter=bilinear:dither=none,format=gbrp,format=rgb24",
        "format=gbrp,zscale=matrix=1:range=limited:filter=bilinear:dither=none,format=yuv420p",
    ),
}


def colour_bench(work: Path, seconds: int) -> list[dict]:
    """yuv420p -> rgb24 -> yuv420p at 720p: frames/s each way (one thread) and the round trip's error."""
    import numpy as np

    from batch.media.colour import ColourPlan, rgb_conversion
    from batch.media.probe import ColorInfo

    plan = ColourPlan(matrix="bt709", range="tv", tags=ColorInfo())
    w, h = 1280, 720
    raw = ["-f", "rawvideo", "-s", f"{w}x{h}", "-r", "30"]
    one = ["-threads", "1", "-filter_threads", "1"]
    rows = []
    for source in (f"gradients=s={w}x{h}:r=30:speed=0.01", f"testsrc2=s={w}x{h}:r=30"):
        yuv_path, rgb_path = work / "colour.yuv", work / "colour.rgb"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"{source}:d={seconds}",
                        "-pix_fmt", "yuv420p", "-f", "rawvideo", str(yuv_path)], check=True)  # fmt: skip
        yuv = np.fromfile(yuv_path, np.uint8)
        frames = len(yuv) // (w * h * 3 // 2)
        for label, (to_rgb, to_yuv) in COLOUR_FILTERS.items():
            to_rgb = to_rgb or rgb_conversion(plan, to_rgb=True)
            to_yuv = to_yuv or rgb_conversion(plan, to_rgb=False)
            ff = ["ffmpeg", "-v", "error", "-y", *one, *raw]
            t_in = _timed([*ff, "-pix_fmt", "yuv420p", "-i", str(yuv_path),
                           "-vf", to_rgb, "-f", "rawvideo", str(rgb_path)])  # fmt: skip
            back = work / "colour-back.yuv"
            t_out = _timed([*ff, "-pix_fmt", "rgb24", "-i", str(rgb_path),
                            "-vf", to_yuv, "-f", "rawvideo", str(back)])  # fmt: skip
            diff = np.abs(yuv.astype(np.int16) - np.fromfile(back, np.uint8).astype(np.int16))
            diff = diff.reshape(frames, -1)
            y, uv = diff[:, : w * h], diff[:, w * h :]
            rows.append({
                "source": source.split("=")[0], "filters": label,
                "to_rgb_fps": round(frames / t_in, 1), "to_yuv_fps": round(frames / t_out, 1),
                "y_max": int(y.max()), "y_mean": round(float(y.mean()), 3),
                "y_off_by_2_or_more": f"{(y > 1).mean():.2%}", "uv_max": int(uv.max()),
            })  # fmt: skip
            print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def standin_bench(clip: Path, work: Path, preset: str, crf: int) -> list[dict]:
    """P3, in one process: the pipeline with a stand-in model (sleep per batch of 8) vs its own rate.

    First the pipeline's ceiling (a stand-in of zero cost: decode, pipes, encode), then
    stand-ins at half and at a quarter of that rate: the end-to-end rate should reach
    at least 0.95 of the stand-in's own rate (decode, model and encode overlap).
    Each row also gives the stand-in's busy share of the wall time (its calls' own time,
    the last partial batch counted whole, over the wall time), its steady share (the same
    between its first call and its last: how well decode, model and encode overlap), the
    fill (start to its first call: probe, set-up, the first batch decoded) and the drain
    (its last call to the end: the encoder's lookahead flushed, the output probed).
    """
    from batch.config import parse_config
    from batch.job.pipeline import run_pipeline
    from batch.media.encoder import choose_encoder
    from batch.stages.standin import STANDIN_REGISTRY, StandInStage

    cfg = parse_config(f"inputs: [x]\noutput: o/\nencode: {{codec: libx264, preset: {preset}, crf: {crf}}}")
    rows = []

    def run(stage: StandInStage, layout: str, own: float | None) -> dict:
        job = cfg.replace(stages=[stage])
        started = time.perf_counter()
        result = run_pipeline(
            job, clip, work / "standin.mp4", choose_encoder(cfg.encode), registry=STANDIN_REGISTRY
        )
        ended = time.perf_counter()
        wall = ended - started
        fps = result.frames_out / wall
        report = result.stages[0]
        steady = report["last_call_end"] - report["first_call_at"]
        row = {"layout": layout, "standin_fps": round(own, 1) if own else None,
               "end_to_end_fps": round(fps, 1), "ratio": round(fps / own, 3) if own else None,
               "busy_share": round(stage.seconds * report["calls"] / wall, 3) if own else None,
               "steady_share": round(report["busy_s"] / steady, 3) if own else None,
               "fill_s": round(report["first_call_at"] - started, 2),
               "drain_s": round(ended - report["last_call_end"], 2), "wall_s": round(wall, 2)}  # fmt: skip
        print(json.dumps(row), file=sys.stderr)
        return row

    for rgb in (False, True):
        layout = "rgb24" if rgb else "yuv420p"
        rows.append(run(StandInStage(batch=8, seconds=0.0, rgb=rgb), layout, None))
        ceiling = rows[-1]["end_to_end_fps"]
        for share in (0.5, 0.25):
            own = ceiling * share
            rows.append(run(StandInStage(batch=8, seconds=8 / own, rgb=rgb), layout, own))
    return rows


def standin_job_once(
    clip: Path,
    work: Path,
    preset: str,
    crf: int,
    seconds: float,
    chunk_s: float,
    written: bool = True,
    rgb: bool = False,
) -> None:
    """One job through the runner (probes, chunks, preview, manifest) with the stand-in, in this process."""
    import shutil

    from batch.config import parse_config
    from batch.job.runner import Runner, RunOptions
    from batch.stages.standin import STANDIN_REGISTRY, StandInStage

    out, state = work / "standin-job-out", work / "standin-job-state"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(state, ignore_errors=True)
    cfg = parse_config(
        f"job_id: bench-standin\ninputs: [{clip}]\noutput: {out}/\nlimits: {{chunk_s: {chunk_s}}}\n"
        + (
            f"encode: {{codec: libx264, preset: {preset}, crf: {crf}}}\n"
            if written
            else f"encode: {{codec: libx264, crf: {crf}}}\n"
        )
    )
    cfg = cfg.replace(stages=[StandInStage(batch=8, seconds=seconds, rgb=rgb)])
    code = Runner(cfg, RunOptions(state_dir=state), STANDIN_REGISTRY).run()
    if code != 0:
        raise SystemExit(f"the stand-in job failed ({code}); see {out}/manifest.json")


def keep_up_bench(clip: Path, work: Path, crf: int, own: float) -> list[dict]:
    """Encoders that keep up: a fast stand-in (``own`` fps) and libx264 medium, in chunks of 2.5 s.

    The job as a whole process, once with ``preset: medium`` written (never changed: more
    encoders only, as the cores allow) and once without (the default medium may become faster).
    The decision and its reason come from the manifest.
    """
    rows = []
    for written in (True, False):
        cmd = [sys.executable, __file__, "--standin-job-once", str(clip), "--work", str(work),
               "--preset", "medium", "--crf", str(crf), "--standin-seconds", str(8 / own),
               "--chunk-s", "2.5"] + ([] if written else ["--preset-unwritten"])  # fmt: skip
        wall = _timed(cmd)
        (record,) = json.loads((work / "standin-job-out" / MANIFEST).read_text())["inputs"]
        pace = record["encode"].get("keep_up") or {}
        rows.append({"preset_written": written, "standin_fps": own, "wall_s": round(wall, 2),
                     "end_to_end_fps": round(record["media_out"]["frame_count"] / wall, 2),
                     "action": pace.get("action"), "preset": pace.get("preset"),
                     "workers": pace.get("workers"), "reason": pace.get("reason")})  # fmt: skip
        print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def standin_job_bench(clip: Path, work: Path, preset: str, crf: int, own: float, runs: int) -> list[dict]:
    """P3 as a whole process: the job (runner, probes, preview, manifest) with a stand-in at ``own`` fps.

    One pass and in chunks of 2.5 s (the next chunk's stages overlap the previous one's
    encoder drain and upload). The stand-in's own time is its calls' (partial batches whole).
    """
    import math
    import statistics

    from batch.media.probe import probe

    info = probe(clip)
    seconds = 8 / own
    rows = []
    for label, chunk_s in (("one pass", 600.0), ("chunks of 2.5 s", 2.5)):
        size = max(1, round(chunk_s * float(info.fps)))
        sizes = [min(size, info.frame_count - k) for k in range(0, info.frame_count, size)]
        own_s = sum(math.ceil(n / 8) for n in sizes) * seconds
        cmd = [sys.executable, __file__, "--standin-job-once", str(clip), "--work", str(work),
               "--preset", preset, "--crf", str(crf), "--standin-seconds", str(seconds),
               "--chunk-s", str(chunk_s)]  # fmt: skip
        walls = [_timed(cmd) for _ in range(runs)]
        wall = statistics.median(walls)
        rows.append({"job": label, "standin_fps": round(own, 2), "standin_own_s": round(own_s, 2),
                     "wall_s": round(wall, 2), "end_to_end_fps": round(info.frame_count / wall, 2),
                     "ratio": round(info.frame_count / wall / own, 3), "busy_share": round(own_s / wall, 3),
                     "runs": runs})  # fmt: skip
        print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def measure(mode: str, clip: Path, out_dir: Path, preset: str, crf: int) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--one",
        mode,
        str(clip),
        str(out_dir),
        "--preset",
        preset,
        "--crf",
        str(crf),
    ]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def _model_table(rows: list[dict]) -> str:
    lines = [
        f"machine: {platform.machine()}, {os.cpu_count()} cores",
        "| rung | size | frames out | s | fps out | GPU busy |",
    ]
    lines.append("|---|---|---|---|---|---|")
    for r in rows:
        busy = "-" if r["gpu_busy"] is None else f"{r['gpu_busy']:.0%}"
        lines.append(
            f"| {r['rung']} | {r['size']} | {r['frames_out']} | {r['seconds']} | {r['fps_out']} | {busy} |"
        )
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--long-seconds", type=int, default=60)
    p.add_argument("--preset", default="medium")
    p.add_argument("--crf", type=int, default=18)
    p.add_argument("--work", type=Path, default=ROOT / "bench-out")
    p.add_argument("--json", action="store_true")
    p.add_argument("--watchdog-only", action="store_true", help="only the manifest-to-shutdown latency")
    p.add_argument("--models", action="store_true", help="only the model rungs' frames per second")
    p.add_argument("--command", action="store_true", help="the user's command, whole process, vs ffmpeg")
    p.add_argument("--runs", type=int, default=5, help="alternating runs per row (--command, --png-flow)")
    p.add_argument("--rows", help='--command: only these rows, label prefixes ("no stages,rgb")')
    p.add_argument(
        "--png-flow", action="store_true", help="2x blend vs the PNG flow (extract, blend, encode)"
    )
    p.add_argument("--png-flow-once", metavar="CLIP", help=argparse.SUPPRESS)
    p.add_argument("--colour", action="store_true", help="YUV<->RGB conversion filters: speed and error")
    p.add_argument("--standin", action="store_true", help="pipeline overlap with a stand-in model stage")
    p.add_argument(
        "--standin-job",
        type=float,
        metavar="FPS",
        help="P3 as a whole process: the job with a stand-in of FPS frames/s, one pass and chunked",
    )
    p.add_argument("--standin-job-once", metavar="CLIP", help=argparse.SUPPRESS)
    p.add_argument("--preset-unwritten", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--standin-rgb", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--keep-up", type=float, metavar="FPS", help="encoders that keep up: a fast stand-in, libx264 medium"
    )
    p.add_argument("--standin-seconds", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--chunk-s", type=float, default=600.0, help=argparse.SUPPRESS)
    p.add_argument("--one", nargs=3, metavar=("MODE", "CLIP", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    args.work = args.work.resolve()  # runs change directory into it
    if args.one:
        mode, clip, out = args.one
        print(json.dumps(one(mode, Path(clip), Path(out), args.preset, args.crf)))
        return 0

    if args.standin_job_once:
        standin_job_once(
            Path(args.standin_job_once),
            args.work,
            args.preset,
            args.crf,
            args.standin_seconds,
            args.chunk_s,
            written=not args.preset_unwritten,
            rgb=args.standin_rgb,
        )
        return 0
    if args.png_flow_once:
        png_flow(Path(args.png_flow_once), args.work, args.preset, args.crf)
        return 0
    if args.models:
        from bench_models import bench_models

        rows = bench_models()
        print(json.dumps(rows, indent=2) if args.json else _model_table(rows))
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    if args.colour:
        print(json.dumps(colour_bench(args.work, args.seconds if args.seconds != 10 else 2), indent=2))
        return 0
    if args.command or args.png_flow or args.standin_job or args.keep_up:
        as_in_the_image()
    if args.png_flow or args.standin or args.standin_job or args.keep_up:
        clip = make_clip(args.work / f"clip-720p-{args.seconds}s.mp4", args.seconds)
        if args.png_flow:
            result = png_flow_bench(args.work, clip, args.preset, args.crf, args.runs)
        elif args.keep_up:
            result = keep_up_bench(clip, args.work, args.crf, args.keep_up)
        elif args.standin_job:
            result = standin_job_bench(clip, args.work, args.preset, args.crf, args.standin_job, args.runs)
        else:
            result = standin_bench(clip, args.work, args.preset, args.crf)
        print(json.dumps(result, indent=2))
        return 0
    if args.command:
        clip = make_clip(args.work / f"clip-720p-{args.seconds}s.mp4", args.seconds)
        only = [o.strip() for o in args.rows.split(",")] if args.rows else None
        rows = command_bench(args.work, clip, args.preset, args.crf, args.runs, only)
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores; libx264 {args.preset} crf {args.crf}; "
              f"{clip.name}; medians of {args.runs} alternating runs")  # fmt: skip
        print("| stages | what runs | plain ffmpeg s | ours s | ratio | CPU s (ffmpeg / ours) |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            what = "job (--no-watchdog)" if r["mode"] == "job" else "product (supervisor + watchdog, dry run)"
            cpu = f"{r['ffmpeg_cpu_s']} / {r['ours_cpu_s']}"
            print(f"| {r['stages']} | {what} | {r['ffmpeg_s']} | {r['ours_s']} | {r['ratio']} | {cpu} |")
        return 0
    latency = watchdog_latency(args.work, confirm=3, interval=5.0)
    if args.watchdog_only:
        print(json.dumps(latency, indent=2))
        return 0
    short = make_clip(args.work / f"clip-720p-{args.seconds}s.mp4", args.seconds)
    long = make_clip(args.work / f"clip-720p-{args.long_seconds}s.mp4", args.long_seconds)
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        out_dir = Path(tmp)
        rows = [measure(m, short, out_dir, args.preset, args.crf) for m in ("ffmpeg", "pipeline", "blend2x")]
        rows.append(measure("pipeline", long, out_dir, args.preset, args.crf))
        rows.append(measure("blend2x", long, out_dir, args.preset, args.crf))
    a, b = rows[0], rows[1]
    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "preset": args.preset,
        "crf": args.crf,
        "ratio_b_over_a": round(a["seconds"] / b["seconds"], 3),
        "rows": rows,
        "watchdog": latency,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"machine: {summary['machine']}; libx264 preset {args.preset} crf {args.crf}")
    print(f"{'mode':<10} {'clip':<22} {'frames in/out':>14} {'seconds':>8} {'fps in':>7} {'peak RSS MB':>12}")
    for r in rows:
        io = f"{r['frames_in']}/{r['frames_out']}"
        cells = f"{r['mode']:<10} {r['clip']:<22} {io:>14} {r['seconds']:>8} {r['fps_in']:>7}"
        print(f"{cells} {r['peak_rss_mb']:>12}")
    print(f"throughput ratio b/a (pipeline vs plain ffmpeg): {summary['ratio_b_over_a']}")
    print(
        f"watchdog: manifest landed -> shutdown call {latency['manifest_to_shutdown_s']} s "
        f"(confirm {latency['confirm']} x interval {latency['interval_s']} s; aim <= {latency['aim_s']} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
