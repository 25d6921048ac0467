"""An ffprobe started early is used only for the same command on the same, unchanged file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
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


def _long_answer_clip(tmp_path: Path) -> Path:
    """A clip whose probe prints more than a pipe holds (64 KiB): ~90 bytes a packet."""
    clip = make_clip(tmp_path / "long.mp4", size="64x64", rate="60", frames=1500, audio=False)
    fresh = subprocess.run(probe_module.ffprobe_command(probe_module.PROBE_ARGS, clip), capture_output=True)
    assert len(fresh.stdout) > 2 * 65536  # else this test proves nothing
    return clip


def test_a_long_answer_is_finished_while_nobody_reads_it(tmp_path: Path, no_fresh_ffprobe: list) -> None:
    """The early ffprobe runs while the runner imports and reads nothing: it printed into a pipe,
    and stopped at 64 KiB (any input over ~10 s) until the runner came to read it."""
    clip = _long_answer_clip(tmp_path)
    expected = probe(clip)
    no_fresh_ffprobe.clear()
    assert probe_ahead_of_time(clip)
    started = next(iter(probe_ahead._started.values()))
    assert started.proc.wait(timeout=60) == 0  # ended on its own: nothing read it yet
    assert probe(clip) == expected and no_fresh_ffprobe == []


@pytest.mark.parametrize("kept", ["nothing", "half"])
def test_an_answer_lost_where_it_was_kept_is_asked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_fresh_ffprobe: list, kept: str
) -> None:
    """The early run's output files on a full disk: an empty or cut answer is never taken for the
    input's facts (an empty one read as ``{}``: "no video stream" for a good video)."""
    clip = _long_answer_clip(tmp_path)
    expected = probe(clip)
    no_fresh_ffprobe.clear()
    assert probe_ahead_of_time(clip)
    started = next(iter(probe_ahead._started.values()))
    assert started.proc.wait(timeout=60) == 0
    if kept == "nothing":
        os.ftruncate(started.out, 0)
    else:
        os.ftruncate(started.out, os.fstat(started.out).st_size // 2)
    assert probe(clip) == expected
    assert len(no_fresh_ffprobe) == 1  # asked again, once


def test_an_early_run_killed_is_no_answer(tmp_path: Path, no_fresh_ffprobe: list) -> None:
    clip = make_clip(tmp_path / "a.mp4", frames=5)
    assert probe_ahead_of_time(clip)
    started = next(iter(probe_ahead._started.values()))
    started.proc.kill()
    assert probe(clip).frame_count == 5 and len(no_fresh_ffprobe) == 1


def test_an_unusable_tmpdir_falls_back_to_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_fresh_ffprobe: list
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "missing"))
    clip = make_clip(tmp_path / "a.mp4", frames=5)
    assert probe_ahead_of_time(clip)
    assert probe(clip).frame_count == 5 and no_fresh_ffprobe == []


def test_no_file_for_the_answer_means_no_early_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clip = make_clip(tmp_path / "a.mp4", frames=5)

    def refused(*args: Any) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(probe_ahead.os, "open", refused)
    assert not probe_ahead_of_time(clip)
    monkeypatch.undo()
    assert probe_ahead._started == {} and probe(clip).frame_count == 5


def test_an_answer_kept_on_a_nearly_full_disk_is_asked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_fresh_ffprobe: list
) -> None:
    """ffprobe does not check its writes: on a full disk a line of stderr (the damage _data_skipped
    looks for) can be lost while stdout is whole. Below NEARLY_FULL free, the answer is not taken."""
    clip = make_clip(tmp_path / "a.mp4", frames=5)
    assert probe_ahead_of_time(clip)
    real = os.fstatvfs

    def nearly_full(fd: int) -> os.statvfs_result:
        st = real(fd)
        fields = list(st)
        fields[4] = (probe_ahead.NEARLY_FULL // st.f_frsize) - 1  # f_bavail
        return os.statvfs_result(fields)

    monkeypatch.setattr(probe_ahead.os, "fstatvfs", nearly_full)
    assert probe(clip).frame_count == 5
    assert len(no_fresh_ffprobe) == 1


def test_the_answer_files_have_no_name_and_are_closed_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing is left in the temporary folder, and no descriptor stays open once taken or discarded."""
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    clip = make_clip(tmp_path / "a.mp4", frames=5)
    open_before = len(os.listdir("/proc/self/fd"))
    assert probe_ahead_of_time(clip)
    assert list((tmp_path / "tmp").iterdir()) == []
    assert probe(clip).frame_count == 5
    assert probe_ahead_of_time(clip)
    probe_ahead.discard()
    assert len(os.listdir("/proc/self/fd")) == open_before


def test_without_o_tmpfile_a_named_file_is_made_and_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_fresh_ffprobe: list
) -> None:
    """overlayfs before Linux 6.6 refuses O_TMPFILE (Docker's /tmp): a named file, unlinked at once."""
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    real_open = os.open

    def no_tmpfile(path: Any, flags: int, *args: Any) -> int:
        if flags & getattr(os, "O_TMPFILE", 0) == getattr(os, "O_TMPFILE", -1):
            raise OSError(95, "Operation not supported")
        return real_open(path, flags, *args)

    monkeypatch.setattr(probe_ahead.os, "open", no_tmpfile)
    clip = make_clip(tmp_path / "a.mp4", frames=5)
    assert probe_ahead_of_time(clip)
    assert list((tmp_path / "tmp").iterdir()) == []
    assert probe(clip).frame_count == 5 and no_fresh_ffprobe == []


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


# --- the plain scan for the first input: the YAML reader's answer or none, never another ---


_REFUSED = "(the runner refuses this config: any guess is only a wasted ffprobe)"


def _yaml_first(text: str) -> str | None:
    """The first input as the runner reads the config; _REFUSED when it cannot read it."""
    from batch.config_loader import load_config_text
    from batch.errors import ConfigError

    try:
        data = load_config_text(text)
    except ConfigError:
        return _REFUSED
    inputs = data.get("inputs") if isinstance(data, dict) else None
    return inputs[0] if isinstance(inputs, list) and inputs and isinstance(inputs[0], str) else None


_name = st.text(st.sampled_from("abcXYZ019_-. é/"), min_size=1, max_size=8) | st.text(
    st.sampled_from("abcXYZ019_-. é/#~:'\"[]{},&*!|>%@`\\"), min_size=1, max_size=14
)
_path = st.builds(
    lambda d, n, e: d + n + "." + e,
    st.sampled_from(["", "/data/", "./in/", "in dir/", "~/", "-x/", "s3://b/", "file:///d/", "FILE:///d/"]),
    _name,
    st.sampled_from(["mp4", "mov", "MKV", "m4v", "3gp", "inf", "e5", "Z", "mp4:", "mp4 # c"]),
)


def _quoted(p: str, how: str) -> str:
    if how == "single":
        return "'" + p.replace("'", "''") + "'"
    if how == "double":
        return '"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return p


@settings(max_examples=400, deadline=None)
@example("a\\b.mp4", "b.mp4", "double", "flow", "", "output: out/\n", False)  # an escape YAML reads
@example("it's.mp4", "b.mp4", "single", "block", "", "output: out/\n", False)  # '' is one quote
@example("a.mp4", "b.mp4", "plain", "block0", "", "  more.mp4\n", False)  # the item goes on: "a.mp4 more.mp4"
@example("a.mp4", "b.mp4", "plain", "flow", "stages: [\n", "]\n", False)  # inside stages: no top-level inputs
@given(
    first=_path,
    second=_path,
    how=st.sampled_from(["plain", "single", "double"]),
    shape=st.sampled_from(["flow", "block", "block0", "flow-comment", "block-comment"]),
    before=st.sampled_from(
        ["", "job_id: j\n", "# inputs: [x.mp4]\n", "stages: [\n", "note: |\n  inputs: [q.mp4]\n"]
    ),
    after=st.sampled_from(
        ["output: out/\n", "  more.mp4\n", "    - c.mp4\n", "- d.mp4\n", "inputs: [z.mp4]\n", "]\n"]
    ),
    crlf=st.booleans(),
)
def test_the_scan_finds_what_yaml_reads_or_says_it_is_not_sure(
    first: str, second: str, how: str, shape: str, before: str, after: str, crlf: bool
) -> None:
    a, b = _quoted(first, how), _quoted(second, "plain")
    body = {
        "flow": f"inputs: [{a}, {b}]\n",
        "flow-comment": f"inputs: [ {a} ]  # the clips\n",
        "block": f"inputs:\n  - {a}\n  - {b}\n",
        "block0": f"inputs: # the clips\n- {a}\n",
        "block-comment": f"inputs:\n\n  # first\n  -   {a}   # a note\n",
    }[shape]
    text = before + body + after
    if crlf:
        text = text.replace("\n", "\r\n")
    guess = early_probe.scan_first_input(text)
    assert guess is None or _yaml_first(text) in (guess, _REFUSED), (text, guess)


@pytest.mark.parametrize(
    "text",
    [
        "inputs: [/data/a.mp4, b.mp4]\noutput: out/\n",
        "job_id: x\ninputs:\n  - /data/a.mp4\n  - b.mp4\n",
        "inputs:\n- 'in dir/a b.mp4'\n",
        'inputs: ["file:///data/a.mov"]  # one\n',
        "inputs: [ ./a.mp4 ]\n",
    ],
)
def test_the_common_shapes_need_no_yaml(text: str) -> None:
    assert early_probe.scan_first_input(text) == _yaml_first(text) is not None


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from("inputs:[]-'\" #\n\r\t{},./abc.mp4&*!|>%~"), max_size=60))
def test_any_text_is_scanned_to_yaml_s_answer_or_none(text: str) -> None:
    guess = early_probe.scan_first_input("inputs:" + text)
    assert guess is None or _yaml_first("inputs:" + text) in (guess, _REFUSED)


@pytest.mark.parametrize(
    "text",
    [  # found by the outside review: each one read differently by the scan before it was fixed
        '"inputs": [a.mp4]\n# ]\nnote: [\ninputs: [x.mp4]\n]\noutput: out/\n',  # a bracket in a comment
        '"inputs": [a.mp4]\nnote: "]"\nstages: [\ninputs: [x.mp4]\n]\noutput: out/\n',  # ... in quotes
        '"inputs":\n- a.mp4\n- "b\ninputs:\n- x.mp4\n"\noutput: out/\n',  # inside a quoted scalar
        "inputs : [a.mp4]\nnote: 'hello\ninputs:\n- x.mp4\n'\noutput: out/\n",
        "inputs:\n- a.mp4\u00a0\noutput: out/\n",  # white space YAML keeps
        "inputs: [a.mp4\u3000, b.mp4]\noutput: out/\n",
        "inputs: \u00a0[a.mp4]\noutput: out/\n",
        "inputs:\n- a.mp4\r  b.mp4\noutput: out/\n",  # line breaks YAML knows
        "inputs:\n- a\x85  b.mp4\noutput: out/\n",
        "inputs: [a\r b.mp4]\noutput: out/\n",
        "inputs: [\u2029a.mp4, b.mp4]\noutput: out/\n",
        'inputs: ["a.mp4\r b.mp4"]\noutput: out/\n',
        'inputs: ["a\u2028 b.mp4"]\noutput: out/\n',
        "note: |\n  [\ninputs: [a.mp4]\n",  # a block scalar before: YAML decides
    ],
)
def test_texts_that_fooled_the_scan(text: str) -> None:
    guess = early_probe.scan_first_input(text)
    assert guess is None or _yaml_first(text) in (guess, _REFUSED), (text, guess)


_white = st.sampled_from(
    [" ", "\u00a0", "\u3000", "\u2009", "\r", "\x85", "\u2028", "\u2029", "\ufeff", "#", "'", '"', "[", "|"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), _white), max_size=3))
def test_odd_white_space_and_line_breaks_anywhere(inserts: list[tuple[int, str]]) -> None:
    text = "# a config\njob_id: j\ninputs:\n  - /data/a.mp4  # first\n  - b.mp4\noutput: out/\n"
    for at, char in inserts:
        at = min(at, len(text))
        text = text[:at] + char + text[at:]
    guess = early_probe.scan_first_input(text)
    assert guess is None or _yaml_first(text) in (guess, _REFUSED), (text, guess)


@pytest.mark.parametrize("name", ["error", "ffprobe", "-x.mp4", "json=c=1", "-show_streams"])
def test_an_input_named_like_an_ffprobe_argument_is_probed_as_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Outside review: the early answer for an input named ``error`` was ffprobe's own error (the
    file's real path had replaced the option value too), and ``-x.mp4`` was read as an option."""
    monkeypatch.chdir(tmp_path)
    make_clip(tmp_path / "clip.mp4", frames=4)
    (tmp_path / "clip.mp4").rename(tmp_path / name)
    assert probe(Path(name)).frame_count == 4  # without the early run
    assert early_probe.start_for(_config(tmp_path, f"inputs: ['{name}']\noutput: out/\n"))
    assert probe(Path(name)).frame_count == 4  # the early run's answer


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        ["", "file://", "FILE://", "file:///", "file://localhost/", "file://host/", "s3://b/", "x://"]
    ).flatmap(lambda head: st.text(st.sampled_from("ab/.:-~ "), max_size=10).map(lambda tail: head + tail))
)
def test_local_path_is_storage_s_reading_of_a_file_url(url: str) -> None:
    from batch.errors import BatchError
    from batch.storage.urls import parse_url

    try:
        scheme, _, key = parse_url(url)
    except BatchError:
        scheme, key = "", ""
    expected = key if scheme == "file" else None
    assert early_probe.local_path(url) == expected


def test_a_config_over_the_runner_s_limit_is_not_read(tmp_path: Path) -> None:
    from batch.config_loader import MAX_BYTES

    assert early_probe.CONFIG_MAX_BYTES == MAX_BYTES
    clip = make_clip(tmp_path / "a.mp4", frames=3)
    big = tmp_path / "big.yaml"
    big.write_text(f"inputs: ['{clip}']\n" + "#" * MAX_BYTES)
    assert not early_probe.start_for(str(big))
    assert probe_ahead._started == {}


def test_the_early_probe_starts_before_yaml_and_pathlib_load(tmp_path: Path) -> None:
    """The point of the scan: ffprobe starts ~30 ms sooner on the 2-core VM (docs/benchmarks.md)."""
    clip = make_clip(tmp_path / "a.mp4", frames=3)
    cfg = _config(tmp_path, f"job_id: x\ninputs: [{clip}]\noutput: out/\n")
    code = (
        "import sys\nfrom batch.job import early_probe\n"
        f"assert early_probe.start_for({cfg!r})\n"
        "heavy = ('yaml', 'pathlib', 'typing', 'dataclasses', 'hashlib')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "from batch.media import probe_ahead\nprobe_ahead.discard()\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
