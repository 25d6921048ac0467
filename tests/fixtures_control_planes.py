"""Fixtures: fake vast.ai and RunPod control planes on 127.0.0.1.

Register with ``pytest_plugins = ["fixtures_control_planes"]`` (``tests`` is
on the pythonpath), or import the fixtures into a test module.

  vast_fake    (function) FakeVast with key VAST_KEY, started; VAST_URL set
                          to it. ``.url``, ``.requests``, ``.calls(endpoint)``,
                          ``.script("stop"|"destroy", 500, 200, ...)``,
                          ``.env(instance_id)`` -> CONTAINER_ID/CONTAINER_API_KEY/VAST_URL
  runpod_fake  (function) FakeRunPod with key RUNPOD_KEY, started;
                          RUNPOD_API_BASE_URL set to it. Same interface;
                          endpoints "podStop", "podTerminate";
                          ``.env(pod_id)`` -> RUNPOD_POD_ID/RUNPOD_API_KEY/RUNPOD_API_BASE_URL

Neither sets the instance id or key in this process's environment, so
``detect_provider()`` is unchanged; use ``monkeypatch.setenv`` or ``.env()``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakes.control_planes import FakeRunPod, FakeVast

VAST_KEY = "vast-test-key-0123456789abcdef"
RUNPOD_KEY = "rpa_TESTKEY0123456789ABCDEF"


@pytest.fixture
def vast_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVast]:
    with FakeVast(api_key=VAST_KEY) as fake:
        monkeypatch.setenv("VAST_URL", fake.url)
        yield fake


@pytest.fixture
def runpod_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRunPod]:
    with FakeRunPod(api_key=RUNPOD_KEY) as fake:
        monkeypatch.setenv("RUNPOD_API_BASE_URL", fake.url)
        yield fake
