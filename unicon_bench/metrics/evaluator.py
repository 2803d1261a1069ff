"""Evaluate a strategy on every experience of a stream: all registered metrics, timed.

The harness builds one ``Evaluator`` per run and calls ``row`` after each training experience (and
once for the untrained model). Targets, voxel spacing and the resolved evaluation settings are
prepared once. For prognosis experiences the model also predicts the first training subjects of the
experience, whose risks fit the Breslow baseline hazard of the integrated Brier score.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from unicon_bench.metrics.evaluate import Evaluation, Targets, evaluate, needs_train_output, resolve_options
from unicon_bench.results import METRIC_OF_TASK, clean_float


def _no_rng(fn, *args):
    """``fn(*args)`` without advancing torch's global RNG (a DataLoader draws a seed from it).

    The extra work of the metrics (the prognosis training split) must not change what the strategy
    trains afterwards: runs stay bit-identical to runs made with the primary metrics only.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        return fn(*args)


def _dataset_targets(experience):
    import torch

    loader = torch.utils.data.DataLoader(experience.dataset, batch_size=256)
    masks, clinical = zip(*[(b[1], b[2]) for b in loader])
    return torch.cat(masks), torch.cat(clinical)


def _head(experience, k: int | None):
    """The experience restricted to its first ``k`` samples (all if ``k`` is None or larger)."""
    if k is None or k >= len(experience.dataset):
        return experience
    head = copy.copy(experience)
    head._dataset = experience.dataset.subset(range(k))  # Avalanche experiences have no dataset setter
    return head


def experience_targets(stream, j: int) -> Targets:
    """What experience ``j``'s predictions are scored against: its eval masks or clinical data, the
    voxel spacing, and the metric options (a prognosis task also needs its training cohort's data)."""
    kind = stream.spec.experiences[j].task
    spacing = tuple(stream.spacing_mm[j]) if stream.spacing_mm else (1.0, 1.0, 1.0)
    mask, clinical = _dataset_targets(stream.eval_stream[j])
    train_clinical = _no_rng(_dataset_targets, stream.train_stream[j])[1] if kind == "prognosis" else None
    options = resolve_options(kind, stream.spec.evaluation, spacing, train_clinical)
    return Targets(kind, mask, clinical, spacing, train_clinical, options)


class Evaluator:
    """Targets and settings of each eval experience; ``row`` evaluates a strategy on all of them."""

    def __init__(self, stream):
        spec = stream.spec
        self.kinds = [e.task for e in spec.experiences]
        self.names = [e.name for e in spec.experiences]
        self.evals = list(stream.eval_stream)
        trains = list(stream.train_stream)
        self.targets: list[Targets] = [experience_targets(stream, j) for j in range(len(self.evals))]
        self.train_exps: list[Any] = []
        for j, target in enumerate(self.targets):
            needed = needs_train_output(self.kinds[j], target.options.extra != "none")
            self.train_exps.append(_head(trains[j], target.options.breslow_subjects) if needed else None)
        self.eval_time_s = 0.0

    def row(self, strategy, trained_upto: int, reporter=None, label: str = "") -> list[Evaluation]:
        """Every experience's metrics for the strategy's model trained up to ``trained_upto`` (-1: untrained)."""
        t0 = time.perf_counter()
        n = len(self.evals)
        if reporter is not None:
            reporter.phase(f"evaluate {label}", n)
        out = []
        for j, exp in enumerate(self.evals):
            # the training split first: a strategy may keep facts of its latest prediction (UNICON's routing)
            extra = self.targets[j].options.extra_at(trained_upto, j)
            train_output = _no_rng(strategy.predict, self.train_exps[j]) \
                if needs_train_output(self.kinds[j], extra) else None
            out.append(evaluate(strategy.predict(exp), self.targets[j], train_output, extra))
            if reporter is not None:
                reporter.advance(j + 1, n)
        self.eval_time_s += time.perf_counter() - t0
        return out

    def primary(self, row: list[Evaluation]) -> list[float]:
        return [ev.values[METRIC_OF_TASK[kind]] for ev, kind in zip(row, self.kinds)]

    @staticmethod
    def entries(rows: list[list[Evaluation]]) -> list[dict]:
        """Matrix entries of every metric; ``rows[0]`` is the untrained model's row."""
        from unicon_bench.metrics.registry import split_key

        out = []
        for i, row in enumerate(rows):
            for j, ev in enumerate(row):
                for key, value in ev.values.items():
                    name, horizon = split_key(key)
                    out.append({"metric": name, "horizon": horizon, "trained_upto": i - 1, "evaluated_on": j,
                                "value": clean_float(value)})
        return out

    @staticmethod
    def per_subject(rows: list[list[Evaluation]]) -> list[dict]:
        """Per-subject values of every cell; ``rows[0]`` is the untrained model's row."""
        return [{"trained_upto": i - 1, "evaluated_on": j, "values": {k: [clean_float(x) for x in v] for k, v in ev.subjects.items()}}
                for i, row in enumerate(rows) for j, ev in enumerate(row)]

    def settings(self) -> dict[str, Any]:
        """The resolved evaluation settings, for the result's ``scenario.evaluation``."""
        out: dict[str, Any] = {}
        for name, t in zip(self.names, self.targets):
            o = t.options
            entry: dict[str, Any] = {"extra_metrics": o.extra}
            if t.kind == "segmentation":
                entry.update(spacing_mm=list(t.spacing_mm), nsd_tolerance_mm=o.nsd_tolerance_mm)
            elif t.kind == "classification":
                entry.update(threshold=o.threshold, ece_bins=o.ece_bins)
            else:
                entry.update(horizons=list(o.horizons), breslow_subjects=o.breslow_subjects)
            out[name] = entry
        return out
