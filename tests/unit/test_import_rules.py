"""The arrows between packages point one way: read from every import in batch/, lazy ones included.

A rule broken here is a layout bug (a loop, or a light program pulling in a
heavy one), not a style point: PID 1 and the watchdog must start when numpy
or torch are broken, and the weights registry must work without torch.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "batch"

IO_FORBIDS = ("batch.job", "batch.stages", "batch.models", "batch.watchdog", "batch.providers")
LIGHT_FORBIDS = ("batch.job.pipeline", "batch.job.runner", "batch.job.chunks", "batch.stages", "batch.models")
HEAVY = ("numpy", "PIL", "torch", "cv2")
PLOTS = ("matplotlib", "batch.report.plots", "batch.report.build")  # the job's part of report.html

# (the modules a rule covers, the imports they may never make, why)
RULES: list[tuple[str, tuple[str, ...], str]] = [
    ("batch.weights", ("torch", "batch.models", "batch.stages", "batch.job"), "weights work without torch"),
    ("batch.models", ("batch.stages", "batch.job", "batch.watchdog"), "models are below the stages"),
    ("batch.storage", IO_FORBIDS, "storage is IO, below every program"),
    ("batch.media", IO_FORBIDS, "media is IO, below every program"),
    ("batch.stages", ("batch.job", "batch.watchdog", "batch.providers"), "stages know nothing of the batch"),
    ("batch.providers", ("batch.job", "batch.stages", "batch.models", "batch.media", *HEAVY), "clouds"),
    (
        "batch.watchdog",
        (*LIGHT_FORBIDS, "batch.media", *HEAVY, *PLOTS),
        "it decides when the job is broken",
    ),
    # what the watchdog draws the page with: no plots, no media, nothing heavy
    *[
        (
            m,
            (*LIGHT_FORBIDS, "batch.job", "batch.media", "batch.watchdog", *HEAVY, *PLOTS),
            "the watchdog renders",
        )
        for m in ("batch.report.render", "batch.report.page", "batch.report.data")
    ],
    (
        "batch.report",
        ("batch.job", "batch.watchdog", "batch.stages", "batch.models", "torch"),
        "below the job",
    ),
    (
        "batch.config",
        ("batch.models", "batch.stages", "batch.job", "torch"),
        "config is below all",
    ),
    ("batch.errors", ("batch.", "torch"), "every module imports errors"),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, package: str) -> set[str]:
    """Every module ``path`` (in ``package``) imports, at any depth: lazy imports in functions count."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the package
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], base]).strip(".")
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def _package(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _covered(rule_scope: str) -> list[str]:
    return sorted(m for m in MODULES if m == rule_scope or m.startswith(rule_scope + "."))


def _hits(name: str, forbidden: str) -> bool:
    if forbidden.endswith("."):
        return name.startswith(forbidden)
    return name == forbidden or name.startswith(forbidden + ".")


@pytest.mark.parametrize(("scope", "forbidden", "why"), RULES, ids=[r[0] for r in RULES])
def test_no_import_points_back_up(scope: str, forbidden: tuple[str, ...], why: str) -> None:
    modules = _covered(scope)
    assert modules, f"the rule for {scope} covers no module: the layout moved, move the rule"
    broken = [
        f"{m} imports {name} ({why})"
        for m in modules
        for name in sorted(_imports(MODULES[m], _package(m)))
        if any(_hits(name, f) for f in forbidden)
    ]
    assert not broken, "\n".join(broken)


def test_matplotlib_is_imported_lazily() -> None:
    """Start-up time: matplotlib only inside the function that draws, never at a module's top."""
    top_level = [
        f"{m} imports {a.name if isinstance(node, ast.Import) else node.module} at its top"
        for m, path in MODULES.items()
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for a in (node.names if isinstance(node, ast.Import) else [node])
        if "matplotlib" in (a.name if isinstance(node, ast.Import) else node.module or "")
    ]
    assert not top_level, top_level


def test_the_rules_can_fail(tmp_path: Path) -> None:
    """The scanner sees a lazy import inside a function, the form a shortcut would take."""
    lazy = tmp_path / "lazy.py"
    lazy.write_text("def f():\n    import torch\n    from batch.job import runner\n")
    found = _imports(lazy, "batch.stages")
    assert {"torch", "batch.job", "batch.job.runner"} <= found
    assert any(_hits(n, "batch.job") for n in found)
    assert not _hits("batch.jobs", "batch.job")  # a prefix of a name is not the package
