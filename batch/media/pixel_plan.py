"""Per input: the pixel format frames travel in, the one the encoder writes, and what was given up.

``encode.pix_fmt: source`` (the default) keeps the source's bit depth, chroma
resolution and alpha wherever the codec holds them; where it does not, the
nearest format it does hold is used and a *step* (what, from, to, why, and
the setting that would avoid it) goes into the manifest. An explicit
``encode.pix_fmt`` is used as asked (the config check refuses codecs that
cannot write it). HDR mastering display and content light level are passed
to libx265; other encoders get a step saying they were not written.

Frames travel as the source's own planar YUV when no stage needs RGB and the
source's planes fit that (4:2:0/4:2:2/4:4:4, even sizes where subsampled),
else as packed RGB: 8-bit ``rgb24``, or 16-bit ``rgb48le`` for a source above
8 bits that is encoded above 8 bits, with alpha (``rgba`` / ``rgba64le``)
when it is kept. Alpha that is not kept is flattened against black when
decoding (premultiplied), and the manifest says so.
"""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from batch.config import EncodeConfig
from batch.encoder_formats import ENCODER_PIX_FMTS
from batch.errors import ConfigError
from batch.media.layout import DEVICE_YUV, YUV420, packed_rgb
from batch.media.pixfmt import CHROMA_SITING, PixFacts, describe, partial_chroma, pix_facts, planar_yuv
from batch.media.probe import HDR_TRANSFERS, HdrMeta, MediaInfo

_CHROMA_RANK = {"410": 0, "420": 1, "411": 1, "440": 2, "422": 2, "444": 3}
_CHECKED_BY_FFMPEG = ("libx264", "libx265", "libvpx-vp9")  # builds differ in the depths they hold
_NVENC_NAME = {"yuv420p10le": "p010le", "yuv444p10le": "yuv444p16le"}
_FFV1_NAME = {"gbrp": "bgr0", "gbrap": "bgra"}
ALPHA_CODECS = ("ffv1", "prores_ks", "libvpx-vp9")
NO_RANGE_FLAG = ("prores_ks",)  # its frame header names primaries, transfer and matrix, not the range
FLATTEN_COLOUR = "black"


PLANES_RESIZED = "planes resized"  # PixelPlan.resize_rule: the planes themselves are resized (no RGB)
IN_GRAPH = "stages in the transcode's graph"  # PixelPlan.route where in_graph


@dataclass(frozen=True)
class PixelPlan:
    source: str  # the source's pix_fmt
    transport: str  # how frames travel between the pipes (batch.media.layout)
    output: str  # the output's pix_fmt (ffmpeg's planar name)
    encoder_pix_fmt: str  # the name the encoder is fed (p010le for NVENC's 10-bit 4:2:0)
    alpha: str = "none"  # "none" (the source has none) | "kept" | "flattened"
    extra_args: tuple[str, ...] = ()  # profile options the format needs
    x265_params: tuple[str, ...] = ()  # master-display=..., max-cll=...
    steps: tuple[dict[str, str], ...] = ()
    notes: tuple[str, ...] = field(default=())
    colour_on_device: bool = False  # 4:2:0 frames (8/10-bit); the model stage makes RGB and back on device
    # "limited": a full-range source written limited, the codec has no range flag (ProRes);
    # "full-range depth": zimg rescales full-range planes to another depth; "": neither
    range_rule: str = ""
    resize_rule: str = ""  # PLANES_RESIZED or ""
    # the stages run inside the direct transcode's ffmpeg graph (Stage.graph_filter): no frames through pipes
    in_graph: bool = False
    # the chroma siting the output is tagged with: the source's, where its planes cross as they are and
    # it is not "left" (the default H.264/HEVC readers and zimg take when none is written)
    chroma_location: str | None = None

    @property
    def limited_range(self) -> bool:
        return self.range_rule == "limited"

    @property
    def route(self) -> str:
        """What of the plan shapes the output's frames, for the fingerprints (batch.job.chunks): an
        output made under an earlier rule (full range squeezed or rescaled otherwise, planes resized
        through RGB) is made again. Each rule is absent where none applies (old prints stay)."""
        sited = f"sited {self.chroma_location}" if self.chroma_location else ""
        rules = (
            self.output,
            self.transport,
            self.range_rule,
            self.resize_rule,
            sited,
            IN_GRAPH * self.in_graph,
        )
        return "/".join(p for p in rules if p)

    @property
    def output_rgb(self) -> bool:
        return self.output.startswith("gbr")

    @property
    def output_facts(self) -> PixFacts:
        return pix_facts(self.output)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "frames": self.transport,
            "output": self.output,
            "alpha": self.alpha,
            "steps": list(self.steps),
            "colour_on_device": self.colour_on_device,
        }


@functools.cache
def ffmpeg_pix_fmts(codec: str) -> frozenset[str] | None:
    """The pixel formats this ffmpeg's ``codec`` lists (None: it could not be asked)."""
    try:
        proc = subprocess.run(
            ["ffmpeg", "-hide_banner", "-h", f"encoder={codec}"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in proc.stdout.splitlines():
        if "Supported pixel formats:" in line:
            return frozenset(line.split(":", 1)[1].split())
    return None


def available(codec: str) -> list[str]:
    """What ``codec`` can be asked for here: the table, less what this ffmpeg's build lacks."""
    names = list(ENCODER_PIX_FMTS[codec])
    if codec in _CHECKED_BY_FFMPEG:
        listed = ffmpeg_pix_fmts(codec)
        if listed is not None:
            names = [n for n in names if n in listed]
    return names


def master_display(hdr: HdrMeta) -> str | None:
    """x265's ``master-display`` value: chromaticities in 1/50000, luminance in 1/10000 cd/m2."""
    if not hdr.mastering:
        return None
    m = {k: Fraction(v) for k, v in hdr.mastering}

    def xy(name: str) -> str:
        return f"({round(m[name + '_x'] * 50000)},{round(m[name + '_y'] * 50000)})"

    lum = f"L({round(m['max_luminance'] * 10000)},{round(m['min_luminance'] * 10000)})"
    return f"G{xy('green')}B{xy('blue')}R{xy('red')}WP{xy('white_point')}{lum}"


def _pick(candidates: list[PixFacts], chroma: str, depth: int) -> PixFacts:
    """The smallest chroma resolution, then depth, that holds the wanted ones; else the largest there is."""
    ranks = sorted({_CHROMA_RANK[c.chroma] for c in candidates})
    rank = next((r for r in ranks if r >= _CHROMA_RANK[chroma]), ranks[-1])
    pool = [c for c in candidates if _CHROMA_RANK[c.chroma] == rank]
    depths = sorted({c.depth for c in pool})
    bits = next((d for d in depths if d >= depth), depths[-1])
    return next(c for c in pool if c.depth == bits)


def _fits_planes(facts: PixFacts, width: int, height: int) -> bool:
    if facts.chroma not in ("420", "422", "444"):
        return False
    return (facts.chroma == "444" or width % 2 == 0) and (facts.chroma != "420" or height % 2 == 0)


def plan_pixels(
    info: MediaInfo,
    cfg: EncodeConfig,
    codec: str,
    *,
    needs_rgb: bool,
    model_stage: bool,
    rgb_on_device: bool = False,
    resized_to: tuple[tuple[int, int], ...] = (),
) -> PixelPlan:
    """The pixel plan for one input. Raises ConfigError for a pix_fmt this ffmpeg cannot write.

    ``rgb_on_device``: the one stage that needs RGB is a model stage that can take 4:2:0 planes
    and convert on its device (``encode.colour_on_device``); frames then travel as yuv420p when
    the source and the output are both 8-bit 4:2:0, as yuv420p10le when both are 10-bit 4:2:0.
    ``resized_to``: a stage resizes the frames (batch.stages.base.Caps.resizes), and these are the sizes
    the stages make, in order; planes travel only where every one fits their chroma and there is no
    alpha, else RGB.
    """
    try:
        src = pix_facts(info.pix_fmt)
        known = True
    except ValueError:  # ffmpeg converts what it decodes; treat it as 8-bit 4:2:0
        src, known = PixFacts(info.pix_fmt or "unknown", "yuv", "420", 8, False), False
    # 8-bit 4:2:0 in, 8-bit 4:2:0 out: every build holds yuv420p, so this ffmpeg need not be asked
    # (`ffmpeg -h encoder=...` costs ~0.1 s of a job); anything else asks what the build holds.
    plain = cfg.pix_fmt == YUV420 or (
        cfg.pix_fmt == "source" and (src.family, src.chroma, src.depth, src.alpha) == ("yuv", "420", 8, False)
    )
    names = list(ENCODER_PIX_FMTS[codec]) if plain and YUV420 in ENCODER_PIX_FMTS[codec] else available(codec)
    steps: list[dict[str, str]] = []
    notes: list[str] = []

    # alpha: kept where the codec, container and stages allow
    alpha = "none"
    keep_alpha = False
    if src.alpha:
        why = ""
        if model_stage:
            why = "a model stage (rife, sr, sam2) takes RGB without alpha"
        elif codec not in ALPHA_CODECS:
            why = f"{codec} cannot carry alpha; use ffv1 (mkv), prores_ks (mov) or libvpx-vp9 (mkv)"
        elif codec == "libvpx-vp9" and cfg.container != "mkv":
            why = "libvpx-vp9 keeps alpha only in container: mkv"
        elif cfg.pix_fmt != "source" and not pix_facts(cfg.pix_fmt).alpha:
            why = f"encode.pix_fmt {cfg.pix_fmt} has no alpha"
        keep_alpha = not why
        alpha = "kept" if keep_alpha else "flattened"
        if why:
            steps.append(
                {"what": "alpha", "from": "alpha", "to": f"flattened against {FLATTEN_COLOUR}", "why": why}
            )

    if cfg.pix_fmt != "source":
        if cfg.pix_fmt not in names:
            raise ConfigError(
                f"encode.pix_fmt {cfg.pix_fmt}: this ffmpeg's {codec} cannot write it "
                f"(it lists {', '.join(names)})",
                hint="choose one of those, or pix_fmt: source, or another encode.codec (libx265, ffv1)",
            )
        out = pix_facts(cfg.pix_fmt)
        reason = f"encode.pix_fmt is {cfg.pix_fmt}"
    else:
        family = "rgb" if src.family == "rgb" and codec == "ffv1" else "yuv"
        facts = [pix_facts(n) for n in names]
        pool = [f for f in facts if f.family == family and f.alpha == keep_alpha] or [
            f for f in facts if f.family == "yuv" and not f.alpha
        ]
        chroma = src.chroma if src.family == "yuv" else ("444" if src.family == "rgb" else "420")
        out = _pick(pool, chroma, src.depth)
        reason = _held(codec, pool, keep_alpha)
    want_chroma = src.chroma if src.family == "yuv" else ("444" if src.family == "rgb" else out.chroma)
    if known and _CHROMA_RANK[out.chroma] < _CHROMA_RANK[want_chroma]:
        steps.append({"what": "chroma", "from": _words(want_chroma), "to": _words(out.chroma), "why": reason})
    if known and out.depth < src.depth:
        steps.append({"what": "bit depth", "from": str(src.depth), "to": str(out.depth), "why": reason})
    if keep_alpha and not out.alpha:  # an explicit pix_fmt without alpha was caught above
        alpha = "flattened"
    # ProRes has no range flag (decoders read limited): full-range codes there would play washed out
    full = src.family == "yuv" and (src.full_range or info.color.range == "pc")
    limited = codec in NO_RANGE_FLAG and full
    if limited:
        steps.append(
            {
                "what": "range",
                "from": "full",
                "to": "limited",
                "why": f"{codec} cannot mark full range (players read it as limited); "
                "set encode.codec: ffv1 (container: mkv) or libx265 to keep full range",
            }
        )

    # how frames travel
    on_device = False
    if needs_rgb and rgb_on_device:
        # a full-range yuvj420p crosses as yuv420p planes with its codes kept (colour.planar_format);
        # the device converts with the source's range
        planes = planar_yuv(src.chroma, src.depth) if src.full_range else src.name
        plain_420 = planes == out.name and out.name in DEVICE_YUV and not keep_alpha
        # the device converts with chroma sited "left" (MPEG-2/H.264's, what zimg takes for unset)
        sited = info.chroma_location in (None, "left")
        on_device = plain_420 and sited and _fits_planes(src, info.width, info.height)
        if on_device:
            needs_rgb = False
            notes.append(f"colour converted on the model's device: {out.name} frames through the pipes")
        elif partial_chroma(src, info.width, info.height):
            notes.append(f"colour not converted on the device: {info.width}x{info.height} is an odd size")
        else:
            notes.append(
                f"colour converted by ffmpeg: on the device only 4:2:0 of 8 or 10 bits (yuv420p, "
                f"yuv420p10le), the same in and out, even sizes, chroma sited left; this input is "
                f"{src.name} -> {out.name} at {info.width}x{info.height}, chroma "
                f"{info.chroma_location or 'left (unset)'}"
            )
    yuv_ok = (
        known
        and not needs_rgb
        and src.family == "yuv"  # full range (yuvj*) too: the planes keep their codes (colour.planar_format)
        and not (src.alpha and not keep_alpha)
        and out.family == "yuv"
        and _fits_planes(src, info.width, info.height)
    )
    planes_resized = yuv_ok and bool(resized_to)
    if planes_resized:
        misfit = next((s for s in resized_to if not _fits_planes(src, *s)), None)
        siting = own_siting(src.chroma, info.chroma_location)
        if keep_alpha:
            yuv_ok = planes_resized = False
            notes.append("frames travel as RGB: alpha is resized premultiplied, which needs RGB")
        elif misfit is not None:
            yuv_ok = planes_resized = False
            notes.append(
                f"frames travel as RGB: the stages make {misfit[0]}x{misfit[1]} frames, which "
                f"{src.name} planes cannot hold (its chroma is subsampled)"
            )
        elif siting is not None and not _records_siting(codec, cfg.container, src, out, siting):
            # the planes would keep a siting the output could not say: read as "left", the chroma of every
            # resized frame would sit half a sample off; through RGB it is written sited left
            yuv_ok = planes_resized = False
            notes.append(
                f"frames travel as RGB: the source's chroma is sited {siting}, which {codec} in "
                f"{cfg.container} as {out.name} cannot record"
            )
    if yuv_ok:
        transport = planar_yuv(src.chroma, src.depth, keep_alpha)
    else:
        transport = packed_rgb(src.depth > 8 and out.depth > 8, keep_alpha)
        if known and src.chroma == "420" and partial_chroma(src, info.width, info.height):
            notes.append(
                f"{info.width}x{info.height} {src.name}: converted to RGB in this process (zimg's rule), "
                "as ffmpeg's zscale refuses 4:2:0 of odd size"
            )

    rescaled = full and yuv_ok and out.depth != src.depth  # planes rescaled by zimg (colour.planar_change)
    range_rule = "limited" if limited else "full-range depth" if rescaled else ""
    # a resize of the planes themselves (batch.stages.lanczos.PlanarLanczosRung): named in the route, so
    # parts an earlier rule resized (through RGB, also on yuv420p frames for a model's fallback) are redone
    resize_rule = PLANES_RESIZED if planes_resized else ""
    # planes that cross as they are keep the source's siting (crop and resize keep it too): say so in the
    # output, or players put the chroma of a top-left (UHD HEVC) or centre (MJPEG) source half a sample off
    keeps_siting = yuv_ok and out.chroma == src.chroma
    tagged_siting = own_siting(src.chroma, info.chroma_location) if keeps_siting else None
    if tagged_siting not in SITINGS:
        tagged_siting = None

    # HDR side data
    x265: list[str] = []
    if info.hdr.present:
        if codec == "libx265":
            display = master_display(info.hdr)
            if display:
                x265.append(f"master-display={display}")
            if info.hdr.max_cll is not None:
                x265.append(f"max-cll={info.hdr.max_cll},{info.hdr.max_fall or 0}")
        else:
            steps.append(
                {
                    "what": "hdr metadata",
                    "from": "mastering display / content light level",
                    "to": "not written (colour tags kept)",
                    "why": f"{codec} cannot be given them here; set encode.codec: libx265 to keep them",
                }
            )
    if info.color.transfer in HDR_TRANSFERS and out.depth == 8:
        notes.append(f"{info.color.transfer} (HDR) signal encoded in 8 bits: expect banding")

    for s in steps:
        notes.append(f"{s['what']}: {s['from']} -> {s['to']} ({s['why']})")
    if not known:
        notes.append(f"source pixel format {info.pix_fmt} is not one this runner knows; read as 8-bit 4:2:0")
    notes.append(f"source {describe(src)} ({info.pix_fmt}) encoded as {describe(out)} ({out.name})")
    return PixelPlan(
        source=info.pix_fmt,
        transport=transport,
        output=out.name,
        encoder_pix_fmt=_encoder_name(codec, out.name),
        alpha=alpha,
        extra_args=_profile_args(codec, out),
        x265_params=tuple(x265),
        steps=tuple(steps),
        notes=tuple(notes),
        colour_on_device=on_device and transport in DEVICE_YUV,
        range_rule=range_rule,
        resize_rule=resize_rule,
        chroma_location=tagged_siting,
    )


# the chroma sitings ffmpeg names, other than "left" (what every reader takes when none is written)
SITINGS = tuple(name for name in CHROMA_SITING if name != "left")


def own_siting(chroma: str, siting: str | None) -> str | None:
    """Where ``chroma`` planes' samples sit, as far as it matters, or None where it is "left" or
    means nothing: 4:4:4 has no subsampled chroma, and 4:2:2 none across rows (its "topleft" is
    "left", its "top" and "bottom" are "center"). A name ffmpeg does not know is kept (unrecordable)."""
    if chroma not in ("420", "422") or siting in (None, "left"):
        return None
    if chroma == "420" or siting not in CHROMA_SITING:
        return siting
    # 4:2:2 halves only the width: a siting's vertical part means nothing there
    return "center" if CHROMA_SITING[siting][0] else None


def _records_siting(codec: str, container: str, src: PixFacts, out: PixFacts, siting: str) -> bool:
    """Whether an output of ``out`` from ``src`` planes as they are can say where their chroma sits.

    The writer's conversion to another chroma format would re-site it (swscale takes "left"); H.264
    and HEVC write every 4:2:0 siting in their VUI (and none for 4:2:2); Matroska's own fields hold
    left, center, top-left and top. ProRes, MP4 around other codecs and the rest: none.
    """
    if src.chroma != out.chroma or siting not in SITINGS:
        return False
    if src.chroma == "420" and codec in ("libx264", "libx265"):
        return True
    return (
        container == "mkv" and codec not in ("libx264", "libx265") and siting in ("center", "topleft", "top")
    )


def _held(codec: str, pool: list[PixFacts], alpha: bool) -> str:
    """Why a source-matching output steps down: what the codec holds, and the codec that holds more."""
    chromas = ", ".join(_words(c) for c in sorted({f.chroma for f in pool}, key=_CHROMA_RANK.__getitem__))
    held = f"{codec}{' with alpha' if alpha else ''} holds at most {max(f.depth for f in pool)} bits"
    fix = "ffv1 (container: mkv)" if alpha or codec == "libx265" else "libx265 (or ffv1, container: mkv)"
    return f"{held} and {chromas} chroma here; set encode.codec: {fix} to keep more"


def _words(chroma: str) -> str:
    return ":".join(chroma)


def _encoder_name(codec: str, name: str) -> str:
    if codec in ("h264_nvenc", "hevc_nvenc"):
        return _NVENC_NAME.get(name, name)
    if codec == "ffv1":
        return _FFV1_NAME.get(name, name)
    return name


def _profile_args(codec: str, out: PixFacts) -> tuple[str, ...]:
    """Profile options the output format needs (libx264/libx265 pick theirs from the format)."""
    if codec == "hevc_nvenc" and out.chroma == "444":
        return ("-profile:v", "rext")
    if codec == "hevc_nvenc" and out.depth > 8:
        return ("-profile:v", "main10")
    if codec == "h264_nvenc" and out.chroma == "444":
        return ("-profile:v", "high444p")
    if codec == "prores_ks":
        return (
            ("-profile:v", "4444", "-alpha_bits", "16")
            if out.alpha
            else (("-profile:v", "4444") if out.chroma == "444" else ("-profile:v", "hq"))
        )
    return ()
