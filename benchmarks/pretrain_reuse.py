"""Benchmark: a sweep that shares one pretrained stage 0 against one where every run trains it.

Runs the same suite twice in fresh folders - without ``pretrain`` and with ``pretrain: true`` - and
writes ``benchmarks/results/pretrain_reuse-<time>.json`` with both sweeps' wall times, the pretrain
time, each run's first-experience train time, the saving and the expected saving (runs x stage-0
time - the one pretraining). Every run of the shared sweep must record the same weights hash.

    OMP_NUM_THREADS=1 python benchmarks/pretrain_reuse.py                       # default size, ~15 min
    OMP_NUM_THREADS=1 python benchmarks/pretrain_reuse.py --quick --epochs 1    # smoke test, ~1 min

Run it on an otherwise idle machine: the wall times are the measurement.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="ct_to_pet")
    ap.add_argument("--strategies", default="naive,ewc,replay,unicon")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--epochs", type=int, default=None, help="override every run's epochs (default: the scenario's)")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()

    import torch

    strategies = args.strategies.split(",")
    params = {s: {"epochs": args.epochs} for s in strategies} if args.epochs else {}
    suite = {"name": "pretrain_reuse", "strategies": strategies, "scenarios": [args.scenario],
             "seeds": args.seeds, "quick": args.quick, "params": params}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache = tmp / "cache"
        from unicon_bench.data.streams import build_stream
        from unicon_bench.scenario import get_scenario

        spec = get_scenario(args.scenario)
        build_stream(spec.quick_version() if args.quick else spec, cache_dir=cache)  # phantoms outside the timings
        (tmp / "own").mkdir()
        (tmp / "shared").mkdir()
        own_wall, own = sweep(suite, tmp / "own", cache)
        pretrain = {"seed": 0, **({"epochs": args.epochs} if args.epochs else {})}
        shared_wall, shared = sweep({**suite, "pretrain": pretrain}, tmp / "shared", cache)
        meta = yaml.safe_load((tmp / "shared" / "results" / "pretrain" /
                               f"{spec.name}{'-quick' if args.quick else ''}" / "pretrain.yaml").read_text())

    hashes = {r.cost.weights_sha256 for r in shared}
    stage0_own = [r.cost.train_time_s[0] for r in own]
    stage0_shared = [r.cost.train_time_s[0] for r in shared]
    expected = sum(stage0_own) - sum(stage0_shared) - meta["train_time_s"]
    record = {
        "benchmark": "pretrain_reuse",
        "when": datetime.now(timezone.utc).isoformat(),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "threads": torch.get_num_threads(), "torch": torch.__version__},
        "suite": suite,
        "runs": len(own),
        "wall_time_s": {"own_stage0": own_wall, "shared_stage0": shared_wall},
        "saving_s": own_wall - shared_wall,
        "expected_saving_s": expected,
        "pretrain_train_time_s": meta["train_time_s"],
        "stage0_train_time_s": {"own_median": statistics.median(stage0_own), "shared_median": statistics.median(stage0_shared),
                                "own": stage0_own, "shared": stage0_shared},
        "shared_weights_sha256": sorted(h for h in hashes if h),
        "one_hash_for_all_runs": len(hashes) == 1 and None not in hashes,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"pretrain_reuse-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"{len(own)} runs: {own_wall:.1f} s training stage 0 each, {shared_wall:.1f} s sharing it "
          f"(saved {own_wall - shared_wall:.1f} s, expected {expected:.1f} s); one hash: {record['one_hash_for_all_runs']}")
    print(path)


if __name__ == "__main__":
    main()
