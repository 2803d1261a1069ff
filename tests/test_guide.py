"""docs/adding-a-strategy.md runs as written: its files are written, its shell blocks are run.

Blocks with ``title="path"`` are written to that path in a fresh folder; ``bash`` blocks are run
there in order, each line as written. ``pip`` on the PATH is a shim that installs into a private
folder (no index, no dependencies) instead of this environment, so the test leaves the virtual
environment as it found it; ``unicon-bench`` is this environment's console script.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SUBPROCESS_THREADS
from unicon_bench.registry import _scan_module_source
from unicon_bench.results import read_result

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "adding-a-strategy.md"
FENCE = re.compile(r'^```(\w+)(?: title="([^"]+)")?\n(.*?)^```$', re.M | re.S)


def blocks() -> list[tuple[str, str | None, str]]:
    return [(m.group(1), m.group(2), m.group(3)) for m in FENCE.finditer(GUIDE.read_text(encoding="utf-8"))]


def test_guide_blocks_are_what_the_test_expects():
    found = blocks()
    files = {title for _, title, _ in found if title}
    assert {"l2-anchor/l2_anchor/strategy.py", "l2-anchor/pyproject.toml", "my_suite.yaml"} <= files
    assert [lang for lang, title, _ in found if not title and lang not in ("text", "bash")] == []
    assert any(lang == "bash" and "leaderboard" in code for lang, _, code in found)


def test_guide_strategy_registers_in_tree():
    """What ``unicon-bench ls`` reads from a file dropped into ``strategies/``."""
    source = next(code for _, title, code in blocks() if title == "l2-anchor/l2_anchor/strategy.py")
    (entry,) = _scan_module_source(source, "unicon_bench.strategies.l2_anchor", "register_strategy", "builtin")
    assert entry.name == "l2_anchor" and entry.attr == "L2Anchor"
    assert entry.compatible == ("domain", "modality", "task")
    assert entry.summary.startswith("L2 anchor:")


@pytest.mark.slow
def test_guide_runs_as_written(tmp_path, phantom_cache):
    work, site, shims = tmp_path / "work", tmp_path / "site", tmp_path / "bin"
    for d in (work, site, shims):
        d.mkdir()
    pip = shims / "pip"
    pip.write_text(
        "#!/bin/sh\n"
        '[ "$1" = install ] || { echo "this test only installs" >&2; exit 64; }\nshift\n'
        f'exec "{sys.executable}" -m pip install --no-deps --no-build-isolation --no-index '
        f'--disable-pip-version-check --quiet --target "{site}" "$@"\n'
    )
    pip.chmod(0o755)
    env = {
        **os.environ, **SUBPROCESS_THREADS, "COLUMNS": "200", "UNICON_BENCH_CACHE": str(phantom_cache),
        "PATH": os.pathsep.join([str(shims), str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p),
    }
    outputs = []
    for lang, title, code in blocks():
        if title:
            path = work / title
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(code, encoding="utf-8")
        elif lang == "bash":
            proc = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=work, env=env,
                                  capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, f"{code}\n{proc.stdout}\n{proc.stderr}"
            outputs.append((code, proc.stdout))

    listing = next(out for code, out in outputs if "ls strategies" in code)
    line = next(l for l in listing.splitlines() if l.startswith("l2_anchor"))
    assert "L2 anchor" in line and "plugin (l2-anchor)" in line and "domain,modality,task" in line

    results = sorted((work / "results" / "guide").rglob("*.json"))
    assert {p.parent.name for p in results} == {"naive", "l2_anchor"}
    runs = {r.strategy.name: r for r in map(read_result, results)}
    assert runs["l2_anchor"].strategy.params["strength"] == 0.05  # the suite's params reached the run
    assert runs["l2_anchor"].scenario.quick and runs["l2_anchor"].scenario.name == "ct_to_pet"

    board = next(out for code, out in outputs if "leaderboard" in code)
    board = board.replace("\\_", "_")  # markdown escapes underscores
    assert "### ct_to_pet v" in board and "(quick)" in board
    header, *rows = [[c.strip() for c in l.strip("|").split("|")] for l in board.splitlines() if l.startswith("| ")]
    rows = {r[0]: dict(zip(header, r)) for r in rows}
    assert set(rows) == {"l2_anchor", "naive"}, board
    assert rows["l2_anchor"]["seeds"] == "1" and rows["l2_anchor"]["paradigm"] == "continual"
    final = float(rows["l2_anchor"]["final avg"].strip("*").split()[0])  # "mean [bootstrap interval]"
    assert final == pytest.approx(runs["l2_anchor"].summary.final_average, abs=5e-4)  # the row is the run's
