"""Does bf16 change the final metrics beyond seed noise? Paired bf16 - fp32 over the seeds.

Reads the full (not --quick) results of ``benchmarks/precision_fp32.yaml`` and ``precision_bf16.yaml``
(naive on ct_to_pet and ct_tasks, seeds 0, 1, 2, one intra-op thread), committed under
``benchmarks/results/precision/{fp32,bf16}/`` (made as ``unicon-bench run -s naive -c SCENARIO --seed N
--precision P --out benchmarks/results/precision/P``, two at a time, which is what those suites run:
sweeping them afterwards finds every run done). Per scenario and metric (the final average and each
experience's final score in its primary metric), the per-seed difference bf16 - fp32 (same seed: same
initialisation, data and order), its mean, the 95 % t-interval of the mean and the paired t-test p
(``scipy.stats``), beside the seed-to-seed SD of fp32 (and of bf16). ``beyond_seed_noise`` says
whether the mean difference is larger than fp32's seed SD; ``significant`` whether p < 0.05. With
three seeds the interval is wide (t = 4.30): read the interval, not only the verdicts.

    python -m benchmarks.precision_effect [RESULTS_DIR]
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

from benchmarks.common import RESULTS, write

ALPHA = 0.05


def _column_label(col: str) -> str:
    from unicon_bench.analysis.aggregate import column_label

    return column_label(col)


def collect(root: Path) -> dict:
    """``{scenario: {precision: {seed: {column: value}}}}`` for the final average and final scores."""
    from unicon_bench.analysis.aggregate import EXP_PREFIX, load_results, run_values

    found, problems = load_results(root)
    if problems:
        raise SystemExit(f"invalid result files under {root}: {problems}")
    data: dict = {}
    for _path, r in found:
        if r.scenario.quick:
            continue
        values = run_values(r)
        cols = ["final_average", *(EXP_PREFIX + e for e in r.scenario.experiences)]
        runs = data.setdefault(r.scenario.name, {}).setdefault(r.env.precision, {})
        if r.seed in runs:
            raise SystemExit(f"two {r.env.precision} results of {r.scenario.name} seed {r.seed} under {root}")
        runs[r.seed] = {c: values[c] for c in cols}
        runs[r.seed]["_metrics"] = dict(zip(r.scenario.experiences, r.scenario.metrics))
        runs[r.seed]["_threads"] = r.env.threads
        runs[r.seed]["_wall_time_s"] = r.cost.wall_time_s
    return data


def paired(fp32: list[float], bf16: list[float]) -> dict:
    from scipy import stats

    d = [b - a for a, b in zip(fp32, bf16)]
    n = len(d)
    mean = statistics.fmean(d)
    sd_fp32 = statistics.stdev(fp32) if n > 1 else None
    out = {"n_seeds": n, "fp32": fp32, "bf16": bf16, "diff": d, "mean_diff": mean,
           "fp32_mean": statistics.fmean(fp32), "bf16_mean": statistics.fmean(bf16),
           "fp32_seed_sd": sd_fp32, "bf16_seed_sd": statistics.stdev(bf16) if n > 1 else None,
           "ci95": None, "p": None}
    if n > 1:
        sem = statistics.stdev(d) / math.sqrt(n)
        half = float(stats.t.ppf(0.975, n - 1)) * sem
        out["ci95"] = [mean - half, mean + half]
        p = float(stats.ttest_rel(bf16, fp32).pvalue) if sem > 0 else (1.0 if mean == 0 else 0.0)
        out["p"] = p
    out["significant"] = out["p"] is not None and out["p"] < ALPHA
    out["beyond_seed_noise"] = sd_fp32 is not None and abs(mean) > sd_fp32
    return out


def run(root: Path = RESULTS / "precision") -> dict:
    data = collect(root)
    scenarios = {}
    for scenario, by_precision in sorted(data.items()):
        fp, bf = by_precision.get("fp32", {}), by_precision.get("bf16", {})
        seeds = sorted(set(fp) & set(bf))
        if not seeds:
            continue
        cols = [c for c in fp[seeds[0]] if not c.startswith("_")]
        metrics = {}
        for col in cols:
            pairs = [(fp[s][col], bf[s][col]) for s in seeds if fp[s][col] is not None and bf[s][col] is not None]
            metrics[col] = {"label": _column_label(col), **paired([a for a, _ in pairs], [b for _, b in pairs])}
        # a seed's fp32 and bf16 runs ran side by side (two at a time, on a shared machine): rough, not a benchmark
        wall = {s: bf[s]["_wall_time_s"] / fp[s]["_wall_time_s"] for s in seeds}
        scenarios[scenario] = {"seeds": seeds, "experience_metrics": fp[seeds[0]]["_metrics"],
                               "wall_time_ratio_bf16_over_fp32": wall,
                               "threads": sorted({fp[s]["_threads"] for s in seeds} | {bf[s]["_threads"] for s in seeds}),
                               "metrics": metrics}
    return {"results_dir": str(root), "question": "does bf16 change the final metrics beyond seed noise?",
            "alpha": ALPHA, "scenarios": scenarios}


def table(payload: dict) -> str:
    lines = ["| scenario | metric | fp32 mean (seed SD) | bf16 mean | bf16 − fp32 [95 % CI] | p |",
             "|---|---|---|---|---|---|"]
    for scenario, s in payload["scenarios"].items():
        for m in s["metrics"].values():
            ci = "" if m["ci95"] is None else f" [{m['ci95'][0]:+.3f}, {m['ci95'][1]:+.3f}]"
            p = "–" if m["p"] is None else f"{m['p']:.2f}"
            lines.append(f"| {scenario} | {m['label']} | {m['fp32_mean']:.3f} ({m['fp32_seed_sd']:.3f}) | "
                         f"{m['bf16_mean']:.3f} | {m['mean_diff']:+.3f}{ci} | {p} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", type=Path, default=RESULTS / "precision")
    args = parser.parse_args()
    payload = run(args.results)
    path = write("precision_effect", payload)
    print(table(payload))
    print(path)
