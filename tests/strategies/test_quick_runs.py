"""Every strategy on every compatible scenario, end to end with --quick (16^3, two epochs)."""

from __future__ import annotations

import math

import pytest

from unicon_bench import get_scenario, get_strategy, list_scenarios, list_strategies
from unicon_bench.errors import IncompatibleError
from unicon_bench.metrics.registry import METRICS
from unicon_bench.results import METRIC_OF_TASK, read_result

PAIRS = [(strategy, scenario) for scenario in list_scenarios() for strategy in list_strategies()]
SUMMARY_KEYS = {"final_average", "bwt", "fwt", "forgetting", "plasticity"}
# one network trained in place
SHARED_MODEL = {"naive", "joint", "ewc", "replay", "lwf", "si", "mas", "rwalk", "der", "agem"}
BUFFERED = {"replay", "der", "agem"}  # keep subjects between experiences


# -- independent re-computation of the summary from the matrix (None propagates) ------------------


def _sub(a, b):
    return None if a is None or b is None else a - b


def _mean(xs):
    xs = list(xs)
    return None if any(x is None for x in xs) else sum(xs) / len(xs)


def _max(xs):
    xs = list(xs)
    return None if any(x is None for x in xs) else max(xs)


def expected_summary(init, R):
    n = len(R)
    return {
        "final_average": _mean(R[n - 1]),
        "plasticity": _mean(R[j][j] for j in range(n)),
        "bwt": _mean(_sub(R[n - 1][j], R[j][j]) for j in range(n - 1)),
        "forgetting": _mean(_sub(_max(R[l][j] for l in range(j, n - 1)), R[n - 1][j]) for j in range(n - 1)),
        "fwt": _mean(_sub(R[j - 1][j], init[j]) for j in range(1, n)),
    }


def _is_compatible(strategy: str, scenario: str) -> bool:
    return get_scenario(scenario).kind in get_strategy(strategy).compatible


@pytest.mark.slow
@pytest.mark.parametrize("strategy, scenario", PAIRS, ids=[f"{s}-{c}" for s, c in PAIRS])
def test_quick_run(strategy, scenario, quick_run, phantom_cache, tmp_path):
    spec = get_scenario(scenario)
    if not _is_compatible(strategy, scenario):
        from unicon_bench import harness

        with pytest.raises(IncompatibleError, match=strategy):
            harness.run(strategy, scenario, quick=True, out=tmp_path, cache_dir=phantom_cache)
        assert not any(tmp_path.iterdir())  # refused before writing anything
        pytest.skip(f"{strategy} does not support {spec.kind}-incremental scenarios (refusal checked)")

    result, path = quick_run(strategy, scenario)
    n = len(spec.experiences)

    # the file on disk validates and is what run() returned
    back = read_result(path)
    assert back == result
    assert back.scenario.name == scenario and back.strategy.name == strategy
    assert back.scenario.quick is True and back.seed == 0
    assert back.scenario.experiences == [e.name for e in spec.experiences]
    assert back.scenario.metrics == [METRIC_OF_TASK[e.task] for e in spec.experiences]
    assert back.strategy.params["epochs"] is None  # the budget is the scenario's

    # matrix: (n + 1) x n primary entries, one per (trained_upto, evaluated_on), values in [0, 1] or null;
    # the other metrics (HD95 in mm, lesion counts...) within their registered range
    assert sum(e.metric == back.scenario.metrics[e.evaluated_on] for e in back.matrix) == (n + 1) * n
    assert {(e.trained_upto, e.evaluated_on) for e in back.matrix} == {
        (i, j) for i in range(-1, n) for j in range(n)
    }
    for e in back.matrix:
        spec_ = METRICS[e.metric]
        assert e.value is None or (math.isfinite(e.value) and spec_.accepts(e.value)), e
        if e.metric == back.scenario.metrics[e.evaluated_on]:
            assert e.value is None or 0.0 <= e.value <= 1.0, e
    assert any(e.value is not None for e in back.matrix)

    # summary: every key present, and equal to the metrics recomputed from the matrix
    assert set(back.summary.model_dump()) == SUMMARY_KEYS
    init, R = back.rows()
    for key, want in expected_summary(init, R).items():
        got = getattr(back.summary, key)
        if want is None:
            assert got is None, key
        else:
            assert got == pytest.approx(want, abs=1e-12), key

    # cost
    cost = back.cost
    assert len(cost.trainable_params) == n
    assert all(isinstance(p, int) and p > 0 for p in cost.trainable_params), cost.trainable_params
    assert all(p <= cost.total_params for p in cost.trainable_params)
    assert len(cost.train_time_s) == n and all(t >= 0 for t in cost.train_time_s)
    assert cost.wall_time_s >= sum(cost.train_time_s)
    assert cost.peak_rss_mb > 0
    if strategy in BUFFERED:
        assert cost.buffer_bytes > 0
    elif strategy in SHARED_MODEL | {"specialized"}:
        assert cost.buffer_bytes == 0

    # fairness: with the same seed the baselines start from the same model (same untrained row)
    if strategy in (SHARED_MODEL | {"specialized"}) - {"naive"}:
        naive, _ = quick_run("naive", scenario)
        assert init == naive.rows()[0]
        if strategy in SHARED_MODEL:
            assert cost.total_params == naive.cost.total_params


@pytest.mark.slow
@pytest.mark.parametrize("scenario", [s for s in list_scenarios() if get_scenario(s).kind != "domain"])
def test_specialized_costs_and_isolation(scenario, quick_run):
    spec = get_scenario(scenario)
    assert _is_compatible("specialized", scenario)
    n = len(spec.experiences)
    spec_result, _ = quick_run("specialized", scenario)
    naive_result, _ = quick_run("naive", scenario)
    assert spec_result.cost.total_params == n * naive_result.cost.total_params
    # each expert trains the same parameters a shared model trains on that experience
    assert spec_result.cost.trainable_params == naive_result.cost.trainable_params

    # one frozen expert per experience: later training never changes an earlier expert's scores,
    # and an experience not trained yet is answered by the untrained model
    init, R = spec_result.rows()
    for i in range(n):
        for j in range(n):
            assert R[i][j] == (R[j][j] if j <= i else init[j]), (i, j)
    assert spec_result.summary.bwt in (0.0, None)
    assert spec_result.summary.forgetting in (0.0, None)


@pytest.mark.slow
def test_replay_buffer_grows_with_memory(quick_run):
    replay, _ = quick_run("replay", "ct_to_pet")
    assert len(replay.scenario.experiences) >= 2
    assert replay.cost.buffer_bytes > 0
    assert replay.strategy.params["mem_size"] == 16
