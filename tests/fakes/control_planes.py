"""Local stand-ins for the vast.ai REST API and RunPod's GraphQL endpoint.

Each fake is a threaded HTTP server on 127.0.0.1 (a free port) that records
every request and answers like the real service, keeping a little state
(an instance destroyed once is gone the next time). Tests point the real
client at ``fake.url`` (``VAST_URL``, ``RUNPOD_API_BASE_URL``) and script
failures per endpoint::

    fake.script("destroy", 500, 200)          # one 500, then success
    fake.script("podStop", 429, 429, 200)     # two rate limits, then success
    fake.script("stop", (200, {"success": False, "error": "no_such_instance"}))
    fake.script("stop", Answer(200, delay_s=2))  # answer late (timeouts)

An entry is a status (the body the service would send with it), a
``(status, body)`` pair (dict/list -> JSON, str -> text) or an
:class:`Answer`. Scripted answers come first, before the fake's own key
check; when the script runs out the fake answers normally.
Endpoints: vast ``stop`` / ``destroy``; RunPod ``podStop`` / ``podTerminate``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any = None  # None: what the service sends with this status
    delay_s: float = 0.0


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, else text, else None
    endpoint: str | None  # "stop", "destroy", "podStop", "podTerminate" or None

    @property
    def auth(self) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == "authorization"), None)


Script = int | tuple[int, Any] | Answer


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and hung up is part of the tests


class _Fake:
    """The server, the recording and the scripts; subclasses answer requests."""

    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key  # when set, any other bearer token gets 401
        self.requests: list[Recorded] = []
        self._scripts: dict[str, deque[Answer]] = {}
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                fake._handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(self, endpoint: str, *answers: Script) -> None:
        """Queue answers for ``endpoint``; each request takes the next one."""
        queued = [
            a if isinstance(a, Answer) else Answer(*a) if isinstance(a, tuple) else Answer(a) for a in answers
        ]
        with self._lock:
            self._scripts.setdefault(endpoint, deque()).extend(queued)

    def calls(self, endpoint: str | None = None) -> list[Recorded]:
        """Recorded requests, all or those for one endpoint."""
        with self._lock:
            return [r for r in self.requests if endpoint is None or r.endpoint == endpoint]

    # --- to be provided by the service ---------------------------------------------------

    def route(self, method: str, path: str, body: Any) -> tuple[str | None, str | None]:
        """(endpoint, target id) for a request, or (None, None) if unknown."""
        raise NotImplementedError

    def default_body(self, endpoint: str, status: int, target: str) -> Any:
        raise NotImplementedError

    def serve(self, endpoint: str, target: str) -> tuple[int, Any]:
        raise NotImplementedError

    # --- machinery ------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        text = raw.decode("utf-8", errors="replace")
        try:
            body: Any = json.loads(text) if text else None
        except ValueError:
            body = text
        endpoint, target = self.route(h.command, h.path, body)
        with self._lock:
            self.requests.append(Recorded(h.command, h.path, dict(h.headers.items()), body, endpoint))
            queue = self._scripts.get(endpoint or "")
            scripted = queue.popleft() if queue else None
        if endpoint is None or target is None:
            status, out = 404, "no such route"
        elif scripted is not None:
            time.sleep(scripted.delay_s)
            status = scripted.status
            out = scripted.body if scripted.body is not None else self.default_body(endpoint, status, target)
        elif self.api_key is not None and h.headers.get("Authorization") != f"Bearer {self.api_key}":
            status, out = 401, self.default_body(endpoint, 401, target)
        else:
            with self._lock:
                status, out = self.serve(endpoint, target)
        data = (json.dumps(out) if isinstance(out, dict | list) else str(out)).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json" if isinstance(out, dict | list) else "text/html")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


_PAGE = "<html><head><title>{0}</title></head><body><h1>{0}</h1></body></html>"


class FakeVast(_Fake):
    """``PUT|DELETE /api/v0/instances/{id}/``; instances spring into being on first use."""

    _PATH = re.compile(r"^/api/v0/instances/(\d+)/?$")

    def __init__(self, api_key: str | None = None) -> None:
        super().__init__(api_key)
        self.instances: dict[str, str] = {}  # id -> "running" | "stopped"
        self.destroyed: set[str] = set()

    def env(self, instance_id: str = "4242") -> dict[str, str]:
        """What vast.ai sets in an instance, pointed at this fake (for a subprocess's env)."""
        return {"VAST_URL": self.url, "CONTAINER_ID": instance_id, "CONTAINER_API_KEY": self.api_key or ""}

    def route(self, method: str, path: str, body: Any) -> tuple[str | None, str | None]:
        m = self._PATH.match(path.split("?")[0])
        if not m:
            return None, None
        if method == "DELETE":
            return "destroy", m.group(1)
        if method == "PUT" and isinstance(body, dict) and body.get("state") == "stopped":
            return "stop", m.group(1)
        return None, None

    def default_body(self, endpoint: str, status: int, target: str) -> Any:
        if status < 300:
            return {"success": True, "msg": f"{endpoint} instance {target}."}
        if status in (401, 403):
            return {"success": False, "error": "auth_error", "msg": "Invalid user key"}
        if status == 404:
            return {"success": False, "error": "not_found", "msg": f"Instance {target} not found."}
        if status == 429:
            return {
                "success": False,
                "error": "rate_limit_exceeded",
                "msg": "API requests too frequent endpoint threshold=3.0",
            }
        return _PAGE.format(f"{status} Server Error")

    def serve(self, endpoint: str, target: str) -> tuple[int, Any]:
        if target in self.destroyed:
            return 404, self.default_body(endpoint, 404, target)
        if endpoint == "destroy":
            self.instances.pop(target, None)
            self.destroyed.add(target)
        else:
            self.instances[target] = "stopped"
        return 200, self.default_body(endpoint, 200, target)


class FakeRunPod(_Fake):
    """``POST /graphql`` answering the SDK's podStop / podTerminate mutations."""

    _OP = re.compile(r"\b(podStop|podTerminate|podResume)\s*\(")
    _POD = re.compile(r'podId:\s*"([^"]*)"')

    def __init__(self, api_key: str | None = None) -> None:
        super().__init__(api_key)
        self.pods: dict[str, str] = {}  # id -> desiredStatus
        self.terminated: set[str] = set()

    def env(self, pod_id: str = "pod-test") -> dict[str, str]:
        """What RunPod sets in a pod, pointed at this fake (for a subprocess's env)."""
        return {
            "RUNPOD_API_BASE_URL": self.url,
            "RUNPOD_POD_ID": pod_id,
            "RUNPOD_API_KEY": self.api_key or "",
        }

    def route(self, method: str, path: str, body: Any) -> tuple[str | None, str | None]:
        if method != "POST" or path.split("?")[0] != "/graphql" or not isinstance(body, dict):
            return None, None
        query = str(body.get("query") or "")
        op, pod = self._OP.search(query), self._POD.search(query)
        return (op.group(1), pod.group(1)) if op and pod else ("graphql", "")

    def default_body(self, endpoint: str, status: int, target: str) -> Any:
        if status == 401:
            return "Unauthorized"
        if status == 429:
            return {"errors": [{"message": "Too many requests. Please slow down."}]}
        if status >= 400:
            return _PAGE.format(f"{status} Internal Server Error")
        if endpoint == "podStop":
            return {"data": {"podStop": {"id": target, "desiredStatus": "EXITED"}}}
        return {"data": {endpoint: None}}

    def serve(self, endpoint: str, target: str) -> tuple[int, Any]:
        if endpoint not in ("podStop", "podTerminate"):
            return 200, {"errors": [{"message": "fake RunPod: operation not supported"}]}
        if target in self.terminated:
            text = "pod not found to terminate" if endpoint == "podTerminate" else "Pod not found"
            return 200, {"errors": [{"message": text, "path": [endpoint]}], "data": {endpoint: None}}
        if endpoint == "podTerminate":
            self.pods.pop(target, None)
            self.terminated.add(target)
        else:
            self.pods[target] = "EXITED"
        return 200, self.default_body(endpoint, 200, target)
