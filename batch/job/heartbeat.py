"""Writes ``status.json`` to the output prefix and the state dir every few seconds.

A failed write is logged and retried on the next beat: the heartbeat must
never stop the job. The watchdog reads the local copy to detect a stall.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from batch.contracts import STATUS, state_file, status_url
from batch.errors import BatchError
from batch.job.progress import Tracker
from batch.storage import Store, redact_url

log = logging.getLogger("batch")


class Heartbeat:
    def __init__(
        self,
        tracker: Tracker,
        store: Store,
        output: str,
        state_dir: Path,
        every_s: float,
        name: str = STATUS,
    ) -> None:
        self.tracker = tracker
        self.store = store
        self.url = status_url(output, name)
        self.local = state_file(state_dir, STATUS)  # a shard's too: its watchdog reads this name
        self.every_s = every_s
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.beat()  # the final phase is always written

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.beat()

    def beat(self) -> None:
        """Write both copies; any failure is logged and counted, never raised."""
        data = json.dumps(self.tracker.snapshot(), indent=2).encode()
        try:
            self.local.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.local.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(self.local)
        except OSError as e:
            self.failures += 1
            log.warning("heartbeat: could not write %s: %s", self.local, e)
        try:
            self.store.write_bytes(self.url, data, content_type="application/json")
        except BatchError as e:
            self.failures += 1
            log.warning("heartbeat: could not write %s: %s", redact_url(self.url), e.message)
        except Exception:  # the heartbeat must outlive any surprise
            self.failures += 1
            log.exception("heartbeat: unexpected error writing %s", self.url)
