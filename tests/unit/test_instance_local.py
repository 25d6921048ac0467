"""Providers that call no control plane: local (dry run), skypilot, and the
early refusals of vast/runpod without credentials. All run with sockets
forbidden, to prove that nothing is contacted."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from batch.errors import ControlPlaneError, ControlPlaneRefused
from batch.providers import provider_for
from batch.providers.local import LocalProvider
from batch.providers.runpod import RunPodProvider
from batch.providers.skypilot import SkyPilotProvider
from batch.providers.vast import VastProvider

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTROL_PLANE_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("CONTROL_PLANE_RETRY_MAX_WAIT_S", "0")


class NetworkUsed(BaseException):
    """Raised by the guard; a BaseException, so no provider can swallow it."""


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Any socket connect (or name lookup) fails the test; yields the attempts."""
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object, *args: object) -> None:
        attempts.append(address)
        raise NetworkUsed(f"connect to {address!r}")

    def no_lookup(host: object, *args: object, **kwargs: object) -> None:
        attempts.append(host)
        raise NetworkUsed(f"getaddrinfo({host!r})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    yield attempts
    assert attempts == [], f"a socket was opened: {attempts}"


def test_guard_catches_connections(no_network: list[object]) -> None:
    with pytest.raises(NetworkUsed):
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    assert no_network
    no_network.clear()


def test_local_writes_the_stopping_line(tmp_path: Path, no_network: list[object]) -> None:
    state = tmp_path / "state" / "job-1"  # created on demand
    p = LocalProvider(state)
    result = p.shutdown("destroy", "verified")
    assert result.ok and result.provider == "local" and result.action == "destroy"
    lines = (state / "STOPPED").read_text().splitlines()
    assert len(lines) == 1
    assert re.fullmatch(
        f"STOPPING INSTANCE {STAMP} provider=local action=destroy reason=verified", lines[0]
    ), lines[0]
    p.shutdown("stop", "runner_killed")
    assert (state / "STOPPED").read_text().splitlines()[1].endswith("action=stop reason=runner_killed")


def test_local_keep_writes_nothing(tmp_path: Path, no_network: list[object]) -> None:
    result = LocalProvider(tmp_path).shutdown("keep", "verified")
    assert result.ok and not (tmp_path / "STOPPED").exists()


def test_local_unwritable_state_dir_is_a_control_plane_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ControlPlaneError, match="cannot write"):
        LocalProvider(blocker / "sub").shutdown("stop", "x")


@pytest.mark.parametrize("name", ["vast", "runpod", "auto", "command"])
def test_dry_run_with_cloud_env_calls_no_cloud(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[object]
) -> None:
    monkeypatch.setenv("CONTAINER_ID", "4242")
    monkeypatch.setenv("CONTAINER_API_KEY", "vast-secret")
    monkeypatch.setenv("RUNPOD_POD_ID", "pod-1")
    monkeypatch.setenv("RUNPOD_API_KEY", "rp-secret")
    monkeypatch.setenv("VAST_URL", "http://127.0.0.1:9")
    p = provider_for(name, dry_run=True, state_dir=tmp_path, command="exit 7")
    assert isinstance(p, LocalProvider)
    assert p.shutdown("destroy", "verified").ok
    assert "provider=local action=destroy reason=verified" in (tmp_path / "STOPPED").read_text()


def test_skypilot_leaves_teardown_to_skypilot(no_network: list[object]) -> None:
    p = SkyPilotProvider()
    for action in ("stop", "destroy"):
        assert "SkyPilot manages teardown" in (p.unsupported(action) or "")
        result = p.shutdown(action, "verified")
        assert result.ok and "autostop/autodown" in result.detail
    assert p.unsupported("keep") is None


def test_vast_without_key_refuses_before_any_request(no_network: list[object]) -> None:
    with pytest.raises(ControlPlaneRefused, match="CONTAINER_API_KEY"):
        VastProvider("4242", None, "http://127.0.0.1:9").shutdown("destroy", "x")
    with pytest.raises(ControlPlaneError, match="CONTAINER_ID"):
        VastProvider(None, "k", "http://127.0.0.1:9").shutdown("stop", "x")


def test_runpod_without_key_refuses_before_any_request(no_network: list[object]) -> None:
    with pytest.raises(ControlPlaneRefused, match="RUNPOD_API_KEY"):
        RunPodProvider("pod-1", "").shutdown("stop", "x")
    with pytest.raises(ControlPlaneError, match="RUNPOD_POD_ID"):
        RunPodProvider(None, "k").shutdown("destroy", "x")


@pytest.mark.parametrize("provider", [VastProvider("1", "k"), RunPodProvider("p", "k")])
def test_keep_calls_nothing(provider: VastProvider | RunPodProvider, no_network: list[object]) -> None:
    result = provider.shutdown("keep", "verified")
    assert result.ok and "not called" in result.detail


@pytest.mark.parametrize("url", ["not-a-url", "ftp://127.0.0.1:9"])
def test_malformed_control_plane_url_is_a_plain_error(
    url: str, monkeypatch: pytest.MonkeyPatch, no_network: list[object]
) -> None:
    monkeypatch.setenv("RUNPOD_API_BASE_URL", url)
    for provider in (VastProvider("4242", "k", url), RunPodProvider("pod-1", "k")):
        with pytest.raises(ControlPlaneError, match="cannot call") as info:
            provider.shutdown("stop", "x")
        assert not info.value.retryable
