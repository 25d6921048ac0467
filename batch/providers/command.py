"""Any other host: run the shell command from ``instance.command``.

The command sees the watchdog's environment plus ``INSTANCE_ACTION``
(``stop`` or ``destroy``) and ``INSTANCE_REASON``. It runs once, in its own
process group, with a time limit; it is not retried, because nothing says a
user's command is safe to run twice (a second ``destroy`` may fail or,
worse, hit another machine).

Errors, raised by :meth:`CommandProvider.shutdown`: ControlPlaneError when
the command exits non-zero (``returncode``, ``stderr_tail``), runs past its
time limit (``timeout_s``) or cannot be started. The command text itself may
hold a token, so it is never put in a message.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Mapping

from batch.errors import ControlPlaneError
from batch.providers.base import Action, ShutdownResult

log = logging.getLogger("batch.providers")

TIMEOUT_S = 120.0
TAIL_CHARS = 2000


def _tail(text: str, limit: int = TAIL_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


class CommandProvider:
    """Runs one configured shell command to stop or destroy the host."""

    name = "command"

    def __init__(
        self,
        command: str | None,
        *,
        timeout_s: float = TIMEOUT_S,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._command = (command or "").strip()
        self.timeout_s = timeout_s
        self._env = env

    def __repr__(self) -> str:  # the command may hold a token
        return f"CommandProvider(command=<{'set' if self._command else 'unset'}>, timeout_s={self.timeout_s})"

    def unsupported(self, action: Action) -> str | None:
        if action != "keep" and not self._command:
            return "provider 'command' needs instance.command in the job config"
        return None

    def shutdown(self, action: Action, reason: str) -> ShutdownResult:
        """Run the command once; ``keep`` runs nothing. Raises ControlPlaneError."""
        if action == "keep":
            return ShutdownResult(self.name, action, ok=True, detail="keep: command not run")
        why = self.unsupported(action)
        if why:
            raise ControlPlaneError(f"command {action}: {why}", provider=self.name, action=action)
        env = dict(os.environ if self._env is None else self._env)
        env.update(INSTANCE_ACTION=action, INSTANCE_REASON=reason)
        fields = {"provider": self.name, "action": action}
        try:
            proc = subprocess.Popen(
                self._command,
                shell=True,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                start_new_session=True,  # so a timeout can kill the whole group
            )
        except OSError as exc:
            raise ControlPlaneError(f"command {action}: could not start ({exc})", **fields) from None
        try:
            out, err = proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            try:
                _, err = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:  # a grandchild left its own group holding the pipes
                err = ""
            raise ControlPlaneError(
                f"command {action}: still running after {self.timeout_s:g}s, killed",
                hint="make instance.command return promptly (it may start the shutdown and exit)",
                timeout_s=self.timeout_s,
                stderr_tail=_tail(err) or None,
                **fields,
            ) from None
        if proc.returncode != 0:
            tail = _tail(err)
            raise ControlPlaneError(
                f"command {action}: exited {proc.returncode}" + (f": {tail[-300:]}" if tail else ""),
                hint="run instance.command by hand with INSTANCE_ACTION set to see why it fails",
                returncode=proc.returncode,
                stderr_tail=tail or None,
                **fields,
            )
        said = _tail(out, 300)
        log.info("command %s exited 0 (reason=%s)", action, reason)
        return ShutdownResult(
            self.name, action, ok=True, detail="command exited 0" + (f": {said}" if said else "")
        )


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
