"""The ``segresenc`` backbone: MONAI's SegResEncoder as is, so a CT-FM checkpoint loads by key."""

from __future__ import annotations

import json

import pytest
import torch

from unicon_bench.errors import ConfigError
from unicon_bench.models.backbones import build_backbone
from unicon_bench.registry import list_strategies

SMALL = {"init_filters": 8, "blocks_down": [1, 1, 1, 1]}
SMALL_YAML = "{init_filters: 8, blocks_down: [1, 1, 1, 1]}"
OWN_NETWORK = {"packnet", "l2p"}  # build a network of their own: a backbone does not apply


def ctfm_encoder(seed: int = 5):
    """A freshly initialised SegResEncoder with CT-FM's published configuration (what its file holds)."""
    from monai.networks.nets.segresnet_ds import SegResEncoder

    torch.manual_seed(seed)
    return SegResEncoder(spatial_dims=3, in_channels=1, init_filters=32, blocks_down=(1, 2, 2, 4, 4))


def test_default_is_ct_fm_and_matches_monai(torch_one_thread):
    """Same keys and shapes as CT-FM's encoder (161 tensors, 77.8 M parameters), and the same output."""
    ref = ctfm_encoder()
    ours = build_backbone("segresenc", (32, 32, 32))
    assert ours.state_dict().keys() == ref.state_dict().keys() and len(ref.state_dict()) == 161
    assert round(sum(p.numel() for p in ours.parameters()) / 1e6, 1) == 77.8
    ours.load_state_dict(ref.state_dict())  # strict: nothing missing, nothing unexpected
    ours.eval(), ref.eval()
    x = torch.randn(1, 1, 32, 32, 32)
    with torch.no_grad():
        want, got = ref(x), ours(x)
    assert len(got) == 5 and all(torch.equal(a, b) for a, b in zip(want, got))
    assert ours.channels == (32, 64, 128, 256, 512) and ours.divisor == 16


def test_ct_fm_safetensors_loads_whole_and_unicon_runs(tmp_path, phantom_cache, torch_one_thread):
    """Acceptance: CT-FM's state dict as safetensors, through ``--set``, 161 tensors loaded, none ignored."""
    from safetensors.torch import save_file
    from typer.testing import CliRunner

    from unicon_bench.cli import app
    from unicon_bench.results import read_result

    state = ctfm_encoder().state_dict()
    path = tmp_path / "ct_fm.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    del state
    out = tmp_path / "out"
    proc = CliRunner().invoke(app, [
        "run", "--strategy", "unicon", "--scenario", "ct_to_pet", "--quick", "--no-progress", "--out", str(out),
        "--cache-dir", str(phantom_cache), "--set", "backbone=segresenc", "--set", f"backbone_weights={path}",
        "--set", "freeze=frozen",  # CT-FM's 78 M parameters stay fixed: no Adam state, a few seconds
    ])
    assert proc.exit_code == 0, proc.output
    (file,) = out.rglob("*.json")
    result = read_result(file)
    assert result.cost.weights_report == ["161 tensors loaded"]  # no missing, unexpected or reshaped key
    assert result.cost.weights_kind == "safetensors" and result.cost.frozen == "frozen"
    assert result.cost.frozen_params == 77_760_992
    assert json.loads(file.read_text())["strategy"]["params"]["backbone"] == "segresenc"


def _strategy(name, phantom_cache, **params):
    from unicon_bench.data.streams import build_stream
    from unicon_bench.harness import resolve, seed_everything

    request = resolve(name, "ct_to_pet", True, None, {"backbone": "segresenc", "backbone_options": SMALL_YAML, **params})
    seed_everything(0)
    return request.strategy_cls(request.params, build_stream(request.spec, cache_dir=phantom_cache))


def _buffers(module) -> dict:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_frozen_batch_norm_statistics(phantom_cache, torch_one_thread):
    """``freeze=frozen``: weights and running statistics unchanged by training; UNICON's later stages
    leave the stage-0 encoder (running statistics included) and earlier outputs as they were."""
    strat = _strategy("naive", phantom_cache, freeze="frozen", epochs=1)
    before = _buffers(strat.model.encoder)
    strat.train(strat.stream.train_stream[0])
    after = strat.model.encoder.state_dict()
    assert any(k.endswith("running_mean") for k in before)
    assert all(torch.equal(before[k], after[k]) for k in before)

    strat = _strategy("unicon", phantom_cache, epochs=1)
    train, evals = list(strat.stream.train_stream), list(strat.stream.eval_stream)
    strat.train(train[0])
    stage0 = _buffers(strat.model.encoder)
    out0 = strat.predict(evals[0])
    strat.train(train[1])
    lora = [k for k in strat.model.encoder.state_dict() if ".updates." in k]
    assert lora  # UNICON's LoRA wrapped the encoder's convolutions
    now = {k.replace(".base.", "."): v for k, v in strat.model.encoder.state_dict().items() if ".updates." not in k}
    assert now.keys() == stage0.keys() and all(torch.equal(now[k], stage0[k]) for k in now)
    assert torch.equal(strat.predict(evals[0]), out0)


@pytest.mark.slow
@pytest.mark.parametrize("name", list_strategies())
def test_every_strategy_runs_on_segresenc(name, tmp_path, phantom_cache, torch_one_thread):
    """One quick run (16^3, ct_to_pet) of each strategy on a small segresenc; those with a network of
    their own refuse the backbone in one line."""
    from unicon_bench import harness

    overrides = {"backbone": "segresenc", "backbone_options": SMALL_YAML, "epochs": 1}
    if name in OWN_NETWORK:
        with pytest.raises(ConfigError, match="builds its own network"):
            harness.run(name, "ct_to_pet", quick=True, out=tmp_path, overrides=overrides, cache_dir=phantom_cache)
        return
    result, _ = harness.run(name, "ct_to_pet", quick=True, out=tmp_path, overrides=overrides, cache_dir=phantom_cache)
    assert result.strategy.params["backbone"] == "segresenc"
    dice = [e.value for e in result.matrix if e.metric == "dice"]
    assert len(dice) == 6 and all(v is None or 0 <= v <= 1 for v in dice)  # (untrained + 2) x 2 experiences
