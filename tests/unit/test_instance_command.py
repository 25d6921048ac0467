"""The command provider: environment, exit codes, time limit, secrets."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from batch.errors import ControlPlaneError
from batch.providers.command import CommandProvider


def test_command_gets_action_and_reason(tmp_path: Path) -> None:
    out = tmp_path / "seen"
    cmd = f'printf "%s %s %s" "$INSTANCE_ACTION" "$INSTANCE_REASON" "$EXTRA" > "{out}"; echo asked'
    result = CommandProvider(cmd, env={"EXTRA": "kept", "PATH": "/usr/bin:/bin"}).shutdown(
        "destroy", "verified"
    )
    assert result.ok and result.provider == "command" and result.action == "destroy"
    assert result.detail == "command exited 0: asked"
    assert out.read_text() == "destroy verified kept"


def test_command_inherits_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST_TOKEN", "abc")
    out = tmp_path / "seen"
    CommandProvider(f'echo "$HOST_TOKEN $INSTANCE_ACTION" > "{out}"').shutdown("stop", "stalled")
    assert out.read_text().strip() == "abc stop"


def test_non_zero_exit_is_a_control_plane_error_with_stderr_tail() -> None:
    cmd = "echo token=s3cr3t-in-command >/dev/null; echo 'cannot reach host' >&2; exit 3"
    with pytest.raises(ControlPlaneError) as info:
        CommandProvider(cmd).shutdown("stop", "stalled")
    err = info.value
    assert not err.retryable
    assert err.fields["returncode"] == 3
    assert "cannot reach host" in err.fields["stderr_tail"]
    assert "exited 3" in str(err)
    assert "s3cr3t" not in str(err) and "s3cr3t" not in repr(err.to_dict())


def test_stderr_tail_is_bounded() -> None:
    cmd = f"{sys.executable} -c \"import sys; sys.stderr.write('x' * 10000 + 'END')\"; exit 1"
    with pytest.raises(ControlPlaneError) as info:
        CommandProvider(cmd).shutdown("destroy", "x")
    tail = info.value.fields["stderr_tail"]
    assert tail.endswith("END") and len(tail) <= 2003


def test_command_past_its_time_limit_is_killed(tmp_path: Path) -> None:
    marker = tmp_path / "late"
    started = time.monotonic()
    with pytest.raises(ControlPlaneError, match=r"still running after 0\.5s") as info:
        CommandProvider(f'sleep 30; touch "{marker}"', timeout_s=0.5).shutdown("stop", "x")
    assert time.monotonic() - started < 10
    assert info.value.fields["timeout_s"] == 0.5
    assert not marker.exists()


def test_missing_command_is_declared_and_refused() -> None:
    p = CommandProvider(None)
    assert p.unsupported("stop")
    with pytest.raises(ControlPlaneError, match=r"instance\.command"):
        p.shutdown("stop", "x")


def test_keep_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    assert CommandProvider(f'touch "{marker}"').shutdown("keep", "x").ok
    assert not marker.exists()
