"""Bring your own foundation model: weights by path into a strategy, key mapping, clear errors, freezing."""

from __future__ import annotations

import hashlib

import pytest
import torch

from unicon_bench.models.backbones import build_backbone
from unicon_bench.models.weights import WeightsError, map_keys
from unicon_bench.registry import get_strategy
from unicon_bench.scenario import get_scenario

SHAPE = (16, 16, 16)


class NotATensor:
    """Any pickled object that is not a tensor: ``weights_only=True`` must refuse it."""


def make_strategy(name: str, phantom_cache, scenario: str = "ct_to_pet", **params):
    """A strategy as the harness builds it (quick scenario, seed 0)."""
    from unicon_bench.data.streams import build_stream
    from unicon_bench.harness import resolve, seed_everything

    request = resolve(name, scenario, True, None, params)
    cls, spec, p = request.strategy_cls, request.spec, request.params
    seed_everything(0)
    return cls(p, build_stream(spec, cache_dir=phantom_cache))


def foreign(name: str, seed: int = 123, **options) -> dict:
    """A backbone's weights from another random initialisation (what a pretrained file holds)."""
    torch.manual_seed(seed)
    return build_backbone(name, SHAPE, options).state_dict()


def assert_loaded(module, state: dict) -> None:
    own = module.state_dict()
    assert own.keys() == state.keys()
    assert all(torch.equal(own[k], state[k]) for k in own)


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_swin_unetr_monai_checkpoint_loads_into_unicon(tmp_path, phantom_cache, torch_one_thread):
    """A whole MONAI SwinUNETR checkpoint (as the model zoo ships): the encoder side loads, the
    decoder keys the backbone lacks are allowed by a glob and reported."""
    from monai.networks.nets import SwinUNETR

    torch.manual_seed(7)
    net = SwinUNETR(in_channels=1, out_channels=1, feature_size=12, depths=(1, 1, 1, 1), window_size=4, norm_name="instance")
    path = tmp_path / "swin_unetr.pt"
    torch.save(net.state_dict(), path)

    strat = make_strategy("unicon", phantom_cache, backbone="swin_unetr", backbone_weights=str(path),
                          weights_ignore="decoder*,out.*")
    enc = strat.model.encoder.state_dict()
    expected = {k: v for k, v in net.state_dict().items() if k in enc}
    assert len(expected) == len(enc) > 50  # every backbone tensor came from the file
    assert all(torch.equal(enc[k], expected[k]) for k in enc)
    assert strat.foundation.sha256 == sha256(path)
    assert any("unexpected" in line and "decoder" in line for line in strat.foundation.report)

    with pytest.raises(WeightsError, match=r"unexpected keys \(e\.g\. decoder"):  # not allowed: one clear error
        make_strategy("unicon", phantom_cache, backbone="swin_unetr", backbone_weights=str(path))


def test_vit_state_dict_loads_into_naive(tmp_path, phantom_cache, torch_one_thread):
    state = foreign("vit")
    path = tmp_path / "vit.pth"
    torch.save(state, path)
    strat = make_strategy("naive", phantom_cache, backbone="vit", backbone_weights=str(path))
    fresh = make_strategy("naive", phantom_cache, backbone="vit")
    assert any(not torch.equal(fresh.model.encoder.state_dict()[k], state[k]) for k in state)  # init differs
    assert_loaded(strat.model.encoder, state)
    assert strat.cost_fields()["weights_kind"] == "state_dict"


def test_safetensors_file_and_monai_bundle(tmp_path, phantom_cache, torch_one_thread):
    from safetensors.torch import save_file

    state = foreign("segresnet")
    path = tmp_path / "segresnet.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    strat = make_strategy("ewc", phantom_cache, backbone="segresnet", backbone_weights=str(path))
    assert_loaded(strat.model.encoder, state)
    assert strat.cost_fields()["weights_kind"] == "safetensors"
    assert strat.cost_fields()["weights_sha256"] == sha256(path)

    bundle = tmp_path / "bundle"
    (bundle / "models").mkdir(parents=True)
    (bundle / "configs").mkdir()
    torch.save(state, bundle / "models" / "model.pt")
    strat = make_strategy("naive", phantom_cache, backbone="segresnet", backbone_weights=str(bundle))
    assert_loaded(strat.model.encoder, state)
    assert strat.cost_fields()["weights_kind"] == "monai_bundle"


def test_prefix_strip_makes_a_wrapped_checkpoint_load(tmp_path, phantom_cache, torch_one_thread):
    """A DataParallel/Lightning-style checkpoint: {"state_dict": {"module.backbone.<key>": ...}}."""
    state = foreign("unet")
    path = tmp_path / "wrapped.ckpt"
    torch.save({"epoch": 3, "state_dict": {f"module.backbone.{k}": v for k, v in state.items()}}, path)
    with pytest.raises(WeightsError, match=r"missing from the file \(e\.g\. levels\.0.*unexpected keys \(e\.g\. module\.backbone\."):
        make_strategy("naive", phantom_cache, backbone_weights=str(path))
    strat = make_strategy("naive", phantom_cache, backbone_weights=str(path), weights_map="module.backbone.->")
    assert_loaded(strat.model.encoder, state)


def test_wrong_keys_are_one_clear_error(tmp_path, phantom_cache):
    """Through the command line (in-process: the subprocess start-up alone takes long here)."""
    from typer.testing import CliRunner

    from unicon_bench.cli import app

    state = {f"blocks.{i}.attn.qkv.weight": torch.zeros(3, 3) for i in range(6)}
    path = tmp_path / "wrong.pt"
    torch.save(state, path)
    proc = CliRunner().invoke(app, ["run", "--strategy", "naive", "--scenario", "ct_to_pet", "--quick", "--no-progress",
                                    "--out", str(tmp_path), "--set", f"backbone_weights={path}"])
    assert proc.exit_code == 2, proc.output
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: backbone_weights")
    assert "blocks.0.attn.qkv.weight" in lines[0] and "levels.0" in lines[0]  # names a few keys of each side
    assert "weights_map" in lines[0]  # and says how to fix it
    assert not list(tmp_path.rglob("*.json"))


def test_shape_mismatch_and_unsafe_pickle(tmp_path, phantom_cache):
    state = foreign("unet", channels=(8, 16, 32, 64))
    path = tmp_path / "narrow.pt"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"18 keys of another shape \(e\.g\. levels\.0\.conv\.unit0\.conv\.bias: file \(16,\), backbone \(32,\)\)"):
        make_strategy("naive", phantom_cache, backbone_weights=str(path))

    torch.save({"payload": NotATensor()}, tmp_path / "pickled.pt")  # weights_only=True refuses to unpickle it
    with pytest.raises(WeightsError, match="weights_only=True"):
        make_strategy("naive", phantom_cache, backbone_weights=str(tmp_path / "pickled.pt"))
    with pytest.raises(WeightsError, match="no such file"):
        make_strategy("naive", phantom_cache, backbone_weights=str(tmp_path / "absent.pt"))


def test_map_keys_rules():
    state = {"module.a.w": 1, "module.b.w": 2, "head.w": 3}
    assert map_keys(state, "module.->, a.->enc.") == {"enc.w": 1, "b.w": 2, "head.w": 3}
    with pytest.raises(WeightsError, match="OLD->NEW"):
        map_keys(state, "module.")
    with pytest.raises(WeightsError, match="two checkpoint keys map to 'w'"):
        map_keys({"x.w": 1, "y.w": 2}, "x.->,y.->")


def _trained_exp0(strat):
    before = {k: v.clone() for k, v in strat.model.encoder.state_dict().items()}
    strat.train(strat.stream.train_stream[0])
    after = strat.model.encoder.state_dict()
    return {k for k in before if not torch.equal(before[k], after[k])}


@pytest.mark.parametrize("strategy", ["unicon", "naive"])
def test_frozen_backbone_is_not_updated(strategy, phantom_cache, torch_one_thread):
    strat = make_strategy(strategy, phantom_cache, backbone="resnet", freeze="frozen", epochs=1)
    total = sum(p.numel() for p in strat.model.encoder.parameters())
    assert strat.cost_fields()["frozen_params"] == total
    assert _trained_exp0(strat) == set()  # weights and batch-norm running statistics alike
    updated = strat.last_trainable_params()
    assert 0 < updated <= sum(p.numel() for p in strat.model.parameters()) - total  # stem and head trained


def test_partial_freeze_freezes_the_first_stages(phantom_cache, torch_one_thread):
    strat = make_strategy("naive", phantom_cache, freeze="partial:1", epochs=1)
    changed = _trained_exp0(strat)
    assert changed and not any(k.startswith("levels.0.") for k in changed)
    assert any(k.startswith("levels.1.") for k in changed)
    with pytest.raises(WeightsError, match="has 3 stages"):
        make_strategy("naive", phantom_cache, freeze="partial:4")
    with pytest.raises(Exception, match="freeze must be none, frozen or partial:N"):
        make_strategy("naive", phantom_cache, freeze="half")


def test_backbone_options_have_one_spelling():
    from unicon_bench.strategy import BaseParams

    a = BaseParams(backbone="swin_unetr", backbone_options="{window_size: 2,  feature_size: 24}")
    b = BaseParams(backbone="swin_unetr", backbone_options={"feature_size": 24, "window_size": 2})
    assert a.backbone_options == b.backbone_options == '{"feature_size": 24, "window_size": 2}'
    with pytest.raises(Exception, match="YAML mapping"):
        BaseParams(backbone_options="[1, 2]")
