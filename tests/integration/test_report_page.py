"""report.html end to end: a real job writes it, a real watchdog adds its verdict, real Chromium opens it.

Hostile names (``<script>``, quotes, unicode) go through the whole path; the page
is opened from a file:// path and from a presigned SeaweedFS URL (with its query
string); faults injected into the page (BATCH_TEST_REPORT_FAILS, a missing or
corrupt sidecar, a page write that hangs) never fail the job or the stop.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import assert_shows_everything, chromium, look
from child_env import s3_child_env
from clips import make_clip

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = "cl<img src=x onerror=\"window.__pwned=true\"><script>ip 'q' ünï.mp4"


def run_job(config: Path, state: Path, **env: str) -> subprocess.CompletedProcess[str]:
    child = {k: v for k, v in os.environ.items() if k != "CONFIG_URL"} | env
    args = [sys.executable, str(ROOT / "run_with_config_batch_sync.py"), "--no-watchdog"]
    args += ["--config", str(config), "--state-dir", str(state), "--dry-run"]
    return subprocess.run(args, capture_output=True, text=True, env=child, cwd=ROOT, timeout=240)


def job_config(tmp: Path, inputs: list[Path], output: str) -> Path:
    config = tmp / "job.yaml"
    config.write_text(
        f"job_id: report\ninputs: {json.dumps([str(i) for i in inputs])}\noutput: {output}\n"
        "stages: [{interpolate: {factor: 2}}, {analyze: {}}]\n"
        "encode: {codec: libx264, preset: ultrafast}\n"
    )
    return config


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("report-inputs")
    hostile = make_clip(d / "hostile.mp4", size="64x48", frames=15).rename(d / HOSTILE)
    plain = make_clip(d / "plain.mp4", size="64x48", frames=15, audio=False)
    bad = d / "bad.mp4"
    bad.write_text("not a video\n")
    return [hostile, plain, bad]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, inputs: list[Path]) -> Path:
    """One real run: two inputs made (previews, metrics), one failed. Returns the output folder."""
    tmp = tmp_path_factory.mktemp("report-job")
    done = run_job(job_config(tmp, inputs, f"{tmp}/out/"), tmp / "state")
    assert done.returncode == 1, done.stderr[-3000:]  # the bad input fails; the others complete
    return tmp / "out"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', html)


def test_the_page_from_a_file_shows_every_image_and_no_script_runs(
    browser: Any, finished: Path, tmp_path: Path
) -> None:
    page = finished / "report.html"
    html = page.read_text()
    seen = look(browser, page.as_uri(), tmp_path / "page.png")
    assert_shows_everything(seen, images=4)  # per made input: the preview and the analyze plot
    assert HOSTILE.removesuffix(".mp4") in seen.text  # the name shown as text, not run as markup
    assert "<script" not in html.replace("&lt;script", "")
    assert "could not be read as a video" in seen.text and "fix:" in seen.text  # the error and its fix
    assert "partial" in seen.title
    links = hrefs(html)
    assert links and all(h.startswith("./") for h in links), links  # outputs linked relative to the page
    video = next(h for h in links if h.endswith("plain.mp4"))
    assert (finished / video).is_file()  # a relative link resolves to the output beside the page


def test_a_second_run_rewrites_the_page_with_the_reused_inputs_images(
    browser: Any, finished: Path, inputs: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    (out / "report-data.json").write_text("{ torn")  # an earlier sidecar, corrupt: replaced, not read
    before = (out / "report.html").read_text()
    done = run_job(job_config(tmp_path, inputs, f"{out}/"), tmp_path / "state")
    assert done.returncode == 1, done.stderr[-3000:]
    html = (out / "report.html").read_text()
    assert html != before and "skipped: the final output of an earlier run" in html
    assert_shows_everything(
        look(browser, (out / "report.html").as_uri()), images=4
    )  # read back from the bucket


def test_a_page_that_cannot_be_made_never_fails_the_job(inputs: list[Path], tmp_path: Path) -> None:
    done = run_job(
        job_config(tmp_path, inputs, f"{tmp_path}/out/"), tmp_path / "state", BATCH_TEST_REPORT_FAILS="1"
    )
    assert done.returncode == 1, done.stderr[-3000:]  # the same as with a page
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["counts"] == {"succeeded": 2, "failed": 1}
    assert not (tmp_path / "out" / "report.html").exists()
    assert "report.html: not made (InjectedFault" in done.stderr


def test_a_failed_job_still_has_a_page(browser: Any, tmp_path: Path) -> None:
    done = run_job(job_config(tmp_path, [tmp_path / "absent.mp4"], f"{tmp_path}/out/"), tmp_path / "state")
    assert done.returncode == 1
    seen = look(browser, (tmp_path / "out" / "report.html").as_uri())
    assert_shows_everything(seen, images=0)
    assert "failed" in seen.title and "does not exist" in seen.text and "No output." in seen.text


# --- the watchdog's verdict, in process, on a copy of a real job's output ---------------------------


def watch(out: Path, state: Path) -> tuple[int, str]:
    from batch.providers.local import LocalProvider
    from batch.watchdog.watch import Watchdog, WatchdogSettings

    manifest = json.loads((out / "manifest.json").read_text())
    settings = WatchdogSettings(
        state_dir=state, provider=LocalProvider(state), output=f"{out}/", job_id=manifest["job_id"],
        launch_id=manifest["launch_id"], runner_pid=None, confirm=1, interval_s=0.01, poll_s=0.01,
    )  # fmt: skip
    code = Watchdog(settings).run()
    return code, (state / "STOPPED").read_text()


@pytest.mark.parametrize("sidecar", ["kept", "missing", "corrupt", "not ours"])
def test_the_watchdog_adds_its_verdict(browser: Any, finished: Path, tmp_path: Path, sidecar: str) -> None:
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    data = out / "report-data.json"
    if sidecar == "missing":
        data.unlink()
    elif sidecar == "corrupt":
        data.write_bytes(data.read_bytes()[:1000])
    elif sidecar == "not ours":
        data.write_text(
            json.dumps({"schema": "x", "images": {"1": [{"mime": "text/html", "base64": "PHNjcmlwdD4="}]}})
        )
    code, stopped = watch(out, tmp_path / "state")
    assert code == 0 and "reason=verified" in stopped
    seen = look(browser, (out / "report.html").as_uri())
    assert "verified" in seen.text and "instance: stop (local)" in seen.text  # partial job: on_failure
    assert_shows_everything(seen, images=4 if sidecar == "kept" else 0)
    if sidecar != "kept":
        assert "the page has no images for its inputs" in seen.text  # says why, once
    again = json.loads(data.read_text())
    assert again["verdict"]["reason"] == "verified"  # kept for status.py --html


def test_a_verdict_that_cannot_be_written_never_holds_up_the_stop(
    finished: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    monkeypatch.setenv("BATCH_TEST_REPORT_FAILS", "1")
    code, stopped = watch(out, tmp_path / "state")
    assert code == 0 and "reason=verified" in stopped
    assert "No verdict yet" in (out / "report.html").read_text()  # the runner's page, untouched


def test_a_verdict_write_that_hangs_is_given_up_after_its_budget(
    finished: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that never answers stands in for a bucket that hangs (it cannot be made to hang here)."""
    from batch.report import page
    from batch.watchdog import watch as watch_module

    out = tmp_path / "out"
    shutil.copytree(finished, out)
    monkeypatch.setattr(watch_module, "REPORT_BUDGET_S", 0.5)
    monkeypatch.setattr(page, "add_verdict", lambda *a, **k: time.sleep(30))
    t0 = time.monotonic()
    code, stopped = watch(out, tmp_path / "state")
    assert code == 0 and "reason=verified" in stopped
    assert time.monotonic() - t0 < 10


# --- S3: the page behind a presigned URL, and status.py --html --------------------------------------


def test_the_page_opens_from_a_presigned_url_with_the_verdict(
    browser: Any, s3_server, s3_prefix, inputs: list[Path], tmp_path: Path
) -> None:
    output = f"{s3_prefix}out/"
    config = job_config(tmp_path, inputs[:2], output)
    config.write_text(config.read_text() + "watchdog: {confirm: 1, interval_s: 0.2, upload_timeout_s: 3}\n")
    args = [sys.executable, str(ROOT / "run_with_config_batch_sync.py"), "--config", str(config)]
    args += ["--state-dir", str(tmp_path / "state"), "--dry-run"]
    done = subprocess.run(args, env=s3_child_env(s3_server), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "reason=verified" in (tmp_path / "state" / "STOPPED").read_text()

    bucket, _, key = output.removeprefix("s3://").partition("/")
    client = s3_server.client()
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": f"{key}report.html"})
    assert "Signature=" in url  # a real presigned URL: the page must open with its query string
    html = client.get_object(Bucket=bucket, Key=f"{key}report.html")["Body"].read().decode()
    assert client.head_object(Bucket=bucket, Key=f"{key}report.html")["ContentType"].startswith("text/html")
    assert s3_server.secret_key not in html and "Signature" not in html and s3_server.access_key not in html
    seen = look(browser, url, tmp_path / "presigned.png")
    assert_shows_everything(seen, images=4)
    assert "verified" in seen.text and "instance: destroy (local)" in seen.text
    assert not seen.failed_requests, (
        seen.failed_requests
    )  # nothing else was fetched (it would lack a signature)

    # scripts/status.py --html: the same page from the prefix, from a laptop
    page = tmp_path / "status.html"
    status = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "status.py"), output, "--html", str(page)],
        env=s3_child_env(s3_server), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert status.returncode == 0, status.stderr
    again = look(browser, page.as_uri())
    assert_shows_everything(again, images=4)
    assert "verified" in again.text and again.text == seen.text
