"""Benchmark: a sweep that shares one pretrained stage 0 against one where every run trains it.

Runs the same suite twice in fresh folders - without ``pretrain`` and with ``pretrain: true`` - and
writes ``benchmarks/results/pretrain_reuse.json`` with both sweeps' wall times, the pretrain time,
each run's first-experience train time, the saving and the expected saving (the runs' stage-0 times
minus the one pretraining). Every run of the shared sweep must record the same weights hash.

    OMP_NUM_THREADS=1 python -m benchmarks pretrain_reuse            # default size (ct_to_pet, 4 strategies x 2 seeds)
    OMP_NUM_THREADS=1 python -m benchmarks pretrain_reuse --quick    # smoke test, about a minute
    OMP_NUM_THREADS=1 python -m benchmarks.pretrain_reuse --strategies naive,ewc --seeds 3

Run it on an otherwise idle machine: the wall times are the measurement.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml


def sweep(suite: dict, folder: Path, cache_dir: Path) -> tuple[float, list]:
    from unicon_bench.results import read_result
    from unicon_bench.sweep import load_suite, run_suite

    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump({**suite, "out": str(folder / "results")}), encoding="utf-8")
    t0 = time.perf_counter()
    report = run_suite(load_suite(path), cache_dir=cache_dir)
    wall = time.perf_counter() - t0
    if not report.ok:
        raise SystemExit(f"sweep failed: {report.failed[0][1]}")
    return wall, [read_result(p) for _, p in report.completed]


def run(quick: bool = False, scenario: str = "ct_to_pet", strategies=("naive", "ewc", "replay", "unicon"),
        seeds: int = 2, epochs: int | None = None) -> dict:
    """Both sweeps; ``quick``: the scenario's 16^3 version, one epoch, naive and UNICON, one seed."""
    if quick:
        strategies, seeds, epochs = ("naive", "unicon"), 1, epochs or 1
    strategies = list(strategies)
    params = {s: {"epochs": epochs} for s in strategies} if epochs else {}
    suite = {"name": "pretrain_reuse", "strategies": strategies, "scenarios": [scenario],
             "seeds": seeds, "quick": quick, "params": params}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache = tmp / "cache"
        from unicon_bench.data.streams import build_stream
        from unicon_bench.scenario import get_scenario

        spec = get_scenario(scenario)
        build_stream(spec.quick_version() if quick else spec, cache_dir=cache)  # phantoms outside the timings
        (tmp / "own").mkdir()
        (tmp / "shared").mkdir()
        own_wall, own = sweep(suite, tmp / "own", cache)
        pretrain = {"seed": 0, **({"epochs": epochs} if epochs else {})}
        shared_wall, shared = sweep({**suite, "pretrain": pretrain}, tmp / "shared", cache)
        meta = yaml.safe_load((tmp / "shared" / "results" / "pretrain" /
                               f"{spec.name}{'-quick' if quick else ''}" / "pretrain.yaml").read_text())

    hashes = {r.cost.weights_sha256 for r in shared}
    stage0_own = [r.cost.train_time_s[0] for r in own]
    stage0_shared = [r.cost.train_time_s[0] for r in shared]
    return {
        "suite": suite,
        "runs": len(own),
        "wall_time_s": {"own_stage0": own_wall, "shared_stage0": shared_wall},
        "saving_s": own_wall - shared_wall,
        "saving_ratio": (own_wall - shared_wall) / own_wall,
        "expected_saving_s": sum(stage0_own) - sum(stage0_shared) - meta["train_time_s"],
        "pretrain_train_time_s": meta["train_time_s"],
        "stage0_train_time_s": {"own_median": statistics.median(stage0_own),
                                "shared_median": statistics.median(stage0_shared),
                                "own": stage0_own, "shared": stage0_shared},
        "shared_weights_sha256": sorted(h for h in hashes if h),
        "one_hash_for_all_runs": len(hashes) == 1 and None not in hashes,
    }


def main() -> None:
    from benchmarks.common import write

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="ct_to_pet")
    ap.add_argument("--strategies", default="naive,ewc,replay,unicon")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--epochs", type=int, default=None, help="override every run's epochs (default: the scenario's)")
    args = ap.parse_args()
    payload = run(args.quick, args.scenario, args.strategies.split(","), args.seeds, args.epochs)
    path = write("pretrain_reuse" + ("_quick" if args.quick else ""), payload)
    w = payload["wall_time_s"]
    print(f"{payload['runs']} runs: {w['own_stage0']:.1f} s training stage 0 each, {w['shared_stage0']:.1f} s sharing it "
          f"(saved {payload['saving_s']:.1f} s, expected {payload['expected_saving_s']:.1f} s); "
          f"one hash: {payload['one_hash_for_all_runs']}")
    print(path)


if __name__ == "__main__":
    main()
