"""The encoder ladder: NVENC when it works, else the CPU encoder it stands for."""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass, field, replace
from typing import Any

from batch.config import PRESETS, EncodeConfig
from batch.encoder_formats import unsupported

# x264-style preset names -> NVENC p1 (fastest) .. p7 (best)
_NVENC_PRESET = {
    "ultrafast": "p1",
    "superfast": "p1",
    "veryfast": "p2",
    "faster": "p3",
    "fast": "p3",
    "medium": "p4",
    "slow": "p5",
    "slower": "p6",
    "veryslow": "p7",
}
_CPU_TWIN = {"h264_nvenc": "libx264", "hevc_nvenc": "libx265"}


@dataclass(frozen=True)
class EncoderChoice:
    codec: str
    pix_fmt: str  # what the encoder is fed: "yuv420p", or "gbrp" for lossless RGB
    args: list[str]
    requested: str
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rgb(self) -> bool:
        return self.pix_fmt == "gbrp"

    @property
    def nvenc(self) -> bool:
        return self.codec in _CPU_TWIN

    def on_gpu(self, index: int) -> EncoderChoice:
        """NVENC on GPU ``index`` (``-gpu k``): a worker pinned to GPU k encodes there, not on GPU 0."""
        if not self.nvenc:
            return self
        return replace(self, args=[*self.args, "-gpu", str(index)])

    def to_dict(self) -> dict[str, Any]:
        return {"requested": self.requested, "used": self.codec, "steps": self.steps}


@functools.cache
def nvenc_problem(codec: str) -> str | None:
    """None when ``codec`` encodes a tiny clip here, else why not (cached per process)."""
    cmd = [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
        "-f", "lavfi", "-i", "color=size=256x256:duration=0.1",
        "-c:v", codec, "-f", "null", "-",
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{codec} probe failed: {e}"
    if proc.returncode == 0:
        return None
    lines = [line.split("] ", 1)[-1] for line in proc.stderr.strip().splitlines() if line.strip()]
    # The first line names the cause ("Cannot load libcuda.so.1", "No capable devices found").
    return f"{codec} unavailable: {lines[0] if lines else 'ffmpeg exited ' + str(proc.returncode)}"


def _args(codec: str, cfg: EncodeConfig) -> tuple[list[str], str]:
    if codec == "libx264":
        return ["-c:v", "libx264", "-preset", cfg.preset, "-crf", str(cfg.crf)], "yuv420p"
    if codec == "libx265":
        x265 = ["-x265-params", "log-level=error"]
        tag = ["-tag:v", "hvc1"] if cfg.container in ("mp4", "mov") else []
        return ["-c:v", "libx265", "-preset", cfg.preset, "-crf", str(cfg.crf), *x265, *tag], "yuv420p"
    if codec in _CPU_TWIN:
        nv = ["-c:v", codec, "-preset", _NVENC_PRESET[cfg.preset], "-tune", "hq"]
        return [*nv, "-rc", "vbr", "-cq", str(cfg.crf), "-b:v", "0"], "yuv420p"
    if codec == "ffv1":
        return ["-c:v", "ffv1", "-level", "3", "-g", "1"], "gbrp"
    if codec == "prores_ks":  # quality is the profile's (see pixel_plan); -vendor: players expect Apple's
        return ["-c:v", "prores_ks", "-vendor", "apl0"], "yuv422p10le"
    if codec == "libvpx-vp9":
        speed = str(
            round(5 - PRESETS.index(cfg.preset) * 5 / (len(PRESETS) - 1))
        )  # ultrafast 5 .. veryslow 0
        vp9 = ["-c:v", "libvpx-vp9", "-crf", str(cfg.crf), "-b:v", "0", "-row-mt", "1"]
        return [*vp9, "-deadline", "good", "-cpu-used", speed], "yuv420p"
    raise ValueError(f"unknown codec {codec}")


def choose_encoder(cfg: EncodeConfig) -> EncoderChoice:
    """Resolve ``auto`` and NVENC requests to an encoder that works on this machine."""
    wanted: str = "h264_nvenc" if cfg.codec == "auto" else cfg.codec
    steps: list[dict[str, Any]] = []
    if wanted in _CPU_TWIN and cfg.codec == "auto" and unsupported(wanted, cfg.pix_fmt):
        reason = f"{wanted} cannot encode pix_fmt {cfg.pix_fmt}"
        steps.append({"rung": wanted, "status": "unavailable", "reason": reason})
        wanted = _CPU_TWIN[wanted]
    if wanted in _CPU_TWIN:
        problem = nvenc_problem(wanted)
        if problem:
            steps.append({"rung": wanted, "status": "unavailable", "reason": problem})
            wanted = _CPU_TWIN[wanted]
    args, pix_fmt = _args(wanted, cfg)
    steps.append({"rung": wanted, "status": "used"})
    return EncoderChoice(codec=wanted, pix_fmt=pix_fmt, args=args, requested=cfg.codec, steps=steps)
