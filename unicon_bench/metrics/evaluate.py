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
(Uno's C, time-dependent AUC, IBS) and the model's risks on it (the Breslow baseline of the IBS).
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
    threshold: float = 0.5
    ece_bins: int = 10
    extra: bool = True  # False: the primary metric only


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


def _segmentation(output, targets: Targets) -> Evaluation:
    from unicon_bench.metrics.lesions import lesion_metrics
    from unicon_bench.metrics.segmentation import _per_sample_dice
    from unicon_bench.metrics.surface import surface_metrics

    pred = to_numpy(output) > 0
    mask = to_numpy(targets.mask) > 0.5
    per = {"dice": _per_sample_dice(pred, mask)}
    if targets.options.extra:
        per["hd95"], per["nsd"] = surface_metrics(pred, mask, targets.options.nsd_tolerance_mm, targets.spacing_mm)
        per.update(lesion_metrics(pred, mask, targets.spacing_mm))
    return Evaluation({k: float(np.mean(v)) for k, v in per.items()}, {k: np.asarray(v).tolist() for k, v in per.items()})


def _classification(output, targets: Targets) -> Evaluation:
    from unicon_bench.metrics import classification as cls

    logits = to_numpy(output, dtype=np.float64).ravel()
    labels = to_numpy(targets.clinical)[:, 0].astype(int)
    values = {"auc": cls.roc_auc(logits, labels)}
    probs = 1.0 / (1.0 + np.exp(-logits))
    subjects = {"probability": probs.tolist(), "label": labels.tolist()}
    if targets.options.extra:
        values["balanced_accuracy"] = cls.balanced_accuracy(probs, labels, targets.options.threshold)
        values["brier"] = cls.brier(probs, labels)
        values["ece"] = cls.ece(probs, labels, targets.options.ece_bins)
        subjects["brier"] = cls.brier_per_subject(probs, labels).tolist()
    return Evaluation(values, subjects)


def _prognosis(output, targets: Targets, train_output) -> Evaluation:
    from unicon_bench.metrics import survival as surv

    risk = to_numpy(output, dtype=np.float64).ravel()
    clinical = to_numpy(targets.clinical, dtype=np.float64)
    time, event = clinical[:, 1], clinical[:, 2].astype(bool)
    values = {"c_index": surv.c_index(risk, time, event)}
    subjects = {"risk": risk.tolist(), "time": time.tolist(), "event": event.astype(int).tolist()}
    if targets.options.extra:
        train = to_numpy(targets.train_clinical, dtype=np.float64)
        t_time, t_event = train[:, 1], train[:, 2].astype(bool)
        values["uno_c_index"] = surv.uno_c_index(risk, time, event, t_time, t_event)
        aucs = surv.td_auc(risk, time, event, targets.options.horizons, t_time, t_event)
        values.update({metric_key("td_auc", h): float(a) for h, a in zip(targets.options.horizons, aucs)})
        grid = surv.brier_grid(time, event)
        curves = surv.breslow_survival(to_numpy(train_output).ravel(), t_time, t_event, risk, grid)
        values["ibs"] = surv.integrated_brier_score(curves, time, event, grid, t_time, t_event)
    return Evaluation(values, subjects)


def needs_train_output(kind: str, options: EvalOptions) -> bool:
    """Whether ``evaluate`` needs the model's outputs on the training split too (the IBS's Breslow fit)."""
    return kind == "prognosis" and options.extra


def evaluate(output, targets: Targets, train_output=None) -> Evaluation:
    """All metrics of one experience (only the primary one when ``options.extra`` is off)."""
    if targets.kind == "segmentation":
        result = _segmentation(output, targets)
    elif targets.kind == "classification":
        result = _classification(output, targets)
    elif targets.kind == "prognosis":
        if needs_train_output(targets.kind, targets.options) and train_output is None:
            raise ValueError("prognosis metrics need the model's outputs on the training split (train_output)")
        result = _prognosis(output, targets, train_output)
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
                       threshold=spec_options.threshold, ece_bins=spec_options.ece_bins,
                       extra=spec_options.extra_metrics)
