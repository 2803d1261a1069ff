"""seq_lora and inflora on UNICON's frozen foundation: shared LoRA modules, designed orthogonal subspaces."""

from __future__ import annotations

import pytest
import torch

from unicon_bench.models import lora as L
from unicon_bench.models.subspace import input_rows, inflora_step
from unicon_bench.registry import get_strategy
from unicon_bench.scenario import get_scenario


def make_strategy(name: str, scenario: str, phantom_cache, **params):
    from unicon_bench.data.streams import build_stream
    from unicon_bench.harness import seed_everything

    seed_everything(0)
    cls = get_strategy(name)
    return cls(cls.params(**params), build_stream(get_scenario(scenario).quick_version(), cache_dir=phantom_cache))


@pytest.mark.parametrize("base", [
    torch.nn.Conv3d(3, 5, 3, stride=2, padding=1),
    torch.nn.Conv3d(2, 4, (3, 1, 3), stride=(1, 2, 1), padding=(1, 0, 0)),
    torch.nn.Linear(6, 4),
])
def test_input_rows_reproduce_the_layer(base):
    """The im2col rows times the flattened kernel give the convolution's output, voxel by voxel."""
    torch.manual_seed(0)
    x = torch.randn(2, 6) if isinstance(base, torch.nn.Linear) else torch.randn(2, base.in_channels, 6, 7, 5)
    rows = input_rows(base, x)
    y = base(x)
    flat = rows @ base.weight.reshape(base.weight.shape[0], -1).T + base.bias
    expected = y if y.dim() == 2 else y.permute(0, 2, 3, 4, 1).reshape(-1, y.shape[1])
    assert torch.allclose(flat, expected, atol=1e-5)


def test_inflora_step_designs_orthogonal_subspaces_and_keeps_the_energy():
    gen = torch.Generator().manual_seed(0)
    d, rank = 12, 3
    basis = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64)).Q
    # task 0 lives in directions 0-3, task 1 in 2-7 (overlapping), task 2 in the same span as task 0
    def task(cols, n=50):
        return torch.randn(n, len(cols), generator=gen, dtype=torch.float64) * torch.tensor([4.0, 2.0, 1.0, 0.5, 0.3, 0.2][: len(cols)], dtype=torch.float64) @ basis[:, cols].T

    t0, t1, t2 = task([0, 1, 2, 3]), task([2, 3, 4, 5, 6, 7]), task([0, 1, 2, 3])
    down0, mem = inflora_step(t0, None, rank=0, threshold=0.999)
    assert down0.shape == (0, d)
    assert float(((t0 @ mem) ** 2).sum() / (t0 ** 2).sum()) >= 0.999 and mem.shape[1] == 4
    down1, mem1 = inflora_step(t1, mem, rank=rank, threshold=0.99)
    assert down1.shape == (rank, d)
    assert torch.allclose(down1 @ down1.T, torch.eye(rank, dtype=torch.float64), atol=1e-10)  # orthonormal rows
    assert (down1 @ mem).abs().max() < 1e-10  # outside the old task's subspace...
    assert float(((t0 @ down1.T) ** 2).sum()) < 1e-18 * float((t0 ** 2).sum())  # ...so it ignores its inputs
    # the memory grew by orthonormal directions, A's included, and keeps the new task's energy
    assert torch.allclose(mem1.T @ mem1, torch.eye(mem1.shape[1], dtype=torch.float64), atol=1e-10)
    assert mem1.shape[1] > mem.shape[1] and float((down1 - (down1 @ mem1) @ mem1.T).abs().max()) < 1e-10
    assert float(((t1 @ mem1) ** 2).sum() / (t1 ** 2).sum()) >= 0.99
    # a task with nothing outside the memory gets an all-zero A (that update stays off)
    down2, mem2 = inflora_step(t2, mem1, rank=rank, threshold=0.99)
    assert torch.count_nonzero(down2) == 0 and mem2.shape == mem1.shape


@pytest.mark.slow
def test_inflora_branches_are_mutually_orthogonal_and_only_b_trains(phantom_cache, torch_one_thread):
    strat = make_strategy("inflora", "unicon", phantom_cache, epochs=1)
    train = list(strat.stream.train_stream)
    strat.train(train[0])
    stage0 = {n: m.shape[1] for n, m in strat.memory.items()}
    assert stage0 and all(v > 0 for v in stage0.values())  # the foundation's inputs start the memory
    downs = {}
    for exp in train[1:]:
        strat.train(exp)
        name = f"exp{exp.current_experience}"
        for lname, layer in strat._layers().items():
            update = layer.updates[name]
            assert not update.down.weight.requires_grad and update.up.weight.requires_grad
            downs.setdefault(lname, {})[name] = update.down_rows().detach().clone()
    n_sets = len(train) - 1
    for lname, layer in strat._layers().items():
        sets = list(downs[lname])
        assert len(sets) == n_sets
        for i, a in enumerate(sets):
            rows = layer.updates[a].down_rows()
            assert torch.equal(rows, downs[lname][a])  # A never moved while later tasks trained
            assert torch.count_nonzero(layer.updates[a].up.weight) > 0  # B did train
            for b in sets[i + 1:]:
                cross = rows.double() @ layer.updates[b].down_rows().double().T
                assert cross.abs().max() < 1e-6, (lname, a, b, float(cross.abs().max()))
    # all branches are summed on every route, the foundation's included
    strat.model.features(train[0].dataset[0][0].unsqueeze(0), 0)
    layer = next(iter(strat._layers().values()))
    assert set(layer.active) == {f"exp{i}" for i in range(1, len(train))}
    assert strat.extras()["subspace_memory_dims"] > sum(stage0.values())


@pytest.mark.slow
def test_seq_lora_keeps_one_lora_and_moves_earlier_outputs(phantom_cache, torch_one_thread):
    strat = make_strategy("seq_lora", "ct_tasks", phantom_cache)
    train, evals = list(strat.stream.train_stream), list(strat.stream.eval_stream)
    strat.train(train[0])
    frozen = [(p, p.detach().clone()) for p in strat.model.encoder.parameters()]
    strat.train(train[1])
    assert L.lora_names(strat.model) == ["seq"]
    update = L.lora_layers(strat.model.encoder)[0].updates["seq"]
    after_first = update.up.weight.detach().clone()
    out_before = strat.predict(evals[0])
    strat.train(train[2])
    assert L.lora_names(strat.model) == ["seq"]  # still the one set, and it kept training
    assert update.up.weight.requires_grad and not torch.equal(update.up.weight, after_first)
    assert not torch.equal(strat.predict(evals[0]), out_before)  # the naive PEFT baseline can forget
    for param, value in frozen:  # the foundation itself stays frozen (LoRA wraps, never edits it)
        assert torch.equal(param, value)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["seq_lora", "inflora", "l2p"])
def test_parameter_efficient_share_after_stage0(strategy, quick_run):
    result, _ = quick_run(strategy, "unicon")
    cost = result.cost
    shares = [t / cost.total_params for t in cost.trainable_params[1:]]
    assert cost.trainable_params[0] > max(cost.trainable_params[1:])
    assert all(0 < s <= 0.2 for s in shares), shares
    assert get_strategy(strategy).family == "parameter-efficient"
