"""Every frame of a variable-rate source decoded, though its resampling would hide a gap.

A constant-rate source is checked by count: frames out against frames in. A variable-rate one
goes through ffmpeg's ``fps`` filter, which fills a frame that failed to decode by holding the
one before, so the output's count cannot show damage (outside review: 75 of 90 frames decoded,
90 written, the job "succeeded"). A branch of the graph before the filter keeps only the source's
last frame (``select`` n == N - 1): its small image exists once all N frames have decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from batch.errors import TruncatedVideo


@dataclass(frozen=True)
class LastFrameCheck:
    directory: Path
    frames: int  # the source's shown frames
    source: str  # the input's name, for the error

    @property
    def image(self) -> Path:
        return self.directory / "last-frame-1.pgm"

    def branch(self, into: str, out: str) -> str:
        """The filter-graph chain from label ``into`` to ``out``: the last frame, 8x8 grey."""
        return f"[{into}]select=eq(n\\,{self.frames - 1}),scale=8:8,format=gray[{out}]"

    def output_args(self, label: str) -> list[str]:
        pattern = self.directory / "last-frame-%d.pgm"
        return ["-map", f"[{label}]", "-frames:v", "1", "-fps_mode", "passthrough", "-f", "image2",
                "-c:v", "pgm", str(pattern)]  # fmt: skip

    def verify(self) -> None:
        """Raises TruncatedVideo when the source's last frame never decoded."""
        if not self.image.exists():
            raise TruncatedVideo(
                f"{self.source} is truncated or damaged: fewer than its {self.frames} frames decoded",
                hint="re-upload a complete copy of the input",
                declared_frames=self.frames,
            )
