"""What the end of an input needs (the preview's images, the report page), loaded while ffmpeg runs.

Every import before ffmpeg starts is wall time on one core while the other waits;
the output's index reader, PIL and jinja2 (~0.07 s of the runner's start) are first
used after the input is encoded. The runner calls :func:`load_in_background` once frames move: a thread
loads them while the encoder runs, instead of before it starts or after it ends.
A module that fails to load here is loaded (and its error raised) where it is used. (An
image stage, upscale or analyze, imports PIL itself before the first ffmpeg starts.)
"""

from __future__ import annotations

import importlib
import threading

END_OF_INPUT = ("batch.media.written", "PIL.Image", "PIL.ImageDraw", "batch.report.render")

_lock = threading.Lock()
_started: threading.Thread | None = None


def load_in_background(modules: tuple[str, ...] = END_OF_INPUT) -> threading.Thread:
    """Start loading ``modules`` in a daemon thread, once a process; later calls return that thread."""
    global _started
    if _started is not None:  # every frame count calls this: no lock once it has started
        return _started
    with _lock:
        if _started is None:
            _started = threading.Thread(target=_load, args=(modules,), name="warm-imports", daemon=True)
            _started.start()
        return _started


def _load(modules: tuple[str, ...]) -> None:
    for name in modules:
        try:
            module = importlib.import_module(name)
            if name == "PIL.Image":
                module.preinit()  # the BMP/GIF/JPEG/PPM/PNG drivers that open() and save() load
        except Exception:
            continue
