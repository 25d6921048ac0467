"""Reading config text into plain data, with bounds: it never crashes or hangs its caller.

The runner, the watchdog and the launcher all read the job config, so a
hostile or broken one must fail as a :class:`ConfigError` (exit 2), quickly:

* text over :data:`MAX_BYTES` is refused before YAML sees it;
* the events are scanned first, before anything is composed: nesting deeper
  than :data:`MAX_DEPTH` or more than :data:`MAX_NODES` values stops the
  scan at once. The parser is a state machine with an explicit stack, not
  recursion (the composer that runs next is recursive, so the scan is what
  keeps it shallow): ``[[[[...`` 100 000 deep stops at level 65. The scan
  and the composer use libyaml when PyYAML has it (about 10 times faster;
  PyYAML wheels bundle it), else PyYAML's pure-Python parser, same bounds;
* aliases (``*name``) are allowed, so ``<<: *defaults`` merges keep
  working, but the document they expand to is bounded: more than
  :data:`MAX_NODES` values once every alias is expanded, deeper than
  :data:`MAX_DEPTH` after expansion, or an alias inside its own anchor (a
  cycle) is refused before any Python object is built. A "billion laughs"
  bomb is a few hundred bytes that expands to 9**9 values: without this
  bound the config's rules and the job id's hash would walk every one of them;
* an integer longer than :data:`MAX_INT_CHARS` characters is refused
  (Python will not print an int over 4300 digits, and base-60
  ``1:00:00:...`` integers are quadratic to build);
* a key given twice in one mapping is refused (YAML forbids it; PyYAML
  would silently keep the last one, e.g. drop a whole ``limits:`` block);
  keys brought in by a ``<<:`` merge may still be overridden;
* every other failure (any YAML error, RecursionError, MemoryError,
  ValueError) becomes a ConfigError with a fix.

JSON is read as YAML (YAML 1.1 is nearly a superset of JSON), through the
same bounds. This module imports only ``yaml`` and ``batch.errors``: light
processes such as the watchdog use it.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from batch.errors import ConfigError

MAX_BYTES = 1 << 20  # 1 MiB of UTF-8: a job config is a few KiB
MAX_DEPTH = 64  # nested mappings/sequences; a job config uses about 6
MAX_NODES = 100_000  # values (scalars, sequences, mappings, keys), also once aliases are expanded
MAX_INT_CHARS = 100  # characters of an integer literal (2**63 is 19 digits, 0b + 64 bits is 66)

_SYNTAX_HINT = "fix the syntax; `--validate` checks a config without running it"
_ANCHOR_HINT = "use anchors and aliases only for small shared blocks such as <<: *defaults"


class _Refused(Exception):
    """A bound was hit: the message and hint of the ConfigError to raise."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def _at(item: Any) -> str:
    mark = getattr(item, "start_mark", None)
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""


def _bounded_int(loader: SafeConstructor, node: ScalarNode) -> int:
    text = str(node.value).replace("_", "")
    if len(text) > MAX_INT_CHARS:
        raise _Refused(
            f"has an integer of {len(text)} characters{_at(node)}; the limit is {MAX_INT_CHARS}",
            "numbers in a job config are small; quote the value if it is meant as text",
        )
    value: int = SafeConstructor.construct_yaml_int(loader, node)
    return value


def _with_bounded_ints(base: type) -> Any:
    loader: Any = type(f"Bounded{base.__name__}", (base,), {})  # PyYAML's loaders share no typed base
    loader.add_constructor("tag:yaml.org,2002:int", _bounded_int)
    return loader


PURE_LOADER: type = _with_bounded_ints(yaml.SafeLoader)
C_LOADER: type | None = (
    _with_bounded_ints(yaml.CSafeLoader) if getattr(yaml, "__with_libyaml__", False) else None
)
LOADER: type = C_LOADER or PURE_LOADER  # both apply the same bounds; tests run both


def scan_events(text: str, loader_class: type | None = None) -> None:
    """Refuse nesting deeper than MAX_DEPTH or more than MAX_NODES values, from the events alone.

    Stops at the first event past a bound, so a hostile text costs at most
    MAX_NODES events, never its full length.
    """
    loader = (loader_class or LOADER)(text)
    depth = values = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, (ScalarEvent, AliasEvent, SequenceStartEvent, MappingStartEvent)):
                values += 1
                if values > MAX_NODES:
                    raise _Refused(
                        f"has more than {MAX_NODES} values{_at(event)}",
                        "a job config has a few hundred values: name a folder of inputs as one prefix "
                        "(a URL ending in /) instead of listing every file",
                    )
            if isinstance(event, (SequenceStartEvent, MappingStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _Refused(
                        f"nests deeper than {MAX_DEPTH} levels{_at(event)}",
                        "a job config needs a handful of levels; look for an unclosed [ or {",
                    )
            elif isinstance(event, (SequenceEndEvent, MappingEndEvent)):
                depth -= 1
    finally:
        loader.dispose()


def _no_duplicate_keys(node: MappingNode) -> None:
    """``limits:`` twice would silently drop the first block: refuse it instead."""
    seen: set[tuple[str, str]] = set()
    for key, _value in node.value:
        if not isinstance(key, ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue
        if (key.tag, key.value) in seen:
            raise _Refused(
                f"has the key {str(key.value)[:80]!r} twice in one mapping{_at(key)}",
                "give each key once; the second would silently replace the first",
            )
        seen.add((key.tag, key.value))


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def check_expansion(root: Node) -> None:
    """Refuse a node graph that is cyclic, or too big or too deep with its aliases expanded.

    Iterative (an explicit stack) and memoised per node, so it is linear in
    the composed graph however often an alias repeats a node. Also refuses
    duplicate keys, once per mapping.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        kids = _children(node)
        if done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            collection = isinstance(node, (SequenceNode, MappingNode))
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0) if collection else 0
            if size[key] > MAX_NODES:
                raise _Refused(
                    f"expands to more than {MAX_NODES} values through its aliases (*name)",
                    _ANCHOR_HINT + ", or write the values out",
                )
            if depth[key] > MAX_DEPTH:
                raise _Refused(
                    f"nests deeper than {MAX_DEPTH} levels once its aliases (*name) are expanded",
                    _ANCHOR_HINT,
                )
            continue
        if key in size:
            continue
        if key in on_path:  # only ancestors are on the path: an alias inside its own anchor
            raise _Refused(
                f"has an alias inside its own anchor{_at(node)}: a structure that contains itself",
                "an alias (*name) may only refer to an anchor (&name) that is complete before it",
            )
        if isinstance(node, MappingNode):
            _no_duplicate_keys(node)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in kids if id(k) not in size)


def _load(text: str, loader_class: type) -> Any:
    scan_events(text, loader_class)  # before the recursive composer sees anything
    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        check_expansion(root)  # before any Python object is built
        return loader.construct_document(root)
    finally:
        loader.dispose()


def load_config_text(text: str, *, source: str = "<config>", loader_class: type | None = None) -> Any:
    """YAML or JSON text as plain data (dicts, lists, scalars), within the bounds above.

    Raises ConfigError, and only ConfigError, for anything it refuses or cannot read.
    """
    if not isinstance(text, str):
        raise ConfigError(f"config {source} is not text ({type(text).__name__})", hint="decode it as UTF-8")
    # a character is at least one byte: text that long is refused without encoding it
    size = len(text) if len(text) > MAX_BYTES else len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_BYTES:
        raise ConfigError(
            f"config {source} is {size} bytes; the limit is {MAX_BYTES} bytes (1 MiB)",
            hint="a job config is a few KiB: name a folder of inputs as one prefix "
            "(a URL ending in /) instead of listing every file",
        )
    try:
        return _load(text, loader_class or LOADER)
    except _Refused as e:
        raise ConfigError(f"config {source} {e.message}", hint=e.hint) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f"config {source} is not valid YAML or JSON{where}: {getattr(e, 'problem', None) or e}",
            hint=_SYNTAX_HINT,
        ) from None
    except (RecursionError, MemoryError) as e:
        raise ConfigError(
            f"config {source} is too complex to read ({type(e).__name__})",
            hint="write a plain config: a few levels of nesting, a few anchors",
        ) from None
    except (ValueError, TypeError) as e:  # e.g. a character libyaml cannot encode, a value Python cannot hold
        raise ConfigError(f"config {source} cannot be read: {e}", hint=_SYNTAX_HINT) from None
