"""Every registered metric of one experience from a model's raw outputs and the targets.

The harness calls ``evaluate`` once per (trained_upto, evaluated_on). It returns the value of each
metric key (``dice``, ``hd95``, ``td_auc@24``...; nan where undefined) and the per-subject data of
the experience, which the result file keeps for the final model:

- segmentation: each per-subject metric (Dice, HD95, NSD, lesion counts, F1 and FP/FN volumes);
  the matrix value is their mean over subjects;
- classification: the predicted probability (sigmoid of the logit), the label and the squared error
  (whose mean is the Brier score), enough to recompute AUC, balanced accuracy, Brier and ECE;
- prognosis: risk, time and event, enough to recompute Harrell's C-index.

Prognosis metrics other than Harrell's C need the training split: its censoring distribution
(Uno's C, time-dependent AUC, IBS; targets only) and the model's risks on its first
``breslow_subjects`` subjects (the Breslow baseline of the IBS; predicting the whole split at every
evaluation would cost a third to a half of the evaluation time of the default scenarios).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from unicon_bench.metrics._common import to_numpy
from unicon_bench.metrics.registry import metric_key


@dataclass(frozen=True)
class EvalOptions:
    """Scenario-level evaluation settings, resolved for one experience."""

    nsd_tolerance_mm: float = 8.0
    horizons: tuple[float, ...] = ()
    breslow_subjects: int | None = 16  # first training subjects fitting the Breslow baseline; None: all
    threshold: float = 0.5
    ece_bins: int = 10
    extra: str = "seen"  # where the other metrics are computed: "seen", "all" or "none" (EvaluationSpec)

    def extra_at(self, trained_upto: int, evaluated_on: int) -> bool:
        """Whether the metrics beside the primary one are computed in this cell of the matrix."""
        return self.extra == "all" or (self.extra == "seen" and trained_upto >= evaluated_on)


@dataclass
class Targets:
    """What ``evaluate`` needs besides the outputs: targets of the eval split and facts of the data."""

    kind: str
    mask: Any  # (N, 1, D, H, W)
    clinical: Any  # (N, 5): malignant, time, event, age, smoking
    spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)
    train_clinical: Any = None  # prognosis: the training split's clinical rows
    options: EvalOptions = field(default_factory=EvalOptions)


@dataclass
class Evaluation:
    values: dict[str, float]
    subjects: dict[str, list[float]]


def default_horizons(train_time: Any, train_event: Any) -> tuple[float, ...]:
    """The quartiles (25, 50, 75 %) of the training split's event times, rounded to 0.1."""
    t = to_numpy(train_time, dtype=np.float64).ravel()[to_numpy(train_event).ravel().astype(bool)]
    if t.size == 0:
        return ()
    return tuple(sorted({round(float(q), 1) for q in np.percentile(t, [25, 50, 75])}))


def _segmentation(output, targets: Targets, extra: bool) -> Evaluation:
    from unicon_bench.metrics.lesions import lesion_metrics
    from unicon_bench.metrics.segmentation import dice_per_subject
    from unicon_bench.metrics.surface import surface_metrics

    pred = to_numpy(output) > 0
    mask = to_numpy(targets.mask) > 0.5
    per = {"dice": dice_per_subject(pred, mask)}
    if extra:
        per["hd95"], per["nsd"] = surface_metrics(pred, mask, targets.options.nsd_tolerance_mm, targets.spacing_mm)
        per.update(lesion_metrics(pred, mask, targets.spacing_mm))
    return Evaluation({k: float(np.mean(v)) for k, v in per.items()}, {k: np.asarray(v).tolist() for k, v in per.items()})


def _classification(output, targets: Targets, extra: bool) -> Evaluation:
    from unicon_bench.metrics import classification as cls

    logits = to_numpy(output, dtype=np.float64).ravel()
    labels = to_numpy(targets.clinical)[:, 0].astype(int)
    values = {"auc": cls.roc_auc(logits, labels)}
    probs = 1.0 / (1.0 + np.exp(-logits))
    subjects = {"probability": probs.tolist(), "label": labels.tolist()}
    if extra:
        values["balanced_accuracy"] = cls.balanced_accuracy(probs, labels, targets.options.threshold)
        values["brier"] = cls.brier(probs, labels)
        values["ece"] = cls.ece(probs, labels, targets.options.ece_bins)
        subjects["brier"] = cls.brier_per_subject(probs, labels).tolist()
    return Evaluation(values, subjects)


def _prognosis(output, targets: Targets, extra: bool, train_output) -> Evaluation:
    from unicon_bench.metrics import survival as surv

    risk = to_numpy(output, dtype=np.float64).ravel()
    clinical = to_numpy(targets.clinical, dtype=np.float64)
    time, event = clinical[:, 1], clinical[:, 2].astype(bool)
    values = {"c_index": surv.c_index(risk, time, event)}
    subjects = {"risk": risk.tolist(), "time": time.tolist(), "event": event.astype(int).tolist()}
    if extra:
        train = to_numpy(targets.train_clinical, dtype=np.float64)
        t_time, t_event = train[:, 1], train[:, 2].astype(bool)
        values["uno_c_index"] = surv.uno_c_index(risk, time, event, t_time, t_event)
        aucs = surv.td_auc(risk, time, event, targets.options.horizons, t_time, t_event)
        values.update({metric_key("td_auc", h): float(a) for h, a in zip(targets.options.horizons, aucs)})
        grid = surv.brier_grid(time, event)
        train_risk = to_numpy(train_output, dtype=np.float64).ravel()
        k = train_risk.size  # the first k training subjects were predicted (EvalOptions.breslow_subjects)
        curves = surv.breslow_survival(train_risk, t_time[:k], t_event[:k], risk, grid)
        values["ibs"] = surv.integrated_brier_score(curves, time, event, grid, t_time, t_event)
    return Evaluation(values, subjects)


def needs_train_output(kind: str, extra: bool) -> bool:
    """Whether ``evaluate`` needs the model's outputs on the training split too (the IBS's Breslow fit)."""
    return kind == "prognosis" and extra


def evaluate(output, targets: Targets, train_output=None, extra: bool = True) -> Evaluation:
    """The metrics of one experience: all registered ones, or the primary one only if not ``extra``."""
    if targets.kind == "segmentation":
        result = _segmentation(output, targets, extra)
    elif targets.kind == "classification":
        result = _classification(output, targets, extra)
    elif targets.kind == "prognosis":
        if needs_train_output(targets.kind, extra) and train_output is None:
            raise ValueError("prognosis metrics need the model's outputs on the training split (train_output)")
        result = _prognosis(output, targets, extra, train_output)
    else:
        raise ValueError(f"unknown task kind {targets.kind!r}")
    return result


def resolve_options(kind: str, spec_options: Any, spacing_mm: Sequence[float], train_clinical: Any) -> EvalOptions:
    """Scenario options for one experience; unset ones get their defaults.

    NSD tolerance: the scenario's, else the largest voxel spacing (one voxel). Horizons: the
    scenario's, else the quartiles of the training split's event times.
    """
    tol = spec_options.nsd_tolerance_mm
    horizons: tuple[float, ...] = ()
    if kind == "prognosis":
        if spec_options.horizons:
            horizons = tuple(float(h) for h in spec_options.horizons)
        else:
            clinical = to_numpy(train_clinical, dtype=np.float64)
            horizons = default_horizons(clinical[:, 1], clinical[:, 2])
    return EvalOptions(nsd_tolerance_mm=float(tol if tol is not None else max(spacing_mm)), horizons=horizons,
                       breslow_subjects=spec_options.breslow_subjects, threshold=spec_options.threshold, ece_bins=spec_options.ece_bins,
                       extra=spec_options.extra_metrics)
