"""Hostile configs: they must fail as ConfigError (exit 2), quickly, and never crash or hang.

Every config reader (runner, watchdog, launcher, ``--validate``) goes through
``parse_config``; a config that passes ``--validate`` must be one that can run.
"""

from __future__ import annotations

import ast
import copy
import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch import config_loader
from batch.cli import main as cli_main
from batch.config import JobConfig, parse_config
from batch.config_loader import MAX_BYTES, MAX_DEPTH, MAX_NODES, load_config_text
from batch.errors import EXIT_CONFIG, ConfigError

ROOT = Path(__file__).resolve().parents[2]
OK = "inputs: [s3://bucket/in/a.mp4]\noutput: s3://bucket/out/\n"

# the classic "billion laughs": 9 levels of 9 aliases, 9**9 strings from ~400 bytes
_LOL = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
for _prev, _name in zip("abcdefgh", "bcdefghi", strict=True):
    _LOL.append(f"{_name}: &{_name} [{', '.join([f'*{_prev}'] * 9)}]")
# keep_parts took any value (bool(...)) before, so the bomb passed validation and
# the job id's json.dumps walked all 9**9 strings (minutes)
BOMB = "inputs: [a.mp4]\noutput: {url: out/, keep_parts: &all {" + ", ".join(_LOL) + "}}\n"

DEEP_YAML = "inputs: [a.mp4]\noutput: out/\nx: " + "[" * 100_000 + "]" * 100_000 + "\n"
DEEP_JSON = '{"inputs": ["a.mp4"], "output": "out/", "x": ' + '{"a": ' * 100_000 + "1" + "}" * 100_001


# libyaml's parser when PyYAML has it (the default), and PyYAML's own: same bounds, same data
LOADERS = [c for c in (config_loader.C_LOADER, config_loader.PURE_LOADER) if c is not None]


@contextmanager
def _using(loader_class: type) -> Iterator[None]:
    saved = config_loader.LOADER
    config_loader.LOADER = loader_class
    try:
        yield
    finally:
        config_loader.LOADER = saved


@pytest.fixture(params=LOADERS, ids=lambda c: c.__name__)
def loader(request: pytest.FixtureRequest) -> Iterator[type]:
    with _using(request.param):
        yield request.param


def _cli(tmp_path: Path, text: str, name: str = "job.yaml") -> subprocess.CompletedProcess[str]:
    path = tmp_path / name
    path.write_text(text)
    return subprocess.run(
        [sys.executable, "run_with_config_batch_sync.py", "--config", str(path), "--validate"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


def _one_error(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == EXIT_CONFIG, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], proc.stderr[-2000:]


# --- the loader's bounds -----------------------------------------------------------------


@pytest.mark.parametrize("text", [DEEP_YAML, DEEP_JSON, "[" * 100_000], ids=["yaml", "json", "unclosed"])
def test_deep_nesting_is_refused_fast(loader: type, text: str) -> None:
    start = time.monotonic()
    with pytest.raises(ConfigError, match=f"nests deeper than {MAX_DEPTH} levels"):
        parse_config(text)
    assert time.monotonic() - start < 10


@pytest.mark.parametrize(("text", "name"), [(DEEP_YAML, "deep.yaml"), (DEEP_JSON, "deep.json")])
def test_deep_nesting_through_the_cli(tmp_path: Path, text: str, name: str) -> None:
    _one_error(_cli(tmp_path, text, name), "nests deeper than")


def test_alias_bomb_is_refused_fast(loader: type) -> None:
    start = time.monotonic()
    with pytest.raises(ConfigError, match=f"more than {MAX_NODES} values through its aliases"):
        parse_config(BOMB)
    assert time.monotonic() - start < 10


def test_alias_bomb_through_the_cli(tmp_path: Path) -> None:
    _one_error(_cli(tmp_path, BOMB), "through its aliases")


def test_aliases_deeper_than_the_limit_once_expanded_are_refused(loader: type) -> None:
    nested = "[" * 40 + "]" * 40
    text = OK + f"x: [&a {nested}, &b {'[' * 40}*a{']' * 40}]\n"  # 40 + 40 levels through *a
    with pytest.raises(ConfigError, match="deeper than 64 levels once its aliases"):
        parse_config(text)


def test_an_alias_inside_its_own_anchor_is_refused(loader: type) -> None:
    with pytest.raises(ConfigError, match="alias inside its own anchor"):
        parse_config("inputs: &i [a.mp4, *i]\noutput: out/")
    with pytest.raises(ConfigError, match="alias inside its own anchor"):
        parse_config("inputs: [a.mp4]\noutput: {url: out/, keep_parts: &k {x: *k}}")


def test_small_anchors_and_merges_keep_working(loader: type) -> None:
    cfg = parse_config(
        OK
        + "stages:\n"
        + "  - segment:\n"
        + "      objects:\n"
        + "        - {<<: &prompt {frame: 3, labels: [1]}, id: 1, points: [[10, 20]]}\n"
        + "        - {<<: *prompt, id: 2, points: [[30, 40]]}\n"
        + "        - {<<: *prompt, id: 3, frame: 5, points: [[5, 5]]}\n"
        + "  - upscale: &up {scale: 2}\n"
        + "  - upscale: *up\n"
    )
    objects = cfg.stages[0].objects  # type: ignore[union-attr]
    assert [(o.id, o.frame, o.labels) for o in objects] == [(1, 3, [1]), (2, 3, [1]), (3, 5, [1])]
    assert cfg.stages[1] == cfg.stages[2]


def test_a_config_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    lines = "".join(f"  - s3://bucket/in/{i:07d}.mp4\n" for i in range(2 * MAX_BYTES // 30))
    text = "inputs:\n" + lines + "output: s3://bucket/out/\n"
    assert len(text) > 2 * MAX_BYTES * 0.99
    with pytest.raises(ConfigError, match=rf"is \d+ bytes; the limit is {MAX_BYTES} bytes"):
        parse_config(text)
    _one_error(_cli(tmp_path, text), "the limit is 1048576 bytes")


def test_the_size_limit_counts_utf8_bytes() -> None:
    text = OK + "instance: {command: '" + "é" * (MAX_BYTES // 2 + 10) + "'}\n"  # fewer characters than bytes
    assert len(text) < MAX_BYTES
    with pytest.raises(ConfigError, match="the limit is"):
        parse_config(text)


def test_huge_integers_are_refused(loader: type) -> None:
    # 0x + 5000 digits used to pass (objects.id had no upper bound) and then crash the
    # job id's json.dumps: Python will not print an int over 4300 digits
    huge = "0x" + "f" * 5000
    text = OK + f"stages: [segment: {{objects: [{{id: {huge}, box: [0, 0, 1, 1]}}]}}]\n"
    with pytest.raises(ConfigError, match="an integer of 5002 characters"):
        parse_config(text)
    start = time.monotonic()
    with pytest.raises(ConfigError, match="an integer of"):  # base 60: quadratic to build
        parse_config(OK + "x: 1" + ":00" * 300_000 + "\n")
    assert time.monotonic() - start < 10


def test_a_key_given_twice_is_refused(loader: type) -> None:
    text = OK + "limits: {stall_s: 60}\nlimits: {max_runtime_s: 99999}\n"
    with pytest.raises(ConfigError, match="the key 'limits' twice"):
        parse_config(text)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("inputs: !!python/object/apply:os.system ['true']\noutput: o/", "not valid YAML or JSON"),
        ("inputs: *nothing\noutput: o/", "not valid YAML or JSON"),
        ("inputs: [a]\n---\noutput: o/", "not valid YAML or JSON"),
        ("inputs: [a]\x00\noutput: o/", "not valid YAML or JSON"),
    ],
)
def test_any_yaml_failure_is_a_config_error(loader: type, text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_config(text)


def test_too_many_values_stop_the_scan_early(loader: type) -> None:
    text = "x: [" + ",".join(["a"] * 400_000) + "]\n"
    start = time.monotonic()
    with pytest.raises(ConfigError, match=f"has more than {MAX_NODES} values"):
        parse_config(text)
    assert time.monotonic() - start < 10


def test_both_parsers_read_the_same_data() -> None:
    text = RICH + "x: [&a {<<: {k: 1}, j: 0x1f}, *a, 1:30, 2001-12-14, ~, .5, 'q', !!binary aGk=]\n"
    assert len({repr(load_config_text(text, loader_class=c)) for c in LOADERS}) == 1


def test_the_loader_imports_only_yaml_and_errors() -> None:
    tree = ast.parse(Path(config_loader.__file__).read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        + ("" if not isinstance(node, ast.ImportFrom) or node.module != "batch.errors" else ".errors")
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert imported <= {"__future__", "typing", "yaml", "batch.errors"}, imported


def test_plain_data_comes_back_unchanged(loader: type) -> None:
    assert load_config_text('{"a": [1, 2.5, null, true, "x"]}') == {"a": [1, 2.5, None, True, "x"]}
    assert load_config_text("") is None


# --- validation: a config that passes --validate can run ------------------------------------


@pytest.mark.parametrize(
    ("body", "path", "needle"),
    [
        ("inputs: [a.mp4]\noutput: ftp://host/out/", "output:", "unsupported URL scheme 'ftp'"),
        ("inputs: [a.mp4]\noutput: gs://bucket/out/", "output:", "unsupported URL scheme 'gs'"),
        ("inputs: [a.mp4]\noutput: s3:///out/", "output:", "without a bucket"),
        ("inputs: [a.mp4, gs://b/x.mp4]\noutput: out/", "inputs.1:", "unsupported URL scheme 'gs'"),
        ("inputs: ['ftp://h/x/']\noutput: out/", "inputs.0:", "unsupported URL scheme 'ftp'"),
        (
            "inputs: [a.mp4]\noutput: out/\nstages: [interpolate: {factor: 2, model: {url: 'gs://b/f.pkl', "
            "sha256: " + "a" * 64 + "}}]",
            "stages.0.interpolate.model:",
            "unsupported URL scheme 'gs'",
        ),
        (OK + "storage: {endpoint_url: not a url}", "storage.endpoint_url:", "e.g. https://"),
        (OK + "storage: {endpoint_url: 'localhost:9000'}", "storage.endpoint_url:", "http(s) URL"),
        (OK + "storage: {endpoint_url: 'http://'}", "storage.endpoint_url:", "with a host"),
        (OK + "storage: {endpoint_url: 'http://host:port'}", "storage.endpoint_url:", "not a URL"),
        ("inputs: [s3://b/in/]\noutput: s3://b/in/", "output:", "overlaps the input prefix inputs.0"),
        ("inputs: [s3://b/in/]\noutput: s3://b/in", "output:", "overlaps the input prefix inputs.0"),
        ("inputs: [s3://b/in/]\noutput: s3://b/in/out/", "output:", "overlaps the input prefix"),
        ("inputs: [a.mp4, s3://b/]\noutput: s3://b/out/", "output:", "overlaps the input prefix inputs.1"),
        ("inputs: [s3://b/out/x/]\noutput: s3://b/out/", "output:", "overlaps the input prefix"),
        ("inputs: [data/in/]\noutput: ./data/in/results", "output:", "overlaps the input prefix"),
        (OK + "limits: {stall_s: .inf}", "limits.stall_s:", "must be a finite number"),
        (OK + "limits: {max_runtime_s: .nan}", "limits.max_runtime_s:", "must be a finite number"),
        (OK + "watchdog: {upload_timeout_s: .inf}", "watchdog.upload_timeout_s:", "finite"),
        (OK + "watchdog: {shutdown_budget_s: .inf}", "watchdog.shutdown_budget_s:", "finite"),
        (OK + "watchdog: {shutdown_budget_s: 0}", "watchdog.shutdown_budget_s:", "greater than 0"),
        (OK + "stages: [analyze: {idle_s: .inf}]", "stages.0.analyze.idle_s:", "finite"),
        (OK + "stages: [interpolate: {factor: .inf}]", "stages.0.interpolate.factor:", "finite"),
        (
            OK + "stages: [interpolate: {factor: 2, scene_threshold: .nan}]",
            "stages.0.interpolate.scene_threshold:",
            "finite",
        ),
        ("inputs: [a.mp4]\noutput: {url: out/, keep_parts: 'false'}", "output.keep_parts:", "true or false"),
        (OK + "stages: [interpolate: {factor: 2, dedupe: 'false'}]", "interpolate.dedupe:", "quotes"),
        (OK + "stages: [interpolate: {factor: 2, dedupe: 0}]", "stages.0.interpolate.dedupe:", "true or"),
        (
            OK + "stages: [segment: {objects: [{id: 1, box: [0, 0, 9, 9]}], overlay: 'yes'}]",
            "stages.0.segment.overlay:",
            "true or false",
        ),
        (
            OK + "stages: [segment: {objects: [{id: 4294967296, box: [0, 0, 9, 9]}]}]",
            "stages.0.segment.objects.0.id:",
            "less than or equal to 2147483647",
        ),
        (OK + "limits: {stall_s: 5, heartbeat_s: 10}", "limits.heartbeat_s:", "at most half of stall_s"),
        (OK + "limits: {stall_s: 10, heartbeat_s: 6}", "limits.heartbeat_s:", "at most half of stall_s"),
        (OK + "limits: {heartbeat_s: 900}", "limits.heartbeat_s:", "at most half of stall_s (900)"),
    ],
)
def test_validate_refuses_what_cannot_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, path: str, needle: str
) -> None:
    config = tmp_path / "job.yaml"
    config.write_text(body)
    assert cli_main(["--config", str(config), "--validate", "-q"]) == EXIT_CONFIG
    err = capsys.readouterr().err
    problem = next((line for line in err.splitlines() if path in line), None)
    assert problem is not None and needle in problem, err


def test_validate_refuses_through_the_real_entrypoint(tmp_path: Path) -> None:
    proc = _cli(tmp_path, "inputs: [a.mp4]\noutput: gs://bucket/out/\nlimits: {stall_s: .inf}\n")
    assert proc.returncode == EXIT_CONFIG and "Traceback" not in proc.stderr
    assert "output: unsupported URL scheme 'gs'" in proc.stderr
    assert "limits.stall_s: must be a finite number" in proc.stderr


@pytest.mark.parametrize(
    "body",
    [
        "inputs: [s3://b/in/]\noutput: s3://b/inx/",  # a sibling, not inside
        "inputs: [s3://b/in/]\noutput: s3://other/in/",  # another bucket
        "inputs: [s3://b/out/a.mp4]\noutput: s3://b/out/",  # a file input under the output: fine
        "inputs: [data/in/]\noutput: data/out/",
        "inputs: [https://host/in/a.mp4]\noutput: s3://host/in/",  # http(s) is never an output
        OK + "storage: {endpoint_url: 'http://127.0.0.1:9000', region: us-east-1}",
        OK + "limits: {stall_s: 10, heartbeat_s: 5}",
        OK + "stages: [interpolate: {factor: 2, dedupe: true}]",
        "inputs: [a.mp4]\noutput: {url: out/, keep_parts: true}",
        OK + "watchdog: {shutdown_budget_s: 60}",
    ],
)
def test_what_can_run_still_validates(body: str) -> None:
    assert isinstance(parse_config(body), JobConfig)


def test_keep_parts_and_the_shutdown_budget_resolve() -> None:
    cfg = parse_config("inputs: [a.mp4]\noutput: {url: out/, keep_parts: true}")
    assert cfg.keep_parts is True and cfg.watchdog.shutdown_budget_s == 900
    assert parse_config("inputs: [a.mp4]\noutput: {url: out/, keep_parts: false}").keep_parts is False


@pytest.mark.parametrize("config", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_still_validate(config: Path) -> None:
    text = config.read_text()
    data = yaml.safe_load(text)
    if "inputs" not in data:  # configs/skypilot.yaml is a SkyPilot task, not a job config
        pytest.skip(f"{config.name} is not a job config")
    assert isinstance(parse_config(text, source=str(config)), JobConfig)


# --- properties: parse_config returns a JobConfig or raises ConfigError, nothing else ------


def _only_config_errors(text: str) -> None:
    try:
        result = parse_config(text)
    except ConfigError as e:
        assert e.exit_code == EXIT_CONFIG and str(e)
    else:
        assert isinstance(result, JobConfig)
        assert result.job_id
        for value in (result.limits.stall_s, result.limits.heartbeat_s, result.watchdog.shutdown_budget_s):
            assert math.isfinite(value)


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["false", "true", "yes", "0", "s3://b/in/", "ftp://x/", "60000/1001", "rife-4.25"])
)
_KEYS = st.text(max_size=8) | st.sampled_from(
    [
        "inputs",
        "output",
        "stages",
        "limits",
        "watchdog",
        "storage",
        "encode",
        "instance",
        "job_id",
        "interpolate",
        "upscale",
        "analyze",
        "segment",
        "factor",
        "scale",
        "stall_s",
        "heartbeat_s",
        "keep_parts",
        "url",
        "endpoint_url",
        "objects",
        "dedupe",
    ]
)


def _trees(keys: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        _SCALARS,
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(keys, kids, max_size=5),
        max_leaves=25,
    )


def _shared(data: Any, fan: int, levels: int) -> Any:
    """``data`` repeated fan**levels times through shared lists: safe_dump writes anchors and aliases."""
    for _ in range(levels):
        data = [data] * fan
    return data


@settings(max_examples=150, deadline=None, database=None)
@given(
    data=_trees(_KEYS | st.integers() | st.none() | st.booleans()),
    fan=st.integers(1, 9),
    levels=st.integers(0, 9),
    where=st.sampled_from(["top", "x", "keep_parts"]),
)
def test_random_yaml_structures_give_a_config_or_a_config_error(
    data: Any, fan: int, levels: int, where: str
) -> None:
    value = _shared(data, fan, levels)
    if where == "x":
        value = {"inputs": ["a.mp4"], "output": "out/", "x": value}
    elif where == "keep_parts":
        value = {"inputs": ["a.mp4"], "output": {"url": "out/", "keep_parts": value}}
    _only_config_errors(yaml.safe_dump(value))


@settings(max_examples=100, deadline=None, database=None)
@given(data=_trees(_KEYS), wrap=st.integers(0, 3000))
def test_random_json_structures_give_a_config_or_a_config_error(data: Any, wrap: int) -> None:
    _only_config_errors("[" * wrap + json.dumps(data) + "]" * wrap)  # deep JSON: RecursionError before


RICH = """
inputs: [s3://bucket/in/a.mp4, s3://bucket/more/, in/b.mp4]
stages:
  - interpolate: {factor: 2, model: rife-4.25, batch: 4, precision: fp16, flow_scale: 0.5,
                  scene_threshold: 0.3, dedupe: true, dedupe_threshold: 0.5}
  - upscale: {width: 1920, model: realesr-animevideov3, tile: 256, tile_overlap: 8}
  - analyze: {blur_threshold: 0.01, idle_s: 2.5}
  - segment: {objects: [{id: 1, frame: 0, points: [[10, 20]], labels: [1], box: [0, 0, 100, 100]}],
              window: 32, overlay: true}
encode: {codec: libx264, crf: 20, preset: fast, container: mkv}
output: {url: s3://bucket/out/rich/, keep_parts: true}
instance: {provider: command, on_success: destroy, on_failure: stop, command: "echo $INSTANCE_ACTION"}
limits: {max_runtime_s: 3600, stall_s: 600, chunk_s: 20, heartbeat_s: 5}
watchdog: {confirm: 2, interval_s: 3, upload_timeout_s: 60, shutdown_budget_s: 300}
storage: {endpoint_url: "https://s3.us-west-004.backblazeb2.com", region: us-west-004}
"""

# raw YAML spliced in for a value: each broke the old parser one way or another
_BOMB_VALUE = "[" + ", ".join(line.split(": ", 1)[1] for line in _LOL) + "]"
HOSTILE = [
    "[" * 2000 + "]" * 2000,  # RecursionError in the composer
    "0x" + "f" * 5000,  # an int Python will not print (json.dumps for the job id)
    "1" + ":00" * 2000,
    _BOMB_VALUE,  # 9**9 strings through aliases
    "&cycle [*cycle]",  # a list that contains itself
    "{a: 1, a: 2}",
    ".inf",
    "-.inf",
    ".nan",
    "'false'",
    "'no'",
    "'ftp://host/x/'",
    "gs://bucket/x/",
    "!!python/name:os.system",
    "*undefined",
    "!!binary aGVsbG8=",
    "!!set {a, b}",
    "2001-12-14t21:59:43.10-05:00",
]
_PLACEHOLDER = "HOSTILE_VALUE_PLACEHOLDER"


def _node_paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _node_paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _node_paths(v, (*path, i))
    return out


def _replace(root: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = root
    for p in path[:-1]:
        parent = parent[p]
    parent[path[-1]] = value
    return root


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutations_of_a_valid_config_give_a_config_or_a_config_error(data: st.DataObject) -> None:
    root = yaml.safe_load(RICH)
    assert isinstance(parse_config(RICH), JobConfig)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        path = data.draw(st.sampled_from(_node_paths(root)), label="path")
        op = data.draw(st.sampled_from(["replace", "delete", "add_key", "wrap", "hostile"]), label="op")
        node: Any = root
        for p in path:
            node = node[p]
        if op == "replace":
            root = _replace(root, path, data.draw(_trees(_KEYS), label="value"))
        elif op == "delete" and path:
            parent = root
            for p in path[:-1]:
                parent = parent[p]
            del parent[path[-1]]
        elif op == "add_key" and isinstance(node, dict):
            node[data.draw(_KEYS, label="key")] = data.draw(_SCALARS, label="value")
        elif op == "wrap":
            root = _replace(root, path, [copy.deepcopy(node)])
        elif op == "hostile":
            root = _replace(root, path, _PLACEHOLDER)
    text = yaml.safe_dump(root, default_flow_style=True, width=10**9)
    if _PLACEHOLDER in text:
        snippet = data.draw(st.sampled_from(HOSTILE), label="hostile")
        text = text.replace(_PLACEHOLDER, snippet, 1).replace(_PLACEHOLDER, "x")
    _only_config_errors(text)


@pytest.mark.parametrize("loader_class", LOADERS, ids=lambda c: c.__name__)
@settings(max_examples=150, deadline=None, database=None)
@given(text=st.text())
def test_random_text_gives_a_config_or_a_config_error(loader_class: type, text: str) -> None:
    with _using(loader_class):
        _only_config_errors(text)


_PUNCTUATION = st.sampled_from(list("[]{}:,-&*!|>?'\"#%@`\n \t\\ab01.x~<="))
_FRAGMENTS = st.sampled_from(["[", "{", "- ", "[a, ", "{a: ", "? ", "&x ", "*x ", "!!str "]) | st.text(
    alphabet=_PUNCTUATION, max_size=5
)


@pytest.mark.parametrize("loader_class", LOADERS, ids=lambda c: c.__name__)
@settings(max_examples=200, deadline=None, database=None)
@given(fragment=_FRAGMENTS, times=st.integers(0, 3000), tail=st.text(alphabet=_PUNCTUATION, max_size=60))
def test_repeated_yaml_fragments_give_a_config_or_a_config_error(
    loader_class: type, fragment: str, times: int, tail: str
) -> None:
    with _using(loader_class):
        _only_config_errors(OK + "x: " + fragment * times + tail)
