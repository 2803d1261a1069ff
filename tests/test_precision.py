"""Precision (fp32 / bf16) beyond `run` (issue #23): sweep, tune and pretrain take it, a sweep never counts a
result of another precision as done, a stage 0 of another precision is never reused, and the leaderboard
and `check` never pool precisions.

The leaderboard and check tests use the committed schema-1 result (``tests/fixtures``) with
``env.precision`` and the seed edited; its matrix is untouched, so its summary still matches it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from unicon_bench import check as gate
from unicon_bench.analysis.aggregate import aggregate, load_results
from unicon_bench.cli import app
from unicon_bench.errors import ConfigError
from unicon_bench.results import read_result
from unicon_bench.sweep import find_existing, load_suite, plan, run_suite
from unicon_bench.sweep.runner import RunJob, execute_run
from unicon_bench.sweep.suite import PlannedRun

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "result_schema1_ct_tasks.json"


def write_fixture(folder: Path, precision: str | None, seed: int = 0, **scenario) -> Path:
    """The committed ct_tasks result as ``folder/ct_tasks/naive/<run id>.json``, with this precision and seed."""
    data = json.loads(FIXTURE.read_text())
    data = copy.deepcopy(data)
    data["seed"] = seed
    data["run_id"] = f"s{seed}-{precision or 'none'}-fixture"
    if precision is not None:
        data["env"]["precision"] = precision
    data["scenario"].update(scenario)
    path = folder / "ct_tasks" / "naive" / f"{data['run_id']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def suite_file(tmp_path: Path, **extra) -> Path:
    path = tmp_path / "suite.yaml"
    body = {"name": "p", "strategies": ["naive"], "scenarios": ["ct_to_pet"], "seeds": [0], "quick": True,
            "out": str(tmp_path / "results"), "params": {"naive": {"epochs": 1}}, **extra}
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return path


# --- sweep -----------------------------------------------------------------------------------------------

def test_suite_precision_defaults_to_auto_and_is_validated(tmp_path):
    assert load_suite(suite_file(tmp_path)).precision == "auto"
    assert load_suite(suite_file(tmp_path, precision="bf16")).precision == "bf16"
    for bad in ("fp16", "BF16", 16, None):
        with pytest.raises(ConfigError, match="precision"):
            load_suite(suite_file(tmp_path, precision=bad))


def test_plan_resolves_the_precision_for_the_device(tmp_path):
    auto = load_suite(suite_file(tmp_path))
    assert plan(auto).precision == "fp32"
    assert plan(auto, device="cuda").precision == "bf16"
    assert plan(auto, precision="bf16").precision == "bf16"  # the command line overrides the suite
    assert plan(load_suite(suite_file(tmp_path, precision="bf16")), precision="fp32").precision == "fp32"


def test_find_existing_ignores_results_of_another_precision(tmp_path):
    path = write_fixture(tmp_path, "bf16", seed=3)
    r = read_result(path)
    args = (tmp_path, r.scenario, "naive", r.scenario.quick, r.strategy.params)
    assert find_existing(*args, "bf16") == {3: path}
    assert find_existing(*args, "fp32") == {}
    # an old file without a precision was an fp32 CPU run
    old = write_fixture(tmp_path / "old", None, seed=1)
    assert find_existing(tmp_path / "old", r.scenario, "naive", True, r.strategy.params, "fp32") == {1: old}


def test_execute_run_passes_the_precision_to_the_run(monkeypatch):
    from unicon_bench import harness

    seen = []

    def fake_execute(request, *args, **kwargs):
        seen.append(request.precision)
        raise RuntimeError("stop here")

    monkeypatch.setattr(harness, "execute", fake_execute)
    job = RunJob(PlannedRun("naive", "ct_to_pet", 0), True, "cpu", None, precision="bf16")
    status, _detail, _trace = execute_run(job)
    assert status == "failed" and seen == ["bf16"]


@pytest.mark.slow
def test_a_bf16_sweep_records_bf16_and_an_fp32_sweep_does_not_count_it(tmp_path, phantom_cache, torch_one_thread):
    suite = load_suite(suite_file(tmp_path, precision="bf16"))
    first = run_suite(suite, cache_dir=phantom_cache)
    assert first.ok and len(first.completed) == 1, first.failed
    assert read_result(first.completed[0][1]).env.precision == "bf16"
    assert len(run_suite(suite, cache_dir=phantom_cache).existing) == 1  # done in this precision
    other = run_suite(suite, cache_dir=phantom_cache, precision="fp32")  # --precision fp32 overrides the suite
    assert other.ok and len(other.completed) == 1 and not other.existing
    assert read_result(other.completed[0][1]).env.precision == "fp32"
    boards = aggregate(load_results(tmp_path / "results")[0])
    assert sorted(b.precision for b in boards) == ["bf16", "fp32"]


def test_sweep_command_takes_precision_and_refuses_a_bad_one(tmp_path):
    out = CliRunner().invoke(app, ["sweep", str(suite_file(tmp_path)), "--precision", "fp16"])
    assert out.exit_code == 2 and "fp16" in out.output


@pytest.mark.parametrize("command", ["run", "sweep", "tune", "pretrain"])
def test_every_training_command_has_precision(command):
    out = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert out.exit_code == 0 and "--precision" in out.output


# --- pretrain --------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_pretrain_records_precision_and_is_not_reused_across_precisions(tmp_path, phantom_cache, torch_one_thread):
    from unicon_bench.harness.pretrain import meta_precision, pretrain, reusable

    meta, folder = pretrain("ct_to_pet", tmp_path / "s0", quick=True, overrides={"epochs": 1},
                            cache_dir=phantom_cache, precision="bf16")
    written = yaml.safe_load((folder / "pretrain.yaml").read_text())
    assert meta["precision"] == written["precision"] == written["env"]["precision"] == "bf16"
    assert reusable(folder, "ct_to_pet", True, 0, {"epochs": 1}, "bf16")
    assert not reusable(folder, "ct_to_pet", True, 0, {"epochs": 1}, "fp32")
    assert not reusable(folder, "ct_to_pet", True, 0, {"epochs": 1})  # the default is fp32
    # a folder from before precision was recorded followed its device
    assert meta_precision({"env": {"device": "cpu"}}) == "fp32"
    assert meta_precision({"env": {"device": "cuda"}}) == "bf16"


def test_pretrain_suites_keep_one_stage0_per_precision(tmp_path):
    from unicon_bench.sweep.suite import pretrain_folder

    fp32 = pretrain_folder(tmp_path, "ct_to_pet", True)
    assert fp32 == pretrain_folder(tmp_path, "ct_to_pet", True, "fp32") == tmp_path / "pretrain" / "ct_to_pet-quick"
    assert pretrain_folder(tmp_path, "ct_to_pet", True, "bf16") == tmp_path / "pretrain" / "ct_to_pet-quick-bf16"
    from unicon_bench.sweep.suite import _overrides

    suite = load_suite(suite_file(tmp_path, pretrain=True, precision="bf16"))
    given = _overrides(suite, "naive", "ct_to_pet", tmp_path, "bf16")  # what a bf16 sweep's runs start from
    assert given["backbone_weights"] == str(tmp_path / "pretrain" / "ct_to_pet-quick-bf16")


# --- tune ------------------------------------------------------------------------------------------------

def test_tune_spec_carries_precision_and_a_study_holds_one(tmp_path):
    from unicon_bench.tune import TuneError, build_spec, open_study

    fp32 = build_spec("naive", "ct_to_pet", out=tmp_path, quick=True)
    bf16 = build_spec("naive", "ct_to_pet", out=tmp_path, quick=True, precision="bf16")
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
    assert fp32.study_name == "naive-ct_to_pet-quick" and bf16.study_name == "naive-ct_to_pet-quick-bf16"
    assert build_spec("naive", "ct_to_pet", out=tmp_path, device="cuda").precision == "bf16"
    assert open_study(fp32).user_attrs["precision"] == "fp32"
    clash = build_spec("naive", "ct_to_pet", out=tmp_path, quick=True, precision="bf16",
                       study_name="naive-ct_to_pet-quick")
    with pytest.raises(TuneError, match="fp32 trials"):
        open_study(clash)
    with pytest.raises(ConfigError, match="precision"):
        build_spec("naive", "ct_to_pet", out=tmp_path, precision="fp16")


def test_a_trial_runs_in_the_studys_precision(tmp_path, monkeypatch):
    import optuna

    from unicon_bench import harness
    from unicon_bench.tune import build_spec, objective

    seen = {}

    def fake_run(*args, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(harness, "run", fake_run)
    spec = build_spec("naive", "ct_to_pet", out=tmp_path, quick=True, precision="bf16")
    trial = optuna.create_study().ask()
    with pytest.raises(RuntimeError, match="stop here"):
        objective(trial, spec)
    assert seen["precision"] == "bf16"


# --- leaderboard and check -------------------------------------------------------------------------------

def test_leaderboard_never_pools_precisions(tmp_path):
    for seed in (0, 1):
        write_fixture(tmp_path, "fp32", seed)
        write_fixture(tmp_path, "bf16", seed)
    boards = aggregate(load_results(tmp_path)[0])
    assert len(boards) == 2
    by = {b.precision: b for b in boards}
    assert by["fp32"].title == "ct_tasks v1 (quick)" and by["bf16"].title == "ct_tasks v1 (quick, bf16)"
    for board in boards:
        assert {r.result.env.precision for r in board.runs} == {board.precision}
        assert [row["n_seeds"] for row in board.rows] == [2]
    assert set(by["bf16"].frame()["precision"]) == {"bf16"}


def test_leaderboard_title_shows_bf16_on_full_runs():
    from unicon_bench.analysis.aggregate import scenario_title

    assert scenario_title("ct_to_pet", 2, False) == "ct_to_pet v2"
    assert scenario_title("ct_to_pet", 2, False, "bf16") == "ct_to_pet v2 (bf16)"


def test_check_baseline_entries_carry_precision_and_never_compare_across(tmp_path):
    fp32, bf16 = tmp_path / "fp32", tmp_path / "bf16"
    for seed in (0, 1):
        write_fixture(fp32, "fp32", seed)
        write_fixture(bf16, "bf16", seed)
    base = gate.build_baseline(fp32)
    assert {e.precision for e in base.entries} == {"fp32"}
    assert gate.compare(base, fp32).exit_code == 0
    with pytest.raises(gate.CheckError, match=r"\(quick\) but the results hold ct_tasks v1 \(quick, bf16\)"):
        gate.compare(base, bf16)
    bf_base = gate.build_baseline(bf16)
    assert {e.precision for e in bf_base.entries} == {"bf16"} and gate.compare(bf_base, bf16).exit_code == 0
    with pytest.raises(gate.CheckError, match="never compared"):
        gate.compare(bf_base, fp32)
    # the CLI: a usage error, exit 2
    path = tmp_path / "b.json"
    gate.write_baseline(bf_base, path)
    assert json.loads(path.read_text())["entries"][0]["precision"] == "bf16"
    out = CliRunner().invoke(app, ["check", str(fp32), "--baseline", str(path)])
    assert out.exit_code == 2 and "never compared" in out.output


def test_both_precisions_in_the_results_check_only_the_baselines(tmp_path):
    for seed in (0, 1):
        write_fixture(tmp_path, "fp32", seed)
    base = gate.build_baseline(tmp_path)
    for seed in (0, 1):
        write_fixture(tmp_path, "bf16", seed)
    report = gate.compare(base, tmp_path)
    assert report.exit_code == 0
    assert any("not in the baseline" in n and "(quick, bf16) naive" in n for n in report.notes)


def test_a_baseline_entry_without_precision_is_fp32(tmp_path):
    raw = json.loads((ROOT / "baselines" / "ci.json").read_text())
    assert {e["precision"] for e in raw["entries"]} == {"fp32"}  # the committed one names it
    for e in raw["entries"]:  # as baseline schema 1 wrote it, before precision (and runs) existed
        del e["precision"], e["runs"]
    raw["baseline_schema_version"] = 1
    old = tmp_path / "schema1.json"
    old.write_text(json.dumps(raw))
    assert {e.precision for e in gate.load_baseline(old).entries} == {"fp32"}
    raw["entries"][0]["precision"] = "fp16"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw))
    with pytest.raises(gate.CheckError, match="precision"):
        gate.load_baseline(bad)
