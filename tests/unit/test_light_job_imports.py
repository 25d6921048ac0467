"""A job with no stages starts fast: the runner and the direct transcode import no numpy.

numpy alone costs ~0.13 s of a whole-process run (python -X importtime); it is
imported where frames pass through Python (reader, writer, stages, thumbnails).
"""

from __future__ import annotations

import subprocess
import sys


def loaded_after(imports: str, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` are in sys.modules after ``imports`` in a fresh interpreter."""
    code = f"import sys\n{imports}\nprint(','.join(sorted(m for m in {names!r} if m in sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def run_python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_the_runner_and_the_direct_path_import_no_numpy() -> None:
    imports = "import batch.job.runner, batch.media.direct, batch.media.writer, batch.media.reader"
    assert loaded_after(imports, ("numpy", "torch", "cv2")) == []


def test_reading_a_config_loads_no_validation_library() -> None:
    """The config's rules are ours (batch.config_rules): pydantic took ~0.15 s of every runner's and
    watchdog's start, before ffmpeg could start and on the cores the encoder wants."""
    imports = (
        "import batch.job.runner, batch.config, batch.watchdog.cli, batch.stages.registry\n"
        "from batch.config import parse_config\n"
        "parse_config('inputs: [a.mp4]\\noutput: out/\\n'\n"
        "             'stages: [{interpolate: {factor: 2}}, {crop: {width: 2, height: 2}}]')"
    )
    assert loaded_after(imports, ("pydantic", "pydantic_core", "msgspec", "attrs")) == []
    assert loaded_after("import batch.job.runner", ("batch.config", "batch.config_rules")) == [
        "batch.config",
        "batch.config_rules",
    ]  # the check above can fail: the runner does load the config module


def test_what_the_end_of_an_input_needs_is_not_loaded_before_ffmpeg_starts() -> None:
    """PIL (the preview), jinja2 (the report page) and the output's index reader: ~0.07 s of imports
    that batch.job.warm_imports loads while ffmpeg runs, once frames move."""
    imports = "import batch.job.runner, batch.job.chunks, batch.media.direct, batch.config"
    late = ("PIL", "jinja2", "batch.report.render", "batch.media.written", "batch.media.mp4_index")
    assert loaded_after(imports, late) == []


def test_the_background_load_runs_once_and_a_module_that_fails_does_not_stop_the_rest() -> None:
    code = (
        "import sys\n"
        "from batch.job.warm_imports import load_in_background, END_OF_INPUT\n"
        "first = load_in_background(('no_such_module_here', 'batch.media.written', 'PIL.Image'))\n"
        "again = load_in_background()\n"  # the same thread: END_OF_INPUT is not loaded a second time
        "first.join(30)\n"
        "print(again is first, not first.is_alive())\n"
        "print(','.join(m for m in ('batch.media.written', 'PIL.Image', 'PIL.JpegImagePlugin', 'jinja2')"
        " if m in sys.modules))\n"
    )
    loaded = "batch.media.written,PIL.Image,PIL.JpegImagePlugin"
    assert run_python(code).split("\n")[:2] == ["True True", loaded]


def test_the_runners_first_frame_count_starts_the_load_and_still_reaches_the_tracker() -> None:
    code = (
        "import sys, threading\n"
        "from batch.job.runner import _frames_moving\n"
        "class Tracker:\n"
        "    seen = []\n"
        "    def frames(self, done, total):\n"
        "        self.seen.append((done, total))\n"
        "t = Tracker()\n"
        "before = [th.name for th in threading.enumerate()]\n"
        "count = _frames_moving(t)\n"
        "count(5, 300)\n"
        "count(9, 300)\n"
        "warm = [th for th in threading.enumerate() if th.name == 'warm-imports']\n"
        "warm[0].join(30)\n"
        "loaded = [m in sys.modules for m in ('jinja2', 'PIL.Image')]\n"
        "print('warm-imports' in before, len(warm), t.seen, *loaded)\n"
    )
    assert run_python(code).strip() == "False 1 [(5, 300), (9, 300)] True True"
