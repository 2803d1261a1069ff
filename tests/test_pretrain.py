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
    report = run_suite(suite, cache_dir=phantom_cache, loggers=["csv"])
    assert report.ok and len(report.completed) == 6, report.failed
    assert len(list((tmp_path / "results" / "csv" / "ct_to_pet").rglob("*.csv"))) == 6  # --logger reaches every run

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


def test_pretrain_command_writes_a_plain_state_dict(tmp_path, phantom_cache, torch_one_thread):
    from typer.testing import CliRunner

    from unicon_bench.cli import app

    folder = tmp_path / "ckpt"
    args = ["pretrain", "--scenario", "ct_tasks", "--quick", "--out", str(folder), "--no-progress", "--set", "epochs=1"]
    proc = CliRunner().invoke(app, args)
    assert proc.exit_code == 0, proc.output
    assert f"checkpoint: {folder}" in proc.stdout
    meta = yaml.safe_load((folder / "pretrain.yaml").read_text())
    assert meta["sha256"] == sha256(folder / "foundation.pt") and meta["epochs"] == 1
    state = torch.load(folder / "foundation.pt", weights_only=True)
    prefixes = {k.split(".")[0] for k in state}
    assert prefixes == {"encoder", "stem", "head"}
    assert meta["task"] == "segmentation" and meta["score"]["metric"] == "dice"  # v3: ct_tasks starts with ct_seg

    # another scenario, or another backbone, cannot reuse it: one clear error
    from unicon_bench.data.streams import build_stream
    from unicon_bench.harness import resolve

    for scenario, extra, why in (("ct_to_pet", {}, "scenario 'ct_tasks'"),
                                 ("ct_tasks", {"backbone": "vit"}, "backbone 'unet'")):
        request = resolve("naive", scenario, True, None, {"backbone_weights": str(folder), **extra})
        cls, spec, params = request.strategy_cls, request.spec, request.params
        with pytest.raises(WeightsError, match=f"made for another set-up: .*{why}"):
            cls(params, build_stream(spec, cache_dir=phantom_cache))

    # a weights file that is not the one its metadata describes is refused
    torch.save({k: v + 1 for k, v in state.items()}, folder / "foundation.pt")
    request = resolve("naive", "ct_tasks", True, None, {"backbone_weights": str(folder)})
    cls, spec, params = request.strategy_cls, request.spec, request.params
    with pytest.raises(WeightsError, match="SHA-256 differs"):
        cls(params, build_stream(spec, cache_dir=phantom_cache))

    # parameters that do not act on stage 0 are refused, in one line
    proc = CliRunner().invoke(app, args[:-1] + ["lora_rank=4"])
    assert proc.exit_code == 2 and "lora_rank" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
