"""The report template's byte-code cache: a hit skips compiling; a damaged, stale or read-only cache
never changes or fails a page (it only costs the compile)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
from jinja2.bccache import bc_magic

from batch.report import render as render_module
from batch.report.render import TEMPLATE, make_environment

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = {"job_id": "cache <b>", "status": "succeeded", "inputs": [{"index": 0, "input": "a.mp4"}]}


def page(env: jinja2.Environment, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(render_module, "_environment", lambda: env)
    return render_module.render(MANIFEST)


def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of templates compiled from source from now on (a cache hit compiles nothing)."""
    seen: list[str] = []
    original = jinja2.Environment.compile

    def spy(
        self: jinja2.Environment, source: str, name: str | None = None, *a: object, **k: object
    ) -> object:
        seen.append(str(name))
        return original(self, source, name, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(jinja2.Environment, "compile", spy)
    return seen


def test_a_second_process_loads_the_compiled_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    seen = compiles(monkeypatch)
    first = page(make_environment(cache), monkeypatch)
    assert seen == [TEMPLATE] and len(list(cache.iterdir())) == 1
    second = page(make_environment(cache), monkeypatch)  # a fresh environment, as a new process has
    assert seen == [TEMPLATE]  # not compiled again
    assert second == first == page(make_environment(None), monkeypatch)
    assert "cache &lt;b&gt;" in first  # still escaped when rendered from the cache


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"garbage",
        b"j2/" + os.urandom(64),
        # the right header, then a checksum pickle cut short or not a pickle (UnpicklingError, EOFError)
        *(bc_magic + tail for tail in (b"", b"\x80", b"\x80\x04\x95", b"garbage", os.urandom(64))),
    ],
)
def test_a_damaged_cache_file_is_compiled_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: bytes
) -> None:
    cache = tmp_path / "cache"
    good = page(make_environment(cache), monkeypatch)
    (entry,) = cache.iterdir()
    entry.write_bytes(damage)
    seen = compiles(monkeypatch)
    assert page(make_environment(cache), monkeypatch) == good
    assert seen == [TEMPLATE]


def test_an_edited_template_is_never_served_from_a_stale_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, templates = tmp_path / "cache", tmp_path / "templates"
    templates.mkdir()
    source = (Path(render_module.__file__).parent / TEMPLATE).read_text()
    (templates / TEMPLATE).write_text(source)

    def env() -> jinja2.Environment:
        e = make_environment(cache)
        e.loader = jinja2.FileSystemLoader(templates)
        return e

    assert "EDITED" not in page(env(), monkeypatch)
    (templates / TEMPLATE).write_text(source.replace("</body>", "<p>EDITED</p></body>"))
    assert "EDITED" in page(env(), monkeypatch)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_a_read_only_cache_directory_only_costs_the_compile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o555)
    try:
        assert "cache &lt;b&gt;" in page(make_environment(cache), monkeypatch)
        assert list(cache.iterdir()) == []
    finally:
        cache.chmod(0o755)


def test_a_cache_path_that_cannot_be_a_directory_only_costs_the_compile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")  # works as root too, unlike permissions
    assert "cache &lt;b&gt;" in page(make_environment(blocker / "cache"), monkeypatch)


def test_the_image_build_step_writes_a_cache_others_can_read(tmp_path: Path) -> None:
    """The Dockerfile's `python -m batch.report.render --compile` (run as root at build, read as `batch`)."""
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from pathlib import Path; import batch.report.render as r; "
         "r.compile_template(Path(sys.argv[1]))", str(tmp_path / "c")],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (entry,) = (tmp_path / "c").iterdir()
    assert entry.stat().st_mode & 0o044 == 0o044
    usage = subprocess.run(
        [sys.executable, "-m", "batch.report.render", "--bogus"], cwd=ROOT, capture_output=True, text=True
    )
    assert usage.returncode != 0 and "--compile" in usage.stderr
