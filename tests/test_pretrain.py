"""`unicon-bench pretrain` and sweeps that share one stage-0 checkpoint across strategies and seeds."""

from __future__ import annotations

import hashlib

import pytest
import torch
import yaml

from unicon_bench.models.weights import WeightsError
from unicon_bench.results import read_result
from unicon_bench.sweep import load_suite, run_suite


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_sweep_shares_one_stage0(tmp_path, phantom_cache, torch_one_thread):
    suite_file = tmp_path / "shared.yaml"
    suite_file.write_text(yaml.safe_dump({
        "name": "shared", "strategies": ["naive", "unicon", "ewc"], "scenarios": ["ct_to_pet"], "seeds": [0, 1],
        "quick": True, "out": str(tmp_path / "results"), "pretrain": {"seed": 5, "epochs": 1},
        "params": {s: {"epochs": 1} for s in ("naive", "unicon", "ewc")},
    }), encoding="utf-8")
    suite = load_suite(suite_file)
    report = run_suite(suite, cache_dir=phantom_cache)
    assert report.ok and len(report.completed) == 6, report.failed

    ckpt = tmp_path / "results" / "pretrain" / "ct_to_pet-quick"
    meta = yaml.safe_load((ckpt / "pretrain.yaml").read_text())
    digest = sha256(ckpt / "foundation.pt")
    assert meta["sha256"] == digest and meta["seed"] == 5 and meta["experience"] == "ct_seg"
    stage0_scores = set()
    for run, path in report.completed:
        r = read_result(path)
        assert r.cost.weights_sha256 == digest, run.label()  # every run records the same weights hash
        assert r.cost.weights_kind == "pretrain" and r.strategy.params["backbone_weights"] == str(ckpt)
        assert r.cost.trainable_params[0] == 0  # no run trained the first experience itself
        stage0_scores.add(r.rows()[1][0][0])
    # the score after stage 0 is the checkpoint's, whatever the strategy and the seed
    assert stage0_scores == {meta["score"]["value"]}

    # the result folders hold results only (the checkpoint's metadata is not a *.json file)
    assert all(p.parent.parent.name == "ct_to_pet" for p in (tmp_path / "results").rglob("*.json"))
    # a resumed sweep neither re-trains stage 0 nor re-runs anything
    mtime = (ckpt / "foundation.pt").stat().st_mtime_ns
    again = run_suite(suite, cache_dir=phantom_cache)
    assert again.ok and not again.completed and len(again.existing) == 6
    assert (ckpt / "foundation.pt").stat().st_mtime_ns == mtime


def test_stage0_checkpoint_is_a_plain_state_dict(tmp_path, phantom_cache, torch_one_thread):
    from unicon_bench.pretrain import pretrain

    meta, folder = pretrain("ct_tasks", tmp_path / "ckpt", quick=True, overrides={"epochs": 1}, cache_dir=phantom_cache)
    state = torch.load(folder / "foundation.pt", weights_only=True)
    prefixes = {k.split(".")[0] for k in state}
    assert prefixes == {"encoder", "stem", "head"}
    assert meta["task"] == "classification" and meta["score"]["metric"] == "auc"

    # another scenario, or another backbone, cannot reuse it: one clear error
    from unicon_bench.data.streams import build_stream
    from unicon_bench.harness import resolve

    for scenario, extra, why in (("ct_to_pet", {}, "scenario 'ct_tasks'"),
                                 ("ct_tasks", {"backbone": "vit"}, "backbone 'unet'")):
        cls, spec, params = resolve("naive", scenario, True, None, {"backbone_weights": str(folder), **extra})
        with pytest.raises(WeightsError, match=f"made for another set-up: .*{why}"):
            cls(params, build_stream(spec, cache_dir=phantom_cache))
