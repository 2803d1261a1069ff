"""Third-party strategies and scenarios through entry points, installed as a real package."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import SUBPROCESS_THREADS
from unicon_bench.results import read_result

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "tiny-ext"
version = "0.0.1"

[project.entry-points."unicon_bench.strategies"]
tiny_ext = "tiny_ext_pkg.strat:TinyExt"

[project.entry-points."unicon_bench.scenarios"]
tiny_scenarios = "tiny_ext_pkg.scenarios"

[tool.setuptools]
packages = ["tiny_ext_pkg", "tiny_ext_pkg.scenarios"]

[tool.setuptools.package-data]
"tiny_ext_pkg.scenarios" = ["*.yaml"]
"""

STRATEGY = '''\
"""A strategy that lives outside unicon_bench."""

from __future__ import annotations

from unicon_bench import AvalancheStrategy, BaseParams, register_strategy


@register_strategy("tiny_ext")
class TinyExt(AvalancheStrategy):
    """Tiny external strategy: plain fine-tuning, shipped by a plugin package."""

    compatible = {"domain", "task", "modality"}
    trainable = "all parameters, every experience"
    params = BaseParams
'''

SCENARIO = """\
name: tiny_scen
version: 1
kind: modality
description: "Plugin scenario: PET then CT segmentation."
task_identity_at_test: true
experiences:
  - {name: pet_first, modality: PET, task: segmentation, site: A}
  - {name: ct_second, modality: CT, task: segmentation, site: A}
data: {source: phantom, n_train: 8, n_eval: 8, shape: [16, 16, 16], seed: 7}
train: {epochs: 1, batch_size: 4, lr: 0.001, eval_batch_size: 8}
"""


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("plugin")
    pkg = root / "tiny_ext"
    (pkg / "tiny_ext_pkg" / "scenarios").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(PYPROJECT)
    (pkg / "tiny_ext_pkg" / "__init__.py").write_text("")
    (pkg / "tiny_ext_pkg" / "strat.py").write_text(STRATEGY)
    (pkg / "tiny_ext_pkg" / "scenarios" / "__init__.py").write_text("")
    (pkg / "tiny_ext_pkg" / "scenarios" / "tiny_scen.yaml").write_text(SCENARIO)
    site = root / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--quiet", "--target", str(site), str(pkg)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert list(site.glob("tiny_ext-0.0.1.dist-info/entry_points.txt"))
    return site


@pytest.fixture
def plugin_env(plugin_site, phantom_cache):
    pythonpath = os.pathsep.join(p for p in (str(plugin_site), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": pythonpath, "UNICON_BENCH_CACHE": str(phantom_cache)}


def test_plugin_not_visible_without_install():
    """The plugin is installed only into a private folder: this process does not see it."""
    import unicon_bench

    assert "tiny_ext" not in unicon_bench.list_strategies()
    assert "tiny_scen" not in unicon_bench.list_scenarios()


def test_ls_shows_plugin_strategy(cli, plugin_env, tmp_path):
    proc = cli("ls", "strategies", cwd=tmp_path, env=plugin_env)
    assert proc.returncode == 0, proc.stderr
    line = next((l for l in proc.stdout.splitlines() if l.startswith("tiny_ext")), None)
    assert line is not None, proc.stdout
    assert "Tiny external strategy" in line
    assert "plugin (tiny-ext)" in line
    assert "domain,modality,task" in line
    for name in ("naive", "joint", "specialized", "ewc", "replay"):  # built-ins still listed
        assert name in proc.stdout


def test_ls_shows_plugin_scenario(cli, plugin_env, tmp_path):
    proc = cli("ls", "scenarios", cwd=tmp_path, env=plugin_env)
    assert proc.returncode == 0, proc.stderr
    line = next((l for l in proc.stdout.splitlines() if l.startswith("tiny_scen")), None)
    assert line is not None, proc.stdout
    assert "invalid" not in line
    assert "pet_first -> ct_second" in line
    assert "ct_to_pet" in proc.stdout


@pytest.mark.slow
def test_run_plugin_strategy(cli, plugin_env, tmp_path):
    out = tmp_path / "results"
    proc = cli(
        "run", "--strategy", "tiny_ext", "--scenario", "ct_to_pet", "--quick", "--out", out, "--no-progress",
        cwd=tmp_path, env=plugin_env, module=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    match = re.search(r"^result: (.+\.json)$", proc.stdout, re.M)
    assert match, proc.stdout
    path = Path(match.group(1))
    if not path.is_absolute():
        path = tmp_path / path
    assert path.parent == out / "ct_to_pet" / "tiny_ext"
    result = read_result(path)
    assert result.strategy.name == "tiny_ext"
    assert result.scenario.name == "ct_to_pet" and result.scenario.quick is True
    assert sum(e.metric == result.scenario.metrics[e.evaluated_on] for e in result.matrix) == 3 * 2
    assert all(e.value is None or 0.0 <= e.value <= 1.0 for e in result.matrix
               if e.metric == result.scenario.metrics[e.evaluated_on])
    assert len(result.cost.trainable_params) == 2 and all(p > 0 for p in result.cost.trainable_params)


@pytest.mark.slow
def test_plugin_scenario_and_strategy_in_process(plugin_site, phantom_cache, tmp_path):
    """The Python API sees both plugins too, and a run over the plugin scenario works."""
    code = textwrap.dedent(
        f"""
        import unicon_bench
        from unicon_bench import harness
        assert "tiny_ext" in unicon_bench.list_strategies()
        assert "tiny_scen" in unicon_bench.list_scenarios()
        spec = unicon_bench.get_scenario("tiny_scen")
        assert [e.name for e in spec.experiences] == ["pet_first", "ct_second"]
        result, path = harness.run("tiny_ext", "tiny_scen", out={str(tmp_path)!r}, cache_dir={str(phantom_cache)!r})
        print("MATRIX", sum(e.metric == result.scenario.metrics[e.evaluated_on] for e in result.matrix), result.scenario.name, result.strategy.name, path)
        """
    )
    env = {**os.environ, **SUBPROCESS_THREADS, "PYTHONPATH": str(plugin_site)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "MATRIX 6 tiny_scen tiny_ext" in proc.stdout
    files = list((tmp_path / "tiny_scen" / "tiny_ext").glob("*.json"))
    assert len(files) == 1
    assert read_result(files[0]).scenario.experiences == ["pet_first", "ct_second"]
