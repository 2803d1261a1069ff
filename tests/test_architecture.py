"""docs/architecture.md holds against the code: every part it names exists, every "never" holds, no
import cycle, no module past 400 lines, at most 10 modules directly in ``unicon_bench/``."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
# source folder -> the package it installs as (pyproject's package-dir)
PACKAGES = {"unicon_bench": "unicon_bench", "strategies": "unicon_bench.strategies",
            "scenarios": "unicon_bench.scenarios", "leaderboard": "unicon_bench.leaderboard"}
MAX_LINES = 400
MAX_TOP_MODULES = 10


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = [p for p in path.relative_to(ROOT / folder).with_suffix("").parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports, at the top or inside a function, resolved to a known module."""
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = name.split(".")[: len(name.split(".")) - node.level + (1 if is_pkg else 0)]
                base = ".".join(up + ([base] if base else []))
            # `from pkg import module` depends on that module; `from pkg import name` on pkg
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # `from pkg import name`: the module pkg.name, else pkg
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _rows(heading: str) -> list[list[str]]:
    """The body rows of the first Markdown table under ``heading`` in the architecture page."""
    text = DOC.read_text(encoding="utf-8").split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [[c.strip() for c in r.strip("|").split("|")] for r in rows[2:]]


def test_the_page_names_parts_that_exist():
    parts = _rows("Parts")
    assert len(parts) >= 10
    for _part, where, _owns in parts:
        paths = re.findall(r"`([^`]+)`", where)
        assert paths, where
        for p in paths:
            assert (ROOT / p).exists(), f"docs/architecture.md names {p}, which does not exist"


def _owned(prefix: str, exempt: str | None) -> list[str]:
    return [m for m in MODULES if (m == prefix or m.startswith(prefix + "."))
            and not (exempt and (m == exempt or m.startswith(exempt + ".")))]


@pytest.mark.parametrize("importer, banned", [tuple(re.findall(r"`([^`]+)`", r[0])[:1] + re.findall(r"`([^`]+)`", r[1])[:1])
                                              for r in _rows("What never imports what")])
def test_never(importer, banned):
    # "every core module": the core package without its CLI and the plugin folders mapped into it
    core = importer == "unicon_bench"
    mods = _owned(importer, None)
    if core:
        mods = [m for m in mods if not m.startswith(("unicon_bench.cli", "unicon_bench.strategies",
                                                     "unicon_bench.scenarios", "unicon_bench.leaderboard"))]
    assert mods, f"no module is part of {importer}"
    bad = [f"{m} imports {t}" for m in mods for t in GRAPH[m] if t == banned or t.startswith(banned + ".")]
    assert not bad, bad


def test_the_rule_table_is_read():
    rules = _rows("What never imports what")
    assert len(rules) >= 10 and all(len(re.findall(r"`([^`]+)`", r[1])) == 1 for r in rules)


def test_no_import_cycle():
    """Tarjan's strongly connected components over every import (lazy ones included)."""
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10_000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_modules_are_small_and_the_core_is_not_flat():
    long = [f"{p.relative_to(ROOT)}: {n}" for p in MODULES.values()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert not long, long
    top = sorted(p.name for p in (ROOT / "unicon_bench").glob("*.py") if p.name != "__init__.py")
    assert len(top) <= MAX_TOP_MODULES, top


def test_help_and_ls_import_no_torch():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom unicon_bench.cli import app\n"
            "for args in (['--help'], ['ls', 'strategies'], ['ls', 'scenarios']):\n"
            "    r = CliRunner().invoke(app, args)\n    assert r.exit_code == 0, r.output\n"
            "print(sorted(m for m in ('torch', 'avalanche', 'monai') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT.parent)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
