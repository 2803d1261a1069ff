"""L2P on a MONAI 3D ViT: key matching picks the right prompts, the stage-0 ViT stays frozen."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from unicon_bench.models.prompt_vit import PromptPool, PromptViTNet
from unicon_bench.registry import get_strategy
from unicon_bench.scenario import get_scenario


def test_prompt_pool_selects_the_keys_nearest_the_query():
    torch.manual_seed(0)
    pool = PromptPool(size=6, length=2, top_k=2, dim=8)
    with torch.no_grad():
        pool.keys.copy_(torch.eye(8)[:6] * 3.0)  # key i points along axis i
    query = torch.tensor([[0.0, 2.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0],  # nearest: keys 1, then 3
                          [0.0, 0.0, 0.0, 0.0, 0.0, 5.0, 0.0, 4.0]])  # key 5; then a tie at 0 (cos 0)
    prompts, loss, idx = pool.select(query)
    assert idx[0].tolist() == [1, 3] and idx[1, 0] == 5
    assert prompts.shape == (2, 4, 8)
    assert torch.equal(prompts[0], torch.cat([pool.prompts[1], pool.prompts[3]]))
    cos = F.normalize(query, dim=1)
    expected = ((1 - cos[0, 1]) + (1 - cos[0, 3]) + (1 - cos[1, 5]) + 1.0) / 2  # hand-derived surrogate loss
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)
    loss.backward()
    assert pool.keys.grad[[1, 3, 5]].abs().sum() > 0 and pool.keys.grad[[2, 4]].abs().sum() == 0


def test_prompt_vit_shapes_and_refusals():
    torch.manual_seed(0)
    net = PromptViTNet({0: "segmentation", 1: "classification"}, (16, 16, 16), hidden=32, layers=1, heads=2)
    x = torch.randn(2, 1, 16, 16, 16)
    assert net(x, 0).shape == (2, 1, 16, 16, 16)
    assert net(x, 1).shape == (2,)
    assert len(net.match_losses) == 2  # one key-matching loss per training forward
    with pytest.raises(ValueError, match="cubic"):
        PromptViTNet({0: "segmentation"}, (16, 16, 24))


@pytest.mark.slow
def test_l2p_freezes_the_stage0_vit_and_trains_prompts(phantom_cache, torch_one_thread):
    from unicon_bench.data.streams import build_stream
    from unicon_bench.harness import seed_everything

    seed_everything(0)
    cls = get_strategy("l2p")
    strat = cls(cls.params(), build_stream(get_scenario("ct_to_pet").quick_version(), cache_dir=phantom_cache))
    train = list(strat.stream.train_stream)
    strat.train(train[0])
    vit = [(p, p.detach().clone()) for p in strat.model.vit.parameters()]
    prompts, keys = strat.model.pool.prompts.detach().clone(), strat.model.pool.keys.detach().clone()
    strat.train(train[1])
    assert all(torch.equal(p, v) for p, v in vit)
    assert not torch.equal(strat.model.pool.prompts, prompts) and not torch.equal(strat.model.pool.keys, keys)
    assert strat.last_trainable_params() < sum(p.numel() for p, _ in vit)
