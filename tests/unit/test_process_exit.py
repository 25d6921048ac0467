"""The entry scripts' fast exit keeps everything a normal exit does that can be seen outside."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from batch.process_exit import long_lived_imports

ROOT = Path(__file__).resolve().parents[2]


_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout block-buffered, as usual


def _script(tmp_path: Path, body: str) -> list[str]:
    """A program whose entry is ``run_main(main)``, ``main`` defined by ``body``."""
    script = tmp_path / "entry.py"
    head = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\nfrom batch.process_exit import run_main\n"
    script.write_text(head + textwrap.dedent(body) + "\nrun_main(main)\n")
    return [sys.executable, str(script)]


def _run(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    cmd = _script(tmp_path, body)
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=60, env=_ENV)


def test_the_exit_code_and_buffered_output_come_out(tmp_path: Path) -> None:
    proc = _run(
        tmp_path,
        """
        def main():
            sys.stdout.write("no newline, still buffered")  # a pipe is block-buffered
            sys.stderr.write("err")
            return 3
        """,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, "no newline, still buffered", "err")


def test_a_running_thread_is_waited_for_and_atexit_and_finalizers_run(tmp_path: Path) -> None:
    proc = _run(
        tmp_path,
        """
        import atexit, logging, tempfile, threading, time
        from pathlib import Path

        def late():
            time.sleep(0.3)
            Path("thread-done").write_text("yes")

        def main():
            threading.Thread(target=late).start()  # not a daemon: a normal exit waits for it
            atexit.register(lambda: Path("atexit-done").write_text("yes"))
            kept = tempfile.TemporaryDirectory(dir=".")  # removed by its finalizer at exit
            Path(kept.name, "x").write_text("x")
            Path("tmpname").write_text(kept.name)
            handler = logging.FileHandler("log.txt", delay=False)
            logging.getLogger().addHandler(handler)
            logging.getLogger().warning("last words")  # flushed and closed by logging's atexit
            main.kept = kept
            return 0
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "thread-done").read_text() == "yes"
    assert (tmp_path / "atexit-done").read_text() == "yes"
    assert not Path((tmp_path / "tmpname").read_text()).exists()
    assert (tmp_path / "log.txt").read_text() == "last words\n"


def test_an_exception_in_main_exits_the_normal_way(tmp_path: Path) -> None:
    proc = _run(
        tmp_path,
        """
        def main():
            raise RuntimeError("boom")
        """,
    )
    assert proc.returncode == 1
    assert "RuntimeError: boom" in proc.stderr


def test_a_closed_stdout_does_not_change_the_exit_code(tmp_path: Path) -> None:
    body = """
        def main():
            print("x" * 100)  # stays in the buffer: the write fails at the flush
            return 5
        """
    proc = subprocess.Popen(_script(tmp_path, body), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_ENV)
    assert proc.stdout is not None
    proc.stdout.close()  # the reader went away before the flush
    assert proc.wait(timeout=60) == 5


def test_long_lived_imports_pause_the_collector_and_freeze_what_loaded() -> None:
    assert gc.isenabled()
    before = gc.get_freeze_count()
    try:
        with long_lived_imports():
            assert not gc.isenabled()
            kept = [[i] for i in range(1000)]  # noqa: F841 - objects alive across the freeze
        assert gc.isenabled()
        assert gc.get_freeze_count() >= before + 1000
    finally:
        gc.unfreeze()


def test_long_lived_imports_restore_the_collector_after_an_error() -> None:
    try:
        with pytest.raises(ImportError), long_lived_imports():
            raise ImportError("a module that is not there")
        assert gc.isenabled()
        gc.disable()
        with long_lived_imports():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()
        gc.unfreeze()


def test_a_thread_pool_left_open_does_not_hold_the_exit(tmp_path: Path) -> None:
    """An executor never shut down (torch inductor keeps one for its compile workers): its idle
    workers are told to stop by threading's exit hook, as at a normal exit; waiting for them first
    would hang for ever (an outside review found it with ``compile:``)."""
    proc = _run(
        tmp_path,
        """
        from concurrent.futures import ThreadPoolExecutor
        from pathlib import Path

        POOL = ThreadPoolExecutor(2)

        def main():
            POOL.submit(lambda: Path("ran").write_text("yes")).result()
            return 7
        """,
    )
    assert proc.returncode == 7, proc.stderr
    assert (tmp_path / "ran").read_text() == "yes"
