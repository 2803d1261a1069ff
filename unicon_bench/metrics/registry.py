"""The metric registry: every metric a result file may hold, with its compute function, task,
direction and unit.

Each metric is registered once, in its own module, on the function that computes it::

    @register_metric(name="auc", task="classification", direction="higher", unit="1", label="AUC",
                     description="area under the ROC curve (scikit-learn)", primary=True)
    def _auc(x: ClassificationInputs) -> dict[str, Score | float]:
        return {"auc": roc_auc(x.logits, x.labels)}

Metrics computed together for speed (HD95 and NSD from one surface-distance pass, the lesion
metrics from one connected-components pass) share one function, registered with
``register_metrics``; a compute function returns a dict of every key it computed (a metric at
several horizons returns one key per horizon), which ``evaluate`` calls once per task and cell.

The leaderboard and ``check`` read the direction from here, so a lower HD95 is an improvement and
never a regression. Each task kind has exactly one *primary* metric (Dice, AUC, C-index): the
trained x evaluated matrix of the primary metric is what BWT/FWT and the final average summarise;
the other metrics are recorded beside it.

A metric that is evaluated at several times (the time-dependent AUC at the scenario's horizons) is
stored once per horizon; its *key* is ``name@horizon`` (``td_auc@24``), see ``metric_key``.

The built-in metric modules are imported on the first lookup (they import numpy only; torch,
MONAI, scikit-learn and torchsurv are imported inside the functions), and the registry lists
their metrics in ``BUILTIN_MODULES`` order, then in registration order within a module, whatever
order the modules happened to be imported in.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Literal, TypeVar

import numpy as np

from unicon_bench.errors import UniconBenchError, UnknownNameError

TASKS = ("segmentation", "classification", "prognosis")
DIRECTIONS = ("higher", "lower")
# Modules holding the built-in metrics, in display order (leaderboard columns, result files).
BUILTIN_MODULES = tuple(f"unicon_bench.metrics.{m}" for m in ("segmentation", "surface", "lesions",
                                                               "classification", "survival"))

F = TypeVar("F", bound=Callable[..., Any])


class MetricRegistryError(UniconBenchError):
    """A metric registered twice, or registered with an unknown task or direction."""


@dataclass(frozen=True)
class Score:
    """One computed key: its value in the matrix and, for a per-subject metric, each subject's value."""

    value: float
    subjects: list[float] | None = None

    @classmethod
    def per_subject(cls, values: Any) -> Score:
        """The mean over subjects, keeping each subject's value."""
        return cls(float(np.mean(values)), np.asarray(values).tolist())


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
    needs_train_output: bool = False  # needs the model's outputs on the training split
    # inputs of the task kind -> {key: Score or float}; shared by the metrics computed together
    compute: Callable[[Any], dict[str, Score | float]] | None = field(default=None, repr=False, compare=False)

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "higher"

    def accepts(self, value: float) -> bool:
        """Whether ``value`` lies in the metric's valid range."""
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


_registered: list[MetricSpec] = []
_ordered: dict[str, MetricSpec] | None = None  # built on the first lookup, reset by a registration


def register_metrics(*specs: MetricSpec) -> Callable[[F], F]:
    """Register metrics of one task computed together by the decorated function.

    The function takes the task's inputs (``evaluate.SegmentationInputs``...) and returns a dict
    with every key it computed: a ``Score`` (value and per-subject values) or a float.
    """
    names = [s.name for s in specs]
    if not specs:
        raise MetricRegistryError("register_metrics needs at least one MetricSpec")
    twice = sorted({n for n in names if names.count(n) > 1} | ({s.name for s in _registered} & set(names)))
    if twice:
        raise MetricRegistryError(f"metric {', '.join(twice)} registered twice")
    for s in specs:
        if s.task not in TASKS or s.direction not in DIRECTIONS:
            raise MetricRegistryError(f"metric {s.name!r}: task must be one of {TASKS}, direction one of {DIRECTIONS}")
    if len({s.task for s in specs}) > 1:
        raise MetricRegistryError(f"metrics computed together must share one task: {', '.join(names)}")

    def decorate(fn: F) -> F:
        global _ordered
        _registered.extend(replace(s, compute=fn) for s in specs)
        _ordered = None
        return fn

    return decorate


def register_metric(name: str, *, task: str, direction: str, unit: str, label: str, description: str,
                    **options: Any) -> Callable[[F], F]:
    """Register one metric computed by the decorated function (options: the other ``MetricSpec`` fields)."""
    return register_metrics(MetricSpec(name, task, direction, unit, label, description, **options))  # type: ignore[arg-type]


def _specs() -> dict[str, MetricSpec]:
    global _ordered
    if _ordered is None:
        for module in BUILTIN_MODULES:
            importlib.import_module(module)
        rank = {m: i for i, m in enumerate(BUILTIN_MODULES)}
        # sorted() is stable: registration order within a module; other packages' metrics last
        ordered = sorted(_registered, key=lambda s: rank.get(getattr(s.compute, "__module__", ""), len(rank)))
        _ordered = {s.name: s for s in ordered}
    return _ordered


class _Metrics(Mapping[str, MetricSpec]):
    """Read-only view of the registry by name, in display order (loads the built-in metrics)."""

    def __getitem__(self, name: str) -> MetricSpec:
        return _specs()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(list(_specs()))

    def __len__(self) -> int:
        return len(_specs())

    def __repr__(self) -> str:
        return f"METRICS({', '.join(self)})"


METRICS: Mapping[str, MetricSpec] = _Metrics()


def get_metric(name: str) -> MetricSpec:
    """The spec of a metric by name or key (``td_auc@24`` -> ``td_auc``)."""
    base = split_key(name)[0]
    if base not in METRICS:
        raise UnknownNameError("metric", name, list(METRICS))
    return METRICS[base]


def metrics_of(task: str) -> list[MetricSpec]:
    """The metrics of a task kind, the primary one first."""
    return sorted((m for m in METRICS.values() if m.task == task), key=lambda m: not m.primary)


def primary_metric(task: str) -> str:
    return next(m.name for m in METRICS.values() if m.task == task and m.primary)


def __getattr__(name: str) -> Any:
    # PRIMARY_OF_TASK is derived from the registry, so it is built on first use (PEP 562).
    if name == "PRIMARY_OF_TASK":
        return {task: primary_metric(task) for task in TASKS}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
