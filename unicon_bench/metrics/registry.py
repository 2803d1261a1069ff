"""The metric registry: every metric a result file may hold, with its task, direction and unit.

The leaderboard and ``check`` read the direction from here, so a lower HD95 is an improvement and
never a regression. Each task kind has exactly one *primary* metric (Dice, AUC, C-index): the
trained x evaluated matrix of the primary metric is what BWT/FWT and the final average summarise;
the other metrics are recorded beside it.

A metric that is evaluated at several times (the time-dependent AUC at the scenario's horizons) is
stored once per horizon; its *key* is ``name@horizon`` (``td_auc@24``), see ``metric_key``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from unicon_bench.errors import UnknownNameError

TASKS = ("segmentation", "classification", "prognosis")


@dataclass(frozen=True)
class MetricSpec:
    """One registered metric."""

    name: str
    task: Literal["segmentation", "classification", "prognosis"]
    direction: Literal["higher", "lower"]
    unit: str
    label: str
    description: str
    primary: bool = False
    low: float | None = 0.0  # valid range of a value (None: unbounded)
    high: float | None = 1.0
    tolerance: float = 0.05  # default absolute tolerance of ``check``, in the metric's unit
    per_subject: bool = False  # a value per subject exists, and the metric is their mean
    horizons: bool = False  # stored once per survival horizon

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "higher"

    def accepts(self, value: float) -> bool:
        """Whether ``value`` lies in the metric's valid range."""
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


_SPECS = [
    MetricSpec("dice", "segmentation", "higher", "1", "Dice", "Dice similarity coefficient (MONAI)",
               primary=True, per_subject=True),
    MetricSpec("hd95", "segmentation", "lower", "mm", "HD95 (mm)",
               "95th-percentile symmetric Hausdorff distance in mm at the volume's spacing (MONAI); "
               "one mask empty: the image diagonal", high=None, tolerance=1.0, per_subject=True),
    MetricSpec("nsd", "segmentation", "higher", "1", "NSD",
               "normalised surface distance (surface Dice) at the scenario's tolerance in mm (MONAI)", per_subject=True),
    MetricSpec("lesion_f1", "segmentation", "higher", "1", "lesion F1",
               "lesion-wise F1 = 2TP / (2TP + FP + FN) over connected components", per_subject=True),
    MetricSpec("lesion_tp", "segmentation", "higher", "lesions", "TP lesions",
               "true-positive lesions per subject: ground-truth components touched by the prediction",
               high=None, tolerance=0.5, per_subject=True),
    MetricSpec("lesion_fp", "segmentation", "lower", "lesions", "FP lesions",
               "false-positive lesions per subject: predicted components touching no ground truth",
               high=None, tolerance=0.5, per_subject=True),
    MetricSpec("lesion_fn", "segmentation", "lower", "lesions", "FN lesions",
               "false-negative lesions per subject: ground-truth components the prediction misses",
               high=None, tolerance=0.5, per_subject=True),
    MetricSpec("fp_volume_ml", "segmentation", "lower", "ml", "FP volume (ml)",
               "false-positive volume per subject (AutoPET): predicted components touching no ground truth",
               high=None, tolerance=0.5, per_subject=True),
    MetricSpec("fn_volume_ml", "segmentation", "lower", "ml", "FN volume (ml)",
               "false-negative volume per subject (AutoPET): ground-truth components the prediction misses",
               high=None, tolerance=0.5, per_subject=True),
    MetricSpec("auc", "classification", "higher", "1", "AUC", "area under the ROC curve (scikit-learn)", primary=True),
    MetricSpec("balanced_accuracy", "classification", "higher", "1", "balanced accuracy",
               "balanced accuracy at the scenario's probability threshold (scikit-learn)"),
    MetricSpec("brier", "classification", "lower", "1", "Brier score",
               "mean squared error of the predicted probability (scikit-learn)", per_subject=True),
    MetricSpec("ece", "classification", "lower", "1", "ECE",
               "expected calibration error over equal-width probability bins"),
    MetricSpec("c_index", "prognosis", "higher", "1", "C-index", "Harrell's concordance index (torchsurv)",
               primary=True),
    MetricSpec("uno_c_index", "prognosis", "higher", "1", "Uno's C-index",
               "concordance weighted by the training split's inverse probability of censoring (torchsurv)"),
    MetricSpec("td_auc", "prognosis", "higher", "1", "time-dependent AUC",
               "cumulative/dynamic AUC at each of the scenario's horizons, IPCW-weighted (torchsurv)", horizons=True),
    MetricSpec("ibs", "prognosis", "lower", "1", "integrated Brier score",
               "IPCW integrated Brier score of Cox survival curves with a Breslow baseline from the training "
               "split (torchsurv)"),
]
METRICS: dict[str, MetricSpec] = {m.name: m for m in _SPECS}


def get_metric(name: str) -> MetricSpec:
    """The spec of a metric by name or key (``td_auc@24`` -> ``td_auc``)."""
    base = split_key(name)[0]
    if base not in METRICS:
        raise UnknownNameError("metric", name, list(METRICS))
    return METRICS[base]


def metrics_of(task: str) -> list[MetricSpec]:
    """The metrics of a task kind, the primary one first."""
    return sorted((m for m in _SPECS if m.task == task), key=lambda m: not m.primary)


def primary_metric(task: str) -> str:
    return next(m.name for m in _SPECS if m.task == task and m.primary)


PRIMARY_OF_TASK = {task: primary_metric(task) for task in TASKS}


def metric_key(name: str, horizon: float | None = None) -> str:
    """``name`` or ``name@horizon``: how a metric is named in the leaderboard and in baselines."""
    return name if horizon is None else f"{name}@{horizon:g}"


def split_key(key: str) -> tuple[str, float | None]:
    """Inverse of ``metric_key``."""
    name, sep, at = key.partition("@")
    if not sep:
        return name, None
    try:
        horizon = float(at)
    except ValueError:
        raise UnknownNameError("metric", key, list(METRICS)) from None
    if not math.isfinite(horizon):
        raise UnknownNameError("metric", key, list(METRICS))
    return name, horizon


def higher_is_better(key: str) -> bool:
    return get_metric(key).higher_is_better
