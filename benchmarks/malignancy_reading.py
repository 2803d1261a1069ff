"""What the malignancy networks read (#24): the specialized models' AUC split by where the cancer lies.

Why ``ct_cls`` misses AUC >= 0.85: per v3 scenario with a classification experience, from the committed
specialized runs of benchmarks/results/scenarios-v3/ and the phantom generator (which knows every eval
subject's lesions), it reports

- how many malignant eval subjects have their cancer only outside the lung (nodes, pericardium, liver);
- the mean predicted probability of those subjects, of the benign ones and of the other malignant ones
  (averaged over the seeds' models);
- the AUC of the seed-averaged probability with and without those subjects, and each seed's AUC;
- the AUC of two perfect readers: the largest lesion's radius over every lesion, and over the lung
  lesions only (what a reader blind outside the lung could at best reach on these subjects).

    python -m benchmarks malignancy_reading      # seconds; trains nothing
"""

from __future__ import annotations

import numpy as np

from benchmarks.scenarios_v3 import RUNS, _runs


def _lesion_view(spec, j: int):
    """(malignant, cancer only outside the lung, largest radius, largest lung radius) per eval subject."""
    from unicon_bench.data.phantoms import _subject  # the anatomy behind each subject (benchmark only)
    from unicon_bench.data.streams import cohort_config

    cfg = cohort_config(spec, j)
    n_train, n_eval = spec.sizes(j)
    rows = []
    for k in range(n_train, n_train + n_eval):  # the eval subjects follow the training ones
        subject, ehr, _ = _subject(cfg, k)
        lesions = subject.lesions
        lung = [les for les in lesions if les.site == "lung"]
        outside_only = ehr["malignant"] and not any(les.malignant for les in lung)
        rows.append((ehr["malignant"], outside_only, max([les.radius_mm for les in lesions], default=0.0),
                     max([les.radius_mm for les in lung], default=0.0)))
    return np.array(rows, dtype=float)


def _report(name: str, spec_runs: list) -> dict | None:
    from sklearn.metrics import roc_auc_score

    from unicon_bench.scenario import get_scenario

    scenario = spec_runs[0].scenario
    j = next((k for k, m in enumerate(scenario.metrics) if m == "auc"), None)
    if j is None:
        return None
    spec = get_scenario(name)
    view = _lesion_view(spec, j)
    label, probs = view[:, 0], []
    for r in spec_runs:
        values = r.subjects(j)
        if not np.array_equal(np.asarray(values["label"], float), label):
            raise SystemExit(f"{name}: the eval labels of seed {r.seed} are not the scenario's eval subjects")
        probs.append(np.asarray(values["probability"], float))
    p = np.mean(probs, axis=0)
    outside = view[:, 1] == 1
    malignant = label == 1

    def auc(y, s):
        return round(float(roc_auc_score(y, s)), 4)

    return {"experience": scenario.experiences[j], "eval_subjects": int(len(label)),
            "malignant": int(malignant.sum()), "cancer_only_outside_lung": int(outside.sum()),
            "mean_probability": {"cancer_only_outside_lung": round(float(p[outside].mean()), 4),
                                 "benign": round(float(p[~malignant].mean()), 4),
                                 "cancer_in_lung": round(float(p[malignant & ~outside].mean()), 4)},
            "auc_per_seed": [auc(label, q) for q in probs], "auc_seed_mean_probability": auc(label, p),
            "auc_without_cancer_only_outside_lung": auc(label[~outside], p[~outside]),
            "perfect_reader_auc": {"all_lesions": auc(label, view[:, 2]), "lung_lesions_only": auc(label, view[:, 3])},
            "seeds": [r.seed for r in spec_runs]}


def run(quick: bool = False) -> dict:
    runs = _runs(RUNS)
    out = {}
    for (name, strategy), spec_runs in sorted(runs.items()):
        if strategy == "specialized":
            report = _report(name, spec_runs)
            if report is not None:
                out[name] = report
    return {"runs_folder": "benchmarks/results/scenarios-v3", "scenarios": out}
