"""Start-up and exit of the entry scripts without the interpreter's own slow parts.

A job's process imports the config, the runner and the report (~100k long-lived objects):
the cyclic collector scanning them during the imports, and the interpreter tearing every
module down at exit, cost ~0.04 s and ~0.08 s of every run (2-core VM), which is paid on
every job and, for a short clip, is a visible share of it.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import NoReturn


@contextlib.contextmanager
def long_lived_imports() -> Iterator[None]:
    """Imports whose objects live as long as the process: no collection while they load.

    On leaving, what was loaded is moved out of the collector's sight (``gc.freeze``), so
    the collections of the run that follows do not walk the config model's schemas again.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def finish(code: int) -> NoReturn:
    """Exit with ``code`` after what a normal exit does that matters, without the teardown.

    Kept from a normal exit, in the interpreter's order (``Py_FinalizeEx``): threading's
    shutdown (its exit hooks first, which tell thread pools such as torch inductor's
    compile workers to stop, then every non-daemon thread waited for), atexit handlers
    (logging's flush and close, ``weakref.finalize`` callbacks such as temporary
    directories), stdout and stderr flushed. Skipped: clearing every module and object,
    which changes nothing outside the process.
    """
    threading._shutdown()  # type: ignore[attr-defined]  # what Py_FinalizeEx calls first
    atexit._run_exitfuncs()  # then the atexit handlers, as the interpreter would
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe cannot change the exit code
            stream.flush()
    os._exit(code)


def run_main(main: Callable[[], int]) -> NoReturn:
    """``finish(main())``: an exception or ``SystemExit`` from ``main`` takes the normal way out."""
    finish(main())
