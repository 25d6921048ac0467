"""Faults the tests inject into the watchdog's own path, by environment variable.

Each is off unless its variable is set, costs one dictionary lookup when it
is not, and stands for a fault that cannot be produced on demand from
outside (a bug, a crash at an exact instant, a provider SDK raising). Faults
that can be produced for real (a refused key, an unreachable store) are made
for real in the tests instead, through ``BATCH_TEST_WATCHDOG_ENV``.

==========================================  ==========================================================
``BATCH_TEST_WATCHDOG_ENV``                 JSON object of environment variables the watchdog (only)
                                            sets at start: its own store refused or unreachable
``BATCH_TEST_PROVIDER_RAISES=N``            the first N provider calls raise RuntimeError
``BATCH_TEST_EXIT_AFTER_PROVIDER_CALL=1``   the watchdog dies (exit 9) right after its first
                                            provider call returned, before it records "confirmed"
``BATCH_TEST_PUBLISH_FAILS=1``              the runner's final manifest upload fails (a bucket outage
                                            at the last write; the watchdog must publish it)
``BATCH_TEST_WATCHDOG_ENOSPC=1``            every state-dir write of the watchdog raises ENOSPC
``BATCH_TEST_WATCHDOG_BUG=where[,where]``   raise RuntimeError at each ``where``: ``watch`` (the
                                            main loop), ``fail`` (the failure path), ``settings``
                                            (reading its settings), ``start`` (monitor.py start)
``BATCH_TEST_REPORT_FAILS=1``               writing ``report.html`` raises (the runner's and the
                                            watchdog's): the job and the stop must carry on
``BATCH_TEST_UNWRITABLE=name[,name]``       writes of these state-dir files by PID 1 and the runner
                                            raise ENOSPC (runner.pid, runner.exit, manifest.json)
==========================================  ==========================================================
"""

from __future__ import annotations

import errno
import json
import os


class InjectedFault(RuntimeError):
    """Raised where a test asked for a fault; never raised in production."""


def apply_watchdog_env() -> None:
    """Set the watchdog's own environment overrides (``BATCH_TEST_WATCHDOG_ENV``)."""
    raw = os.environ.get("BATCH_TEST_WATCHDOG_ENV")
    if raw:
        os.environ.update({str(k): str(v) for k, v in json.loads(raw).items()})


def bug(where: str) -> None:
    if where in (os.environ.get("BATCH_TEST_WATCHDOG_BUG") or "").split(","):
        raise InjectedFault(f"injected bug at {where} (BATCH_TEST_WATCHDOG_BUG)")


def provider_call(attempt: int) -> None:
    """Before provider call number ``attempt`` (1-based, counted across restarts)."""
    raises = int(os.environ.get("BATCH_TEST_PROVIDER_RAISES") or 0)
    if attempt <= raises:
        raise InjectedFault(f"injected provider exception {attempt}/{raises} (BATCH_TEST_PROVIDER_RAISES)")


def after_provider_call(attempt: int) -> None:
    if attempt == 1 and os.environ.get("BATCH_TEST_EXIT_AFTER_PROVIDER_CALL"):
        os._exit(9)  # as a SIGKILL would: no clean-up, no state written


def state_write() -> None:
    if os.environ.get("BATCH_TEST_WATCHDOG_ENOSPC"):
        raise OSError(errno.ENOSPC, "No space left on device (BATCH_TEST_WATCHDOG_ENOSPC)")


def publish() -> None:
    if os.environ.get("BATCH_TEST_PUBLISH_FAILS"):
        from batch.errors import StorageUnreachable

        raise StorageUnreachable("injected outage at the final publish (BATCH_TEST_PUBLISH_FAILS)")


def unwritable(name: str) -> None:
    """ENOSPC for a state file named in BATCH_TEST_UNWRITABLE (a full disk, for one file)."""
    names = os.environ.get("BATCH_TEST_UNWRITABLE")
    if names and name in names.split(","):
        raise OSError(errno.ENOSPC, f"No space left on device (injected for {name})")


def report() -> None:
    if os.environ.get("BATCH_TEST_REPORT_FAILS"):
        raise InjectedFault("injected failure writing report.html (BATCH_TEST_REPORT_FAILS)")
