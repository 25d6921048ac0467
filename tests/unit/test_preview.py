"""The preview: which frames each row shows, their colours, and the grid, from frames in memory."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from batch.media.colour import ColourPlan
from batch.media.layout import RGB, YUV420, FrameLayout
from batch.media.preview import (
    CROP,
    ROW_HEIGHT,
    Files,
    PreviewTap,
    crop_boxes,
    make_preview,
    pick_rows,
    thumbnail,
)
from batch.media.probe import ColorInfo

BT709_TV = ColourPlan(matrix="bt709", range="tv", tags=ColorInfo())


@given(
    frames_in=st.integers(1, 5000),
    ratio=st.sampled_from([Fraction(1), Fraction(2), Fraction(3), Fraction(5, 2), Fraction(60000, 30030),
                           Fraction(1, 2)]),
)  # fmt: skip
def test_rows_stay_inside_both_videos_and_show_made_frames(frames_in: int, ratio: Fraction) -> None:
    frames_out = max(1, -(-frames_in * ratio.numerator // ratio.denominator))  # ceil(N x ratio)
    rows = pick_rows(frames_in, frames_out, ratio)
    assert 1 <= len(rows) <= 3 and len(set(rows)) == len(rows)
    for r in rows:
        assert 0 <= r.output < frames_out and all(0 <= i < frames_in for i in r.source)
        if ratio == 1:
            assert r.source == (r.output,)
            continue
        pos = r.output / ratio
        if len(r.source) == 2:  # a made frame between its two neighbours
            before, after = r.source
            assert before < pos < after == before + 1
        else:  # at a source instant, or past the last source frame (the held tail)
            assert pos == r.source[0] or r.source[0] == frames_in - 1


def test_a_2x_row_never_shows_a_copied_source_frame() -> None:
    rows = pick_rows(300, 600, Fraction(2))
    assert [r.output % 2 for r in rows] == [1, 1, 1]
    assert rows[0].source == (rows[0].output // 2, rows[0].output // 2 + 1)


def test_nothing_to_show_for_an_empty_video() -> None:
    assert pick_rows(0, 0, Fraction(1)) == [] and pick_rows(5, 0, Fraction(2)) == []


def _ffmpeg_yuv(tmp_path: Path, rgb: tuple[int, int, int], w: int = 64, h: int = 36) -> np.ndarray:
    """A flat yuv420p frame ffmpeg made from an RGB colour with BT.709 tv range (the oracle)."""
    src = tmp_path / "c.rgb"
    src.write_bytes(bytes(rgb) * (w * h))
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-i", str(src),
         "-vf", "scale=out_color_matrix=bt709:out_range=tv", "-pix_fmt", "yuv420p", "-f", "rawvideo", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(out, np.uint8)


@pytest.mark.parametrize(
    "rgb", [(200, 30, 40), (20, 180, 60), (30, 40, 220), (128, 128, 128), (250, 250, 10)]
)
def test_thumbnail_colours_match_ffmpegs_conversion(tmp_path: Path, rgb: tuple[int, int, int]) -> None:
    frame = _ffmpeg_yuv(tmp_path, rgb)
    im = thumbnail(frame, FrameLayout(YUV420, 64, 36), BT709_TV, height=18)
    got = np.asarray(im).reshape(-1, 3).mean(axis=0)
    assert im.size == (32, 18)
    assert np.abs(got - np.array(rgb)).max() <= 3, (got, rgb)  # 8-bit 4:2:0 round trip


def test_thumbnail_of_an_rgb_frame_keeps_its_pixels_and_aspect() -> None:
    frame = np.zeros((40, 80, 3), np.uint8)
    frame[:, :40] = (255, 0, 0)
    im = thumbnail(frame, FrameLayout(RGB, 80, 40), BT709_TV, height=20)
    a = np.asarray(im)
    assert im.size == (40, 20) and tuple(a[10, 5]) == (255, 0, 0) and tuple(a[10, 35]) == (0, 0, 0)


def _yuv_frames(n: int, w: int = 32, h: int = 18) -> list[np.ndarray]:
    size = w * h + 2 * (w // 2) * (h // 2)
    return [np.full(size, 16 + k % 200, np.uint8) for k in range(n)]


def test_the_tap_catches_exactly_the_rows_frames_and_passes_every_frame_on(tmp_path: Path) -> None:
    rows = pick_rows(20, 40, Fraction(2))
    layout = FrameLayout(YUV420, 32, 18)
    tap = PreviewTap(rows, layout, layout, BT709_TV)
    src = _yuv_frames(20)
    assert list(tap.watch_source(iter(src))) == src
    out = _yuv_frames(40)
    # a chunk's output starting at frame 10 of the whole output, as ChunkedInput feeds it
    assert list(tap.watch_output(iter(out[10:]), 10)) == out[10:]
    assert set(tap.source_seen) == {i for r in rows for i in r.source}
    assert set(tap.output_seen) == {r.output for r in rows if r.output >= 10}
    dest = make_preview(tap, tmp_path / "p.jpg", ("source", "result"))
    assert dest is not None
    with Image.open(dest) as im:  # four columns: before, made, after, and a blend of the two
        assert im.width >= 4 * (32 * ROW_HEIGHT // 18) and im.height > len(rows) * ROW_HEIGHT


def test_frames_the_tap_missed_are_read_back_from_the_files(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x36:rate=10:duration=2",
         "-pix_fmt", "yuv420p", str(clip)],
        check=True,
    )  # fmt: skip
    layout = FrameLayout(YUV420, 64, 36)
    tap = PreviewTap(pick_rows(20, 20, Fraction(1)), layout, layout, BT709_TV)  # saw nothing: all reused
    dest = make_preview(tap, tmp_path / "p.jpg", ("a", "b"), Files(clip, clip, Fraction(10), Fraction(10)))
    assert dest is not None and len(tap.source_seen) == 3 and len(tap.output_seen) == 3
    assert make_preview(PreviewTap([], layout, layout, BT709_TV), tmp_path / "q.jpg", ("a", "b")) is None


def test_a_frame_the_tap_cannot_read_never_stops_the_frames() -> None:
    """A frame of an unexpected shape: the preview loses it, the video loses nothing."""
    layout = FrameLayout(YUV420, 32, 18)
    tap = PreviewTap(pick_rows(3, 3, Fraction(1)), layout, layout, BT709_TV)
    odd = [np.zeros(7, np.uint8), np.zeros(5, np.uint8), np.zeros(3, np.uint8)]
    assert [f.size for f in tap.watch_source(iter(odd))] == [7, 5, 3]
    assert tap.source_seen == {}


@given(
    w_in=st.integers(2, 4000).map(lambda v: v // 2 * 2 or 2),
    h_in=st.integers(2, 3000).map(lambda v: v // 2 * 2 or 2),
    scale=st.sampled_from([Fraction(1), Fraction(2), Fraction(4), Fraction(1, 2), Fraction(3, 2)]),
)
def test_the_full_size_windows_lie_inside_both_frames_on_even_pixels(
    w_in: int, h_in: int, scale: Fraction
) -> None:
    w_out, h_out = max(2, int(w_in * scale) // 2 * 2), max(2, int(h_in * scale) // 2 * 2)
    (ix, iy, iw, ih), (ox, oy, ow, oh) = crop_boxes(
        FrameLayout(YUV420, w_in, h_in), FrameLayout(YUV420, w_out, h_out)
    )
    assert ox >= 0 and ox + ow <= w_out and oy >= 0 and oy + oh <= h_out and ow <= CROP[0] and oh <= CROP[1]
    assert ix >= 0 and ix + iw <= w_in and iy >= 0 and iy + ih <= h_in
    assert all(v % 2 == 0 for v in (ix, iy, iw, ih, ox, oy, ow, oh))


def _gradient_rgb(w: int, h: int) -> np.ndarray:
    x = np.arange(w, dtype=np.uint8)[None, :].repeat(h, 0)
    y = np.arange(h, dtype=np.uint8)[:, None].repeat(w, 1)
    return np.stack([x, y, np.full((h, w), 77, np.uint8)], axis=-1)


def test_the_full_size_row_shows_the_centre_pixel_for_pixel_and_a_blend_beside_a_made_frame(
    tmp_path: Path,
) -> None:
    layout = FrameLayout(RGB, 200, 120)  # smaller than CROP: the whole frame is the window
    rows = pick_rows(10, 20, Fraction(2))
    tap = PreviewTap(rows, layout, layout, BT709_TV)
    frames = [_gradient_rgb(200, 120) for _ in range(10)]
    list(tap.watch_source(iter(frames)))
    list(tap.watch_output(iter([_gradient_rgb(200, 120) for _ in range(20)])))
    middle = tap.crop_row
    assert middle is not None and set(tap.source_crops) == set(middle.source)
    crop = np.asarray(tap.output_crops[middle.output])
    assert crop.shape == (120, 200, 3) and np.array_equal(crop, frames[0])  # no resampling
    dest = make_preview(tap, tmp_path / "p.jpg", ("source", "result"))
    assert dest is not None
    with Image.open(dest) as im:  # the thumbnail rows, then a caption and the 120-pixel full-size row
        assert im.height > len(rows) * ROW_HEIGHT + 120


def test_a_size_change_shows_the_source_crop_enlarged_to_the_results_scale(tmp_path: Path) -> None:
    small, big = FrameLayout(RGB, 100, 60), FrameLayout(RGB, 200, 120)
    tap = PreviewTap(pick_rows(3, 3, Fraction(1)), small, big, BT709_TV)
    list(tap.watch_source(iter([_gradient_rgb(100, 60)] * 3)))
    list(tap.watch_output(iter([_gradient_rgb(200, 120)] * 3)))
    (_, _, iw, ih), (_, _, ow, oh) = crop_boxes(small, big)
    assert (iw, ih, ow, oh) == (100, 60, 200, 120)
    assert make_preview(tap, tmp_path / "p.jpg", ("s", "r")) is not None


@pytest.mark.parametrize("offset", [0.0, 0.5])
def test_a_frame_read_back_is_the_frame_asked_for_even_when_the_video_starts_late(
    tmp_path: Path, offset: float
) -> None:
    """Frame k of the clip has luma 16 + 8k; a seek to its own time would return k + 1."""
    from batch.media.probe import probe

    ramp, clip = tmp_path / "ramp.mp4", tmp_path / "late.mp4"
    graph = "nullsrc=s=64x36:r=10:d=2,geq=lum='16+8*N':cb=128:cr=128"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", graph, "-c:v", "libx264", "-qp", "0",
         "-pix_fmt", "yuv420p", str(ramp)],
        check=True,
    )  # fmt: skip
    subprocess.run(  # the video starts ``offset`` after the audio, as in edited camera files
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "anullsrc=d=3", "-itsoffset", str(offset),
         "-i", str(ramp), "-map", "1:v", "-map", "0:a", "-c:v", "copy", "-c:a", "aac", str(clip)],
        check=True,
    )  # fmt: skip
    info = probe(clip)
    assert abs(info.start_s - offset) < 0.05
    layout = FrameLayout(YUV420, 64, 36)
    tap = PreviewTap(pick_rows(20, 20, Fraction(1)), layout, layout, BT709_TV)
    files = Files(clip, clip, Fraction(10), Fraction(10), start_s=info.start_s)
    assert make_preview(tap, tmp_path / "p.jpg", ("a", "b"), files) is not None
    for k, im in tap.source_seen.items():
        luma = 16 + 8 * k
        expected = (luma - 16) * 255 / 219  # tv range grey as RGB
        assert abs(np.asarray(im, np.float32).mean() - expected) < 4, (k, np.asarray(im).mean(), expected)
