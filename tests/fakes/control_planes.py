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
Endpoints: vast ``stop`` / ``destroy`` / ``search`` (offer search) / ``create``
(rent an offer); RunPod ``podStop`` / ``podTerminate`` / ``gpuTypes`` (the SDK's
get_gpus and get_gpu) / ``podFindAndDeployOnDemand`` (create_pod).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self


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

    def serve(self, endpoint: str, target: str, body: Any = None) -> tuple[int, Any]:
        """(status, body) for a request that passed the key check; ``body`` is the parsed request body."""
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
                status, out = self.serve(endpoint, target, body)
        data = (json.dumps(out) if isinstance(out, dict | list) else str(out)).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json" if isinstance(out, dict | list) else "text/html")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


_PAGE = "<html><head><title>{0}</title></head><body><h1>{0}</h1></body></html>"


class FakeVast(_Fake):
    """``PUT|DELETE /api/v0/instances/{id}/``; instances spring into being on first use.

    Also ``POST /api/v0/bundles/`` (offer search over :attr:`offers`, applying
    the query's ``{field: {op: value}}`` filters, ``order`` and ``limit``; an
    offer without a filtered field does not match) and ``PUT
    /api/v0/asks/{offer}/`` (create: ``{"success": true, "new_contract": id}``;
    the offer is then rented and the body kept in :attr:`created`).
    """

    _PATH = re.compile(r"^/api/v0/instances/(\d+)/?$")
    _ASK = re.compile(r"^/api/v0/asks/(\d+)/?$")
    _SEARCH = re.compile(r"^/api/v0/bundles/?$")
    _SPECIAL = frozenset({"order", "type", "limit", "allocated_storage", "disable_bundling"})
    _OPS: ClassVar[dict[str, Callable[[Any, Any], bool]]] = {
        "eq": lambda a, b: a == b,
        "neq": lambda a, b: a != b,
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
        "in": lambda a, b: a in b,
        "notin": lambda a, b: a not in b,
    }

    def __init__(self, api_key: str | None = None) -> None:
        super().__init__(api_key)
        self.instances: dict[str, str] = {}  # id -> "running" | "stopped"
        self.destroyed: set[str] = set()
        self.offers: list[dict[str, Any]] = []
        self.created: dict[str, dict[str, Any]] = {}  # new instance id -> create body (+ "offer_id")
        self._next_id = 9_000_001

    def add_offer(self, offer_id: int, **fields: Any) -> dict[str, Any]:
        """An offer with every field the launcher filters on (a rentable 1x RTX 4090); ``fields`` win."""
        offer = {
            "id": offer_id, "gpu_name": "RTX 4090", "num_gpus": 1, "gpu_ram": 24564, "dph_total": 0.40,
            "min_bid": 0.20, "reliability": 0.995, "cuda_max_good": 12.8, "disk_space": 200.0,
            "geolocation": "Sweden, SE", "score": 100.0, "verified": True, "external": False,
            "rentable": True, "rented": False,
        }  # fmt: skip
        offer.update(fields)
        self.offers.append(offer)
        return offer

    def env(self, instance_id: str = "4242") -> dict[str, str]:
        """What vast.ai sets in an instance, pointed at this fake (for a subprocess's env)."""
        return {"VAST_URL": self.url, "CONTAINER_ID": instance_id, "CONTAINER_API_KEY": self.api_key or ""}

    def route(self, method: str, path: str, body: Any) -> tuple[str | None, str | None]:
        path = path.split("?")[0]
        if method == "POST" and self._SEARCH.match(path):
            return "search", ""
        ask = self._ASK.match(path)
        if method == "PUT" and ask:
            return "create", ask.group(1)
        m = self._PATH.match(path)
        if not m:
            return None, None
        if method == "DELETE":
            return "destroy", m.group(1)
        if method == "PUT" and isinstance(body, dict) and body.get("state") == "stopped":
            return "stop", m.group(1)
        return None, None

    def default_body(self, endpoint: str, status: int, target: str) -> Any:
        if status < 300 and endpoint == "search":
            return {"offers": []}
        if status < 300 and endpoint == "create":
            return {"success": True, "new_contract": self._next_id}
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

    def serve(self, endpoint: str, target: str, body: Any = None) -> tuple[int, Any]:
        if endpoint == "search":
            return 200, {"offers": self._search(body)}
        if endpoint == "create":
            return self._create(target, body)
        if target in self.destroyed:
            return 404, self.default_body(endpoint, 404, target)
        if endpoint == "destroy":
            self.instances.pop(target, None)
            self.destroyed.add(target)
        else:
            self.instances[target] = "stopped"
        return 200, self.default_body(endpoint, 200, target)

    def _search(self, query: Any) -> list[dict[str, Any]]:
        if not isinstance(query, dict):
            return []

        def ok(offer: dict[str, Any]) -> bool:
            for field, cond in query.items():
                if field in self._SPECIAL or not isinstance(cond, dict):
                    continue
                if field not in offer:
                    return False
                for op, want in cond.items():
                    try:
                        if not self._OPS[op](offer[field], want):
                            return False
                    except (KeyError, TypeError):
                        return False
            return True

        found = [dict(o) for o in self.offers if ok(o)]
        for field, direction in reversed(query.get("order") or []):
            found.sort(key=lambda o, f=field: o.get(f) or 0, reverse=direction == "desc")
        return found[: int(query.get("limit") or len(found) or 1)]

    def _create(self, offer_id: str, body: Any) -> tuple[int, Any]:
        offer = next((o for o in self.offers if str(o["id"]) == offer_id and not o.get("rented")), None)
        if offer is None:
            return 404, {
                "success": False,
                "error": "no_such_ask",
                "msg": f"Offer {offer_id} is not available.",
            }
        if not isinstance(body, dict) or not body.get("image"):
            return 400, {"success": False, "error": "invalid_args", "msg": "image is required"}
        offer["rented"] = True
        new_id = str(self._next_id)
        self._next_id += 1
        self.created[new_id] = dict(body, offer_id=int(offer_id))
        self.instances[new_id] = "running"
        return 200, {"success": True, "new_contract": int(new_id)}


class FakeRunPod(_Fake):
    """``POST /graphql`` answering the SDK's podStop / podTerminate mutations.

    Also ``gpuTypes`` (get_gpus: id, displayName, memoryInGb of every entry in
    :attr:`gpu_types`; get_gpu: the full entry for ``input: {id}``) and
    ``podFindAndDeployOnDemand`` (create_pod: a new pod ``pod-<n>``; the
    mutation's input, env as a dict, is kept in :attr:`deployed`). A GPU type
    not in :attr:`gpu_types`, or one marked ``"available": False``, gets
    RunPod's "no longer any instances available" error.
    """

    _OP = re.compile(r"\b(podStop|podTerminate|podResume)\s*\(")
    _POD = re.compile(r'podId:\s*"([^"]*)"')
    _DEPLOY = re.compile(r"\bpodFindAndDeployOnDemand\s*\(")
    _GPU_TYPES = re.compile(r'\bgpuTypes\b(?:\s*\(\s*input:\s*\{\s*id:\s*"([^"]*)")?')
    _FIELD = re.compile(r'(\w+):\s*("(?:[^"\\]|\\.)*"|\[[^\]]*\]|[^,\s}]+)')
    _ENV = re.compile(r'\{\s*key:\s*"([^"]*)",\s*value:\s*"([^"]*)"\s*\}')
    NO_MACHINE = "There are no longer any instances available with the requested specifications."

    def __init__(self, api_key: str | None = None) -> None:
        super().__init__(api_key)
        self.pods: dict[str, str] = {}  # id -> desiredStatus
        self.terminated: set[str] = set()
        self.gpu_types: list[dict[str, Any]] = []
        self.deployed: dict[str, dict[str, Any]] = {}  # pod id -> the deploy input
        self._next_pod = 1

    def add_gpu_type(self, gpu_id: str, display: str, memory_gb: int, **fields: Any) -> dict[str, Any]:
        """A GPU type in both clouds (secure $0.69/h, community $0.44/h per GPU); ``fields`` win."""
        entry = {
            "id": gpu_id, "displayName": display, "memoryInGb": memory_gb, "maxGpuCount": 8,
            "manufacturer": "Nvidia", "secureCloud": True, "communityCloud": True, "securePrice": 0.69,
            "communityPrice": 0.44, "communitySpotPrice": 0.25, "secureSpotPrice": 0.35,
        }  # fmt: skip
        entry.update(fields)
        self.gpu_types.append(entry)
        return entry

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
        if self._DEPLOY.search(query):
            gpu = re.search(r'gpuTypeId:\s*"([^"]*)"', query)
            return "podFindAndDeployOnDemand", gpu.group(1) if gpu else ""
        gpu_types = self._GPU_TYPES.search(query)
        if gpu_types:
            return "gpuTypes", gpu_types.group(1) or ""
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
        if endpoint == "gpuTypes":
            return {"data": {"gpuTypes": []}}
        return {"data": {endpoint: None}}

    def serve(self, endpoint: str, target: str, body: Any = None) -> tuple[int, Any]:
        query = str(body.get("query") or "") if isinstance(body, dict) else ""
        if endpoint == "gpuTypes":
            return 200, {"data": {"gpuTypes": self._gpu_types(target)}}
        if endpoint == "podFindAndDeployOnDemand":
            return self._deploy(target, query)
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

    def _gpu_types(self, gpu_id: str) -> list[dict[str, Any]]:
        if not gpu_id:
            return [{k: t[k] for k in ("id", "displayName", "memoryInGb")} for t in self.gpu_types]
        out = []
        for t in self.gpu_types:
            if t["id"] == gpu_id:
                prices = [t[k] for k in ("securePrice", "communityPrice") if t.get(k)]
                lowest = {"minimumBidPrice": t.get("communitySpotPrice"), "uninterruptablePrice": min(prices)}
                out.append({k: v for k, v in t.items() if k != "available"} | {"lowestPrice": lowest})
        return out

    def _deploy(self, gpu_id: str, query: str) -> tuple[int, Any]:
        gpu = next((t for t in self.gpu_types if t["id"] == gpu_id), None)
        if gpu is None or gpu.get("available") is False:
            return 200, {"errors": [{"message": self.NO_MACHINE}], "data": {"podFindAndDeployOnDemand": None}}
        block = query[query.index("input:") :]
        fields = {k: v.strip('"') for k, v in self._FIELD.findall(self._ENV.sub("", block)) if k != "input"}
        pod_id = f"pod-{self._next_pod}"
        self._next_pod += 1
        self.deployed[pod_id] = dict(fields, env=dict(self._ENV.findall(block)), query=query)
        self.pods[pod_id] = "RUNNING"
        env = [{"key": k, "value": v} for k, v in self.deployed[pod_id]["env"].items()]
        pod = {"id": pod_id, "imageName": fields.get("imageName"), "env": env, "machineId": "m-fake-1"}
        return 200, {"data": {"podFindAndDeployOnDemand": pod | {"machine": {"podHostId": f"{pod_id}-host"}}}}
