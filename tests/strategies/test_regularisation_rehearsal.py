"""lwf, si, mas, rwalk, der, agem: what each keeps between experiences, on quick phantom streams."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from unicon_bench import get_scenario, get_strategy
from unicon_bench.harness.request import build_params
from unicon_bench.harness import seed_everything

ZOO = ["lwf", "si", "mas", "rwalk", "der", "agem"]


@pytest.fixture
def make(phantom_cache, torch_one_thread):
    """``make(strategy, scenario, **params)``: a strategy over the quick version of a scenario."""

    def build(strategy: str, scenario: str, **params):
        from unicon_bench.data.streams import build_stream

        seed_everything(0)
        stream = build_stream(get_scenario(scenario).quick_version(), cache_dir=phantom_cache)
        cls = get_strategy(strategy)
        return cls(build_params(cls.params, params), stream), list(stream.train_stream)

    return build


def plugin_of(strategy, cls_name: str):
    return next(p for p in strategy.template.plugins if type(p).__name__ == cls_name)


@pytest.mark.parametrize("name", ZOO)
def test_declares_family_kinds_and_a_documented_adaptation(name):
    cls = get_strategy(name)
    assert cls.family == ("rehearsal" if name in ("der", "agem") else "regularisation")
    assert set(cls.compatible) == {"domain", "task", "modality"}
    doc = cls.__doc__
    assert "Paper:" in doc and "Kept between experiences:" in doc and "Ours:" in doc


@pytest.mark.parametrize("name, bad", [
    ("lwf", {"temperature": 0.0}), ("si", {"si_lambda": -1.0}), ("mas", {"alpha": 1.5}),
    ("rwalk", {"delta_t": 0}), ("der", {"mem_size": 0}), ("agem", {"sample_size": 0}),
])
def test_bad_parameters_are_refused(name, bad):
    from unicon_bench.errors import UniconBenchError

    with pytest.raises(UniconBenchError):
        build_params(get_strategy(name).params, bad)


# -- DER++: the outputs stored with the buffer samples -------------------------------------------------------


@pytest.mark.parametrize("scenario", ["ct_tasks", "ct_to_pet"])
def test_der_stores_the_model_outputs_of_storage_time(make, scenario):
    der, exps = make("der", scenario, mem_size=6)
    snapshots = {}
    for k, exp in enumerate(exps[:2]):
        der.train(exp)
        snapshots[k] = copy.deepcopy(der.model).eval()
        memory = der.buffer.buffer
        labels = [int(memory[i][4]) for i in range(len(memory))]
        assert sorted(set(labels)) == list(range(k + 1))  # task label = experience index here
        assert len(memory) == 6 and max(labels.count(t) for t in set(labels)) == 6 // (k + 1)
        assert der.buffer_bytes() > 0

    # every stored output equals what the model of the end of its experience gave that sample
    later = der.model
    kinds = der.kinds()
    memory = der.buffer.buffer
    for i in range(len(memory)):
        x, _, _, text, t, stored = memory[i]
        t = int(t)
        with torch.no_grad():
            then = snapshots[t](x[None], t, text[None])[0]
            now = later.eval()(x[None], t, text[None])[0]
        assert stored.shape == then.shape == ((1, 16, 16, 16) if kinds[t] == "segmentation" else ())
        torch.testing.assert_close(stored, then, rtol=1e-4, atol=1e-5)  # batched vs one sample
        if t == 0:  # the model has moved on since: the stored outputs were not recomputed
            assert float((stored - now).abs().max()) > 1e-3


def test_der_replays_stored_outputs_and_labels(make):
    """With the model unchanged since storage the output-replay term is 0; outputs 1 off give MSE 1."""
    from unicon_bench.strategies.der import collate_with_outputs

    der, exps = make("der", "ct_to_pet", mem_size=4, alpha=1.0, beta=0.0)
    der.train(exps[0])
    tpl = der.template
    batch = collate_with_outputs([der.buffer.buffer[i] for i in range(4)])
    tpl.model.eval()
    with torch.no_grad():
        groups = tpl.grouped_forward(tpl.model, batch[0], batch[4], batch[3])
    from unicon_bench.strategy.plugins import grouped_distillation

    assert float(grouped_distillation(tpl.kinds, groups, batch[-1], mode="mse")) < 1e-8
    shifted = [o + 1.0 for o in batch[-1]]
    assert float(grouped_distillation(tpl.kinds, groups, shifted, mode="mse")) == pytest.approx(1.0, rel=1e-5)


# -- the regularisers keep something that is not zero and not NaN --------------------------------------------


def test_si_importance_and_anchor_survive_training_on_cpu(make):
    """Avalanche's SI snapshots are views of the weights on a CPU model; ours are copies."""
    si, exps = make("si", "ct_to_pet")
    si.train(exps[0])
    plugin = plugin_of(si, "CopyingSIPlugin")
    importance = torch.cat([d.data for d in plugin.ewc_data[1].values()])
    assert bool((importance > 0).any()) and bool(torch.isfinite(importance).all())
    anchor = {k: d.data.clone() for k, d in plugin.ewc_data[0].items()}
    with torch.no_grad():
        for p in si.model.parameters():
            p.add_(0.01)
    for name, p in si.model.named_parameters():
        if name in anchor:  # the anchor did not follow the weights
            torch.testing.assert_close(plugin.ewc_data[0][name].data, anchor[name])
    penalty = plugin.compute_ewc_loss(si.model, plugin.ewc_data, plugin.excluded_parameters, "cpu", lambd=1.0)
    assert float(penalty) > 0


def test_rwalk_penalties_are_finite_with_fewer_iterations_than_delta_t(make):
    rwalk, exps = make("rwalk", "ct_tasks", delta_t=1000)  # Avalanche's version: 0/0 -> NaN here
    rwalk.train(exps[0])
    plugin = plugin_of(rwalk, "TaskAwareRWalkPlugin")
    penalties = torch.cat([p.data.flatten() for p in plugin.exp_penalties.values()])
    assert bool(torch.isfinite(penalties).all()) and float(penalties.max()) > 0
    assert float(penalties.min()) >= 0 and float(penalties.max()) <= 2 + 1e-6
    rwalk.train(exps[1])
    assert all(math.isfinite(float(p.detach().sum())) for p in rwalk.model.parameters())


def test_mas_output_sensitivity_by_hand():
    from unicon_bench.strategies.mas import output_sensitivity

    class Fixed(torch.nn.Module):
        """Route 0 answers one value per sample, route 1 a 2-voxel map."""

        def forward(self, x, t, text=None):
            return x.sum(dim=(1, 2, 3, 4)) if t == 0 else x.flatten(1)[:, :2].reshape(len(x), 1, 1, 1, 2)

    x = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(2, 1, 1, 1, 2)
    # route 0: sums 3 and 7 -> squares 9, 49; route 1: maps (1, 2), (3, 4) -> mean squares 2.5, 12.5
    assert float(output_sensitivity(Fixed(), x, torch.tensor([0, 0]))) == pytest.approx((9 + 49) / 2)
    assert float(output_sensitivity(Fixed(), x, torch.tensor([1, 1]))) == pytest.approx((2.5 + 12.5) / 2)
    assert float(output_sensitivity(Fixed(), x, torch.tensor([0, 1]))) == pytest.approx((9 + 12.5) / 2)


def test_mas_importance_covers_the_trained_route(make):
    mas, exps = make("mas", "ct_tasks")
    mas.train(exps[0])
    plugin = plugin_of(mas, "TaskAwareMASPlugin")
    imp = {k: float(v.data.abs().sum()) for k, v in plugin.importance.items()}
    assert any(v > 0 for k, v in imp.items() if k.startswith("encoder."))
    assert any(v > 0 for k, v in imp.items() if k.startswith("heads.segmentation."))  # v3: segmentation first
    assert all(v == 0 for k, v in imp.items() if k.startswith(("heads.classification.", "heads.prognosis.")))


def test_mas_penalises_a_minibatch_whose_loss_is_exactly_zero(make):
    # a Cox minibatch without an event has a loss of exactly 0; Avalanche's MASPlugin took that
    # for a missing loss and raised "Loss is not available" (a default ct_tasks run died of it)
    mas, exps = make("mas", "ct_tasks", lambda_reg=2.0)
    mas.train(exps[0])
    plugin = plugin_of(mas, "TaskAwareMASPlugin")
    name, param = next((k, p) for k, p in mas.model.named_parameters() if k.startswith("encoder."))
    with torch.no_grad():
        param += 0.1  # moved away from its anchor by 0.1 everywhere
    expected = 2.0 * float(plugin.importance[name].data.sum()) * 0.1**2
    assert expected > 0
    mas.template.loss = torch.ones((), requires_grad=True) * 0.0  # what TaskLoss returns then
    plugin.before_backward(mas.template)
    assert float(mas.template.loss) == pytest.approx(expected, rel=1e-4)


def test_lwf_keeps_the_end_of_experience_model_as_teacher(make):
    lwf, exps = make("lwf", "ct_tasks")
    lwf.train(exps[0])
    plugin = lwf.distill
    assert list(plugin.seen.values()) == [0]
    for p, q in zip(plugin.teacher.parameters(), lwf.model.parameters()):
        assert torch.equal(p, q) and not p.requires_grad
    lwf.train(exps[1])
    assert sorted(plugin.seen.values()) == [0, 1] and plugin.last_penalty > 0


def test_agem_refuses_a_memory_sample_smaller_than_the_past(make):
    from unicon_bench.errors import ConfigError

    with pytest.raises(ConfigError, match="sample_size"):
        make("agem", "ct_tasks", sample_size=1)  # 2 past experiences: 1 // 2 = 0 samples each


def test_agem_projection_never_opposes_the_memory_gradient(make):
    agem, exps = make("agem", "ct_tasks", patterns_per_experience=4, sample_size=4)
    agem.train(exps[0])
    plugin = agem.agem
    assert len(plugin.buffers) == 1 and len(plugin.buffers[0]) == 4
    seen = []
    original = plugin.after_backward

    def checked(strategy, **kwargs):
        original(strategy, **kwargs)
        grads = torch.cat([p.grad.view(-1) if p.grad is not None else torch.zeros(p.numel())
                           for p in strategy.model.parameters()])
        seen.append(float(torch.dot(grads, plugin.reference_gradients)))

    plugin.after_backward = checked
    agem.train(exps[1])
    assert seen and all(d >= -1e-6 * max(1.0, abs(d)) for d in seen), seen


def test_agem_projection_of_a_vanishing_memory_gradient_is_finite():
    # memory loss ~1e-10: gradient entries ~1e-23 whose squares underflow float32 to 0; the float32
    # quotient g.g_ref / g_ref.g_ref was infinite and the weights became NaN
    from unicon_bench.strategies.agem import project_gradient

    current, ref = torch.tensor([1.0, 0.0]), torch.tensor([-1e-23, 1e-23])
    assert float(torch.dot(ref, ref)) == 0.0  # the underflow this guards against
    # by hand: g.r = -1e-23, r.r = 2e-46, g - r * (g.r / r.r) = [1 - 0.5, 0 + 0.5]
    projected = project_gradient(current, ref)
    assert projected.dtype == torch.float32 and torch.allclose(projected, torch.tensor([0.5, 0.5]))
    assert project_gradient(current, -ref) is None  # g.r > 0: no conflict, g is kept
    assert project_gradient(current, torch.zeros(2)) is None
