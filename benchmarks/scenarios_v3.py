"""Scenario v3 acceptance (#24), measured on the committed runs of benchmarks/results/scenarios-v3/.

Made by ``benchmarks/suites/scenarios_v3_bounds.yaml`` (naive and joint, 5 seeds) and
``benchmarks/suites/scenarios_v3_specialized.yaml`` (specialized, 3 seeds); this script trains nothing.
Per v3 scenario it reports:

- the eval subjects of each experience (the same for every strategy and seed);
- naive's BWT on each seed, with the 95 % interval of a bootstrap over that run's eval subjects
  (target: each <= -0.10);
- joint's final average minus naive's (mean over the seeds both have), with the paired hierarchical
  bootstrap interval (seeds, then subjects; target: >= +0.05);
- the specialized model's final score on each experience, mean of its seeds (targets: AUC >= 0.85,
  C-index >= 0.70, Dice >= 0.60).
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.common import RESULTS

RUNS = RESULTS / "scenarios-v3"
TARGETS = {"auc": 0.85, "c_index": 0.70, "dice": 0.60}
BWT_MAX, JOINT_GAIN = -0.10, 0.05


def _runs(root: Path) -> dict[tuple[str, str], list]:
    from unicon_bench.analysis.aggregate import load_results

    found, problems = load_results(root)
    if problems:
        raise SystemExit(f"{len(problems)} invalid result file(s) under {root}, e.g. {problems[0]}")
    out: dict[tuple[str, str], list] = {}
    for _path, r in found:
        if r.scenario.version != 3 or r.scenario.quick:
            continue
        out.setdefault((r.scenario.name, r.strategy.name), []).append(r)
    return {k: sorted(v, key=lambda r: r.seed) for k, v in out.items()}


def _r(x):
    return None if x is None else round(float(x), 4)


def scenario_report(name: str, runs: dict, boot) -> dict:
    from unicon_bench.analysis.resampling import percentile_interval

    naive, joint, spec = (runs.get((name, s), []) for s in ("naive", "joint", "specialized"))
    some = (naive or joint or spec)[0]
    exps, metrics = some.scenario.experiences, some.scenario.metrics
    T = len(exps)
    out: dict = {"kind": some.scenario.kind, "eval_subjects": {e: len(next(iter(some.subjects(j, T - 1).values()), []))
                                   for j, e in enumerate(exps)}}
    per_seed = []
    for r in naive:
        est = boot.estimate([r], "bwt")
        lo, hi = est.interval()
        per_seed.append({"seed": r.seed, "bwt": _r(r.summary.bwt), "ci": [_r(lo), _r(hi)],
                         "holds": r.summary.bwt is not None and r.summary.bwt <= BWT_MAX})
    out["naive_bwt"] = {"target": f"each seed <= {BWT_MAX}", "seeds": per_seed,
                        "holds": bool(per_seed) and all(s["holds"] for s in per_seed)}
    seeds = sorted({r.seed for r in naive} & {r.seed for r in joint})
    if seeds:
        n = [r for r in naive if r.seed in seeds]
        j = [r for r in joint if r.seed in seeds]
        en, ej = boot.estimate(n, "final_average"), boot.estimate(j, "final_average")
        delta = ej.point - en.point
        lo, hi = percentile_interval(ej.replicates - en.replicates)
        out["joint_minus_naive"] = {"target": f">= +{JOINT_GAIN}", "seeds": seeds, "naive": _r(en.point),
                                    "joint": _r(ej.point), "delta": _r(delta), "ci": [_r(lo), _r(hi)],
                                    "resampled": ej.resampled, "holds": delta >= JOINT_GAIN}
    if spec:
        rows = []
        for k, (e, m) in enumerate(zip(exps, metrics)):
            est = boot.estimate(spec, f"final:{e}")
            lo, hi = est.interval()
            rows.append({"experience": e, "metric": m, "mean": _r(est.point), "ci": [_r(lo), _r(hi)],
                         "per_seed": [_r(r.rows()[1][T - 1][k]) for r in spec],
                         "target": TARGETS[m], "holds": est.point is not None and est.point >= TARGETS[m]})
        out["specialized"] = {"seeds": [r.seed for r in spec], "experiences": rows,
                              "holds": all(x["holds"] for x in rows)}
    from unicon_bench.scenario import get_scenario

    spec_file = get_scenario(name)
    if spec_file.version == 3:  # the training subjects are in the scenario file, not in the result
        out["train_subjects"] = {e.name: spec_file.sizes(k)[0] for k, e in enumerate(spec_file.experiences)}
    return out


def run(quick: bool = False) -> dict:
    from unicon_bench.analysis.resampling import Bootstrap

    from benchmarks.common import machine

    runs = _runs(RUNS)
    boot = Bootstrap()
    names = sorted({k[0] for k in runs})
    return {"runs_folder": str(RUNS.relative_to(RESULTS.parent.parent)), "n_runs": sum(len(v) for v in runs.values()),
            "scenarios": {n: scenario_report(n, runs, boot) for n in names}, "machine": machine()}


def markdown(doc: dict) -> str:
    """The README's acceptance table of ``run``'s output."""
    def ci(x):
        return "" if not x or x[0] is None else f" [{x[0]:+.3f}, {x[1]:+.3f}]"

    lines = ["| scenario | eval subjects per experience | naive BWT per seed (each ≤ −0.10) | "
             "joint − naive final average (≥ +0.05) | specialized, final score per experience (mean of seeds) |",
             "|---|---|---|---|---|"]
    for name, s in doc["scenarios"].items():
        evals = ", ".join(f"{e} {n}" for e, n in s["eval_subjects"].items())
        bwt = s["naive_bwt"]
        seeds = ", ".join(f"{x['bwt']:+.3f}" for x in bwt["seeds"]) + (" ✓" if bwt["holds"] else " ✗")
        j = s.get("joint_minus_naive")
        joint = "–" if j is None else (f"{j['delta']:+.3f}{ci(j['ci'])} ({len(j['seeds'])} seeds; "
                                       f"{j['joint']:.3f} vs {j['naive']:.3f})" + (" ✓" if j["holds"] else " ✗"))
        sp = s.get("specialized")
        spec = ("– (domain-incremental: not applicable)" if s["kind"] == "domain" else "not measured") if sp is None else "; ".join(
            f"{x['experience']} {x['metric']} {x['mean']:.3f} (≥ {x['target']:.2f} {'✓' if x['holds'] else '✗'})"
            for x in sp["experiences"]) + f" ({len(sp['seeds'])} seeds)"
        lines.append(f"| {name} v3 | {evals} | {seeds} | {joint} | {spec} |")
    return "\n".join(lines) + "\n"
