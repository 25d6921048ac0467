"""Pixel format facts, frame layouts and the per-input pixel plan: hostile inputs first.

Oracles are real where they can be: ffmpeg's own list of pixel formats (component counts) and
the byte size of a raw frame ffmpeg writes. The plan is checked on made-up MediaInfo values
(no decoding needed: it only reads names and tags).
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch.config import ConfigError, EncodeConfig, parse_config
from batch.encoder_formats import ENCODER_PIX_FMTS, PIX_FMT_CHOICES, unsupported
from batch.media import pixel_plan
from batch.media.colour import plan_colour
from batch.media.encoder import EncoderChoice
from batch.media.layout import PACKED, FrameLayout, to_8bit
from batch.media.pixel_plan import master_display, plan_pixels
from batch.media.pixfmt import pix_facts, planar_yuv
from batch.media.probe import ColorInfo, HdrMeta, MediaInfo
from batch.media.writer import OutputSpec, build_command, encoder_args, pad_sizes

MASTERING = (
    ("red_x", "34000/50000"), ("red_y", "16000/50000"), ("green_x", "13250/50000"),
    ("green_y", "34500/50000"), ("blue_x", "7500/50000"), ("blue_y", "3000/50000"),
    ("white_point_x", "15635/50000"), ("white_point_y", "16450/50000"),
    ("min_luminance", "1/10000"), ("max_luminance", "10000000/10000"),
)  # fmt: skip


def info(pix_fmt: str, *, w: int = 64, h: int = 48, transfer: str | None = None, hdr: HdrMeta | None = None):
    return MediaInfo(
        path="x.mkv", container="matroska", codec="x", width=w, height=h, fps=Fraction(25),
        frame_count=5, duration=0.2, pix_fmt=pix_fmt,
        color=ColorInfo(transfer=transfer, primaries="bt2020" if transfer else None),
        hdr=hdr or HdrMeta(),
    )  # fmt: skip


def enc(**kw: object) -> EncodeConfig:
    return EncodeConfig.parse(kw)


def plan(src_fmt: str, codec: str, *, needs_rgb: bool = False, model: bool = False, **kw: object):
    container = {"ffv1": "mkv", "prores_ks": "mov"}.get(codec, kw.pop("container", "mp4"))
    cfg = enc(codec=codec, container=container, **kw)
    return plan_pixels(info(src_fmt), cfg, codec, needs_rgb=needs_rgb, model_stage=model)


# --- pixel format names -----------------------------------------------------------------


def _ffmpeg_formats() -> dict[str, int]:
    """name -> component count, from ``ffmpeg -pix_fmts``."""
    out = subprocess.run(["ffmpeg", "-hide_banner", "-pix_fmts"], capture_output=True, text=True).stdout
    rows = [line.split() for line in out.splitlines()[8:] if len(line.split()) >= 4]
    return {r[1]: int(r[2]) for r in rows if r[2].isdigit()}


def test_every_format_ffmpeg_lists_parses_to_facts_that_agree_with_its_component_count() -> None:
    formats = _ffmpeg_formats()
    assert len(formats) > 150
    known = 0
    for name, components in formats.items():
        try:
            f = pix_facts(name)
        except ValueError as e:
            assert name in str(e)
            continue
        known += 1
        if name in ("pal8", "rgb0", "bgr0", "0rgb", "0bgr", "vuyx") or "x2" in name or name.startswith("xv3"):
            continue  # padding bytes or a palette: ffmpeg counts them its own way
        colour = 1 if f.family == "gray" else 3
        assert components == colour + f.alpha, name
    assert known > 120


@given(st.text(max_size=20))
def test_any_text_is_facts_or_a_value_error_naming_it(name: str) -> None:
    try:
        pix_facts(name)
    except ValueError as e:
        assert repr(name) in str(e)


@given(st.sampled_from(["420", "422", "444"]), st.sampled_from([8, 9, 10, 12, 14, 16]), st.booleans())
def test_planar_names_round_trip(chroma: str, depth: int, alpha: bool) -> None:
    f = pix_facts(planar_yuv(chroma, depth, alpha))
    assert (f.family, f.chroma, f.depth, f.alpha) == ("yuv", chroma, depth, alpha)


# --- frame layouts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "pix_fmt", [*PACKED, "yuv420p", "yuv422p10le", "yuv444p12le", "yuva444p10le", "yuva420p", "yuv420p16le"]
)
@pytest.mark.parametrize(("w", "h"), [(64, 48), (7, 5), (1, 1)])
def test_a_layout_holds_exactly_the_bytes_ffmpeg_writes(pix_fmt: str, w: int, h: int) -> None:
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=8x6:d=0.04", "-vf", f"scale={w}:{h}",
         "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", pix_fmt, "pipe:1"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    layout = FrameLayout(pix_fmt, w, h)
    assert len(raw) == layout.frame_bytes
    frame = np.frombuffer(raw, layout.dtype).reshape(layout.shape)
    if not layout.packed:
        assert sum(p.size for p in layout.split(frame)) == frame.size


@given(st.integers(0, 65535), st.sampled_from([255, 1023, 4095, 65535]))
def test_to_8bit_keeps_black_and_white_and_order(value: int, top: int) -> None:
    v = min(value, top)
    out = to_8bit(np.array([0, v, top], np.uint16), top)
    assert out[0] == 0 and out[2] == 255 and out[0] <= out[1] <= out[2]


# --- the plan ---------------------------------------------------------------------------


def test_a_10_bit_source_stays_10_bit_through_libx265_as_planes_or_rgb48() -> None:
    p = plan("yuv420p10le", "libx265")
    assert (p.transport, p.output, p.steps) == ("yuv420p10le", "yuv420p10le", ())
    assert plan("yuv420p10le", "libx265", needs_rgb=True).transport == "rgb48le"


DEVICE_CASES = ["yuv420p", "yuv420p10le", "yuv420p12le", "yuv422p10le", "yuv444p", "yuvj420p", "rgb24"]


@pytest.mark.parametrize("src", DEVICE_CASES)
@pytest.mark.parametrize(("codec", "pix_fmt"), [("libx264", "source"), ("libx265", "source"),
                                                ("ffv1", "source"), ("libx265", "yuv420p")])  # fmt: skip
def test_colour_goes_to_the_device_only_for_the_same_8_or_10_bit_420_in_and_out(
    src: str, codec: str, pix_fmt: str
) -> None:
    """A model stage that can convert on its device gets 4:2:0 planes exactly when the source and the
    output are the same 8- or 10-bit 4:2:0 format (full-range yuvj420p as yuv420p planes, its codes
    kept); otherwise RGB crosses the pipes, with the reason."""
    container = "mkv" if codec == "ffv1" else "mp4"
    cfg = enc(codec=codec, container=container, pix_fmt=pix_fmt)
    p = plan_pixels(info(src), cfg, codec, needs_rgb=True, model_stage=True, rgb_on_device=True)
    planes = src.replace("yuvj", "yuv")
    expected = p.output == planes and planes in ("yuv420p", "yuv420p10le")
    assert p.colour_on_device is expected, (p.output, p.notes)
    if expected:
        assert p.transport == planes
        assert any(f"device: {planes} frames" in n for n in p.notes)
    else:
        assert p.transport in PACKED
        assert any("on the device only 4:2:0 of 8 or 10 bits" in n for n in p.notes)
    # odd sizes and chroma not sited left never go to the device
    odd = plan_pixels(info(src, w=63), cfg, codec, needs_rgb=True, model_stage=True, rgb_on_device=True)
    assert not odd.colour_on_device


def test_the_in_process_conversion_note_only_where_the_reader_converts() -> None:
    """An even 4:1:1 DV frame and an even 4:4:0 one are converted by ffmpeg: no note says otherwise;
    an odd 4:2:0 frame is converted in-process, and the device path says why it was not used."""
    for pix_fmt, w, h in [("yuv411p", 720, 480), ("yuv440p", 96, 64), ("yuv420p", 96, 64)]:
        p = plan_pixels(
            info(pix_fmt, w=w, h=h),
            enc(codec="ffv1", container="mkv"),
            "ffv1",
            needs_rgb=True,
            model_stage=False,
        )
        assert not any("in this process" in n for n in p.notes), (pix_fmt, p.notes)
    odd = plan_pixels(
        info("yuv420p", w=97, h=63), enc(), "libx264", needs_rgb=True, model_stage=True, rgb_on_device=True
    )
    assert any("97x63 yuv420p: converted to RGB in this process" in n for n in odd.notes)
    assert any("not converted on the device: 97x63 is an odd size" in n for n in odd.notes)
    assert not any("colour converted by ffmpeg" in n for n in odd.notes)


def test_an_8_bit_nvenc_steps_down_and_names_the_fix() -> None:
    p = plan("yuv422p10le", "h264_nvenc", needs_rgb=True)
    assert p.output == "yuv444p" and p.transport == "rgb24"  # 4:2:2 held as 4:4:4; 8-bit frames suffice
    (step,) = p.steps
    assert step["what"] == "bit depth" and (step["from"], step["to"]) == ("10", "8")
    assert "set encode.codec: libx265" in step["why"]


def test_hevc_nvenc_writes_10_bit_as_p010_with_main10() -> None:
    p = plan("yuv420p10le", "hevc_nvenc")
    assert (p.output, p.encoder_pix_fmt, p.extra_args) == ("yuv420p10le", "p010le", ("-profile:v", "main10"))
    assert plan("yuv444p10le", "hevc_nvenc").extra_args == ("-profile:v", "rext")


def test_rgb_sources_keep_full_chroma_or_stay_rgb_in_ffv1() -> None:
    assert plan("bgr0", "libx264").output == "yuv444p"
    assert plan("rgb48le", "libx265").output == "yuv444p12le"  # 16-bit RGB: the most libx265 holds
    assert plan("rgb48le", "libx265").steps[0]["what"] == "bit depth"
    ffv1 = plan("bgr0", "ffv1")
    assert (ffv1.output, ffv1.encoder_pix_fmt, ffv1.output_rgb) == ("gbrp", "bgr0", True)


def test_a_libx264_built_without_10_bit_steps_down_and_an_explicit_ask_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pixel_plan, "ffmpeg_pix_fmts", lambda codec: frozenset({"yuv420p", "yuv444p"}))
    p = plan("yuv420p10le", "libx264")
    assert p.output == "yuv420p" and p.steps[0]["what"] == "bit depth"
    with pytest.raises(ConfigError, match="cannot write it") as e:
        plan("yuv420p10le", "libx264", pix_fmt="yuv420p10le")
    assert "libx265" in (e.value.hint or "")


@pytest.mark.parametrize(
    ("codec", "container", "model", "kept", "why"),
    [
        ("ffv1", "mkv", False, True, ""),
        ("prores_ks", "mov", False, True, ""),
        ("libvpx-vp9", "mkv", False, True, ""),
        ("libvpx-vp9", "mp4", False, False, "only in container: mkv"),
        ("libx264", "mp4", False, False, "libx264 cannot carry alpha"),
        ("ffv1", "mkv", True, False, "a model stage"),
    ],
)
def test_alpha_is_kept_or_flattened_with_the_reason(
    codec: str, container: str, model: bool, kept: bool, why: str
) -> None:
    p = plan("yuva444p10le", codec, model=model, container=container)
    assert p.alpha == ("kept" if kept else "flattened")
    assert p.output_facts.alpha == kept
    if kept:
        assert not p.steps or all(s["what"] != "alpha" for s in p.steps)
    else:
        step = next(s for s in p.steps if s["what"] == "alpha")
        assert why in step["why"] and step["to"] == "flattened against black"
        assert "a" not in p.transport.removeprefix("rgb")[:1]  # frames travel without alpha


def test_an_explicit_pix_fmt_without_alpha_flattens_and_says_so() -> None:
    p = plan("argb", "ffv1", pix_fmt="gbrp")
    assert p.alpha == "flattened" and "encode.pix_fmt gbrp has no alpha" in p.steps[0]["why"]


def test_hdr_metadata_goes_to_x265_and_is_recorded_missing_elsewhere() -> None:
    hdr = HdrMeta(MASTERING, 1000, 400)
    src = info("yuv420p10le", transfer="smpte2084", hdr=hdr)
    p = plan_pixels(src, enc(codec="libx265"), "libx265", needs_rgb=False, model_stage=False)
    assert p.x265_params == (
        "master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)",
        "max-cll=1000,400",
    )
    q = plan_pixels(
        src, enc(codec="libx264", pix_fmt="yuv420p"), "libx264", needs_rgb=False, model_stage=False
    )
    assert q.x265_params == () and {s["what"] for s in q.steps} == {"bit depth", "hdr metadata"}
    assert any("expect banding" in n for n in q.notes)


def test_master_display_of_nothing_is_none() -> None:
    assert master_display(HdrMeta()) is None


def test_the_x265_params_join_the_encoder_s_own() -> None:
    hdr = HdrMeta(MASTERING, 1000, 400)
    src = info("yuv420p10le", transfer="smpte2084", hdr=hdr)
    cfg = enc(codec="libx265")
    pixels = plan_pixels(src, cfg, "libx265", needs_rgb=False, model_stage=False)
    encoder = EncoderChoice(
        "libx265", "yuv420p", ["-c:v", "libx265", "-x265-params", "log-level=error"], "libx265"
    )
    spec = OutputSpec(
        path=Path("o.mp4"), width=64, height=48, fps=Fraction(25), container="mp4", encoder=encoder,
        colour=plan_colour(src.color, 48, src.pix_fmt), pix_fmt=pixels.transport, pixels=pixels,
    )  # fmt: skip
    args = encoder_args(spec)
    assert args.count("-x265-params") == 1
    assert args[args.index("-x265-params") + 1].startswith("log-level=error:master-display=G(")
    cmd = build_command(spec)
    assert "format=yuv420p10le" in cmd[cmd.index("-vf") + 1]


@pytest.mark.parametrize(
    ("out_fmt", "size", "pads"),
    [("yuv420p", (97, 63), (1, 1)), ("yuv422p", (97, 63), (1, 0)), ("yuv411p", (98, 63), (2, 0)),
     ("yuv410p", (97, 66), (3, 2)), ("yuv444p", (97, 63), (0, 0)), ("yuv420p", (96, 64), (0, 0))],
)  # fmt: skip
def test_a_subsampled_output_is_padded_to_whole_chroma_blocks(
    out_fmt: str, size: tuple[int, int], pads: tuple[int, int]
) -> None:
    """Even sides at 4:2:0; a width that is a multiple of 4 at 4:1:1 (one pixel was not enough there:
    zscale still refused the frame)."""
    w, h = size
    encoder = EncoderChoice("ffv1", out_fmt, ["-c:v", "ffv1"], "ffv1")
    spec = OutputSpec(
        path=Path("o.mkv"), width=w, height=h, fps=Fraction(25), container="mkv", encoder=encoder,
        colour=plan_colour(ColorInfo(), h, out_fmt), pix_fmt="rgb24",
    )  # fmt: skip
    assert pad_sizes(spec) == pads
    filters = build_command(spec)[build_command(spec).index("-vf") + 1]
    assert (f"pad={w + pads[0]}:{h + pads[1]}:0:0" in filters) == any(pads)


def test_odd_sized_subsampled_sources_travel_as_rgb_and_unknown_formats_as_8_bit() -> None:
    odd = plan_pixels(
        info("yuv420p", w=63, h=47), enc(codec="libx264"), "libx264", needs_rgb=False, model_stage=False
    )
    assert odd.transport == "rgb24"
    strange = plan("bayer_rggb8", "libx264")
    assert strange.output == "yuv420p" and any("not one this runner knows" in n for n in strange.notes)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(ENCODER_PIX_FMTS)), st.sampled_from(PIX_FMT_CHOICES))
def test_the_config_accepts_a_codec_and_pix_fmt_exactly_when_the_table_does(codec: str, pix_fmt: str) -> None:
    container = {"ffv1": "mkv", "prores_ks": "mov"}.get(codec, "mkv")
    text = (
        f"inputs: [x]\noutput: out/\nencode: {{codec: {codec}, pix_fmt: {pix_fmt}, container: {container}}}"
    )
    if unsupported(codec, pix_fmt) is None:
        assert parse_config(text).encode.pix_fmt == pix_fmt
    else:
        with pytest.raises(ConfigError, match=r"set encode\.codec"):
            parse_config(text)


@pytest.mark.parametrize("codec", ["libx264", "libx265", "libvpx-vp9"])
def test_an_8_bit_420_job_does_not_ask_ffmpeg_what_the_encoder_holds(
    monkeypatch: pytest.MonkeyPatch, codec: str
) -> None:
    asked: list[str] = []
    monkeypatch.setattr(pixel_plan, "ffmpeg_pix_fmts", lambda c: asked.append(c) or frozenset({"yuv420p"}))
    container = "mkv" if codec == "libvpx-vp9" else "mp4"
    same = plan("yuv420p", codec, container=container)
    assert same.output == same.encoder_pix_fmt == "yuv420p" and not same.steps
    asked_for = plan("yuv420p10le", codec, container=container, pix_fmt="yuv420p")
    assert asked_for.output == "yuv420p" and asked_for.steps[0]["why"] == "encode.pix_fmt is yuv420p"
    assert asked == []  # ~0.1 s of ffmpeg start-up saved
    # anything else still asks: a build without high depths steps a 10-bit source down, with the reason
    p = plan("yuv420p10le", codec, container=container)
    assert asked == [codec] and p.output == "yuv420p" and p.steps[0]["what"] == "bit depth"
    plan("yuva420p", codec, container=container)
    assert asked == [codec, codec]


def test_the_route_names_a_range_rule_only_where_one_shapes_the_frames() -> None:
    """The fingerprints take ``route``: an output made before full range was squeezed for ProRes, or
    rescaled by zimg to another depth, is made again; every other route stays as it was (no output
    made before is remade for nothing)."""
    full_10 = replace(info("yuv420p10le"), color=ColorInfo(range="pc"))
    cfg = enc(codec="prores_ks", container="mov")
    prores = plan_pixels(info("yuvj422p"), cfg, "prores_ks", needs_rgb=False, model_stage=False)
    assert prores.limited_range and prores.route == f"{prores.output}/{prores.transport}/limited"
    assert any(s["what"] == "range" and s["to"] == "limited" for s in prores.steps)
    eight = enc(codec="libx264", pix_fmt="yuv420p")
    rescaled = plan_pixels(full_10, eight, "libx264", needs_rgb=False, model_stage=False)
    assert rescaled.route == "yuv420p/yuv420p10le/full-range depth"
    same_depth = plan_pixels(
        full_10, enc(codec="ffv1", container="mkv"), "ffv1", needs_rgb=False, model_stage=False
    )
    assert same_depth.route == "yuv420p10le/yuv420p10le" and not same_depth.limited_range
    limited = plan_pixels(info("yuv422p10le"), cfg, "prores_ks", needs_rgb=False, model_stage=False)
    assert limited.route == "yuv422p10le/yuv422p10le" and not limited.steps


@pytest.mark.parametrize(
    ("src_fmt", "codec", "size", "frames"),
    [
        ("yuv420p", "libx264", (128, 96), "yuv420p"),
        ("yuv420p", "libx264", (97, 96), "rgb24"),  # odd width: 4:2:0 chroma cannot be halved
        ("yuv420p", "libx264", (128, 73), "rgb24"),  # odd height
        ("yuv422p", "ffv1", (128, 73), "yuv422p"),  # 4:2:2 halves only the width
        ("yuv422p", "ffv1", (97, 96), "rgb24"),
        ("yuv444p", "ffv1", (97, 73), "yuv444p"),  # nothing subsampled: any size
        ("yuv420p10le", "libx265", (97, 96), "rgb48le"),
        ("yuva420p", "ffv1", (128, 96), "rgba"),  # alpha kept: resized premultiplied, in RGB
    ],
)
def test_a_resize_keeps_planes_only_where_they_hold_the_new_size(
    src_fmt: str, codec: str, size: tuple[int, int], frames: str
) -> None:
    cfg = enc(codec=codec, container="mkv" if codec == "ffv1" else "mp4")
    resized = plan_pixels(info(src_fmt), cfg, codec, needs_rgb=False, model_stage=False, resized_to=(size,))
    assert resized.transport == frames
    said = [n for n in resized.notes if n.startswith("frames travel as RGB")]
    assert bool(said) == (frames in PACKED), resized.notes
    # without the resize, the same source's planes travel (64x48 fits every chroma)
    same = plan_pixels(info(src_fmt), cfg, codec, needs_rgb=False, model_stage=False)
    assert same.transport == planar_yuv(
        *[getattr(pix_facts(src_fmt), a) for a in ("chroma", "depth", "alpha")]
    )
    # the route names the planes' own resize (a rule earlier code did not have: its parts are redone)
    assert resized.route == (f"{same.route}/planes resized" if frames not in PACKED else resized.route)
    assert ("planes resized" in resized.route) == (frames not in PACKED)


def test_a_size_on_the_way_that_planes_cannot_hold_sends_rgb_even_if_the_last_one_fits() -> None:
    """An upscale to 99x75 then a crop back to 96x72: 4:2:0 planes of 99x75 would carry chroma of the
    wrong geometry between the two stages."""
    cfg = enc(codec="libx264", container="mp4")
    chain = plan_pixels(
        info("yuv420p"), cfg, "libx264", needs_rgb=False, model_stage=False, resized_to=((99, 75), (96, 72))
    )
    assert chain.transport == "rgb24" and any("99x75" in n for n in chain.notes), chain.notes
    even = plan_pixels(
        info("yuv420p"), cfg, "libx264", needs_rgb=False, model_stage=False, resized_to=((98, 74), (96, 72))
    )
    assert even.transport == "yuv420p"


@pytest.mark.parametrize(
    ("src_fmt", "siting", "codec", "container", "pix_fmt", "frames"),
    [
        ("yuv420p", "topleft", "libx265", "mp4", "source", "yuv420p"),  # HEVC's VUI holds every 4:2:0 siting
        ("yuv420p", "bottom", "libx264", "mkv", "source", "yuv420p"),
        ("yuv420p", "center", "ffv1", "mkv", "source", "yuv420p"),  # Matroska: left, center, topleft, top
        ("yuv420p", "bottom", "ffv1", "mkv", "source", "rgb24"),
        ("yuv420p", "topleft", "prores_ks", "mov", "source", "rgb24"),  # 4:2:2 out, and no siting field
        ("yuv420p", "topleft", "ffv1", "mkv", "yuv444p", "rgb24"),  # the writer's upsampling would re-site
        ("yuv422p", "center", "libx264", "mp4", "source", "rgb24"),  # H.264 sites 4:2:0 only
        ("yuv422p", "center", "ffv1", "mkv", "source", "yuv422p"),
        ("yuv420p", "left", "prores_ks", "mov", "source", "yuv420p"),  # left: what every reader assumes
    ],
)
def test_planes_resized_keep_a_siting_only_where_the_output_can_say_it(
    src_fmt: str, siting: str, codec: str, container: str, pix_fmt: str, frames: str
) -> None:
    src = replace(info(src_fmt), chroma_location=siting)
    cfg = enc(codec=codec, container=container, pix_fmt=pix_fmt)
    resized = plan_pixels(src, cfg, codec, needs_rgb=False, model_stage=False, resized_to=((128, 96),))
    assert resized.transport == frames
    if frames in PACKED:
        assert any(f"sited {siting}" in n and "cannot record" in n for n in resized.notes), resized.notes
        assert resized.chroma_location is None
    else:
        assert resized.chroma_location == (None if siting == "left" else siting)


@pytest.mark.parametrize(
    ("src_fmt", "siting", "frames", "tagged"),
    [
        ("yuvj444p", "center", "yuv444p", None),  # MJPEG 4:4:4 says centre: nothing is subsampled
        ("yuv422p10le", "topleft", "yuv422p10le", None),  # 4:2:2's top-left is left
        ("yuv422p", "top", "rgb24", None),  # 4:2:2's top is centre, which H.264/HEVC cannot record at 4:2:2
        ("yuv420p", "weird", "rgb24", None),  # a name ffmpeg does not know: not recorded, so RGB
    ],
)
def test_a_siting_counts_only_where_chroma_is_subsampled_along_it(
    src_fmt: str, siting: str, frames: str, tagged: str | None
) -> None:
    src = replace(info(src_fmt), chroma_location=siting)
    cfg = enc(codec="libx265", container="mp4")
    resized = plan_pixels(src, cfg, "libx265", needs_rgb=False, model_stage=False, resized_to=((128, 96),))
    assert resized.transport == frames and resized.chroma_location == tagged, resized.notes
