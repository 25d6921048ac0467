"""No secret reaches a file, an object, a log or a command line.

The real entrypoint runs with distinctive fake credentials in its environment
and presigned-style http inputs (a signature, a credential and a session
token in the query, user info before the host; http.server ignores both).
After each run every file under the state dir (names and contents, previous/
included), every object under the output prefix (keys and bodies), the
process's stdout and stderr, and the argv of every ffmpeg/ffprobe call
(recorded by wrappers first on PATH) are searched for each secret string.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from child_env import s3_child_env
from clips import SLOW_STAGES, make_clip

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FAST = "watchdog: {confirm: 2, interval_s: 0.5, upload_timeout_s: 3}"

# What a presigned URL carries; each value is searched for on its own.
SIGNATURE = "deadbeefSIGSECRET0451"
CREDENTIAL = "AKIAFAKECRED7731"
TOKEN = "TOKENSECRETzz81"
PASSWORD = "PASSWORDSECRET66"
LONG_TOKEN = "LONGTOKEN" + "Qx7" * 1400  # ~4 KiB, no "/": once a file name too long to create
QUERY = (
    f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={CREDENTIAL}%2F20261202%2Fus-east-1%2Fs3%2Faws4_request"
    f"&X-Amz-Date=20261202T000000Z&X-Amz-Signature={SIGNATURE}&X-Amz-Security-Token={TOKEN}/with/slashes"
)
# without a "/" the whole query once ended up in the local file's "suffix", hence in ffmpeg's argv
FLAT_QUERY = QUERY.removesuffix("/with/slashes")
ENV_SECRETS = {
    "B2_APPLICATION_KEY_ID": "B2KEYIDSECRET5521",
    "B2_APPLICATION_KEY": "B2APPKEYSECRET9k3",
    "CONTAINER_API_KEY": "CONTAINERKEYSECRET4q",
    "RUNPOD_API_KEY": "RUNPODKEYSECRET8w2",
    "VAST_API_KEY": "VASTKEYSECRET3e9",
}
SESSION_TOKEN = "SESSIONTOKENSECRET77x"  # SeaweedFS refuses any session token: a run of its own
URL_SECRETS = [SIGNATURE, CREDENTIAL, TOKEN, PASSWORD, LONG_TOKEN[:40]]


@pytest.fixture
def spy_path(tmp_path: Path) -> tuple[str, Path]:
    """A PATH whose ffmpeg and ffprobe record their argv (one line per call) and run the real ones."""
    bin_dir, log = tmp_path / "spy-bin", tmp_path / "ffmpeg-argv.log"
    bin_dir.mkdir()
    for name in ("ffmpeg", "ffprobe"):
        real = shutil.which(name)
        assert real, f"{name} not installed"
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nprintf "%s\\n" "{name} $*" >> "{log}"\nexec "{real}" "$@"\n')
        script.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", log


class Run:
    """One run of the entrypoint (dry run) in a given state dir."""

    def __init__(self, tmp: Path, state: Path, server, body: str, path: str, **env: str) -> None:
        self.state = state
        config = tmp / f"job-{time.monotonic_ns()}.yaml"
        config.write_text(body)
        args = [sys.executable, str(ROOT / "run_with_config_batch_sync.py"), "--config", str(config)]
        args += ["--state-dir", str(state), "--dry-run"]
        full = s3_child_env(server, PATH=path, **ENV_SECRETS, **env)
        self.proc = subprocess.Popen(args, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def wait(self, timeout: float = 240) -> int:
        self.stdout, self.stderr = self.proc.communicate(timeout=timeout)
        return self.proc.returncode

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"the job ended first: {self.proc.stderr.read().decode()[-3000:]}")
            time.sleep(0.05)
        raise AssertionError("condition not reached in time")


def job_body(prefix: str, inputs: list[str], extra: str = "") -> str:
    return (
        f"job_id: secrets\ninputs: {json.dumps(inputs)}\n"
        f"encode: {{codec: libx264, preset: ultrafast}}\noutput: {prefix}out/\n{FAST}\n{extra}\n"
    )


def served(http_server, name: str, data: bytes | Path) -> str:
    """Serve ``data`` at /in/<name>; return the URL's scheme://host:port."""
    dest = http_server.root / "in" / name
    dest.parent.mkdir(exist_ok=True)
    if isinstance(data, Path):
        shutil.copyfile(data, dest)
    else:
        dest.write_bytes(data)
    return http_server.base_url


def leaks(where: str, blob: bytes, secrets: list[str]) -> list[str]:
    return [f"{s[:12]}... in {where}" for s in secrets if s.encode() in blob]


def assert_no_leaks(
    run: Run, server, prefix: str, argv_log: Path, secrets: list[str], *, expect_objects: bool = True
) -> None:
    found: list[str] = []
    found += leaks("stdout", run.stdout, secrets) + leaks("stderr", run.stderr, secrets)
    files = [p for p in run.state.rglob("*")]
    assert any(p.name == "runner.log" for p in files), sorted(map(str, files))
    for path in files:
        rel = str(path.relative_to(run.state))
        found += leaks(f"state file name {rel[:80]}", rel.encode(), secrets)
        if path.is_file():
            found += leaks(f"state file {rel[:80]}", path.read_bytes(), secrets)
    found += leaks("ffmpeg/ffprobe argv", argv_log.read_bytes() if argv_log.exists() else b"", secrets)
    client = server.client()
    bucket, _, key_prefix = prefix.removeprefix("s3://").partition("/")
    keys = [
        o["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key_prefix)
        for o in page.get("Contents", [])
    ]
    if expect_objects:
        assert any(k.endswith("manifest.json") for k in keys), keys
    for key in keys:
        found += leaks(f"object key {key[:80]}", key.encode(), secrets)
        obj = client.get_object(Bucket=bucket, Key=key)
        found += leaks(f"object {key[:80]}", obj["Body"].read(), secrets)
        found += leaks(f"metadata of {key[:80]}", json.dumps(obj.get("Metadata", {})).encode(), secrets)
    assert not found, found


def all_secrets(server, *extra: str) -> list[str]:
    return [*URL_SECRETS, *ENV_SECRETS.values(), server.secret_key, *extra]


def manifest(run: Run) -> dict:
    return json.loads((run.state / "manifest.json").read_text())


def test_success_keeps_every_secret_out(s3_server, s3_prefix, small_clip, http_server, spy_path, tmp_path):
    path, argv_log = spy_path
    base = served(http_server, "clip.mp4", small_clip)
    served(http_server, "other.mp4", small_clip)
    served(http_server, "long.mp4", small_clip)
    host = base.removeprefix("http://")
    inputs = [
        f"{base}/in/clip.mp4?{QUERY}",
        f"http://user:{PASSWORD}@{host}/in/other.mp4?{FLAT_QUERY}#frag",
        f"{base}/in/long.mp4?X-Amz-Signature={SIGNATURE}&X-Amz-Security-Token={LONG_TOKEN}",
    ]
    run = Run(tmp_path, tmp_path / "state", s3_server, job_body(s3_prefix, inputs), path)
    assert run.wait() == 0, run.stderr.decode()[-3000:]
    m = manifest(run)
    assert [i["status"] for i in m["inputs"]] == ["succeeded"] * 3  # the 4 KiB token fails nothing
    assert [i["outputs"][0]["key"].split("/")[0] for i in m["inputs"]] == ["clip", "other", "long"]
    assert "ffprobe" in argv_log.read_text() and "ffmpeg" in argv_log.read_text()
    assert_no_leaks(run, s3_server, s3_prefix, argv_log, all_secrets(s3_server))


def test_failures_and_a_killed_runner_keep_every_secret_out(
    s3_server, s3_prefix, small_clip, clip_dir, http_server, spy_path, tmp_path
) -> None:
    path, argv_log = spy_path
    state = tmp_path / "state"
    slow = make_clip(clip_dir / "secrets-slow.mp4", size="640x360", frames=600, audio=False)
    base = served(http_server, "slow.mp4", slow)
    served(http_server, "clip.mp4", small_clip)
    served(http_server, "corrupt.mp4", os.urandom(64 * 1024))
    secrets = all_secrets(s3_server)

    # 1. the runner is killed mid-input: the watchdog's failure manifest carries its log tail
    killed = Run(
        tmp_path, state, s3_server,
        job_body(s3_prefix, [f"{base}/in/slow.mp4?{FLAT_QUERY}"], f"stages: {SLOW_STAGES}"), path,
    )  # fmt: skip

    def processing() -> bool:
        try:
            return json.loads((state / "status.json").read_text()).get("frames_done", 0) > 5
        except (OSError, ValueError):
            return False

    killed.wait_for(processing)
    assert list((state / "work").iterdir())  # the downloaded source is on disk, by a safe name
    os.kill(int((state / "runner.pid").read_text()), signal.SIGKILL)
    assert killed.wait() == 4
    assert_no_leaks(killed, s3_server, s3_prefix, argv_log, secrets)

    # 2. same state dir (the killed run moves to previous/): a 404 and a corrupt input
    inputs = [
        f"{base}/in/clip.mp4?{FLAT_QUERY}",
        f"{base}/in/missing.mp4?{FLAT_QUERY}",
        f"http://user:{PASSWORD}@{base.removeprefix('http://')}/in/corrupt.mp4?{FLAT_QUERY}",
    ]
    failed = Run(tmp_path, state, s3_server, job_body(s3_prefix, inputs), path)
    assert failed.wait() == 1, failed.stderr.decode()[-3000:]
    assert [i["status"] for i in manifest(failed)["inputs"]] == ["succeeded", "failed", "failed"]
    assert (state / "previous").is_dir()
    assert_no_leaks(failed, s3_server, s3_prefix, argv_log, secrets)


def test_a_session_token_the_store_refuses_stays_out(
    s3_server, s3_prefix, small_clip, http_server, spy_path, tmp_path
) -> None:
    path, argv_log = spy_path
    base = served(http_server, "clip.mp4", small_clip)
    body = job_body(s3_prefix, [f"{base}/in/clip.mp4?{FLAT_QUERY}"])
    run = Run(tmp_path, tmp_path / "state", s3_server, body, path, AWS_SESSION_TOKEN=SESSION_TOKEN)
    assert run.wait() == 3, run.stderr.decode()[-3000:]  # the bucket refused the credentials
    secrets = all_secrets(s3_server, SESSION_TOKEN)
    assert_no_leaks(run, s3_server, s3_prefix, argv_log, secrets, expect_objects=False)


def _cmdlines() -> list[bytes]:
    out = []
    for p in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            out.append(p.read_bytes())
        except OSError:
            continue
    return out


def test_a_presigned_config_url_never_reaches_a_command_line(
    s3_server, s3_prefix, small_clip, http_server, spy_path, tmp_path
) -> None:
    """Given as CONFIG_URL, the config URL's signature is in no process's argv while the job runs."""
    path, argv_log = spy_path
    base = served(http_server, "job.yaml", job_body(s3_prefix, [str(small_clip)]).encode())
    config_url = f"{base}/in/job.yaml?{FLAT_QUERY}"
    state = tmp_path / "state"
    env = s3_child_env(
        s3_server, PATH=path, CONFIG_URL=config_url, BATCH_TEST_HANG_AT_FRAME="3", **ENV_SECRETS
    )
    env["CONFIG_URL"] = config_url  # s3_child_env drops CONFIG_URL from the parent; this is the test's own
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "run_with_config_batch_sync.py"), "--state-dir", str(state), "--dry-run"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        seen_runner = False
        while time.monotonic() < deadline and not seen_runner:
            seen_runner = (state / "runner.pid").exists() and (state / "monitor.pid").exists()
            time.sleep(0.1)
        assert seen_runner, "the runner and the watchdog never started"
        for _ in range(20):  # while both run, and ffmpeg with them
            found = [c for c in _cmdlines() if SIGNATURE.encode() in c or CREDENTIAL.encode() in c]
            assert not found, [c.replace(b"\0", b" ")[:200] for c in found]
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    found = leaks("ffmpeg/ffprobe argv", argv_log.read_bytes() if argv_log.exists() else b"", URL_SECRETS)
    assert not found, found
