"""An ffprobe started early is used only for the same command on the same, unchanged file."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch.errors import NotAVideo
from batch.job import early_probe
from batch.media import probe as probe_module
from batch.media import probe_ahead
from batch.media.probe import probe, probe_ahead_of_time
from tests.clips import make_clip


@pytest.fixture(autouse=True)
def _nothing_left() -> Any:
    yield
    probe_ahead.discard()


@pytest.fixture
def no_fresh_ffprobe(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Records ffprobe runs started by ``probe`` itself (not the early one)."""
    fresh: list[list[str]] = []
    real = subprocess.run

    def run(cmd: list[str], *args: Any, **kwargs: Any) -> Any:
        if cmd[0] == probe_module.FFPROBE:  # the module is shared: ffmpeg runs of the tests pass here too
            fresh.append(cmd)
        return real(cmd, *args, **kwargs)

    monkeypatch.setattr(probe_module.subprocess, "run", run)
    return fresh


def test_probe_takes_the_early_answer_for_the_same_file(tmp_path: Path, no_fresh_ffprobe: list) -> None:
    clip = make_clip(tmp_path / "a.mp4", frames=12)
    expected = probe(clip)
    no_fresh_ffprobe.clear()
    assert probe_ahead_of_time(clip)
    assert probe(clip) == expected
    assert no_fresh_ffprobe == []
    probe(clip)  # an answer is given once
    assert len(no_fresh_ffprobe) == 1


def test_another_spelling_of_the_path_is_the_same_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_fresh_ffprobe: list
) -> None:
    make_clip(tmp_path / "a.mp4", frames=5)
    monkeypatch.chdir(tmp_path)
    assert probe_ahead_of_time(Path("a.mp4"))
    assert probe(tmp_path / "." / "a.mp4").frame_count == 5
    assert no_fresh_ffprobe == []


def test_a_file_replaced_after_the_early_start_is_probed_again(
    tmp_path: Path, no_fresh_ffprobe: list
) -> None:
    clip = make_clip(tmp_path / "a.mp4", frames=12)
    other = make_clip(tmp_path / "b.mp4", frames=7)
    assert probe_ahead_of_time(clip)
    os.replace(other, clip)  # a new inode under the same name
    assert probe(clip).frame_count == 7
    assert len(no_fresh_ffprobe) == 1


def test_a_file_rewritten_in_place_is_probed_again(tmp_path: Path, no_fresh_ffprobe: list) -> None:
    clip = make_clip(tmp_path / "a.mp4", frames=12)
    other = make_clip(tmp_path / "b.mp4", frames=7)
    assert probe_ahead_of_time(clip)
    shutil.copyfile(other, clip)  # same inode, new bytes and time
    assert probe(clip).frame_count == 7
    assert len(no_fresh_ffprobe) == 1


def test_same_size_and_inode_but_a_new_time_is_probed_again(tmp_path: Path, no_fresh_ffprobe: list) -> None:
    clip = make_clip(tmp_path / "a.mp4", frames=12)
    assert probe_ahead_of_time(clip)
    st_ = clip.stat()
    os.utime(clip, ns=(st_.st_atime_ns, st_.st_mtime_ns + 1_000_000))
    assert probe(clip).frame_count == 12
    assert len(no_fresh_ffprobe) == 1


def test_an_early_failure_is_the_same_error_as_a_fresh_one(tmp_path: Path, no_fresh_ffprobe: list) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 10)
    assert probe_ahead_of_time(text)
    with pytest.raises(NotAVideo, match="could not be read as a video"):
        probe(text)
    assert no_fresh_ffprobe == []


def test_nothing_starts_for_a_missing_file(tmp_path: Path) -> None:
    assert not probe_ahead_of_time(tmp_path / "missing.mp4")


def test_an_unused_guess_is_stopped_and_reaped(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "a.mp4", frames=5)
    assert probe_ahead_of_time(clip)
    started = list(probe_ahead._started.values())
    assert len(started) == 1
    probe_ahead.discard()
    assert started[0].proc.returncode is not None
    assert probe_ahead._started == {}


def test_the_same_file_started_twice_runs_one_ffprobe_and_leaks_none(
    tmp_path: Path, no_fresh_ffprobe: list
) -> None:
    """Inputs [a, a]: the early probe and the prefetch both ask; one run, taken once, none left."""
    clip = make_clip(tmp_path / "a.mp4", frames=5)
    assert probe_ahead_of_time(clip) and probe_ahead_of_time(clip)
    assert len(probe_ahead._started) == 1
    first = next(iter(probe_ahead._started.values())).proc
    assert probe(clip).frame_count == 5 and no_fresh_ffprobe == []
    assert first.returncode is not None and probe_ahead._started == {}


def test_a_file_changed_between_two_starts_replaces_the_stale_run(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "a.mp4", frames=5)
    assert probe_ahead_of_time(clip)
    stale = next(iter(probe_ahead._started.values())).proc
    make_clip(tmp_path / "b.mp4", frames=7).replace(clip)
    assert probe_ahead_of_time(clip)
    assert stale.returncode is not None  # stopped and reaped, not left running
    assert len(probe_ahead._started) == 1 and probe(clip).frame_count == 7


def test_discard_keeps_only_the_run_still_wanted(tmp_path: Path) -> None:
    """After each input the runner stops runs nobody took (an input that failed before its probe,
    a deleted file) and keeps the next input's."""
    a, b = make_clip(tmp_path / "a.mp4", frames=5), make_clip(tmp_path / "b.mp4", frames=6)
    assert probe_ahead_of_time(a) and probe_ahead_of_time(b)
    runs = {Path(s.command[-1]).name: s.proc for s in probe_ahead._started.values()}
    probe_ahead.discard(keep=tmp_path / "." / "b.mp4")  # another spelling of b
    assert runs["a.mp4"].returncode is not None and runs["b.mp4"].returncode is None
    assert len(probe_ahead._started) == 1


def test_a_symlinked_input_is_probed_at_its_target(tmp_path: Path) -> None:
    """ffprobe gets the resolved path: re-pointing the link (and back) meanwhile cannot make it read
    another file than the one whose identity was taken."""
    make_clip(tmp_path / "a.mp4", frames=5)
    link = tmp_path / "link.mp4"
    link.symlink_to(tmp_path / "a.mp4")
    assert probe_ahead_of_time(link)
    started = next(iter(probe_ahead._started.values()))
    assert started.proc.args[-1] == os.path.realpath(tmp_path / "a.mp4")
    assert probe(link).frame_count == 5


# --- the guess from the config: which input, and never an exception ---


def _config(tmp_path: Path, text: str) -> str:
    cfg = tmp_path / "job.yaml"
    cfg.write_text(text)
    return str(cfg)


def test_the_first_local_input_of_a_local_config_is_probed(tmp_path: Path, no_fresh_ffprobe: list) -> None:
    clip = make_clip(tmp_path / "a.mp4", frames=6)
    assert early_probe.start_for(_config(tmp_path, f"inputs: ['{clip}', s3://b/x.mp4]\noutput: out/\n"))
    assert probe(clip).frame_count == 6
    assert no_fresh_ffprobe == []


def test_file_urls_count_as_local(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "a.mp4", frames=3)
    assert early_probe.start_for("file://" + _config(tmp_path, f"inputs: ['file://{clip}']\noutput: out/\n"))


@pytest.mark.parametrize(
    "inputs",
    [
        "[s3://bucket/a.mp4]",  # remote: downloaded first
        "['{dir}/']",  # a prefix the runner lists
        "['{dir}']",  # a directory
        "['{dir}/missing.mp4']",
        "[]",
        "5",
        "[{{url: x}}]",
        "",
    ],
)
def test_no_guess_where_there_is_no_local_file(tmp_path: Path, inputs: str) -> None:
    text = f"inputs: {inputs.format(dir=tmp_path)}\noutput: out/\n"
    assert not early_probe.start_for(_config(tmp_path, text))
    assert probe_ahead._started == {}


def test_no_guess_for_a_remote_or_missing_config(tmp_path: Path) -> None:
    assert not early_probe.start_for("s3://bucket/job.yaml")
    assert not early_probe.start_for("https://example.invalid/job.yaml")
    assert not early_probe.start_for(str(tmp_path / "missing.yaml"))
    assert not early_probe.start_for("")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_any_config_text_is_a_guess_or_none_never_an_error(tmp_path: Path, text: str) -> None:
    cfg = tmp_path / "fuzz.yaml"
    cfg.write_text(text, encoding="utf-8", errors="surrogatepass")
    assert early_probe.start_for(str(cfg)) in (True, False)
    probe_ahead.discard()


def test_a_config_read_from_a_pipe_is_left_to_the_runner(tmp_path: Path) -> None:
    """``--config <(cat job.yaml)`` or ``/dev/stdin``: a stream can be read once (outside review)."""
    clip = make_clip(tmp_path / "a.mp4", frames=3)
    fifo = tmp_path / "job.fifo"
    os.mkfifo(fifo)
    text = f"inputs: ['{clip}']\noutput: out/\n"
    assert not early_probe.start_for(str(fifo))  # returns without opening it (a writer would block)
    assert probe_ahead._started == {}
    with subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True) as reader:
        with open(fifo, "w") as w:
            w.write(text)
        assert reader.communicate()[0] == text  # the stream is whole for whoever reads it next
