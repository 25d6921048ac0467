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
from batch.media.preview import ROW_HEIGHT, Files, PreviewTap, make_preview, pick_rows, thumbnail
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
    with Image.open(dest) as im:  # three columns: before, made, after
        assert im.width >= 3 * (32 * ROW_HEIGHT // 18) and im.height > len(rows) * ROW_HEIGHT


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
