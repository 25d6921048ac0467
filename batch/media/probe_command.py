"""The probe's ffprobe command, in a module light enough to start it before anything else loads.

The runner's entry starts this command for its first local input before it imports the config
model and the pipeline (batch.head_start); :func:`batch.media.probe.probe` runs the same command
and takes that answer if the file is unchanged (batch.media.probe_ahead).
"""

from __future__ import annotations

from batch.media import probe_ahead

TYPE_CHECKING = False  # (the typing module: ~5 ms before the early ffprobe could start)

if TYPE_CHECKING:
    from pathlib import Path

FFPROBE = "ffprobe"

# One ffprobe run per file: the streams, the format and every packet's flags, timestamps and duration
# (demux only, no decode).
PROBE_ARGS = [
    "-show_streams", "-show_format", "-show_chapters",
    "-show_entries", "packet=stream_index,flags,pts,dts,duration:packet_side_data=",
]  # fmt: skip


def file_argument(path: Path | str) -> str:
    """``path`` as ffprobe's input argument: a relative name starting with ``-`` would be read as an
    option ("Missing argument for option 'x.mp4'": the input reported as no video)."""
    name = str(path)
    return "./" + name if name.startswith("-") else name


def ffprobe_command(args: list[str], path: Path | str) -> list[str]:
    return [FFPROBE, "-v", "error", "-of", "json=c=1", *args, file_argument(path)]


def probe_ahead_of_time(path: Path | str) -> bool:
    """Start ``probe(path)``'s ffprobe now; ``probe`` takes its answer if the file is unchanged."""
    return probe_ahead.start(ffprobe_command(PROBE_ARGS, path), path)
