"""Every audio codec the MP4 output copies goes through, with and without stages.

ffmpeg 5.1 refuses FLAC in MP4 unless it is allowed as "experimental": a Matroska source with
FLAC audio (common) failed every job as "ffmpeg failed: the input may be damaged" (found by an
outside review). The copied audio must come out packet for packet, as ffmpeg's own copy keeps it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from batch.config import parse_config
from batch.job.pipeline import run_pipeline
from batch.media.encoder import choose_encoder
from batch.media.probe import probe

pytestmark = pytest.mark.integration

CODECS = {"flac": "flac", "alac": "alac", "opus": "libopus", "mp3": "libmp3lame", "ac3": "ac3", "aac": "aac"}


def source(path: Path, encoder: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=64x48:r=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1",
         "-frames:v", "25", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", encoder,
         "-shortest", str(path)],
        check=True,
    )  # fmt: skip
    return path


def audio_packets(path: Path) -> tuple[str, int]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a:0", "-count_packets",
         "-show_entries", "stream=codec_name,nb_read_packets", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    stream = json.loads(out)["streams"][0]
    return stream["codec_name"], int(stream["nb_read_packets"])


def plain_copy(src: Path, dest: Path) -> Path:
    """What ffmpeg's own stream copy into MP4 keeps (its muxer leaves out a partial last ALAC packet)."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(src), "-map", "0:a", "-c", "copy",
         "-strict", "experimental", str(dest)],
        check=True,
    )  # fmt: skip
    return dest


@pytest.mark.parametrize(
    "stages", ["[]", "[{interpolate: {factor: 2, ladder: [blend]}}]"], ids=["direct", "stages"]
)
@pytest.mark.parametrize("codec", sorted(CODECS))
def test_audio_is_copied_into_mp4(codec: str, stages: str, tmp_path: Path) -> None:
    src = source(tmp_path / f"src-{codec}.mkv", CODECS[codec])
    cfg = parse_config(
        f"inputs: [x]\noutput: out/\nstages: {stages}\nencode: {{codec: libx264, preset: ultrafast}}"
    )
    dest = tmp_path / "out.mp4"
    result = run_pipeline(cfg, src, dest, choose_encoder(cfg.encode))
    assert audio_packets(dest) == audio_packets(plain_copy(src, tmp_path / "plain.mp4"))
    assert probe(dest).audio[0].codec == codec
    assert result.frames_out == (25 if stages == "[]" else 50)  # x2 keeps the duration: 2N frames


def audio_md5(path: Path, stream: int) -> str:
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", f"0:a:{stream}", "-c", "copy", "-f", "md5", "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return out.strip()


@pytest.mark.parametrize(
    "stages", ["[]", "[{interpolate: {factor: 2, ladder: [blend]}}]"], ids=["direct", "stages"]
)
def test_a_track_mp4_cannot_hold_does_not_make_the_others_lossy(stages: str, tmp_path: Path) -> None:
    """An AAC track beside a PCM one (a camera's MOV): the AAC is copied bit for bit, the PCM made
    AAC, and the manifest's notes say so (outside review: both were re-encoded, without a word)."""
    src = tmp_path / "two.mov"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=64x48:r=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1",
         "-f", "lavfi", "-i", "sine=frequency=880:sample_rate=48000:duration=1",
         "-map", "0", "-map", "1", "-map", "2", "-frames:v", "25", "-c:v", "libx264", "-preset", "ultrafast",
         "-c:a:0", "aac", "-c:a:1", "pcm_s16le", "-shortest", str(src)],
        check=True,
    )  # fmt: skip
    cfg = parse_config(
        f"inputs: [x]\noutput: out/\nstages: {stages}\nencode: {{codec: libx264, preset: ultrafast}}"
    )
    dest = tmp_path / "out.mp4"
    result = run_pipeline(cfg, src, dest, choose_encoder(cfg.encode))
    assert [a.codec for a in probe(dest).audio] == ["aac", "aac"]
    assert audio_md5(dest, 0) == audio_md5(src, 0)
    assert any("audio stream 2 (pcm_s16le) re-encoded as AAC" in n for n in result.notes), result.notes
