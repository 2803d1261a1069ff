"""Evaluation time of a run with and without the metrics beside the primary one (issue 13, acceptance 3).

Runs the same strategy, scenario and seed through the harness once per setting of the scenario's
``evaluation.extra_metrics``: ``none`` (Dice / AUC / C-index only), ``seen`` (the default: every
registered metric wherever the model has been trained on the experience) and, with ``--modes``,
``all`` (every cell), and compares ``cost.eval_time_s`` (predictions plus metrics, summed over all
evaluations of the run). Training is bit-identical in all runs, so only evaluation differs. The
target is a ratio seen / none <= 1.25.

    OMP_NUM_THREADS=1 python benchmarks/eval_metrics.py                       # default unicon, naive, seed 0
    OMP_NUM_THREADS=1 python benchmarks/eval_metrics.py --scenario ct_to_pet --repeats 3
    OMP_NUM_THREADS=1 python benchmarks/eval_metrics.py --quick               # seconds: a smoke test of the script

Writes ``benchmarks/results/eval_metrics-<scenario>[-quick].json``. Timings on a machine shared
with other jobs are noisy: run it when the machine is quiet, and compare the medians of repeats.
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

HERE = Path(__file__).resolve().parent


def one_run(strategy: str, scenario: str, seed: int, quick: bool, extra: str, cache_dir: str | None) -> dict:
    from unicon_bench import harness
    from unicon_bench.scenario import get_scenario

    spec = get_scenario(scenario)
    spec = spec.model_copy(update={"evaluation": spec.evaluation.model_copy(update={"extra_metrics": extra})})
    with tempfile.TemporaryDirectory() as out:
        result, _ = harness.run(strategy, spec, seed=seed, quick=quick, out=out, cache_dir=cache_dir)
    return {"extra_metrics": extra, "eval_time_s": result.cost.eval_time_s, "wall_time_s": result.cost.wall_time_s,
            "train_time_s": sum(result.cost.train_time_s), "matrix_entries": len(result.matrix),
            "final_average": result.summary.final_average}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="unicon", help="scenario name or YAML (default: unicon, all three task kinds)")
    ap.add_argument("--strategy", default="naive")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=1, help="pairs of runs; the medians are compared")
    ap.add_argument("--quick", action="store_true", help="quick (16^3) runs: tests the script, not the target")
    ap.add_argument("--modes", default="none,seen", help="extra_metrics settings to time, comma-separated "
                    "(none, seen, all); the first is the reference")
    ap.add_argument("--cache-dir", default=None, help="phantom cache (default: the user cache)")
    ap.add_argument("--out", type=Path, default=None, help="output JSON (default: benchmarks/results/...)")
    args = ap.parse_args()

    import torch

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    runs = []
    for r in range(args.repeats):
        for mode in modes:  # interleaved, so a slow spell of the machine hits every setting
            t0 = time.perf_counter()
            runs.append(one_run(args.strategy, args.scenario, args.seed, args.quick, mode, args.cache_dir))
            print(f"repeat {r + 1}/{args.repeats}, extra metrics {mode}: "
                  f"eval {runs[-1]['eval_time_s']:.2f} s of {time.perf_counter() - t0:.1f} s", flush=True)
    median = {m: statistics.median(x["eval_time_s"] for x in runs if x["extra_metrics"] == m) for m in modes}
    ref = median[modes[0]]
    report = {
        "benchmark": "eval_metrics", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "scenario": args.scenario, "strategy": args.strategy, "seed": args.seed, "quick": args.quick,
        "repeats": args.repeats, "threads": torch.get_num_threads(), "platform": platform.platform(),
        "python": platform.python_version(), "torch": torch.__version__,
        "reference": modes[0], "eval_time_s_median": median,
        "ratio_to_reference": {m: (v / ref if ref else None) for m, v in median.items()},
        "target_ratio_max": 1.25, "runs": runs,
    }
    out = args.out or HERE / "results" / f"eval_metrics-{Path(args.scenario).stem}{'-quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    shown = ", ".join(f"{m} {v:.2f} s (x{report['ratio_to_reference'][m]:.3f})" for m, v in median.items())
    print(f"evaluation time (median of {args.repeats}): {shown} -> {out}")


if __name__ == "__main__":
    main()
