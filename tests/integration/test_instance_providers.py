"""vast.ai (requests) and RunPod (the real runpod SDK) against local fake
control planes: what is sent, how failures are retried or refused, and that
shutdown is asked for exactly once."""

from __future__ import annotations

import pytest
from fakes.control_planes import Answer, FakeRunPod, FakeVast
from fixtures_control_planes import RUNPOD_KEY, VAST_KEY

from batch.errors import ControlPlaneError, ControlPlaneRefused, ControlPlaneUnavailable
from batch.providers import provider_for
from batch.providers.runpod import RunPodProvider
from batch.providers.vast import VastProvider

pytestmark = pytest.mark.integration

ATTEMPTS = 3


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTROL_PLANE_RETRY_ATTEMPTS", str(ATTEMPTS))
    monkeypatch.setenv("CONTROL_PLANE_RETRY_MAX_WAIT_S", "0")


@pytest.fixture
def vast(vast_fake: FakeVast, monkeypatch: pytest.MonkeyPatch) -> VastProvider:
    for name, value in vast_fake.env("4242").items():
        monkeypatch.setenv(name, value)
    p = provider_for("auto", dry_run=False, state_dir="unused")
    assert isinstance(p, VastProvider) and p.base_url == vast_fake.url
    return p


@pytest.fixture
def runpod(runpod_fake: FakeRunPod, monkeypatch: pytest.MonkeyPatch) -> RunPodProvider:
    for name in ("CONTAINER_ID", "CONTAINER_API_KEY", "VAST_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in runpod_fake.env("pod-abc").items():
        monkeypatch.setenv(name, value)
    p = provider_for("auto", dry_run=False, state_dir="unused")
    assert isinstance(p, RunPodProvider)
    return p


# --- vast.ai ---------------------------------------------------------------------------------


def test_vast_stop_sends_put_state_stopped_once(vast: VastProvider, vast_fake: FakeVast) -> None:
    result = vast.shutdown("stop", "runner_killed")
    assert result.ok and result.attempts == 1 and "stop requested" in result.detail
    [req] = vast_fake.requests
    assert (req.method, req.path, req.body) == ("PUT", "/api/v0/instances/4242/", {"state": "stopped"})
    assert req.auth == f"Bearer {VAST_KEY}"
    assert VAST_KEY not in req.path
    assert vast_fake.instances == {"4242": "stopped"}


def test_vast_destroy_sends_delete_once(vast: VastProvider, vast_fake: FakeVast) -> None:
    result = vast.shutdown("destroy", "verified")
    assert result.ok and result.attempts == 1
    [req] = vast_fake.requests
    assert (req.method, req.path, req.body) == ("DELETE", "/api/v0/instances/4242/", None)
    assert req.auth == f"Bearer {VAST_KEY}"
    assert vast_fake.destroyed == {"4242"}


@pytest.mark.parametrize(
    ("script", "calls"),
    [([500, 200], 2), ([429, 429, 200], 3), ([502, 429], 3), ([(200, {"error": "rate_limit_exceeded"})], 2)],
)
def test_vast_transient_failures_are_retried(
    vast: VastProvider, vast_fake: FakeVast, script: list[int], calls: int
) -> None:
    vast_fake.script("destroy", *script)
    result = vast.shutdown("destroy", "verified")
    assert result.ok and result.attempts == calls
    assert len(vast_fake.calls("destroy")) == calls


def test_vast_persistent_500_is_unavailable_after_the_configured_attempts(
    vast: VastProvider, vast_fake: FakeVast
) -> None:
    vast_fake.script("stop", *[500] * 10)
    with pytest.raises(ControlPlaneUnavailable) as info:
        vast.shutdown("stop", "stalled")
    assert len(vast_fake.requests) == ATTEMPTS
    assert info.value.fields["attempts"] == ATTEMPTS and info.value.fields["status"] == 500


@pytest.mark.parametrize("status", [401, 403])
def test_vast_refused_key_is_not_retried_and_not_shown(
    vast: VastProvider, vast_fake: FakeVast, status: int
) -> None:
    vast_fake.script("destroy", status)
    with pytest.raises(ControlPlaneRefused) as info:
        vast.shutdown("destroy", "verified")
    assert len(vast_fake.requests) == 1
    assert VAST_KEY not in str(info.value) and VAST_KEY not in repr(info.value.to_dict())


def test_vast_wrong_key_is_refused(vast_fake: FakeVast) -> None:
    with pytest.raises(ControlPlaneRefused, match="HTTP 401"):
        VastProvider("4242", "not-the-key", vast_fake.url).shutdown("stop", "x")
    assert len(vast_fake.requests) == 1


@pytest.mark.parametrize(
    "answer",
    [
        404,
        (404, {"success": False, "error": "no_such_instance"}),
        (200, {"success": False, "error": "not_found"}),
    ],
)
def test_vast_destroy_of_a_gone_instance_is_done(
    vast: VastProvider, vast_fake: FakeVast, answer: object
) -> None:
    vast_fake.script("destroy", answer)  # type: ignore[arg-type]
    result = vast.shutdown("destroy", "verified")
    assert result.ok and "already gone" in result.detail
    assert len(vast_fake.requests) == 1


def test_vast_404_page_from_something_else_is_not_taken_for_gone(
    vast: VastProvider, vast_fake: FakeVast
) -> None:
    vast_fake.script("destroy", (404, "<html>Not Found</html>"))
    with pytest.raises(ControlPlaneError, match="HTTP 404") as info:
        vast.shutdown("destroy", "verified")
    assert type(info.value) is ControlPlaneError and len(vast_fake.requests) == 1


def test_vast_200_without_success_is_retried(vast: VastProvider, vast_fake: FakeVast) -> None:
    vast_fake.script("stop", (200, "<html>welcome</html>"))
    assert vast.shutdown("stop", "x").attempts == 2


def test_vast_redirect_is_not_followed(vast: VastProvider, vast_fake: FakeVast) -> None:
    vast_fake.script("destroy", (302, "moved"))
    with pytest.raises(ControlPlaneError, match="HTTP 302"):
        vast.shutdown("destroy", "verified")
    assert len(vast_fake.requests) == 1


def test_vast_destroy_twice_is_idempotent(vast: VastProvider, vast_fake: FakeVast) -> None:
    assert "destroy requested" in vast.shutdown("destroy", "verified").detail
    assert "already gone" in vast.shutdown("destroy", "verified").detail
    assert len(vast_fake.requests) == 2


def test_vast_stop_of_an_unknown_instance_is_an_error_not_retried(
    vast: VastProvider, vast_fake: FakeVast
) -> None:
    vast_fake.script("stop", 404)
    with pytest.raises(ControlPlaneError) as info:
        vast.shutdown("stop", "x")
    assert type(info.value) is ControlPlaneError and info.value.fields["status"] == 404
    assert len(vast_fake.requests) == 1


def test_vast_timeout_is_unavailable(vast_fake: FakeVast) -> None:
    vast_fake.script("stop", *[Answer(200, delay_s=1.0)] * ATTEMPTS)
    p = VastProvider("4242", VAST_KEY, vast_fake.url, timeout=(1.0, 0.2))
    with pytest.raises(ControlPlaneUnavailable, match="ReadTimeout"):
        p.shutdown("stop", "x")
    assert len(vast_fake.requests) == ATTEMPTS


def test_vast_unreachable_is_unavailable(closed_port: int) -> None:
    p = VastProvider("4242", VAST_KEY, f"http://127.0.0.1:{closed_port}")
    with pytest.raises(ControlPlaneUnavailable, match="no answer") as info:
        p.shutdown("destroy", "x")
    assert info.value.fields["attempts"] == ATTEMPTS


# --- RunPod ------------------------------------------------------------------------------------


def test_runpod_stop_sends_pod_stop_once(runpod: RunPodProvider, runpod_fake: FakeRunPod) -> None:
    result = runpod.shutdown("stop", "stalled")
    assert result.ok and result.attempts == 1 and "desiredStatus=EXITED" in result.detail
    [req] = runpod_fake.requests
    assert (req.method, req.path, req.endpoint) == ("POST", "/graphql", "podStop")
    assert 'podStop(input: { podId: "pod-abc" })' in req.body["query"]
    assert req.auth == f"Bearer {RUNPOD_KEY}"
    assert RUNPOD_KEY not in req.path
    assert runpod_fake.pods == {"pod-abc": "EXITED"}


def test_runpod_terminate_sends_pod_terminate_once(runpod: RunPodProvider, runpod_fake: FakeRunPod) -> None:
    result = runpod.shutdown("destroy", "verified")
    assert result.ok and result.attempts == 1
    [req] = runpod_fake.requests
    assert (req.method, req.path, req.endpoint) == ("POST", "/graphql", "podTerminate")
    assert 'podTerminate(input: { podId: "pod-abc" })' in req.body["query"]
    assert req.auth == f"Bearer {RUNPOD_KEY}"
    assert runpod_fake.terminated == {"pod-abc"}


def test_runpod_sdk_key_is_put_back(runpod: RunPodProvider) -> None:
    import runpod as sdk

    before = sdk.api_key
    runpod.shutdown("stop", "x")
    assert sdk.api_key == before


@pytest.mark.parametrize(
    ("script", "calls"),
    [
        ([500, 200], 2),  # gateway page: not JSON
        ([429, 429, 200], 3),  # GraphQL errors body
        ([(429, "Too Many Requests")], 2),  # plain text
        ([(200, {"data": None})], 2),  # no data
    ],
)
def test_runpod_transient_failures_are_retried(
    runpod: RunPodProvider, runpod_fake: FakeRunPod, script: list[int], calls: int
) -> None:
    runpod_fake.script("podStop", *script)
    result = runpod.shutdown("stop", "x")
    assert result.ok and result.attempts == calls
    assert len(runpod_fake.calls("podStop")) == calls


def test_runpod_persistent_500_is_unavailable_after_the_configured_attempts(
    runpod: RunPodProvider, runpod_fake: FakeRunPod
) -> None:
    runpod_fake.script("podTerminate", *[500] * 10)
    with pytest.raises(ControlPlaneUnavailable) as info:
        runpod.shutdown("destroy", "verified")
    assert len(runpod_fake.requests) == ATTEMPTS
    assert info.value.fields["attempts"] == ATTEMPTS


def test_runpod_401_is_refused_not_retried_and_key_not_shown(
    runpod: RunPodProvider, runpod_fake: FakeRunPod
) -> None:
    runpod_fake.script("podTerminate", 401)
    with pytest.raises(ControlPlaneRefused) as info:
        runpod.shutdown("destroy", "verified")
    assert len(runpod_fake.requests) == 1
    assert RUNPOD_KEY not in str(info.value) and RUNPOD_KEY not in repr(info.value.to_dict())


def test_runpod_wrong_key_is_refused(runpod_fake: FakeRunPod) -> None:
    with pytest.raises(ControlPlaneRefused):
        RunPodProvider("pod-abc", "wrong").shutdown("stop", "x")
    assert len(runpod_fake.requests) == 1


def test_runpod_terminate_of_a_gone_pod_is_done(runpod: RunPodProvider, runpod_fake: FakeRunPod) -> None:
    assert "terminate requested" in runpod.shutdown("destroy", "verified").detail
    result = runpod.shutdown("destroy", "verified")  # the fake now answers "pod not found to terminate"
    assert result.ok and "already gone" in result.detail
    assert len(runpod_fake.calls("podTerminate")) == 2


def test_runpod_unreachable_is_unavailable(closed_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_API_BASE_URL", f"http://127.0.0.1:{closed_port}")
    with pytest.raises(ControlPlaneUnavailable, match="no answer") as info:
        RunPodProvider("pod-abc", RUNPOD_KEY).shutdown("stop", "x")
    assert info.value.fields["attempts"] == ATTEMPTS
