"""Aggregate result files into leaderboard tables: one board per scenario name + version + quick flag +
precision.

Reads result JSON files only (``unicon_bench.results``). Runs of different scenario versions, quick
and full runs, or fp32 and bf16 runs (``env.precision``) never share a board. Within a board, a *method* is a strategy with one set of
parameters (a strategy run with several parameter sets gets one row per set, labelled by the
parameters that differ). Per method and column: the number of seeds, the mean and the 95 %
t-interval of the mean (undefined for one seed), the best method and the methods not significantly
different from it (paired t-test over shared seeds, p >= 0.05; fewer than two shared seeds cannot
tell them apart, so they count as not different).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from unicon_bench.errors import UniconBenchError
from unicon_bench.metrics.columns import COLUMNS, columns_of, precision
from unicon_bench.metrics.registry import higher_is_better as registry_higher_is_better
from unicon_bench.results import ResultError, RunResult, find_results, read_result

CONFIDENCE = 0.95
ALPHA = 0.05
# The summary and cost columns, their labels and directions: the one table in metrics.columns.
SCORES = columns_of("score")
COSTS = columns_of("cost")
LOWER_IS_BETTER = frozenset(c.name for c in COLUMNS.values() if not c.higher_is_better)
LABELS = {c.name: c.label for c in COLUMNS.values()}
EXP_PREFIX = "final:"
PARADIGMS = {"specialized": "specialized", "joint": "joint"}  # everything else is "continual" (arXiv 2303.06580)


class LeaderboardError(UniconBenchError):
    """No usable result files, or a results path that does not exist."""


def paradigm(strategy: str) -> str:
    """specialized (one model per experience), joint (all data at once) or continual (sequential)."""
    return PARADIGMS.get(strategy, "continual")


def metric_column(experience: str, key: str) -> str:
    """The column of a non-primary metric's final value: ``final:<experience>/<metric key>``."""
    return f"{EXP_PREFIX}{experience}/{key}"


def split_column(col: str) -> tuple[str, str | None]:
    """``(experience, metric key or None for the primary metric)`` of a ``final:`` column."""
    exp, _, key = col[len(EXP_PREFIX):].partition("/")
    return exp, (key or None)


def column_label(col: str) -> str:
    if not col.startswith(EXP_PREFIX):
        return LABELS.get(col, col)
    exp, key = split_column(col)
    return f"final {exp}" if key is None else f"final {exp} {key}"


def column_precision(col: str) -> int:
    """Decimals the leaderboard shows for a column (the column table's; metric columns: 3)."""
    return precision(col)


def higher_is_better(col: str) -> bool:
    """Direction of a column: the metric registry's for metric columns (a lower HD95 is better), the
    column table's for summary and cost columns."""
    if col.startswith(EXP_PREFIX):
        key = split_column(col)[1]
        return True if key is None else registry_higher_is_better(key)
    if col not in COLUMNS:
        raise KeyError(f"column {col!r} has no registered direction (unicon_bench.metrics.columns)")
    return COLUMNS[col].higher_is_better


def _finite(values: Iterable[Any]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def mean_ci(values: Iterable[float | None], confidence: float = CONFIDENCE) -> tuple[float | None, float | None, float | None, int]:
    """``(mean, ci_low, ci_high, n)`` over the defined values; the CI is ``None`` for n < 2."""
    from scipy import stats

    xs = _finite(values)
    n = len(xs)
    if n == 0:
        return None, None, None, 0
    mean = sum(xs) / n
    if n == 1:
        return mean, None, None, 1
    sem = float(stats.sem(xs))
    if sem == 0.0:
        return mean, mean, mean, n
    lo, hi = stats.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return mean, float(lo), float(hi), n


def paired_not_different(a: dict[int, float | None], b: dict[int, float | None], alpha: float = ALPHA) -> bool:
    """Whether two methods' per-seed values are not significantly different (paired t-test).

    With fewer than two shared seeds the test cannot tell, and they count as not different; identical
    values (a p-value of NaN) are not different either.
    """
    from scipy import stats

    shared = sorted(s for s in set(a) & set(b) if _finite([a[s]]) and _finite([b[s]]))
    if len(shared) < 2:
        return True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ttest_rel([a[s] for s in shared], [b[s] for s in shared]).pvalue)
    return math.isnan(p) or p >= alpha


def run_values(result: RunResult) -> dict[str, float | None]:
    """The per-run numbers the leaderboard aggregates: summary, last matrix row (every metric) and cost."""
    s, c = result.summary, result.cost
    values: dict[str, float | None] = {k: getattr(s, k) for k in SCORES}
    _init, rows = result.rows()
    for name, v in zip(result.scenario.experiences, rows[-1]):
        values[EXP_PREFIX + name] = v
    for j, name in enumerate(result.scenario.experiences):
        for key in result.metric_keys(j)[1:]:
            values[metric_column(name, key)] = result.rows(key)[1][-1][j]
    later = c.trainable_params[1:]
    shares = [t / c.total_params for t in later] if c.total_params > 0 else []
    values["trainable_share"] = sum(shares) / len(shares) if shares else None
    values["trainable_share_max"] = max(shares) if shares else None
    values["wall_time_s"] = c.wall_time_s
    values["peak_rss_mb"] = c.peak_rss_mb
    values["buffer_mb"] = c.buffer_bytes / 2**20
    return values


@dataclass
class Run:
    """One result file on a board, with the label of its method."""

    path: Path
    result: RunResult
    method: str = ""
    values: dict[str, float | None] = field(default_factory=dict)


@dataclass
class Board:
    """All runs of one scenario name + version, quick or full, one precision, and their aggregate table."""

    scenario: str
    version: int
    quick: bool
    kind: str
    experiences: list[str]
    metrics: list[str]
    runs: list[Run]
    columns: list[str]
    rows: list[dict[str, Any]]  # one per method: method, strategy, paradigm, n_seeds, seeds, cells
    replaced: int = 0  # older runs of an already present (method, seed), not aggregated
    precision: str = "fp32"  # env.precision of every run on the board

    @property
    def title(self) -> str:
        return scenario_title(self.scenario, self.version, self.quick, self.precision)

    def methods(self) -> list[str]:
        return [r["method"] for r in self.rows]

    def runs_of(self, method: str) -> list[Run]:
        return sorted((r for r in self.runs if r.method == method), key=lambda r: r.result.seed)

    def frame(self):
        """The overview as a pandas DataFrame: mean, CI bounds, n and marks per column."""
        import pandas as pd

        records = []
        for row in self.rows:
            rec = {"scenario": self.scenario, "version": self.version, "quick": self.quick,
                   "precision": self.precision, "strategy": row["method"],
                   "paradigm": row["paradigm"], "n_seeds": row["n_seeds"]}
            for col in self.columns:
                cell = row["cells"][col]
                rec.update({f"{col}_mean": cell["mean"], f"{col}_ci_low": cell["lo"], f"{col}_ci_high": cell["hi"],
                            f"{col}_best": cell["best"], f"{col}_not_sig_different": cell["tied"]})
            records.append(rec)
        return pd.DataFrame.from_records(records)


def load_results(root: str | Path) -> tuple[list[tuple[Path, RunResult]], list[str]]:
    """Valid results under ``root`` and one message per file that could not be read."""
    root = Path(root)
    if not root.exists():
        raise LeaderboardError(f"{root}: no such file or folder")
    found, problems = [], []
    for path in find_results(root):
        try:
            found.append((path, read_result(path)))
        except ResultError as exc:
            problems.append(str(exc))
    return found, problems


def _params_key(params: dict) -> str:
    return json.dumps(params, sort_keys=True, default=str)


TUNED_MARK = " (tuned)"  # runs whose parameters came from `unicon-bench tune` (result field `tuning`)


def _label_methods(runs: list[Run]) -> None:
    """Label each run with its method: the strategy name, a tuned mark, and the differing params if it has several sets."""
    by_strategy: dict[str, dict[str, dict]] = {}
    for r in runs:
        by_strategy.setdefault(r.result.strategy.name, {})[_params_key(r.result.strategy.params)] = r.result.strategy.params
    for r in runs:
        sets = by_strategy[r.result.strategy.name]
        tuned = TUNED_MARK if r.result.tuning is not None else ""
        if len(sets) == 1:
            r.method = r.result.strategy.name + tuned
            continue
        keys = sorted({k for p in sets.values() for k in p if len({_params_key({k: q.get(k)}) for q in sets.values()}) > 1})
        shown = ", ".join(f"{k}={json.dumps(r.result.strategy.params.get(k), default=str)}" for k in keys)
        r.method = f"{r.result.strategy.name}{tuned} [{shown}]"


def _dedupe(runs: list[Run]) -> tuple[list[Run], int]:
    """Keep the most recently finished run of each (method, seed)."""
    latest: dict[tuple[str, int], Run] = {}
    for r in sorted(runs, key=lambda r: (r.result.finished, str(r.path))):
        latest[(r.method, r.result.seed)] = r
    return list(latest.values()), len(runs) - len(latest)


def _mark(rows: list[dict], runs: list[Run], col: str) -> None:
    """Mark the best method of a column and the methods not significantly different from it."""
    ranked = [r for r in rows if r["cells"][col]["mean"] is not None]
    if not ranked:
        return
    sign = 1 if higher_is_better(col) else -1
    best = max(ranked, key=lambda r: sign * r["cells"][col]["mean"])
    per_seed = {m: {r.result.seed: r.values.get(col) for r in runs if r.method == m} for m in (x["method"] for x in ranked)}
    best["cells"][col]["best"] = True
    for row in ranked:
        if row is not best and paired_not_different(per_seed[best["method"]], per_seed[row["method"]]):
            row["cells"][col]["tied"] = True


def build_board(runs: list[Run]) -> Board:
    """Aggregate the runs of one (scenario, version, quick, precision) group."""
    first = runs[0].result.scenario
    _label_methods(runs)
    for r in runs:
        r.values = run_values(r.result)
    runs, replaced = _dedupe(runs)
    columns = [*SCORES, *(EXP_PREFIX + e for e in first.experiences), *COSTS]
    rows = []
    for method in sorted({r.method for r in runs}):
        mine = [r for r in runs if r.method == method]
        cells = {}
        for col in columns:
            mean, lo, hi, n = mean_ci(r.values.get(col) for r in mine)
            cells[col] = {"mean": mean, "lo": lo, "hi": hi, "n": n, "best": False, "tied": False}
        rows.append({"method": method, "strategy": mine[0].result.strategy.name,
                     "paradigm": paradigm(mine[0].result.strategy.name), "n_seeds": len(mine),
                     "seeds": sorted(r.result.seed for r in mine), "cells": cells})
    for col in columns:
        _mark(rows, runs, col)
    fa = "final_average"
    rows.sort(key=lambda r: (r["cells"][fa]["mean"] is None, -(r["cells"][fa]["mean"] or 0.0), r["method"]))
    return Board(scenario=first.name, version=first.version, quick=first.quick, kind=first.kind,
                 experiences=list(first.experiences), metrics=list(first.metrics), runs=runs,
                 columns=columns, rows=rows, replaced=replaced, precision=runs[0].result.env.precision)


def scenario_title(name: str, version: int, quick: bool, precision: str = "fp32") -> str:
    """``ct_to_pet v2 (quick, bf16)``: what a board holds; fp32 and full size go unsaid."""
    marks = (["quick"] if quick else []) + ([] if precision == "fp32" else [precision])
    return f"{name} v{version}" + (f" ({', '.join(marks)})" if marks else "")


def aggregate(results: Iterable[tuple[Path, RunResult]]) -> list[Board]:
    """Group results by scenario name, version, quick flag and precision (never mixed) and aggregate each group."""
    groups: dict[tuple[str, int, bool, str], list[Run]] = {}
    for path, result in results:
        s = result.scenario
        groups.setdefault((s.name, s.version, s.quick, result.env.precision), []).append(Run(Path(path), result))
    return [build_board(groups[key]) for key in sorted(groups)]


def mean_matrix(runs: list[Run]) -> tuple[list[float | None], list[list[float | None]]]:
    """Element-wise mean over runs of ``(init_row, R)``, ignoring undefined entries."""
    def avg(xs):
        ys = _finite(xs)
        return sum(ys) / len(ys) if ys else None

    pairs = [r.result.rows() for r in runs]
    n = len(pairs[0][0])
    init = [avg(p[0][j] for p in pairs) for j in range(n)]
    matrix = [[avg(p[1][i][j] for p in pairs) for j in range(n)] for i in range(n)]
    return init, matrix
