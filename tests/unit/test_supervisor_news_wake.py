"""The watchdog hears the runner's exit when PID 1 says it, not at its next poll."""

from __future__ import annotations

import io
import os
import threading
import time

from batch.contracts import NEWS_RUNNER_EXIT
from batch.watchdog.supervisor_news import SupervisorNews


def test_news_wakes_a_waiting_loop_at_once_and_only_news_does() -> None:
    read, write = os.pipe()
    news = SupervisorNews(io.TextIOWrapper(os.fdopen(read, "rb")))
    started = time.monotonic()
    news.wait(0.3)  # nothing said: the whole pause
    assert time.monotonic() - started >= 0.29 and news.exit is None

    def say() -> None:
        time.sleep(0.2)
        os.write(write, f'{NEWS_RUNNER_EXIT} {{"code": 0, "signal": null}}\n'.encode())

    threading.Thread(target=say).start()
    started = time.monotonic()
    news.wait(30)
    assert time.monotonic() - started < 10 and news.exit == {"code": 0, "signal": None}
    started = time.monotonic()
    news.wait(0.2)  # heard once: the next pause is a pause again
    assert time.monotonic() - started >= 0.19
    os.close(write)
