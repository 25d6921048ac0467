"""probe, reader and writer against real ffmpeg."""

import subprocess
from fractions import Fraction
from pathlib import Path

import pytest
from clips import make_clip

from batch.config import parse_config
from batch.errors import EmptyInput, NotAVideo, TruncatedVideo
from batch.job.pipeline import run_pipeline
from batch.media.encoder import choose_encoder
from batch.media.probe import probe

pytestmark = pytest.mark.integration


def test_probe_reports_rational_fps_count_audio_and_colour(clip_dir: Path) -> None:
    path = make_clip(
        clip_dir / "tagged.mp4",
        rate="30000/1001",
        frames=45,
        extra=[
            "-colorspace",
            "bt709",
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
        ],
    )
    info = probe(path)
    assert info.fps == Fraction(30000, 1001)
    assert info.frame_count == 45 and info.frame_count_source == "container"
    assert (info.width, info.height) == (320, 240)
    assert abs(info.duration - 45 * 1001 / 30000) < 0.01
    assert [a.codec for a in info.audio] == ["aac"]
    assert info.color.space == "bt709" and info.color.primaries == "bt709"
    assert not info.vfr and info.rotation == 0


def test_frames_are_counted_when_the_container_has_no_count(clip_dir: Path) -> None:
    path = make_clip(clip_dir / "nocount.mkv", frames=17, audio=False)
    info = probe(path)
    assert info.frame_count == 17
    assert info.frame_count_source == "counted"


def test_rotation_swaps_the_displayed_size(clip_dir: Path, tmp_path: Path) -> None:
    plain = make_clip(clip_dir / "unrotated.mp4", size="320x240", frames=5)
    path = tmp_path / "rotated.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(plain),
            "-c",
            "copy",
            "-metadata:s:v:0",
            "rotate=90",
            str(path),
        ],
        check=True,
    )
    info = probe(path)
    assert info.rotation in (90, 270)
    assert (info.width, info.height) == (240, 320)
    # the reader decodes upright frames, so the output is upright and untagged
    cfg = parse_config("inputs: [x]\noutput: o/\nencode: {codec: libx264, preset: ultrafast}")
    out = tmp_path / "out.mp4"
    run_pipeline(cfg, path, out, choose_encoder(cfg.encode))
    assert probe(out).rotation == 0 and (probe(out).width, probe(out).height) == (
        240,
        320,
    )


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(EmptyInput, match=r"empty\.mp4 is empty"):
        probe(path)


def test_text_file_named_mp4(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 20)
    with pytest.raises(NotAVideo, match=r"notes\.mp4 could not be read as a video") as info:
        probe(path)
    assert info.value.hint and "video file" in info.value.hint
    # ffmpeg's "[mov,mp4,... @ 0x55...]" and the runner's local path stay in stderr_tail, not the message
    assert " @ 0x" not in info.value.message and str(tmp_path) not in info.value.message
    assert " @ 0x" in info.value.fields["stderr_tail"]


@pytest.mark.parametrize("fmt", ["png", "mjpeg"])
def test_still_image_named_mp4_is_not_a_video(tmp_path: Path, fmt: str) -> None:
    image = tmp_path / f"frame.{'png' if fmt == 'png' else 'jpg'}"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48", "-frames:v", "1", str(image)],
        check=True,
    )
    renamed = tmp_path / "photo.mp4"
    renamed.write_bytes(image.read_bytes())
    with pytest.raises(NotAVideo, match="still image"):
        probe(renamed)


def test_audio_only_file_is_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "tone.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=1",
            "-c:a",
            "aac",
            str(path),
        ],
        check=True,
    )
    with pytest.raises(NotAVideo, match="holds no video stream"):
        probe(path)


def test_truncated_mp4_without_its_index(small_clip: Path, tmp_path: Path) -> None:
    data = small_clip.read_bytes()  # moov at the end (no faststart)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(TruncatedVideo, match="truncated"):
        probe(cut)
