"""PackNet: per-task masks leave earlier tasks' weights and outputs bit-identical."""

from __future__ import annotations

import pytest
import torch

from unicon_bench.errors import ConfigError
from unicon_bench.registry import get_strategy
from unicon_bench.scenario import get_scenario


def make_packnet(scenario: str, phantom_cache, **params):
    from unicon_bench.data.streams import build_stream
    from unicon_bench.harness import seed_everything

    seed_everything(0)
    cls = get_strategy("packnet")
    return cls(cls.params(**params), build_stream(get_scenario(scenario).quick_version(), cache_dir=phantom_cache))


@pytest.mark.slow
def test_earlier_tasks_weights_and_outputs_stay_bit_identical(phantom_cache, torch_one_thread):
    strat = make_packnet("ct_to_pet", phantom_cache, prune_ratio=0.5)
    train, evals = list(strat.stream.train_stream), list(strat.stream.eval_stream)
    layers = dict(strat.model.named_modules())
    strat.train(train[0])
    owner0 = strat.owner_index()
    for name, idx in owner0.items():  # half of each layer's weights released to later tasks
        assert set(idx.unique().tolist()) <= {0, 1}
        assert int((idx == 1).sum()) == int(idx.numel() * 0.5)
    kept = {name: layers[name].wrappee.weight.detach().clone() for name in owner0}
    shared_rest = [(p, p.detach().clone()) for n, p in strat.model.net.encoder.named_parameters() if not n.endswith("wrappee.weight")]
    out_before = strat.predict(evals[0])

    strat.train(train[1])
    owner1 = strat.owner_index()
    changed = 0
    for name, idx0 in owner0.items():
        mine = idx0 == 0
        assert torch.equal(owner1[name][mine], idx0[mine])  # task 0's weights keep their owner
        w = layers[name].wrappee.weight.detach()
        assert torch.equal(w[mine], kept[name][mine]), name  # ... and their values, bit for bit
        changed += int((w[~mine] != kept[name][~mine]).sum())
        assert set(owner1[name][~mine].unique().tolist()) <= {1, 2}  # the freed weights went to task 1
    assert changed > 0  # task 1 did train the weights task 0 released
    for param, value in shared_rest:  # biases and PReLU slopes: trained with the first task only
        assert torch.equal(param, value)
    assert torch.equal(strat.predict(evals[0]), out_before)
    # the PET experience trained the weights task 0 released and its own head (v3's PET is one channel, as CT:
    # the two share the stem, whose masked weights are among the released ones; v2's PET/CT had a stem of its own)
    net = strat.model.net
    own = [net.heads[net.routes[1].head]]
    if net.routes[1].stem != net.routes[0].stem:
        own.append(net.stems[net.routes[1].stem])
    freed = sum(int((idx == 1).sum()) for idx in owner0.values())
    assert strat.last_trainable_params() == freed + sum(p.numel() for m in own for p in m.parameters())


def test_pruning_releases_the_smallest_free_weights():
    from unicon_bench.models.net import MultiTaskNet
    from unicon_bench.strategies.packnet import PackNetNet

    torch.manual_seed(0)
    net = MultiTaskNet.for_experiences([("classification", "CT"), ("segmentation", "CT")], channels=(4, 8, 8, 8))
    shared_convs = sum(isinstance(m, torch.nn.Conv3d) for part in (net.stems, net.encoder) for m in part.modules())
    model = PackNetNet(net)
    layers = model.layers()
    assert len(layers) == shared_convs  # every convolution of the shared stem and the encoder, none of the heads
    model.activate_task(0)
    model.prune(0.25)
    for layer in layers:
        w, pruned = layer.wrappee.weight.detach().abs(), layer.pruned_mask
        assert int(pruned.sum()) == int(w.numel() * 0.25)
        assert w[pruned].max() <= w[~pruned].min()  # by magnitude, layer by layer
        assert torch.equal(layer.available_weights()[pruned], torch.zeros(int(pruned.sum())))


def test_packnet_refuses_what_would_break_its_masks(phantom_cache):
    with pytest.raises(ValueError, match="weight_decay"):
        get_strategy("packnet").params(weight_decay=1e-4)
    with pytest.raises(ConfigError, match="2 epochs"):
        make_packnet("ct_to_pet", phantom_cache, epochs=1)
    assert get_strategy("packnet").compatible == {"task", "modality"}
    assert get_strategy("packnet").family == "architecture"
