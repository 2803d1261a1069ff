"""Tuning with Optuna: studies on SQLite shared by processes, best-params YAML for `run --config`,
median pruning on the harness's running average, Pareto fronts, the validation split."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch
import yaml

from conftest import SUBPROCESS_THREADS, _cli_prefix, load_json
from unicon_bench.errors import ConfigError
from unicon_bench.registry import register_strategy
from unicon_bench.results import find_results, read_result
from unicon_bench.strategy import BaseParams, Strategy


@dataclass(frozen=True)
class OracleParams(BaseParams):
    skill: float = 1.0

    search_space: ClassVar[dict] = {"skill": ("categorical", [0.0, 1.0])}


@register_strategy("oracle_test")
class Oracle(Strategy):
    """Test double with a known score: skill 1 predicts the true masks (Dice 1), skill 0 their inverse (Dice 0)."""

    compatible = {"domain", "task", "modality"}
    params = OracleParams

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.trained: list[int] = []

    def train(self, experience) -> None:
        self.trained.append(experience.current_experience)

    def predict(self, experience) -> torch.Tensor:
        mask = torch.cat([b[1] for b in torch.utils.data.DataLoader(experience.dataset, batch_size=64)])
        return (mask if self.p.skill else 1 - mask) * 2 - 1

    def last_trainable_params(self) -> int:
        return int(100 * self.p.skill)  # a cost that grows with the score: both ends are Pareto-optimal

    def total_params(self) -> int:
        return 100


def study_of(storage: str, name: str):
    import optuna

    return optuna.load_study(study_name=name, storage=storage)


def sqlite_url(folder) -> str:
    return f"sqlite:///{(folder / 'optuna.db').resolve()}"


@pytest.mark.slow
def test_tune_four_trials_then_run_with_best_yaml(cli, tmp_path):
    out = tmp_path / "tuning"
    proc = cli("tune", "-s", "naive", "-c", "ct_to_pet", "--quick", "--trials", "4", "--set", "epochs=1",
               "--sampler-seed", "0", "--out", out, "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    name = "naive-ct_to_pet-quick"
    study = study_of(sqlite_url(out), name)
    import optuna

    states = [t.state for t in study.trials]
    assert len(states) == 4 and all(s in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
                                    for s in states)
    best = yaml.safe_load((out / name / "best_params.yaml").read_text())
    assert best["params"] == {"epochs": 1, **study.best_trial.params}
    assert set(study.best_trial.params) == {"lr", "weight_decay"}  # naive's declared space, epochs fixed
    assert best["tuning"]["study"] == name and best["tuning"]["trials"] == 4
    assert best["tuning"]["storage"] == "sqlite" and best["tuning"]["best_value"] == study.best_value
    assert (out / name / "trials.csv").read_text().count("\n") == 5  # header + 4 trials

    proc = cli("run", "-s", "naive", "-c", "ct_to_pet", "--quick", "--config", out / name / "best_params.yaml",
               "--out", tmp_path / "results", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (path,) = find_results(tmp_path / "results")
    result = read_result(path)
    assert result.strategy.params["lr"] == best["params"]["lr"] and result.strategy.params["epochs"] == 1
    assert (result.tuning.study, result.tuning.trials, result.tuning.storage) == (name, 4, "sqlite")

    board = cli("leaderboard", tmp_path / "results", "--format", "md", cwd=tmp_path)
    assert board.returncode == 0 and "| naive (tuned) |" in board.stdout


@pytest.mark.slow
def test_two_tune_processes_share_one_sqlite_study(phantom_cache, tmp_path):
    import os

    out = tmp_path / "tuning"
    out.mkdir()
    args = ["tune", "-s", "naive", "-c", "ct_to_pet", "--quick", "--trials", "2", "--set", "epochs=1",
            "--no-pruning", "--study-name", "shared", "--storage", sqlite_url(out), "--out", str(out), "--no-progress"]
    env = {**os.environ, **SUBPROCESS_THREADS, "UNICON_BENCH_CACHE": str(phantom_cache)}
    procs = [subprocess.Popen(_cli_prefix() + args, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    trials = study_of(sqlite_url(out), "shared").trials
    assert len(trials) == 4
    workers = [t.user_attrs["worker"] for t in trials]
    assert {w.split(":")[1] for w in workers} == {str(p.pid) for p in procs}
    assert sorted(workers.count(w) for w in set(workers)) == [2, 2]


def test_median_pruner_stops_a_bad_trial_after_its_first_experience(phantom_cache, tmp_path):
    from unicon_bench import tune

    spec = tune.build_spec("oracle_test", "ct_to_pet", quick=True, out=tmp_path, prune_after=2,
                           cache_dir=phantom_cache, validation=0.25)
    study = tune.open_study(spec)
    for skill in (1.0, 1.0, 0.0, 1.0):  # the crafted case: two good trials, then a bad and a good one
        study.enqueue_trial({"skill": skill})
    report = tune.run_tuning(spec, trials=4, out=tmp_path)
    import optuna

    trials = study_of(spec.storage, spec.study_name).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2 + [
        optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.COMPLETE]
    # running averages reported after each of the two experiences; the bad one stopped after the first
    assert [t.intermediate_values for t in trials] == [{0: 1.0, 1: 1.0}] * 2 + [{0: 0.0}, {0: 1.0, 1: 1.0}]
    assert (report.ran, report.pruned, report.failed) == (3, 1, [])
    assert yaml.safe_load(report.best_params.read_text())["params"] == {"skill": 1.0}


def test_multi_objective_writes_the_pareto_front(phantom_cache, tmp_path):
    from unicon_bench import tune

    spec = tune.build_spec("oracle_test", "ct_to_pet", quick=True, out=tmp_path, cost="params",
                           cache_dir=phantom_cache, sampler_seed=0)
    study = tune.open_study(spec)
    for skill in (0.0, 1.0, 1.0):
        study.enqueue_trial({"skill": skill})
    report = tune.run_tuning(spec, trials=3, out=tmp_path)
    front = yaml.safe_load(report.pareto.read_text())["front"]
    # skill 1: score 1 at 100 trainable params; skill 0: score 0 at none; both on the front (sorted by score)
    assert [(f["score"], f["params"]["skill"]) for f in front][0] == (1.0, 1.0)
    assert {(f["score"], f["params"]["skill"], f["trainable_params"]) for f in front} == {(1.0, 1.0, 100.0),
                                                                                         (0.0, 0.0, 0.0)}
    best = yaml.safe_load(report.best_params.read_text())
    assert best["params"] == {"skill": 1.0} and best["tuning"]["objective"] == ["final_average", "params"]


def test_validation_split_is_carved_from_train_subjects_deterministically(phantom_cache):
    from unicon_bench.data.streams import build_stream
    from unicon_bench.scenario import get_scenario

    spec = get_scenario("ct_tasks").quick_version()
    plain = build_stream(spec, cache_dir=phantom_cache)
    tuned = build_stream(spec, cache_dir=phantom_cache, validation=0.25, split_seed=3)
    again = build_stream(spec, cache_dir=phantom_cache, validation=0.25, split_seed=3)
    other = build_stream(spec, cache_dir=phantom_cache, validation=0.25, split_seed=4)

    def images(exp):
        return torch.cat([b[0] for b in torch.utils.data.DataLoader(exp.dataset, batch_size=64)])

    for i, n_train in enumerate(spec.sizes(j)[0] for j in range(len(spec.experiences))):
        train, evals = images(plain.train_stream[i]), images(plain.eval_stream[i])
        fit, val = images(tuned.train_stream[i]), images(tuned.eval_stream[i])
        n_val = max(2, round(0.25 * n_train))  # a quarter of the training subjects, at least two
        assert len(val) == n_val and len(fit) == n_train - n_val
        flat = train.flatten(1)
        for x in val.flatten(1):  # every validation subject is a training subject, none an eval subject
            assert (flat == x).all(1).sum() == 1
            assert not (evals.flatten(1) == x).all(1).any()
        together = torch.cat([fit, val]).flatten(1)  # training part + validation part = the training subjects
        assert all((together == x).all(1).sum() == 1 for x in flat)
        assert torch.equal(val, images(again.eval_stream[i]))
    changed = [not torch.equal(images(tuned.eval_stream[i]), images(other.eval_stream[i])) for i in range(3)]
    assert any(changed)
    with pytest.raises(ConfigError, match="fraction"):
        build_stream(spec, cache_dir=phantom_cache, validation=1.5)


def test_stratified_split_keeps_both_classes():
    from unicon_bench.data.streams import validation_split

    labels = np.array([0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0])
    for seed in range(5):
        train, val = validation_split(labels, 0.25, seed)
        assert sorted(np.concatenate([train, val])) == list(range(12))
        assert len(val) == 3 and set(labels[val]) == {0, 1} and set(labels[train]) == {0, 1}
    assert not np.array_equal(validation_split(labels, 0.25, 0)[1], validation_split(labels, 0.25, 1)[1])


def test_tune_rejects_bad_settings_before_any_trial(cli, tmp_path):
    from unicon_bench import tune

    cases = [
        ({"objective": "accuracy"}, "unknown objective 'accuracy'"),
        ({"fixed": {"lr": "0.1", "weight_decay": "0"}}, "nothing to tune"),
        ({"fixed": {"nonsense": "1"}}, r"unknown parameter\(s\) nonsense"),
        ({"storage": "not a url"}, "is not a database URL"),
        ({"validation": 1.0}, "--validation must be a fraction"),
        ({"cost": "money"}, "unknown second objective 'money'"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ConfigError, match=message):
            tune.build_spec("naive", "ct_to_pet", quick=True, out=tmp_path, **kwargs)
    proc = cli("tune", "-s", "naive", "-c", "ct_to_pet", "--objective", "accuracy", "--out", tmp_path, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("error: unknown objective 'accuracy'")
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) == 1


def test_declared_search_spaces_are_valid():
    import dataclasses

    from unicon_bench.registry import STRATEGIES, list_strategies
    from unicon_bench.tune import check_space

    for name in list_strategies():
        params = STRATEGIES.get(name).params
        check_space(params.search_space, {f.name for f in dataclasses.fields(params)})
    assert set(STRATEGIES.get("ewc").params.search_space) >= {"lr", "ewc_lambda"}
    with pytest.raises(ConfigError, match="lo < hi"):
        check_space({"lr": ("float_log", 0.0, 1.0)}, {"lr"})
    with pytest.raises(ConfigError, match="not a parameter"):
        check_space({"nope": ("int", 1, 2)}, {"lr"})


def test_old_results_without_tuning_still_validate(quick_run):
    _result, path = quick_run("naive", "ct_to_pet")
    data = load_json(path)
    data.pop("tuning", None)
    from unicon_bench.results import parse_result

    assert parse_result(data).tuning is None


def test_unreachable_storage_is_one_error_without_the_password(tmp_path):
    from unicon_bench import tune
    from unicon_bench.tune.study import TuneError

    spec = tune.build_spec("naive", "ct_to_pet", quick=True, out=tmp_path,
                           storage="postgresql://lab:secret@127.0.0.1:1/studies")
    with pytest.raises(TuneError, match=r"cannot open study storage postgresql://lab:\*\*\*@127.0.0.1:1/studies") as info:
        tune.run_tuning(spec, trials=1, out=tmp_path)
    assert "secret" not in str(info.value)
