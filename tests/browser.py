"""A real browser for the page tests: the system's headless Chromium, driven by playwright.

No browser is downloaded: playwright (pinned in requirements-dev.txt) launches
the Debian ``chromium`` that ``scripts/setup.sh --dev`` installs. A machine
without it fails the test, never skips it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

CANDIDATES = ("chromium", "chromium-browser")


def chromium_path() -> str:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("headless Chromium not found (no `chromium` on PATH): run `bash scripts/setup.sh --dev`")


@dataclass
class Seen:
    """What the browser made of a page."""

    url: str
    images: list[dict[str, Any]]  # {"src": first 40 chars, "width": naturalWidth, "complete": bool}
    text: str  # document.body.innerText
    title: str
    pwned: bool  # a script in the page ran (it must never)
    blank: bool  # the screenshot is a single colour
    screenshot: bytes
    failed_requests: list[str]


@contextmanager
def chromium() -> Iterator[Any]:
    """One headless Chromium (the system's) for a module's pages; each :func:`look` opens a fresh page."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def look(browser: Any, url: str, screenshot_path: Any = None) -> Seen:
    """Open ``url``, wait for every image, and report what the page shows."""
    from io import BytesIO

    from PIL import Image

    context = browser.new_context(viewport={"width": 1100, "height": 900})
    try:
        page = context.new_page()
        failed: list[str] = []
        page.on("requestfailed", lambda r: failed.append(r.url[:80]))
        response = page.goto(url, wait_until="load")
        assert response is None or response.ok, f"{url[:60]}...: HTTP {response.status}"
        page.wait_for_function("[...document.images].every(i => i.complete)", timeout=15_000)
        images = page.evaluate(
            "[...document.images].map(i => ({src: i.src.slice(0, 40), width: i.naturalWidth,"
            " complete: i.complete}))"
        )
        shot = page.screenshot(full_page=True, path=screenshot_path)
        seen = Seen(
            url=url,
            images=images,
            text=page.evaluate("document.body.innerText"),
            title=page.title(),
            pwned=bool(page.evaluate("window.__pwned === true")),
            blank=False,
            screenshot=shot,
            failed_requests=failed,
        )
    finally:
        context.close()
    colours = Image.open(BytesIO(shot)).convert("RGB").getcolors(maxcolors=4)
    seen.blank = colours is not None and len(colours) <= 1
    return seen


def assert_shows_everything(seen: Seen, images: int) -> None:
    """Not blank, every image decoded, no script ran."""
    assert not seen.blank, f"{seen.url}: the screenshot is one colour"
    assert len(seen.images) == images, seen.images
    broken = [i for i in seen.images if not (i["complete"] and i["width"] > 0)]
    assert not broken, f"images that did not load: {broken}"
    assert not seen.pwned, "a script in the page ran"
