"""Speed-up of a 2-worker sweep over a 1-worker sweep (a measurement, not a test).

Runs the same quick suite three times into fresh folders - one worker in this process, two workers
in a local process pool and, if Ray is installed, two Ray tasks at a time on a local Ray instance -
and writes the wall times and the speed-ups to ``benchmarks/results/sweep_speedup.json``. Every
run uses one intra-op thread, so two workers use two cores. Run it on an otherwise idle machine:

    OMP_NUM_THREADS=1 python benchmarks/sweep_speedup.py                  # 4 strategies x 3 seeds, 30 epochs
    OMP_NUM_THREADS=1 python benchmarks/sweep_speedup.py --seeds 1 --strategies naive --epochs 1   # smoke

The ideal speed-up on two free cores is 2; worker start-up (importing torch in each process, and
starting Ray) and a shared phantom cache (generated once, before the timing) keep it below.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from unicon_bench.executors import ExecutorConfig  # noqa: E402 - after pinning the thread count
from unicon_bench.sweep import Suite, run_suite  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", nargs="+", default=["naive", "ewc", "replay", "unicon"])
    parser.add_argument("--scenario", default="ct_to_pet")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30, help="every strategy's epochs (as suites/ci.yaml: seconds a run)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray measurement")
    parser.add_argument("--output", type=Path, default=RESULTS / "sweep_speedup.json")
    args = parser.parse_args()

    params = {s: {"epochs": args.epochs} for s in args.strategies} if args.epochs else {}
    suite = Suite(name="speedup", strategies=args.strategies, scenarios=[args.scenario], seeds=args.seeds,
                  quick=True, params=params)
    executors = {"1 worker (in process)": ExecutorConfig("local"),
                 "2 workers (process pool)": ExecutorConfig("local", workers=2, threads=1)}
    if not args.no_ray:
        try:
            import ray  # noqa: F401

            executors["2 workers (Ray)"] = ExecutorConfig("ray", workers=2, threads=1)
        except ImportError:
            print("ray not installed: skipping the Ray measurement")
    with tempfile.TemporaryDirectory(prefix="sweep-speedup-") as tmp:
        cache = Path(tmp) / "cache"
        os.environ["UNICON_BENCH_CACHE"] = str(cache)
        warm = run_suite(suite.model_copy(update={"seeds": 1, "strategies": args.strategies[:1], "params": {
            k: v for k, v in params.items() if k == args.strategies[0]}}), out=Path(tmp) / "warm", cache_dir=cache)
        assert warm.ok, warm.failed  # phantoms generated once, before any timing
        walls = {}
        for label, executor in executors.items():
            t0 = time.perf_counter()
            report = run_suite(suite, out=Path(tmp) / label.replace(" ", "_"), cache_dir=cache, executor=executor)
            walls[label] = time.perf_counter() - t0
            if not report.ok:
                raise SystemExit(f"{label}: {len(report.failed)} run(s) failed: {report.failed[0][1]}")
            print(f"{label}: {len(report.completed)} runs in {walls[label]:.1f} s")
    base = walls["1 worker (in process)"]
    record = {
        "suite": {"strategies": args.strategies, "scenario": args.scenario, "seeds": args.seeds, "quick": True,
                  "epochs": args.epochs, "runs": len(args.strategies) * args.seeds},
        "wall_time_s": walls,
        "speedup_vs_1_worker": {k: base / v for k, v in walls.items() if k != "1 worker (in process)"},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_1m_at_end": os.getloadavg()[0]},
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(record["speedup_vs_1_worker"], indent=2), f"-> {args.output}")


if __name__ == "__main__":
    main()
