"""Speed-up of a 2-worker sweep over a 1-worker sweep (a measurement, not a test).

Runs the same quick suite three times into fresh folders - one worker in this process, two workers
in a local process pool and, if Ray is installed, two Ray tasks at a time on a local Ray instance -
and writes the wall times and the speed-ups to ``benchmarks/results/sweep_speedup.json`` (with the
machine and its load, ``benchmarks.common.write``). Every run uses one intra-op thread, so two
workers use two cores. Run it on an otherwise idle machine:

    OMP_NUM_THREADS=1 python -m benchmarks sweep_speedup           # 4 strategies x 3 seeds, 30 epochs
    OMP_NUM_THREADS=1 python -m benchmarks.sweep_speedup --quick   # 2 naive runs of 1 epoch: a smoke test

The ideal speed-up on two free cores is 2; worker start-up (importing torch in each process, and
starting Ray) and a shared phantom cache (generated once, before the timing) keep it below.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from unicon_bench.sweep.executors import ExecutorConfig  # noqa: E402 - after pinning the thread count
from unicon_bench.sweep import Suite, run_suite  # noqa: E402


def run(quick: bool = False, strategies: list[str] | None = None, scenario: str = "ct_to_pet", seeds: int | None = None,
        epochs: int | None = None, ray: bool = True) -> dict:
    """Time the suite with each executor; ``quick``: 2 naive runs of 1 epoch (checks the script only)."""
    strategies = strategies or (["naive"] if quick else ["naive", "ewc", "replay", "unicon"])
    seeds = seeds or (2 if quick else 3)
    epochs = epochs or (1 if quick else 30)
    params = {s: {"epochs": epochs} for s in strategies}
    suite = Suite(name="speedup", strategies=strategies, scenarios=[scenario], seeds=seeds, quick=True, params=params)
    executors = {"1 worker (in process)": ExecutorConfig("local"),
                 "2 workers (process pool)": ExecutorConfig("local", workers=2, threads=1)}
    if ray:
        try:
            import ray as _ray  # noqa: F401

            executors["2 workers (Ray)"] = ExecutorConfig("ray", workers=2, threads=1)
        except ImportError:
            print("ray not installed: skipping the Ray measurement")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the in-process worker too, whatever ran before in this process
    with tempfile.TemporaryDirectory(prefix="sweep-speedup-") as tmp:
        cache = Path(tmp) / "cache"
        os.environ["UNICON_BENCH_CACHE"] = str(cache)
        warm = run_suite(suite.model_copy(update={"seeds": 1, "strategies": strategies[:1]}), out=Path(tmp) / "warm",
                         cache_dir=cache)
        assert warm.ok, warm.failed  # phantoms generated once, before any timing
        walls = {}
        for label, executor in executors.items():
            t0 = time.perf_counter()
            report = run_suite(suite, out=Path(tmp) / label.replace(" ", "_"), cache_dir=cache, executor=executor)
            walls[label] = time.perf_counter() - t0
            if not report.ok:
                raise SystemExit(f"{label}: {len(report.failed)} run(s) failed: {report.failed[0][1]}")
            print(f"{label}: {len(report.completed)} runs in {walls[label]:.1f} s")
    torch.set_num_threads(threads)
    base = walls["1 worker (in process)"]
    return {
        "suite": {"strategies": strategies, "scenario": scenario, "seeds": seeds, "quick": True, "epochs": epochs,
                  "runs": len(strategies) * seeds},
        "wall_time_s": walls,
        "speedup_vs_1_worker": {k: base / v for k, v in walls.items() if k != "1 worker (in process)"},
    }


def main() -> None:
    from benchmarks.common import write

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 naive runs of 1 epoch: checks the script only")
    parser.add_argument("--strategies", nargs="+")
    parser.add_argument("--scenario", default="ct_to_pet")
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--epochs", type=int, help="every strategy's epochs (default 30, as suites/ci.yaml)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray measurement")
    args = parser.parse_args()
    payload = run(args.quick, args.strategies, args.scenario, args.seeds, args.epochs, ray=not args.no_ray)
    path = write("sweep_speedup" + ("_quick" if args.quick else ""), payload)
    print(json.dumps(payload["speedup_vs_1_worker"], indent=2), f"-> {path}")


if __name__ == "__main__":
    main()
