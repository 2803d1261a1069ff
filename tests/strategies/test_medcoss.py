"""MedCoSS: k-means selection, mixup, distillation, the buffer flag, and quick end-to-end runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unicon_bench import get_scenario
from unicon_bench.results import read_result

from unicon_bench.strategies.medcoss import (
    BUFFER_FLAG,
    MedCoSS,
    MedCoSSParams,
    allocate,
    buffer_sizes,
    feature_distillation,
    frozen_copy,
    intra_modal_mixup,
    kmeans_select,
    mark_buffer,
)

SCENARIOS = ["ct_to_pet", "ct_tasks", "ct_sites", "unicon"]


def blobs(centres, offsets, seed=0):
    """Points ``centre + offset`` for every centre, shuffled; returns (points, blob of each, centre indices)."""
    pts = [(np.asarray(c, float) + np.asarray(o, float), b) for b, c in enumerate(centres) for o in offsets[b]]
    order = np.random.default_rng(seed).permutation(len(pts))
    points = np.stack([pts[i][0] for i in order])
    blob = np.array([pts[i][1] for i in order])
    return points, blob


def symmetric(scale_x=1.0, scale_y=1.0, centre=True):
    """Offsets symmetric about 0, so the blob's mean is its centre; the centre itself first."""
    return ([(0.0, 0.0)] if centre else []) + [(scale_x, 0), (-scale_x, 0), (0, scale_y), (0, -scale_y)]


# -- selection ---------------------------------------------------------------------------------------


def test_buffer_sizes_follow_the_paper_defaults():
    assert buffer_sizes(48, 0.05, 0.01) == (1, 2)  # the paper's ratios: 48 subjects -> 2 kept
    assert buffer_sizes(8, 0.05, 0.01) == (1, 1)  # at least one cluster, one sample
    assert buffer_sizes(200, 0.05, 0.01) == (2, 10)
    assert buffer_sizes(10, 0.05, 0.5) == (5, 5)  # at least one sample per cluster
    assert buffer_sizes(3, 1.0, 1.0) == (3, 3)
    assert buffer_sizes(0, 0.05, 0.01) == (0, 0)


def test_kmeans_keeps_the_sample_nearest_each_centre():
    centres = [(0, 0), (50, 0), (0, 50)]
    points, blob = blobs(centres, [symmetric(1, 2), symmetric(2, 1), symmetric(1.5, 1)])
    at_centre = {int(i) for i in np.flatnonzero(np.abs(points - np.asarray(centres)[blob]).sum(1) == 0)}
    assert len(at_centre) == 3

    chosen = kmeans_select(points, n_clusters=3, quota=3, seed=0)
    assert len(chosen) == 3
    assert set(chosen) == at_centre
    assert sorted(blob[chosen].tolist()) == [0, 1, 2]  # exactly one per cluster
    assert kmeans_select(points, 3, 3, seed=0) == chosen  # deterministic


def test_allocation_is_proportional_with_one_per_cluster():
    assert allocate([6, 3, 3], 3) == [1, 1, 1]
    assert allocate([6, 3, 3], 4) == [2, 1, 1]
    assert allocate([8, 1, 1], 6) == [4, 1, 1]  # never more than the cluster holds, at least one each
    assert allocate([2, 1], 3) == [2, 1]
    assert allocate([2, 1], 9) == [2, 1]  # capped at the data
    assert allocate([1, 5, 0], 1) == [0, 1, 0]  # fewer slots than clusters: the largest first
    for sizes, quota in [([10, 7, 3, 1], 9), ([4, 4, 4], 7), ([30, 2], 10)]:
        alloc = allocate(sizes, quota)
        assert sum(alloc) == quota and all(1 <= a <= s for a, s in zip(alloc, sizes))


def test_kmeans_spreads_the_quota_nearest_first():
    # a big blob (9 points) and a small one (5): quota 4 -> 3 from the big one, 1 from the small one
    big = [(0, 0), (1, 0), (-1, 0), (0, 3), (0, -3), (5, 5), (-5, -5), (5, -5), (-5, 5)]
    points, blob = blobs([(0, 0), (100, 100)], [big, symmetric(2, 2)])
    chosen = kmeans_select(points, n_clusters=2, quota=4, seed=1)
    assert sorted(blob[chosen].tolist()) == [0, 0, 0, 1]
    picked = {tuple(points[i]) for i in chosen}
    assert {(0.0, 0.0), (1.0, 0.0), (-1.0, 0.0), (100.0, 100.0)} == picked


# -- buffer loss -------------------------------------------------------------------------------------


def test_distillation_zero_for_the_same_model_positive_otherwise():
    from unicon_bench.models.net import MultiTaskNet

    torch.manual_seed(0)
    model = MultiTaskNet.for_experiences([("segmentation", "CT"), ("classification", "CT")])
    previous = frozen_copy(model)
    x = torch.rand(3, 1, 16, 16, 16)
    routes = torch.tensor([0, 1, 0])
    assert feature_distillation(model, previous, x, routes).item() == 0.0
    assert not any(p.requires_grad for p in previous.parameters())

    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(0.05 * torch.randn_like(p))
    loss = feature_distillation(model, previous, x, routes)
    assert loss.item() > 0
    loss.backward()  # gradients reach the current model, never the frozen one
    assert any(p.grad is not None for p in model.encoder.parameters())
    assert all(p.grad is None for p in previous.parameters())


def test_mixup_stays_within_a_task_label():
    torch.manual_seed(0)
    x = torch.cat([torch.zeros(2, 1, 2, 2, 2), torch.full((3, 1, 2, 2, 2), 10.0)])
    x[1] = 1.0  # label 0 holds a 0-volume and a 1-volume, label 1 only 10-volumes
    routes = torch.tensor([0, 0, 1, 1, 1])
    mixed = intra_modal_mixup(x, routes)
    assert mixed.shape == x.shape
    assert torch.all(mixed[2:] == 10.0)  # never mixed with label 0
    assert torch.all((mixed[:2] >= 0) & (mixed[:2] <= 1))
    for v in mixed[:2]:
        assert torch.all(v == v.flatten()[0])  # one lambda per sample


def test_buffer_flag_travels_with_each_sample():
    from unicon_bench.data.streams import _avalanche_dataset

    tensors = (torch.zeros(4, 1, 2, 2, 2), torch.zeros(4, 1, 2, 2, 2), torch.zeros(4, 5), torch.zeros(4, 3).long())
    data = _avalanche_dataset(tensors, task_label=2)
    assert len(data[0]) == 5
    flagged = mark_buffer(data.subset([1, 3]), True)
    current = mark_buffer(data, False)
    assert [s[-2:] for s in flagged] == [[2, 1], [2, 1]]  # task label kept, flag appended
    both = current.concat(flagged)
    assert [int(s[-1]) for s in both] == [0, 0, 0, 0, 1, 1]
    assert list(getattr(both, BUFFER_FLAG)) == [0, 0, 0, 0, 1, 1]


# -- inside the training loop ------------------------------------------------------------------------


def test_buffer_samples_get_distillation_not_task_loss(phantom_cache):
    from avalanche.core import SupervisedPlugin

    from unicon_bench.data.streams import build_stream
    from unicon_bench.harness import seed_everything

    class Spy(SupervisedPlugin):
        def __init__(self):
            super().__init__()
            self.steps = []

        def after_training_iteration(self, strategy, **kwargs):
            flags = strategy.mb_from_buffer
            exp = strategy.clock.train_exp_counter
            self.steps.append((exp, int(flags.sum()), len(strategy.mb_current[0]), len(flags), strategy.last_distill))

    seed_everything(0)
    spec = get_scenario("ct_to_pet").quick_version()
    stream = build_stream(spec, cache_dir=phantom_cache)
    strat = MedCoSS(MedCoSSParams(), stream)
    spy = Spy()
    strat.template.plugins.append(spy)
    first, second = list(stream.train_stream)

    strat.train(first)
    n_first = len(first.dataset)
    assert all(n_buf == 0 and n_cur == n for exp, n_buf, n_cur, n, _ in spy.steps)
    assert strat.template.previous is not None
    assert len(strat.buffer.buffer) == buffer_sizes(n_first, 0.05, 0.01)[1] == 1
    assert strat.buffer_bytes() > 0

    spy.steps.clear()
    strat.train(second)
    assert spy.steps and all(n_buf == 1 and n_cur + n_buf == n for _, n_buf, n_cur, n, _ in spy.steps)
    distills = [d for *_, d in spy.steps]
    assert distills[0] == 0.0  # the model starts the experience equal to the previous-stage model
    assert any(d > 0 for d in distills[1:])
    assert len(strat.buffer.buffer) == 2  # the buffer accumulates across experiences
    assert sorted(strat.buffer.selected) == [0, 1]


# -- end to end --------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_medcoss_quick_run(scenario, quick_run):
    spec = get_scenario(scenario)
    assert spec.kind in MedCoSS.compatible
    result, path = quick_run("medcoss", scenario)
    assert read_result(path) == result
    n = len(spec.experiences)
    assert n >= 2
    assert sum(e.metric == result.scenario.metrics[e.evaluated_on] for e in result.matrix) == (n + 1) * n
    primary = [e for e in result.matrix if e.metric == result.scenario.metrics[e.evaluated_on]]
    assert all(e.value is None or (math.isfinite(e.value) and 0 <= e.value <= 1) for e in primary)
    assert result.cost.buffer_bytes > 0
    assert result.strategy.params["buffer_ratio"] == 0.05 and result.strategy.params["mixup"] is True
    quick = spec.quick_version()
    expected = {str(i): buffer_sizes(quick.sizes(i)[0], 0.05, 0.01)[1] for i in range(n)}
    assert result.extras["buffer_samples"] == expected
