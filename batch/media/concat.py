"""Join encoded parts into one file without re-encoding, muxing the source's audio once."""

from __future__ import annotations

import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

from batch.disk import full_in_stderr
from batch.errors import FFmpegFailed
from batch.media.probe import AudioStream
from batch.media.streams import StreamPlan, source_args
from batch.media.writer import audio_args


def join_parts(
    parts: list[Path],
    dest: Path,
    *,
    container: str,
    audio_source: Path | None = None,
    audio: tuple[AudioStream, ...] = (),
    video_offset_s: float = 0.0,
    durations: list[Fraction] | None = None,
    streams: StreamPlan | None = None,
    timeout_s: float | None = None,
) -> None:
    """Concatenate ``parts`` (same codec and settings) into ``dest``; raises FFmpegFailed.

    ``timeout_s``: a join (a copy of the parts, no progress to show) still running after it is
    stuck (a hung disk, a stopped ffmpeg) and fails, rather than holding the instance until
    the job's max_runtime_s.

    ``durations`` (frames / fps of each part) are written into the concat list:
    containers round a file's duration (Matroska to the millisecond), and the
    concat demuxer would add those roundings up at every boundary.
    ``streams``: what else comes from ``audio_source`` (subtitles, chapters, tags), as in one pass.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as listing:
        for i, part in enumerate(parts):
            quoted = str(part.resolve()).replace("'", "'\\''")  # concat syntax for a quote
            listing.write(f"file '{quoted}'\n")
            if durations is not None:
                listing.write(f"duration {float(durations[i]):.9f}\n")
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    if video_offset_s > 0:
        cmd += ["-itsoffset", f"{video_offset_s:.6f}"]
    cmd += ["-f", "concat", "-safe", "0", "-i", listing.name]
    with_audio = audio_source is not None and bool(audio)
    if audio_source is not None:
        cmd += ["-i", str(audio_source)]
        cmd += source_args(streams or StreamPlan(container, audio=audio))
    else:
        cmd += source_args(None)
    cmd += ["-c:v", "copy", "-fps_mode", "passthrough"]
    if with_audio:
        cmd += audio_args(container, audio)
    if container in ("mp4", "mov"):
        cmd += ["-movflags", "+faststart"]
    cmd.append(str(dest))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise FFmpegFailed(
            f"joining {len(parts)} parts into {dest.name} made no end in {timeout_s:g} s (limits.stall_s)",
            hint="a stuck disk or a hung ffmpeg; run the job again (its parts are reused)",
            command=" ".join(cmd),
        ) from None
    finally:
        Path(listing.name).unlink(missing_ok=True)
    if proc.returncode != 0:
        if full := full_in_stderr(proc.stderr[-1500:], dest.parent, f"the join into {dest.name}"):
            raise full
        raise FFmpegFailed(
            f"joining {len(parts)} parts into {dest.name} failed (ffmpeg exit {proc.returncode})",
            hint="a part may be damaged; run the job again to redo it",
            command=" ".join(cmd),
            stderr_tail=proc.stderr.strip()[-1500:],
        )
