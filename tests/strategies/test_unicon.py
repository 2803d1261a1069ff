"""UNICON: frozen stage-0 weights, LoRA identity at start, routing, fused prognosis, PEFT budget."""

from __future__ import annotations

import pytest
import torch

from unicon_bench.models import lora as L
from unicon_bench.registry import get_strategy
from unicon_bench.scenario import get_scenario


def make_strategy(scenario: str, phantom_cache, **params):
    from unicon_bench.data.streams import build_stream
    from unicon_bench.harness import seed_everything

    seed_everything(0)
    spec = get_scenario(scenario).quick_version()
    cls = get_strategy("unicon")
    strat = cls(cls.params(**params), build_stream(spec, cache_dir=phantom_cache))
    return strat


@pytest.mark.parametrize("base", [torch.nn.Conv3d(3, 5, 3, stride=2, padding=1), torch.nn.ConvTranspose3d(3, 5, 3, stride=2, padding=1, output_padding=1), torch.nn.Linear(6, 4)])
def test_new_lora_starts_as_identity(base):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8, 8) if not isinstance(base, torch.nn.Linear) else torch.randn(2, 6)
    wrapper = torch.nn.Sequential(base)
    before = wrapper(x)
    L.inject_lora(wrapper)
    assert L.add_lora(wrapper, "t1", rank=2) > 0
    L.set_active(wrapper, "t1")
    layer = wrapper[0]
    assert torch.count_nonzero(layer.updates["t1"].up.weight) == 0  # zero-initialised up-projection
    assert torch.equal(wrapper(x), before)
    with torch.no_grad():  # once B moves, the update is applied
        layer.updates["t1"].up.weight.fill_(0.1)
    assert not torch.allclose(wrapper(x), before)
    L.set_active(wrapper, None)
    assert torch.equal(wrapper(x), before)


@pytest.mark.slow
def test_stage0_weights_and_earlier_outputs_are_bit_identical(phantom_cache, torch_one_thread):
    strat = make_strategy("ct_to_pet", phantom_cache)
    train, evals = list(strat.stream.train_stream), list(strat.stream.eval_stream)
    strat.train(train[0])
    frozen = [(name, p, p.detach().clone()) for name, p in strat.model.named_parameters()]
    out_before = strat.predict(evals[0])
    strat.train(train[1])
    for name, param, value in frozen:  # LoRA injection renames modules, so compare the tensors
        assert torch.equal(param, value), f"{name} changed after stage 0"
    assert torch.equal(strat.predict(evals[0]), out_before)
    # the PET experience (v3: PET alone) trained its own PET stem and LoRA set, and nothing else
    old = {id(p) for _, p, _ in frozen}
    new = [name for name, p in strat.model.named_parameters() if id(p) not in old]
    assert any(k.startswith("stems.PET.") for k in new) and any(".updates.exp1." in k for k in new)
    assert all(k.startswith("stems.PET.") or ".updates.exp1." in k for k in new)


def test_pet_ct_route_starts_as_the_ct_model_on_the_ct_channel():
    """PEMMA-style PET path: zero gate + zero LoRA, so a new PET/CT route equals the CT route on CT."""
    from unicon_bench.models.peft_net import PeftNet

    torch.manual_seed(0)
    net = PeftNet().eval()
    net.add_route(0, "segmentation", "CT")
    net.add_route(1, "segmentation", "PET", with_ct=True)
    ct, pet = torch.rand(2, 1, 16, 16, 16), torch.rand(2, 1, 16, 16, 16)
    with torch.no_grad():
        assert torch.equal(net(torch.cat([pet, ct], dim=1), 1), net(ct, 0))
        net.stem_gates["PET+CT"].fill_(1.0)  # once the gate opens, PET changes the output
        assert not torch.allclose(net(torch.cat([pet, ct], dim=1), 1), net(ct, 0))


@pytest.mark.slow
def test_trainable_share_after_stage0(quick_run):
    result, _ = quick_run("unicon", "unicon")
    cost = result.cost
    shares = [t / cost.total_params for t in cost.trainable_params[1:]]
    assert cost.trainable_params[0] > cost.trainable_params[1]
    assert all(0 < s <= 0.15 for s in shares), shares
    assert result.summary.bwt == 0.0  # nothing an earlier experience uses is updated


def test_routing_by_domain_prototype_picks_the_right_adapter(phantom_cache, torch_one_thread):
    """Three synthetic 'scanners' with clearly different intensity/noise: each test sample must be
    routed to its own domain's adapter, and the accuracy must be reported per domain."""
    strat = make_strategy("ct_sites", phantom_cache)
    gen = torch.Generator().manual_seed(0)
    shape = (1, 16, 16, 16)

    def domain(level: float, noise: float, n: int):
        return [(level + noise * torch.randn(shape, generator=gen), torch.zeros(shape), torch.zeros(5),
                 torch.zeros(48, dtype=torch.long), 0) for _ in range(n)]

    settings = [(0.2, 0.02), (0.5, 0.10), (0.8, 0.30)]
    for i, (level, noise) in enumerate(settings):
        if i:
            strat.model.add_route(i, "segmentation", "CT")
        strat._add_prototype(i, domain(level, noise, 6))
    for j, (level, noise) in enumerate(settings):
        x = torch.stack([s[0] for s in domain(level, noise, 5)])
        strat._evaluating = j
        routed = strat.eval_routes(x, torch.zeros(5, dtype=torch.long))
        assert routed.tolist() == [j] * 5
    acc = strat.extras()["routing_accuracy"]
    assert acc == {"site_a": 1.0, "site_b": 1.0, "site_c": 1.0}


@pytest.mark.slow
def test_fused_text_prognosis_trains_the_text_path(phantom_cache, torch_one_thread):
    strat = make_strategy("ct_tasks", phantom_cache)
    train = list(strat.stream.train_stream)
    strat.train(train[0])  # stage 0: classification
    strat.model.add_route(1, "prognosis", "CT")
    head = strat.model.heads[strat.model.routes[1].head]
    text_before = head.text.embed.weight.clone()
    strat.train(train[1])
    assert not torch.equal(head.text.embed.weight, text_before)  # gradients reach the text encoder
    risk = strat.predict(list(strat.stream.eval_stream)[1])
    assert risk.shape == (len(list(strat.stream.eval_stream)[1].dataset),) and torch.isfinite(risk).all()
    # without the report the fused head refuses rather than silently running image-only
    x = train[1].dataset[0][0].unsqueeze(0)
    with pytest.raises(ValueError, match="text"):
        strat.model(x, 1, None)
