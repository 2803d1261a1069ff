"""Suites: validation, resumable sweeps, failures that do not stop the others, incompatible pairs."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml

from conftest import error_lines
from unicon_bench import harness
from unicon_bench.errors import ConfigError
from unicon_bench.registry import STRATEGIES
from unicon_bench.results import read_result
from unicon_bench.sweep import load_suite, plan, run_suite

SUITES = Path(__file__).resolve().parents[2] / "suites"


def write_suite(path: Path, **fields) -> Path:
    data = {"name": "tiny", "strategies": ["naive", "joint"], "scenarios": ["ct_to_pet"], "seeds": [0], "quick": True,
            "out": str(path.parent / "results"), **fields}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_shipped_suites_cover_every_builtin(tmp_path):
    builtin_strategies = {e.name for e in STRATEGIES.entries() if e.origin == "builtin"}
    builtin_scenarios = {Path(str(f)).stem for f in resources.files("unicon_bench.scenarios").iterdir()
                         if str(f).endswith(".yaml")}
    default, quick = load_suite(SUITES / "default.yaml"), load_suite(SUITES / "quick.yaml")
    for suite in (default, quick):
        assert set(suite.strategy_names()) == builtin_strategies
        assert set(suite.scenario_names()) == builtin_scenarios
        assert suite.seed_list() == [0, 1, 2]
        assert Path(suite.out) == Path("results")
    assert (default.quick, quick.quick) == (False, True)
    report = plan(quick, out=tmp_path)  # nothing run yet: every compatible run is to do
    assert ("specialized", "ct_sites") in {(s, c) for s, c, _ in report.incompatible}
    assert len(report.todo) == 3 * (len(builtin_strategies) * len(builtin_scenarios) - len(report.incompatible))


@pytest.mark.slow
def test_sweep_runs_then_resumes(tmp_path, phantom_cache, torch_one_thread):
    suite = load_suite(write_suite(tmp_path / "tiny.yaml"))
    first = run_suite(suite, cache_dir=phantom_cache)
    assert first.ok and not first.existing and not first.incompatible
    assert sorted(run.strategy for run, _ in first.completed) == ["joint", "naive"]
    for run, path in first.completed:
        result = read_result(path)
        assert (result.strategy.name, result.seed, result.scenario.quick) == (run.strategy, 0, True)
        assert path.parent == tmp_path / "results" / "ct_to_pet" / run.strategy
    second = run_suite(suite, cache_dir=phantom_cache)
    assert second.ok and not second.completed and not second.todo
    assert sorted(p for _, p in second.existing) == sorted(p for _, p in first.completed)
    # a different parameter set, seed or quick flag is a different run
    changed = load_suite(write_suite(tmp_path / "changed.yaml", params={"naive": {"weight_decay": 0.01}}))
    assert [(r.strategy, r.seed) for r in plan(changed).todo] == [("naive", 0)]
    assert [r.seed for r in plan(load_suite(write_suite(tmp_path / "s1.yaml", seeds=[0, 1]))).todo] == [1, 1]
    assert len(plan(load_suite(write_suite(tmp_path / "full.yaml", quick=False))).todo) == 2


@pytest.mark.slow
def test_failing_run_is_reported_and_others_complete(tmp_path, phantom_cache, torch_one_thread, monkeypatch):
    real_execute = harness.execute

    def flaky(request, *args, **kwargs):
        if request.strategy == "naive":
            raise RuntimeError("simulated crash\nwith a second line")
        return real_execute(request, *args, **kwargs)

    monkeypatch.setattr(harness, "execute", flaky)
    suite = load_suite(write_suite(tmp_path / "tiny.yaml", strategies=["naive", "joint"], seeds=[3]))
    report = run_suite(suite, cache_dir=phantom_cache)
    assert not report.ok
    assert [(run.strategy, run.seed) for run, _, _ in report.failed] == [("naive", 3)]
    (_run, message, trace) = report.failed[0]
    assert message == "RuntimeError: simulated crash with a second line" and "Traceback" in trace
    assert [run.strategy for run, _ in report.completed] == ["joint"]
    assert read_result(report.completed[0][1]).strategy.name == "joint"

    # the command line reports it at the end and exits 1
    from typer.testing import CliRunner

    from unicon_bench.cli import app

    res = CliRunner().invoke(app, ["sweep", str(tmp_path / "tiny.yaml"), "--no-progress",
                                   "--cache-dir", str(phantom_cache)])
    assert res.exit_code == 1, res.output
    assert "FAILED: naive on ct_to_pet, seed 3: RuntimeError: simulated crash" in res.output
    assert "1 already done" in res.output  # joint was done above


def test_incompatible_pairs_are_skipped_and_listed(tmp_path):
    suite = load_suite(write_suite(tmp_path / "s.yaml", strategies=["specialized", "naive"],
                                   scenarios=["ct_sites", "ct_to_pet"], seeds=2))
    report = plan(suite)
    assert [(s, c) for s, c, _ in report.incompatible] == [("specialized", "ct_sites")]
    assert "does not support domain-incremental" in report.incompatible[0][2]
    assert sorted((r.strategy, r.scenario, r.seed) for r in report.todo) == [
        ("naive", "ct_sites", 0), ("naive", "ct_sites", 1), ("naive", "ct_to_pet", 0), ("naive", "ct_to_pet", 1),
        ("specialized", "ct_to_pet", 0), ("specialized", "ct_to_pet", 1)]


def test_cli_lists_incompatible_pairs_without_failing(cli, tmp_path):
    path = write_suite(tmp_path / "s.yaml", strategies=["specialized"], scenarios=["ct_sites"])
    proc = cli("sweep", path, "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "skipped (incompatible): specialized on ct_sites" in proc.stdout
    assert "0 ran" in proc.stdout and "0 failed" in proc.stdout
    assert not (tmp_path / "results").exists()


MALFORMED = {
    "yaml syntax": "name: x\nstrategies: [naive\n",
    "not a mapping": "- naive\n- joint\n",
    "missing seeds": "name: x\nstrategies: all\nscenarios: all\n",
    "unknown field": "name: x\nstrategies: all\nscenarios: all\nseeds: 1\nworkers: 4\n",
    "strategies neither list nor all": "name: x\nstrategies: some\nscenarios: all\nseeds: 1\n",
    "empty strategy list": "name: x\nstrategies: []\nscenarios: all\nseeds: 1\n",
    "unknown strategy": "name: x\nstrategies: [naive, nope]\nscenarios: all\nseeds: 1\n",
    "unknown scenario": "name: x\nstrategies: all\nscenarios: [nowhere]\nseeds: 1\n",
    "negative seed": "name: x\nstrategies: all\nscenarios: all\nseeds: [0, -1]\n",
    "zero seeds": "name: x\nstrategies: all\nscenarios: all\nseeds: 0\n",
    "quick not a bool": "name: x\nstrategies: all\nscenarios: all\nseeds: 1\nquick: maybe\n",
    "params for a strategy not in the suite": "name: x\nstrategies: [naive]\nscenarios: all\nseeds: 1\nparams: {ewc: {ewc_lambda: 1}}\n",
}


@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_suite_is_one_config_error(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="suite") as info:
        load_suite(path)
    assert "\n" not in str(info.value)


def test_bad_params_and_missing_file_are_config_errors(tmp_path):
    suite = load_suite(write_suite(tmp_path / "s.yaml", params={"naive": {"no_such_param": 1}}))
    with pytest.raises(ConfigError, match="naive"):
        plan(suite)
    with pytest.raises(ConfigError, match="cannot read suite file"):
        load_suite(tmp_path / "missing.yaml")


def test_cli_malformed_suite_is_one_line(cli, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nstrategies: [naive\n", encoding="utf-8")
    proc = cli("sweep", path, cwd=tmp_path)
    lines = error_lines(proc.stderr)
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: malformed suite YAML"), proc.stderr
