"""Which YUV<->RGB matrix and range to use, so colours survive the round trip.

The reader converts the source to RGB with the source's own matrix and range;
the writer converts back with the same ones and tags the output with the
source's tags. Untagged sources get the matrix players assume for their size.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from batch.media.pixfmt import pix_facts_or_guess
from batch.media.probe import ColorInfo

# ffprobe color_space names -> swscale matrix names
_SWS_MATRIX = {
    "bt709": "bt709",
    "smpte170m": "smpte170m",
    "bt470bg": "bt470",
    "fcc": "fcc",
    "smpte240m": "smpte240m",
    "bt2020nc": "bt2020",
    "bt2020c": "bt2020",
}


@dataclass(frozen=True)
class ColourPlan:
    matrix: str  # swscale name
    range: str  # "tv" | "pc"
    tags: ColorInfo  # written to the output as found in the source
    rgb_source: bool = False  # no YUV matrix of its own: the output is tagged with ``matrix``


_RGB_PIX_FMTS = ("rgb", "bgr", "gbr", "argb", "abgr", "0rgb", "0bgr")


def plan_colour(color: ColorInfo, height: int, pix_fmt: str) -> ColourPlan:
    matrix = _SWS_MATRIX.get(color.space or "", "bt709" if height >= 720 else "smpte170m")
    full = color.range == "pc" or pix_fmt.startswith("yuvj")
    rgb = pix_fmt.startswith(_RGB_PIX_FMTS) or color.space in ("gbr", "rgb")
    return ColourPlan(matrix=matrix, range="pc" if full else "tv", tags=color, rgb_source=rgb)


def planar_format(plan: ColourPlan, pix_fmt: str) -> str:
    """The filter that hands YUV frames on as ``pix_fmt`` planes with their codes as coded.

    A full-range source (``yuvj420p`` as ffmpeg decodes full-range H.264 and MJPEG, or planes
    tagged ``pc``) stays full range: a bare ``format=yuv420p`` after a ``yuvj`` decoder squeezes
    its codes into 16-235 (and the output, tagged full range, would then show washed-out blacks).
    Told that both sides are full range, the scaler only relabels the planes (bit-exact, tested).
    """
    if plan.range == "pc" and not plan.rgb_source:
        return f"scale=in_range=full:out_range=full,format={pix_fmt}"
    return f"format={pix_fmt}"


def planar_change(source: ColourPlan, written: ColourPlan, in_fmt: str, out_fmt: str) -> str:
    """The writer's filter from YUV planes ``in_fmt`` (codes as the source's range has them) to the
    encoder's YUV ``out_fmt`` in ``written``'s range.

    Limited range, or full range at the same depth: ``format=`` (swscale shifts the depth, exact for
    limited range; the raw planes carry no range, so it converts none). Full range to another depth
    or to limited range (a codec without a range flag): zimg, which maps full range onto 0..2^n-1
    (swscale shifts: 8-bit white 255 became 1020 of 1023) and squeezes it into 16-235 exactly.
    """
    if source.range != "pc" or source.rgb_source:
        return f"format={out_fmt}"
    same_depth = pix_facts_or_guess(in_fmt).depth == pix_facts_or_guess(out_fmt).depth
    if written.range == "pc" and same_depth:
        return f"format={out_fmt}"
    zrange = _ZSCALE_RANGE.get(written.range, "limited")
    return f"zscale=rangein=full:range={zrange}:filter=bicubic:dither=none,format={out_fmt}"


def written_colour(plan: ColourPlan, *, limited: bool) -> ColourPlan:
    """The plan an output is written with: the source's, or limited range where ``limited`` (the
    pixel plan's ``limited_range``: a codec that cannot mark full range)."""
    if not limited or plan.range != "pc":
        return plan
    return replace(plan, range="tv", tags=replace(plan.tags, range="tv"))


_SETPARAMS = {  # the names vf_setparams takes (ffprobe's names), by option
    "colorspace": {"bt709", "fcc", "bt470bg", "smpte170m", "smpte240m", "bt2020nc", "bt2020c"},
    "color_primaries": {"bt709", "bt470m", "bt470bg", "smpte170m", "smpte240m", "film", "bt2020",
                        "smpte428", "smpte431", "smpte432", "jedec-p22", "ebu3213"},
    "color_trc": {"bt709", "bt470m", "bt470bg", "smpte170m", "smpte240m", "linear", "log100", "log316",
                  "iec61966-2-4", "bt1361e", "iec61966-2-1", "bt2020-10", "bt2020-12", "smpte2084",
                  "smpte428", "arib-std-b67"},
}  # fmt: skip


def frame_params(plan: ColourPlan, *, converted_here: bool = False) -> str:
    """``setparams`` marking each frame with the tags: for an encoder that writes the frames' own
    colour properties rather than its options (prores_ks), as planar frames from a pipe carry none.
    ``converted_here``: as for :func:`output_tags`."""
    tags = output_tags(plan, converted_here=converted_here)
    values = {
        "range": tags.range,
        "colorspace": tags.space,
        "color_primaries": tags.primaries,
        "color_trc": tags.transfer,
    }
    chosen = [f"{k}={v}" for k, v in values.items() if v and (k == "range" or v in _SETPARAMS.get(k, ()))]
    return "setparams=" + ":".join(chosen) if chosen else "null"


# ffprobe prints these transfer names; the encoder option spells them otherwise.
_TRC_OPTION = {"bt470m": "gamma22", "bt470bg": "gamma28"}


# swscale matrix names -> the encoder's -colorspace names
_SPACE_OF_MATRIX = {
    "bt709": "bt709",
    "smpte170m": "smpte170m",
    "bt470": "bt470bg",
    "fcc": "fcc",
    "smpte240m": "smpte240m",
    "bt2020": "bt2020nc",
}


# encoders that write a limited range only beside a colour description (x264's VUI rule; NVENC's)
RANGE_BESIDE_DESCRIPTION = ("libx264", "h264_nvenc", "hevc_nvenc")


def output_tags(plan: ColourPlan, *, converted_here: bool = False, codec: str = "") -> ColorInfo:
    """The colour tags a YUV output carries (ffprobe's names), from the source's and the plan's.

    An RGB source (``gbr``: FFV1 ``bgr0`` masters, PNG sequences) has no YUV matrix of its own;
    the output is tagged with the matrix the writer converted with (libx264 refuses ``gbr``).
    ``converted_here``: the YUV frames were made from RGB before ffmpeg (on a model's device), or
    resized as planes (batch.stages.lanczos.PlanarLanczosRung), so no zscale filter marks them
    with the matrix and range it used; an untagged source's output is tagged with them, as the
    writer's filter would have marked it (an SD source made HD would otherwise be read as BT.709).
    ``codec``: one of RANGE_BESIDE_DESCRIPTION gets the matrix players assume for the size beside a
    limited range that comes alone, or it writes none.
    """
    tags = plan.tags
    space = _SPACE_OF_MATRIX.get(plan.matrix) if plan.rgb_source else tags.space
    if converted_here:
        space = space or _SPACE_OF_MATRIX.get(plan.matrix)
        tags = replace(tags, range=tags.range or plan.range)
    elif plan.range == "pc" and not plan.rgb_source:
        # full range by its pix_fmt (yuvj*) without a range tag: the planes keep their full-range codes
        tags = replace(tags, range="pc")
    if (
        codec in RANGE_BESIDE_DESCRIPTION
        and tags.range == "tv"
        and not (space or tags.transfer or tags.primaries)
    ):
        # the matrix players assume for this size (the one converted with), as the RGB path's zscale marks it
        space = _SPACE_OF_MATRIX.get(plan.matrix)
    return replace(tags, space=space)


def encoder_tag_args(plan: ColourPlan, *, converted_here: bool = False, codec: str = "") -> list[str]:
    """ffmpeg output options that carry :func:`output_tags` to a YUV output."""
    tags = output_tags(plan, converted_here=converted_here, codec=codec)
    args: list[str] = []
    for flag, value in (
        ("-color_range", tags.range),
        ("-colorspace", tags.space),
        ("-color_trc", _TRC_OPTION.get(tags.transfer or "", tags.transfer)),
        ("-color_primaries", tags.primaries),
    ):
        if value:
            args += [flag, value]
    return args


# (Kr, Kb) of each swscale matrix name plan_colour gives: what the preview and the in-process
# conversion (batch.media.yuv_rgb) compute with, the same matrix the filters below use
KR_KB = {
    "bt709": (0.2126, 0.0722),
    "smpte170m": (0.299, 0.114),
    "bt470": (0.299, 0.114),
    "fcc": (0.30, 0.11),
    "smpte240m": (0.212, 0.087),
    "bt2020": (0.2627, 0.0593),
}

# swscale matrix names -> zscale's numbers for the same matrix (its names differ between builds)
_ZSCALE_MATRIX = {"bt709": 1, "fcc": 4, "bt470": 5, "smpte170m": 6, "smpte240m": 7, "bt2020": 9}
_ZSCALE_RANGE = {"tv": "limited", "pc": "full"}


# packed RGB (how frames travel) -> the planar RGB zscale reads and writes, same depth and alpha
_PLANAR_RGB = {"rgb24": "gbrp", "rgba": "gbrap", "rgb48le": "gbrp16le", "rgba64le": "gbrap16le"}


def rgb_conversion(
    plan: ColourPlan, *, to_rgb: bool, yuv_pix_fmt: str = "yuv420p", rgb_pix_fmt: str = "rgb24"
) -> str:
    """The filter chain between the video's YUV and the stages' packed RGB, one rule both ways.

    ``to_rgb``: the reader's direction (decoded YUV -> ``rgb_pix_fmt``), else the writer's
    (``rgb_pix_fmt`` -> ``yuv_pix_fmt``). ``rgb_pix_fmt`` is the pixel plan's transport:
    ``rgb24``/``rgba``, or ``rgb48le``/``rgba64le`` (16 bits) for a source above 8 bits
    encoded above 8 bits; alpha travels through zscale as its own plane. zimg (ffmpeg's
    ``zscale``), bicubic chroma, no dither: on a smooth source the yuv420p -> RGB -> yuv420p
    round trip is exact (luma max error 0, chroma 1, or 2 where zimg's SIMD path for the CPU
    rounds differently) and 2-3x faster than swscale's ``accurate_rnd``, which is needed
    for the same exactness (docs/benchmarks.md). A source without a YUV matrix (``gbrp``
    masters) is only repacked. The reader, the writer, the
    direct transcode and the preview ask this.
    """
    planar = _PLANAR_RGB[rgb_pix_fmt]
    matrix = _ZSCALE_MATRIX.get(plan.matrix, 1)
    zrange = _ZSCALE_RANGE.get(plan.range, "limited")
    how = "filter=bicubic:dither=none"
    if to_rgb:
        if plan.rgb_source:
            return f"format={rgb_pix_fmt}"
        return f"zscale=matrixin={matrix}:rangein={zrange}:{how},format={planar},format={rgb_pix_fmt}"
    return f"format={planar},zscale=matrix={matrix}:range={zrange}:{how},format={yuv_pix_fmt}"
