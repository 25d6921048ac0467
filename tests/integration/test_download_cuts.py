"""Downloads whose connection is cut mid-body, against a real socket server.

The server sends a Content-Length and then only half the body before it
closes the connection (FIN) or resets it (RST). A cut download is retried
under the storage retry policy: resumed with Range where the server allows
ranges, else started again; one that is always cut fails with a clear
StorageError once the attempts are spent, and leaves no partial file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from batch.errors import StorageError, StorageUnreachable
from batch.storage import open_url

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fast_retries")]

DATA = os.urandom(3 * 1024 * 1024 + 17)
ETAG = '"v1-' + hashlib.sha256(DATA).hexdigest()[:16] + '"'


@dataclass
class CutServer:
    url: str
    ranges: bool  # answers Range requests with 206 (and says Accept-Ranges: bytes)
    how: str  # "close" or "reset"
    cuts: int  # how many answers are cut (a large number: every one)
    requests: list[dict[str, str]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def _answer(self, *, head: bool) -> None:
        cfg: CutServer = self.server.cfg  # type: ignore[attr-defined]
        cfg.requests.append({"method": self.command, **{k.lower(): v for k, v in self.headers.items()}})
        start = 0
        wanted = self.headers.get("Range")
        if cfg.ranges and wanted and self.headers.get("If-Range") == ETAG:
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(DATA) - 1}/{len(DATA)}")
        else:
            self.send_response(200)
        body = DATA[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "video/mp4")
        self.send_header("ETag", ETAG)
        if cfg.ranges:
            self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if head:
            return
        gets = sum(r["method"] == "GET" for r in cfg.requests)
        if gets > cfg.cuts:
            self.wfile.write(body)
            return
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        if cfg.how == "reset":  # RST instead of FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the cut connections are the point


@pytest.fixture
def cut_server(request: pytest.FixtureRequest) -> Iterator[CutServer]:
    ranges, how, cuts = request.param
    httpd = _Server(("127.0.0.1", 0), _Handler)
    cfg = CutServer(f"http://127.0.0.1:{httpd.server_address[1]}/in/clip.mp4", ranges, how, cuts)
    httpd.cfg = cfg  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield cfg
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


ONCE = [(True, "close", 1), (True, "reset", 1), (False, "close", 1), (False, "reset", 1)]


@pytest.mark.parametrize("cut_server", ONCE, indirect=True, ids=lambda p: f"ranges={p[0]}-{p[1]}")
def test_a_download_cut_once_is_retried_and_complete(cut_server: CutServer, tmp_path: Path) -> None:
    dest = tmp_path / "work" / "source.mp4"
    info = open_url(cut_server.url).download(cut_server.url, dest)
    assert dest.read_bytes() == DATA
    assert info.size == len(DATA) and info.sha256 == hashlib.sha256(DATA).hexdigest()
    gets = [r for r in cut_server.requests if r["method"] == "GET"]
    assert len(gets) == 2
    assert "range" not in gets[0]
    if cut_server.ranges and cut_server.how == "close":  # resumed where the first answer stopped
        first = int(gets[1]["range"].removeprefix("bytes=").removesuffix("-"))
        assert 0 < first <= len(DATA) // 2 and gets[1]["if-range"] == ETAG  # what had arrived intact
    elif cut_server.ranges:  # a reset may discard bytes in flight: resume from what arrived, maybe none
        if "range" in gets[1]:
            first = int(gets[1]["range"].removeprefix("bytes=").removesuffix("-"))
            assert 0 < first <= len(DATA) // 2 and gets[1]["if-range"] == ETAG
    else:  # no ranges: downloaded again from the start
        assert "range" not in gets[1]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["source.mp4"]  # no partial file left


@pytest.mark.parametrize("cut_server", ONCE[:1] + ONCE[2:3], indirect=True, ids=["ranges", "no-ranges"])
def test_read_bytes_cut_once_is_retried(cut_server: CutServer) -> None:
    assert open_url(cut_server.url).read_bytes(cut_server.url) == DATA


ALWAYS = [(True, "close", 10**6), (False, "reset", 10**6)]


@pytest.mark.parametrize("cut_server", ALWAYS, indirect=True, ids=["ranges-close", "no-ranges-reset"])
def test_a_download_always_cut_fails_with_a_storage_error(
    cut_server: CutServer, tmp_path: Path, fast_retries: int
) -> None:
    dest = tmp_path / "work" / "source.mp4"
    with pytest.raises(StorageError) as caught:
        open_url(cut_server.url).download(cut_server.url, dest)
    err = caught.value
    assert isinstance(err, StorageUnreachable)  # the kind that is retried, not an internal error
    assert "cut" in err.message and "/in/clip.mp4" in err.message
    assert err.fields["attempts"] == fast_retries
    assert sum(r["method"] == "GET" for r in cut_server.requests) == fast_retries
    assert not dest.exists() and list(dest.parent.iterdir()) == []


# --- S3: a TCP proxy in front of SeaweedFS cuts the object's body --------------------------


class CutProxy:
    """Forwards 127.0.0.1:<port> to the S3 server; the first ``cuts`` connections whose
    answers pass ``cut_after`` bytes (a GET of a large object) are closed there, mid-body."""

    def __init__(self, upstream: tuple[str, int], cut_after: int, cuts: int) -> None:
        self.upstream, self.cut_after, self.cuts_left, self.cuts_done = upstream, cut_after, cuts, 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, answers: bool) -> None:
        sent = 0
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                sent += len(data)
                if answers and sent > self.cut_after:
                    with self.lock:
                        cut = self.cuts_left > 0
                        if cut:
                            self.cuts_left -= 1
                            self.cuts_done += 1
                    if cut:
                        break
        except OSError:
            pass
        for s in (src, dst):  # shutdown wakes the other direction's recv; a close alone would not
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.closed = True
        self.listener.close()


@pytest.fixture
def s3_object(s3_env, s3_prefix) -> str:
    """A 3 MiB object written behind the store's back (no sha256 metadata); its URL."""
    bucket, _, key = s3_prefix.removeprefix("s3://").partition("/")
    s3_env.client().put_object(Bucket=bucket, Key=f"{key}in/clip.mp4", Body=DATA)
    return f"{s3_prefix}in/clip.mp4"


@pytest.mark.parametrize("cuts", [1, 10**6], ids=["cut-once", "always-cut"])
def test_s3_download_cut_mid_body(
    s3_env, s3_object: str, cuts: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fast_retries: int
) -> None:
    from batch.storage import clear_cache

    host, port = s3_env.endpoint_url.removeprefix("http://").split(":")
    proxy = CutProxy((host, int(port)), cut_after=256 * 1024, cuts=cuts)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    clear_cache()
    dest = tmp_path / "work" / "source.mp4"
    try:
        if cuts == 1:
            info = open_url(s3_object).download(s3_object, dest)
            assert dest.read_bytes() == DATA and info.sha256 == hashlib.sha256(DATA).hexdigest()
            assert proxy.cuts_done == 1
        else:
            with pytest.raises(StorageUnreachable) as caught:
                open_url(s3_object).download(s3_object, dest)
            assert "clip.mp4" in caught.value.message and caught.value.fields["attempts"] == fast_retries
            assert not dest.exists() and list(dest.parent.iterdir()) == []
    finally:
        proxy.close()
        clear_cache()
