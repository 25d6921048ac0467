"""One error mapping per cloud: the launcher (laptop) and the stop (watchdog) of a cloud
turn the same answer from the fake control plane into the same error class, and a key
echoed back by the control plane never reaches the message, the hint or the fields."""

from __future__ import annotations

import pytest
from fakes.control_planes import FakeRunPod, FakeVast
from fixtures_control_planes import RUNPOD_KEY, VAST_KEY

from batch.errors import (
    BatchError,
    ControlPlaneError,
    ControlPlaneRefused,
    ControlPlaneUnavailable,
    MissingSetting,
    NoOfferMatches,
    launch_exit_code,
)
from batch.providers.launch import Console
from batch.providers.runpod import RunPodLauncher, RunPodProvider
from batch.providers.runpod.launch import GpuFilters
from batch.providers.vast import VastLauncher, VastProvider
from batch.providers.vast.launch import OfferFilters

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTROL_PLANE_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("CONTROL_PLANE_RETRY_MAX_WAIT_S", "0")


def assert_no_key(err: BatchError, key: str) -> None:
    shown = f"{err} {err.message} {err.hint} {err.to_dict()!r} {err.fields!r}"
    assert key not in shown, f"key leaked into {type(err).__name__}: {shown[:300]}"
    assert "***" in err.message


# --- vast.ai: same answer, same class, on both sides ------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [(401, ControlPlaneRefused), (403, ControlPlaneRefused), (500, ControlPlaneUnavailable),
     (429, ControlPlaneUnavailable), (400, ControlPlaneError), (409, ControlPlaneError)],
)  # fmt: skip
def test_vast_answer_maps_to_one_class_on_both_sides_with_the_key_scrubbed(
    vast_fake: FakeVast, status: int, cls: type[ControlPlaneError]
) -> None:
    echoed = {"success": False, "error": "oops", "msg": f"request with key {VAST_KEY} failed"}
    vast_fake.script("search", *[(status, echoed)] * 3)
    vast_fake.script("stop", *[(status, echoed)] * 3)
    launcher = VastLauncher(VAST_KEY, vast_fake.url)
    with pytest.raises(ControlPlaneError) as launched:
        launcher.search(OfferFilters(), attempts=1)
    with pytest.raises(ControlPlaneError) as stopped:
        VastProvider("4242", VAST_KEY, vast_fake.url).shutdown("stop", "test")
    assert type(launched.value) is cls and type(stopped.value) is cls
    assert launched.value.fields["status"] == stopped.value.fields["status"] == status
    for err in (launched.value, stopped.value):
        assert_no_key(err, VAST_KEY)


def test_vast_launch_retries_a_5xx_search_but_never_a_create(vast_fake: FakeVast) -> None:
    vast_fake.script("search", 502, 502)
    vast_fake.add_offer(7, dph_total=0.1)
    launcher = VastLauncher(VAST_KEY, vast_fake.url)
    assert [o.id for o in launcher.search(OfferFilters(), attempts=3)] == [7]
    vast_fake.script("create", 503)
    req = launcher.create_request(7, image="img", disk_gb=10, env={"CONFIG_URL": "s3://b/j.yaml"}, label="x")
    with pytest.raises(ControlPlaneUnavailable):
        launcher.create(req)
    assert len(vast_fake.calls("create")) == 1


def test_an_error_page_instead_of_the_console_names_vast_url_and_is_not_retried(vast_fake: FakeVast) -> None:
    """A 404 HTML page (VAST_URL points at a proxy or a typo) will not change by asking again."""
    vast_fake.script("search", *[(404, f"<html>not here {VAST_KEY}</html>")] * 3)
    with pytest.raises(ControlPlaneError) as info:
        VastLauncher(VAST_KEY, vast_fake.url).search(OfferFilters(), attempts=3)
    assert type(info.value) is ControlPlaneError and "VAST_URL is not the vast.ai console" in str(
        info.value.hint
    )
    assert len(vast_fake.calls("search")) == 1
    assert_no_key(info.value, VAST_KEY)


def test_an_echoed_key_in_the_error_field_is_scrubbed_from_the_fields_too(vast_fake: FakeVast) -> None:
    vast_fake.script("search", (400, {"success": False, "error": f"bad {VAST_KEY}", "msg": "no"}))
    with pytest.raises(ControlPlaneError) as info:
        VastLauncher(VAST_KEY, vast_fake.url).search(OfferFilters(), attempts=1)
    assert VAST_KEY not in repr(info.value.fields) and VAST_KEY not in repr(info.value.to_dict())


def test_vast_base_url_and_key_come_from_the_environment_only(
    vast_fake: FakeVast, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAST_API_KEY", VAST_KEY)
    launcher = VastLauncher.from_env()
    assert launcher.base_url == vast_fake.url and VAST_KEY not in repr(launcher)
    assert (
        VastProvider.from_env({"CONTAINER_ID": "1", "VAST_URL": vast_fake.url + "/"}).base_url
        == vast_fake.url
    )


# --- RunPod: same SDK error, same class, on both sides ------------------------------------------


def test_runpod_graphql_error_maps_to_one_class_on_both_sides_with_the_key_scrubbed(
    runpod_fake: FakeRunPod,
) -> None:
    body = {"errors": [{"message": f"bad request for key {RUNPOD_KEY}"}], "data": None}
    runpod_fake.script("gpuTypes", (200, body))
    runpod_fake.script("podStop", *[(200, body)] * 3)
    with pytest.raises(ControlPlaneError) as launched:
        RunPodLauncher(RUNPOD_KEY).choose_gpu(GpuFilters())
    with pytest.raises(ControlPlaneError) as stopped:
        RunPodProvider("pod-1", RUNPOD_KEY).shutdown("stop", "test")
    assert type(launched.value) is type(stopped.value)
    assert isinstance(launched.value, ControlPlaneUnavailable)
    for err in (launched.value, stopped.value):
        assert_no_key(err, RUNPOD_KEY)


def test_runpod_refused_key_is_one_class_on_both_sides(runpod_fake: FakeRunPod) -> None:
    with pytest.raises(ControlPlaneRefused):
        RunPodLauncher("rpa_WRONG_but_long_key").choose_gpu(GpuFilters())
    with pytest.raises(ControlPlaneRefused):
        RunPodProvider("pod-1", "rpa_WRONG_but_long_key").shutdown("destroy", "test")


# --- the launchers' exit codes come from the one tree -------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (MissingSetting("no key"), 2),
        (NoOfferMatches("none"), 3),
        (ControlPlaneRefused("401"), 4),
        (ControlPlaneUnavailable("down"), 5),
        (ControlPlaneError("409"), 5),
    ],
)
def test_console_prints_one_line_scrubbed_and_returns_the_launch_exit_code(
    error: BatchError, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    error.message += f" ({VAST_KEY})"
    error.hint = "a hint"

    def body() -> int:
        raise error

    assert launch_exit_code(error) == code
    assert Console(VAST_KEY).run(body) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "(fix: a hint)" in err
    assert VAST_KEY not in err


def test_every_launch_error_is_a_batch_error() -> None:
    for cls in (MissingSetting, NoOfferMatches, ControlPlaneRefused, ControlPlaneUnavailable):
        assert issubclass(cls, BatchError)
    assert ControlPlaneUnavailable.retryable and not ControlPlaneRefused.retryable
