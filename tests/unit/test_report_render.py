"""report.html's parts without a job: rendering hostile manifests, the sidecar parser, plots, stills.

The page's text is user-controlled (file names, error messages, notes) and the
sidecar is read back from a bucket, so both are attacked here: markup and quotes
in every field, fields of the wrong type, presigned URLs, base64 that is not an
image, a budget overrun, and metrics far larger than any plot should draw.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from batch.report import data as data_module
from batch.report.build import Collector, overlay_stills
from batch.report.data import Image, ReportData
from batch.report.render import href, render, scrub

SECRET = "X-Amz-Signature=deadbeefSECRET"
EVIL = "<script>window.__pwned=1</script>\"'><img src=x onerror=alert(1)> ünï 🎞"


def png(w: int = 8, h: int = 6) -> bytes:
    out = BytesIO()
    PILImage.new("RGB", (w, h), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


class Tags(HTMLParser):
    """Every start tag and its attributes, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags


def hostile_manifest() -> dict[str, Any]:
    return {
        "job_id": EVIL,
        "status": EVIL,
        "errors": [{"type": EVIL, "message": f"see https://h/x?{SECRET} {EVIL}", "hint": EVIL}],
        "inputs": [
            {
                "index": 1,
                "status": "failed",
                "source": {"url": f"https://host/in/{EVIL}.mp4?{SECRET}"},
                "media_in": {"width": EVIL, "height": 2, "codec": EVIL, "audio": [{"codec": EVIL}]},
                "stages": [{"name": EVIL, "steps": [{"rung": EVIL, "status": EVIL, "reason": EVIL}]}],
                "outputs": [{"kind": EVIL, "key": f"{EVIL}/x.mp4", "size": 10, "sha256": EVIL}],
                "notes": [EVIL, f"s3://b/k?{SECRET}"],
                "error": {"type": EVIL, "message": EVIL, "hint": EVIL},
            }
        ],
    }


def test_every_user_field_is_text_never_markup() -> None:
    html = render(
        hostile_manifest(), [{"reason": EVIL, "detail": EVIL}], {1: [Image(EVIL, "image/png", png())]}
    )
    found = tags(html)
    assert not [t for t, _ in found if t == "script"]  # no script element, anywhere
    assert all("onerror" not in a for _, a in found)  # no handler attribute smuggled in
    imgs = [a for t, a in found if t == "img"]
    assert len(imgs) == 1 and str(imgs[0]["src"]).startswith("data:image/png;base64,")
    assert html.count("&lt;script&gt;") >= 10  # the text is there, escaped
    assert SECRET not in html and "deadbeef" not in html  # presigned query strings redacted
    csp = next(a for t, a in found if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in str(csp["content"])  # and no script could run even if one slipped in


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("clip/clip.mp4", "./clip/clip.mp4"),
        ("javascript:alert(1)", "./javascript%3Aalert%281%29"),
        ("//evil.example/x", "./evil.example/x"),
        ("a b/c?d#e", "./a%20b/c%3Fd%23e"),
        ("../up", None),
        ("", None),
        (None, None),
        (7, None),
    ],
)
def test_output_links_stay_relative_plain_paths(key: object, expected: str | None) -> None:
    assert href(key) == expected


def test_scrub_redacts_every_url_in_free_text() -> None:
    said = scrub(f"GET https://u:pw@h/p?{SECRET} failed; then s3://b/k?{SECRET}")
    assert SECRET not in said and "pw" not in said and "https://" in said


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=30,
)
MANIFEST_KEYS = ["job_id", "status", "errors", "inputs", "counts", "shard", "runner", "watchdog", "exit_code"]
INPUT_KEYS = ["index", "status", "source", "media_in", "media_out", "stages", "encode", "outputs", "timings"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    top=st.dictionaries(st.sampled_from(MANIFEST_KEYS), json_values),
    entries=st.lists(
        st.dictionaries(st.sampled_from([*INPUT_KEYS, "notes", "error"]), json_values), max_size=3
    ),
    status=st.none() | st.dictionaries(st.text(max_size=8), json_values, max_size=4),
)
def test_any_manifest_renders(top: dict[str, Any], entries: list[dict[str, Any]], status: Any) -> None:
    """Missing and odd fields (a failed job's, a hand-edited one) give a page, never an exception."""
    manifest = {**top, "inputs": entries} if entries else top
    html = render(manifest, status=status)
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert not [t for t, _ in tags(html) if t == "script"]


def test_a_failed_job_with_an_input_without_output_and_no_previews() -> None:
    html = render(
        {
            "job_id": "j",
            "status": "failed",
            "errors": [{"type": "config_invalid", "message": "m", "hint": "fix it"}],
            "inputs": [{"index": 1, "status": "failed", "source": {"url": None}, "outputs": None}],
        },
    )
    assert "No output." in html and "fix it" in html and "input 1" in html and "<img" not in html


# --- the sidecar ---------------------------------------------------------------------------------------


def test_the_sidecar_round_trips() -> None:
    data = ReportData(notes=["n"], verdict={"reason": "verified", "action": "destroy"})
    assert data.add(2, Image("c", "image/png", png()))
    again = ReportData.from_json(data.to_json())
    assert again.images == data.images and again.notes == ["n"] and again.verdict == data.verdict


@pytest.mark.parametrize("raw", [b"", b"{ torn", b"[]", b'{"schema": "other/1"}', b"\xff\xfe", b"null"])
def test_a_sidecar_that_is_not_one_is_refused_whole(raw: bytes) -> None:
    with pytest.raises(ValueError, match=r"report-data\.json"):
        ReportData.from_json(raw)


def test_malformed_entries_are_dropped_with_a_note() -> None:
    svg = base64.b64encode(b"<svg onload=alert(1)>").decode()
    body = {
        "schema": data_module.SCHEMA,
        "images": {
            "1": [
                {"caption": "ok", "mime": "image/png", "base64": base64.b64encode(png()).decode()},
                {"caption": "svg claimed png", "mime": "image/png", "base64": svg},
                {"caption": "svg", "mime": "image/svg+xml", "base64": svg},
                {"caption": "not base64", "mime": "image/png", "base64": "@@@"},
                "nope",
            ],
            "x": [{"caption": "bad index"}],
            "2": "not a list",
        },
        "notes": ["kept", 5],
        "verdict": ["not", "a", "dict"],
    }
    got = ReportData.from_json(json.dumps(body).encode())
    assert [i.caption for i in got.images[1]] == ["ok"] and set(got.images) == {1}
    assert got.verdict is None and got.notes[0] == "kept" and len(got.notes) == 1 + 6


def test_the_image_budget_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    image = Image("big", "image/png", png(64, 64))
    monkeypatch.setattr(data_module, "MAX_INLINE_BYTES", 2 * len(image.data) + 1)
    data = ReportData()
    assert [data.add(i, image) for i in (1, 2, 3)] == [True, True, False]
    assert "left out of the page" in data.notes[0]


# --- plots and stills (the job's part) -----------------------------------------------------------------


def write_metrics(path: Path, frames: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(1)
    group = np.full(frames, None, dtype=object)
    group[100:140] = 0
    group[frames - 50 : frames - 10] = 1
    pq.write_table(
        pa.table({
            "time_s": np.arange(frames) / 30.0,
            "sharpness_rel": rng.random(frames).astype(np.float32),
            "brightness": (rng.random(frames) * 255).astype(np.float32),
            "motion": rng.random(frames).astype(np.float32),
            "scene_cut": rng.random(frames) > 0.999,
            "duplicate_group": pa.array(group, pa.int32()),
        }),
        path,
    )  # fmt: skip


def test_a_huge_metrics_file_gives_a_small_plot(tmp_path: Path) -> None:
    from batch.report.plots import analyze_plot

    write_metrics(tmp_path / "metrics.parquet", 400_000)  # 3.7 hours at 30 fps
    t0 = time.monotonic()
    image = analyze_plot(tmp_path / "metrics.parquet")
    assert time.monotonic() - t0 < 30
    assert image.startswith(b"\x89PNG") and len(image) < 400_000
    assert PILImage.open(BytesIO(image)).size == (900, 540)


def test_binning_keeps_a_single_spike() -> None:
    import numpy as np

    from batch.report.plots import bins

    values = np.zeros(1_000_001)
    values[777_777] = 9.0
    low, mean, high = bins(values, 1000)
    assert len(high) == 1000 and high.max() == 9.0 and low.min() == 0.0 and mean.max() < 9.0


def test_overlay_stills_are_jpegs_at_the_quarters(tmp_path: Path) -> None:
    video = tmp_path / "overlay.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10", "-frames:v", "20",
         "-pix_fmt", "yuv420p", str(video)], check=True,
    )  # fmt: skip
    stills = overlay_stills(video)
    assert [round(t, 1) for t, _ in stills] == [0.5, 1.0, 1.5]
    assert all(PILImage.open(BytesIO(j)).format == "JPEG" for _, j in stills)


def test_images_that_cannot_be_made_are_notes(tmp_path: Path) -> None:
    (tmp_path / "metrics.parquet").write_bytes(b"PAR1 torn")
    (tmp_path / "overlay.mp4").write_bytes(b"not a video")
    collector = Collector()
    collector.add_input(
        3,
        tmp_path / "absent.jpg",
        {"metrics": tmp_path / "metrics.parquet", "overlay": tmp_path / "overlay.mp4"},
    )
    assert collector.data.images == {}
    said = " ".join(collector.data.notes)
    assert re.search(r"input 3: no preview .*input 3: no metrics plot .*input 3: no overlay stills", said)
