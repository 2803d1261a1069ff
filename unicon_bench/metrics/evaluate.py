"""Every registered metric of one experience from a model's raw outputs and the targets.

The harness calls ``evaluate`` once per (trained_upto, evaluated_on). It returns the value of each
metric key (``dice``, ``hd95``, ``td_auc@24``...; nan where undefined) and the per-subject data of
the experience, which the result file keeps for the final model:

- segmentation: each per-subject metric (Dice, HD95, NSD, lesion counts, F1 and FP/FN volumes);
  the matrix value is their mean over subjects;
- classification: the predicted probability (sigmoid of the logit), the label and the squared error
  (whose mean is the Brier score), enough to recompute AUC, balanced accuracy, Brier and ECE;
- prognosis: risk, time and event, enough to recompute Harrell's C-index.

Which metrics a task gets, and how each is computed, is the registry's (``registry.metrics_of``):
this module only turns the outputs and targets into the task's inputs (``SegmentationInputs``...)
and calls each registered compute function once, the primary metric's first, then the others in
registry order. Metrics computed together share one compute function (``register_metrics``)
rather than each returning its own key from a shared cache: one call, one place where the shared
work happens, and the keys come back in the order that function computes them.

Prognosis metrics other than Harrell's C need the training split: its censoring distribution
(Uno's C, time-dependent AUC, IBS; targets only) and the model's risks on its first
``breslow_subjects`` subjects (the Breslow baseline of the IBS; predicting the whole split at every
evaluation would cost a third to a half of the evaluation time of the default scenarios).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Sequence

import numpy as np

from unicon_bench.metrics._common import to_numpy
from unicon_bench.metrics.registry import MetricSpec, Score, metrics_of, split_key


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


@dataclass
class SegmentationInputs:
    """What segmentation metrics read: binary predicted and true masks (N, 1, D, H, W)."""

    pred: np.ndarray
    mask: np.ndarray
    spacing_mm: tuple[float, float, float]
    options: EvalOptions


@dataclass
class ClassificationInputs:
    """What classification metrics read: logits, their sigmoid probabilities and 0/1 labels."""

    logits: np.ndarray
    probs: np.ndarray
    labels: np.ndarray
    options: EvalOptions


@dataclass
class PrognosisInputs:
    """What survival metrics read: risks, times and events; the training split's on first use."""

    risk: np.ndarray
    time: np.ndarray
    event: np.ndarray
    options: EvalOptions
    train_clinical: Any = None
    train_output: Any = None

    @cached_property
    def _train(self) -> np.ndarray:
        return to_numpy(self.train_clinical, dtype=np.float64)

    @cached_property
    def train_time(self) -> np.ndarray:
        return self._train[:, 1]

    @cached_property
    def train_event(self) -> np.ndarray:
        return self._train[:, 2].astype(bool)

    @cached_property
    def train_risk(self) -> np.ndarray:
        """The model's risks on the first training subjects (``EvalOptions.breslow_subjects``)."""
        return to_numpy(self.train_output, dtype=np.float64).ravel()


def _segmentation(output, targets: Targets, train_output) -> tuple[SegmentationInputs, dict[str, list]]:
    pred = to_numpy(output) > 0
    mask = to_numpy(targets.mask) > 0.5
    return SegmentationInputs(pred, mask, targets.spacing_mm, targets.options), {}


def _classification(output, targets: Targets, train_output) -> tuple[ClassificationInputs, dict[str, list]]:
    logits = to_numpy(output, dtype=np.float64).ravel()
    labels = to_numpy(targets.clinical)[:, 0].astype(int)
    probs = 1.0 / (1.0 + np.exp(-logits))
    return ClassificationInputs(logits, probs, labels, targets.options), {"probability": probs.tolist(), "label": labels.tolist()}


def _prognosis(output, targets: Targets, train_output) -> tuple[PrognosisInputs, dict[str, list]]:
    risk = to_numpy(output, dtype=np.float64).ravel()
    clinical = to_numpy(targets.clinical, dtype=np.float64)
    time, event = clinical[:, 1], clinical[:, 2].astype(bool)
    subjects = {"risk": risk.tolist(), "time": time.tolist(), "event": event.astype(int).tolist()}
    return PrognosisInputs(risk, time, event, targets.options, targets.train_clinical, train_output), subjects


_INPUTS = {"segmentation": _segmentation, "classification": _classification, "prognosis": _prognosis}


def computed_metrics(kind: str, extra: bool) -> list[MetricSpec]:
    """The registered metrics ``evaluate`` computes for a task kind: all, or the primary one only."""
    specs = metrics_of(kind)
    return specs if extra else specs[:1]


def needs_train_output(kind: str, extra: bool) -> bool:
    """Whether ``evaluate`` needs the model's outputs on the training split too (the IBS's Breslow fit)."""
    return any(m.needs_train_output for m in computed_metrics(kind, extra))


def evaluate(output, targets: Targets, train_output=None, extra: bool = True) -> Evaluation:
    """The metrics of one experience: all registered ones, or the primary one only if not ``extra``."""
    if targets.kind not in _INPUTS:
        raise ValueError(f"unknown task kind {targets.kind!r}")
    if needs_train_output(targets.kind, extra) and train_output is None:
        raise ValueError(f"{targets.kind} metrics need the model's outputs on the training split (train_output)")
    inputs, subjects = _INPUTS[targets.kind](output, targets, train_output)
    specs = computed_metrics(targets.kind, extra)
    values: dict[str, float] = {}
    done: set[Any] = set()
    for spec in specs:
        if spec.compute in done:  # computed with an earlier metric of its group
            continue
        done.add(spec.compute)
        assert spec.compute is not None
        group = {m.name for m in metrics_of(targets.kind) if m.compute is spec.compute}
        for key, score in spec.compute(inputs).items():
            if split_key(key)[0] not in group:
                raise ValueError(f"{spec.compute.__qualname__} returned {key!r}, not a key of {sorted(group)}")
            score = score if isinstance(score, Score) else Score(score)
            values[key] = score.value
            if score.subjects is not None:
                subjects[key] = score.subjects
    return Evaluation(values, subjects)


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
