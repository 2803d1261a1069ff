"""Does the CI gate bite? (#25, acceptance 2) The CI suite re-run three ways against baselines/ci.json.

- ``third_epochs``: every strategy trains a third of the suite's epochs;
- ``lr_div10``: the scenarios' learning rate divided by 10;
- ``two_threads``: nothing changed but two intra-op threads instead of the baseline's one, which moves
  values through the floating-point reduction order only (a false alarm if anything trips).

For each, ``unicon-bench check`` (the paired rule) gives one verdict per row. A row counts as *above
chance* when the baseline's final value lies above the untrained model's on the same subjects: the
paired bootstrap interval of (final - untrained) over the baseline's seeds and eval subjects lies above 0
(final average and each experience's final score; BWT has no chance level and is reported apart).
Target: each of the first two trips at least 80 % of the above-chance rows; the third trips none.

    python -m benchmarks gate_power          # about 3 CI-suite runs: 10-15 minutes on 2 cores
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from benchmarks.common import ROOT, machine

TARGET_SHARE = 0.8


def variants(suite: dict) -> dict[str, tuple[dict, int]]:
    """(strategy params, intra-op threads) of each variant, from the suite's epochs and the scenarios' lr."""
    from unicon_bench.scenario import get_scenario

    epochs = {p["epochs"] for p in suite["params"].values()}
    lrs = {get_scenario(name).train.lr for name in suite["scenarios"]}
    if len(epochs) != 1 or len(lrs) != 1:
        raise SystemExit(f"the CI suite must give every strategy one epoch count and its scenarios one lr: {epochs}, {lrs}")
    (e,), (lr,) = epochs, lrs
    return {"third_epochs": ({"epochs": round(e / 3)}, 1), "lr_div10": ({"epochs": e, "lr": lr / 10}, 1),
            "two_threads": ({"epochs": e}, 2)}


def above_chance(entry, column: str, boot) -> bool:
    """Whether the baseline's ``column`` (final average or final:<exp>) lies above its untrained value."""
    import numpy as np

    from unicon_bench.analysis.resampling import percentile_interval

    runs = entry.results()
    exps = runs[0].scenario.experiences
    js = range(len(exps)) if column == "final_average" else [exps.index(column.split(":", 1)[1])]
    final = boot.estimate(runs, column)
    S = len(runs)
    untrained = np.zeros((boot.n_boot, S))
    for s, run in enumerate(runs):
        cells = [boot.cell(run, (-1, j))[0] for j in js]
        if any(c is None for c in cells):
            return False
        untrained[:, s] = np.mean(cells, axis=0)
    drawn = np.take_along_axis(untrained, boot.seed_index(S), axis=1).mean(axis=1)
    lo, _hi = percentile_interval(final.replicates - drawn)
    return lo is not None and lo > 0


def run(quick: bool = False) -> dict:
    from unicon_bench import check as gate
    from unicon_bench.analysis.resampling import Bootstrap

    baseline = gate.load_baseline(ROOT / "baselines" / "ci.json")
    suite = yaml.safe_load((ROOT / "suites" / "ci.yaml").read_text())
    boot = Bootstrap()
    chance = {(e.method, e.scenario, col): above_chance(e, col, boot)
              for e in baseline.entries for col in e.rows if col != "bwt"}
    out: dict = {"baseline": "baselines/ci.json", "rows": sum(len(e.rows) for e in baseline.entries),
                 "above_chance": sum(chance.values()), "variants": {}}
    todo = variants(suite)
    if quick:
        todo = {"third_epochs": todo["third_epochs"]}
    with tempfile.TemporaryDirectory(prefix="gate-power-") as tmp:
        for name, (params, threads) in todo.items():
            folder = Path(tmp) / name
            spec = {**suite, "name": f"ci_{name}", "out": str(folder),
                    "params": {s: dict(params) for s in suite["strategies"]}}
            suite_file = Path(tmp) / f"{name}.yaml"
            suite_file.write_text(yaml.safe_dump(spec))
            env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
            subprocess.run([sys.executable, "-m", "unicon_bench.cli", "sweep", str(suite_file), "--workers", "2",
                            "--no-progress"], check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
            report = gate.compare(baseline, folder)
            rows = [{"scenario": r.entry.scenario, "method": r.entry.method, "row": r.row, "verdict": r.verdict,
                     "delta": r.delta, "interval": list(r.interval) if r.interval else None,
                     "above_chance": chance.get((r.entry.method, r.entry.scenario, r.row))} for r in report.rows]
            eligible = [r for r in rows if r["above_chance"]]
            tripped = [r for r in eligible if r["verdict"] == "regressed"]
            out["variants"][name] = {
                "params": params, "threads": threads, "summary": report.summary(),
                "regressed_rows": sum(r["verdict"] == "regressed" for r in rows),
                "above_chance_rows": len(eligible), "tripped_above_chance": len(tripped),
                "share": round(len(tripped) / len(eligible), 3) if eligible else None,
                "bwt_regressed": sum(r["verdict"] == "regressed" for r in rows if r["row"] == "bwt"),
                "rows": rows}
    out["machine"] = machine()
    return out
