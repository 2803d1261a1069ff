"""The CI regression gate: compare result files with a committed baseline, uncertainty included.

A baseline file (``baselines/ci.json``) holds, per scenario (name, version, quick flag, precision) and method,
the mean, t-interval half-width and per-seed values of the final average, the BWT and the final
score on every experience, aggregated as the leaderboard does (``unicon_bench.analysis.aggregate``),
and one absolute tolerance per metric; ``--metric`` adds the final value of any other registered metric
(``hd95``, ``nsd``, ``brier``, ``ibs``, ``td_auc@24``...) on every experience that has it, judged in the
metric's own direction (a lower HD95 is an improvement). A row *regresses* when its current mean is worse than the
baseline mean by more than ``max(tolerance, sqrt(h_base**2 + h_cur**2))``, ``h`` being the half-widths
of the two t-intervals (0 for a single seed). Improvements are reported and never fail. A row absent
from the results, or undefined there, fails unless missing rows are allowed. Different scenario
versions, quick and full runs, or fp32 and bf16 runs are never compared: that is a usage error (an
entry without ``precision``, from baseline schema 1, is fp32, as the CPU runs it was made from). Result files of an older
schema are converted on load (``unicon_bench.results``), so a baseline made from schema-1 results still
gates schema-2 results on the rows it names; a newer result schema than the baseline's is compared,
an older one is not.

Paired comparison (baseline schema 3). The baseline also keeps each of its runs' result (with the
per-subject values of every matrix cell). When the results hold the same seeds, evaluated on as many
subjects, a row is judged on the *paired* difference: current minus baseline, resampled by the
hierarchical bootstrap of ``unicon_bench.analysis.resampling`` (seeds, then eval subjects; the same draw
for both sides, so the subject effect they share cancels). The row *regresses* when the whole 95 %
interval of that difference lies below ``-tolerance`` (in the metric's direction) and *improves* when it
lies above ``+tolerance``; a mean drop beyond the tolerance whose interval reaches back is "within CI".
Identical runs give a difference of exactly 0, and so never a verdict. Otherwise (older baselines,
other seeds) the unpaired rule above applies, and a note says so.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from unicon_bench.errors import UniconBenchError
from unicon_bench.fileio import read_json, validate
from unicon_bench.analysis.aggregate import (
    CONFIDENCE,
    EXP_PREFIX,
    Board,
    aggregate,
    column_label,
    load_results,
    mean_ci,
    metric_column,
    split_column,
)
from unicon_bench.metrics.columns import COLUMNS
from unicon_bench.metrics.registry import METRICS, get_metric, split_key
from unicon_bench.results import atomic_write_text

BASELINE_SCHEMA_VERSION = 3  # 2: each entry names its precision (absent in 1: fp32); 3: each entry keeps its runs
# Absolute tolerances: the summary columns' from the column table (final average and BWT), every
# metric's from the metric registry, in the metric's unit (HD95 1 mm, volumes 0.5 ml...).
DEFAULT_TOLERANCES = {**{c.name: c.tolerance for c in COLUMNS.values() if c.tolerance is not None},
                      **{m.name: m.tolerance for m in METRICS.values()}}
SUMMARY_ROWS = tuple(c.name for c in COLUMNS.values() if c.tolerance is not None)  # gated by default
ENV_KEYS = ("python", "torch", "avalanche", "monai", "platform", "device", "threads", "deterministic")
FAILING = ("regressed", "missing", "undefined")
EPS = 1e-12  # deltas equal to the allowed drop, up to float rounding, pass


class CheckError(UniconBenchError):
    """A baseline or results folder that cannot be compared (exit code 2)."""


class _Model(BaseModel):
    # a NaN mean or tolerance would pass every comparison: the gate would have no bite
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Stat(_Model):
    """One row of one method: the mean over seeds, the t-interval half-width (None: one seed)."""

    mean: float | None
    ci_half_width: float | None
    n: int = Field(ge=0)
    values: dict[int, float | None] = Field(description="seed -> value")


class Entry(_Model):
    """One method on one scenario version, quick or full, in one precision."""

    scenario: str
    scenario_version: int
    quick: bool
    precision: Literal["fp32", "bf16"] = Field("fp32", description="env.precision of its runs (schema 1: fp32)")
    strategy: str
    method: str
    params: dict
    seeds: list[int]
    experiences: dict[str, str] = Field(description="experience name -> its metric (dice, auc, c_index)")
    rows: dict[str, Stat] = Field(description="final_average, bwt and final:<experience>")
    runs: dict[int, dict] | None = Field(None, description="seed -> the run's result document, per-subject values "
                                         "included: what the paired comparison resamples (absent before schema 3)")

    def results(self) -> list:
        """The baseline's runs as validated results, sorted by seed (empty before schema 3)."""
        from unicon_bench.results import parse_result

        return [parse_result(self.runs[seed], f"baseline entry {self.title} {self.method} seed {seed}")
                for seed in sorted(self.runs or {})]

    @property
    def title(self) -> str:
        return scenario_title(self.scenario, self.scenario_version, self.quick, self.precision)


class Baseline(_Model):
    baseline_schema_version: int
    result_schema_version: int
    created: str
    suite: dict[str, Any] | None = None
    environment: dict[str, Any]
    confidence: float = Field(gt=0, lt=1)
    tolerances: dict[str, Annotated[float, Field(ge=0)]]
    entries: list[Entry]


def scenario_title(name: str, version: int, quick: bool, precision: str = "fp32") -> str:
    """``ct_to_pet v2 (quick)``, ``ct_to_pet v2 (full, bf16)``: fp32 goes unsaid."""
    return f"{name} v{version} ({'quick' if quick else 'full'}{'' if precision == 'fp32' else ', ' + precision})"


def tolerance_key(entry: Entry, row: str) -> str:
    """The metric whose tolerance applies to ``row``: the experience's primary one, or the named one."""
    if not row.startswith(EXP_PREFIX):
        return row
    exp, key = split_column(row)
    return entry.experiences[exp] if key is None else split_key(key)[0]


def row_label(entry: Entry, row: str) -> str:
    if not row.startswith(EXP_PREFIX):
        return column_label(row)
    exp, key = split_column(row)
    return f"final {exp} ({entry.experiences[exp] if key is None else key})"


def load_baseline(path: str | Path) -> Baseline:
    """Read and validate a baseline file; every problem is one ``CheckError``."""
    path = Path(path)
    data = read_json(path, "baseline", CheckError)
    version = data.get("baseline_schema_version") if isinstance(data, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckError(f"{path}: not a baseline file (no integer baseline_schema_version)")
    if version > BASELINE_SCHEMA_VERSION:
        raise CheckError(f"{path}: baseline_schema_version {version} is newer than this unicon-bench supports "
                         f"({BASELINE_SCHEMA_VERSION}); upgrade unicon-bench")
    bad = _non_finite(data)
    if bad is not None:
        raise CheckError(f"{path}: {bad} is not a finite number (NaN or Infinity); a baseline holds numbers or null")
    baseline = validate(Baseline, data, f"{path}: invalid baseline", CheckError)
    for entry in baseline.entries:
        for row in entry.rows:
            if tolerance_key(entry, row) not in baseline.tolerances:
                raise CheckError(f"{path}: no tolerance for '{tolerance_key(entry, row)}' (add it under 'tolerances')")
    return baseline


def _non_finite(data: Any, where: str = "") -> str | None:
    """Where the first NaN/Infinity of a baseline's JSON is, naming the entry (scenario and method) it is in."""
    if isinstance(data, float) and not math.isfinite(data):
        return where or "a value"
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        if isinstance(value, dict) and {"scenario", "method"} <= set(value) and where.startswith("entries"):
            here = f"entry {value.get('scenario')!s} {value.get('method')!s}"
        else:
            here = f"{where}.{key}" if where else str(key)
        found = _non_finite(value, here)
        if found is not None:
            return found
    return None


def _stat(values: dict[int, float | None], confidence: float) -> Stat:
    mean, lo, hi, n = mean_ci(values.values(), confidence)
    half = None if lo is None else (hi - lo) / 2
    return Stat(mean=mean, ci_half_width=half, n=n, values=values)


def _rows_of(board: Board, metrics: tuple[str, ...] = ()) -> list[str]:
    """Gated rows: final average, each experience's final primary score, BWT, then the extra metrics."""
    extra = [metric_column(e, key) for key in metrics for e in board.experiences
             if any(metric_column(e, key) in r.values for r in board.runs)]
    return ["final_average", *(EXP_PREFIX + e for e in board.experiences), "bwt", *extra]


def _boards(results_dir: str | Path, skipped: list[str] | None = None) -> tuple[list[Board], list]:
    """Boards of the valid results. Invalid files are an error, or, given a ``skipped`` list, listed there
    and left out (a comparison then finds their rows missing, which fails the gate all the same)."""
    results, problems = load_results(results_dir)
    if problems and skipped is None:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CheckError(f"{problems[0]}{more}")
    if skipped is not None:
        skipped.extend(problems)
    if not results:
        raise CheckError(f"no result files under {results_dir}" if not problems else
                         f"no valid result files under {results_dir} ({len(problems)} invalid, e.g. {problems[0]})")
    return aggregate(results), [r for _p, r in results]


def _environment(results) -> dict[str, Any]:
    """Each env field's value, or the sorted list of its values when the runs disagree."""
    env: dict[str, Any] = {}
    for key in (*ENV_KEYS, "unicon_bench", "git_commit"):
        seen = sorted({getattr(r.env, key) for r in results}, key=str)
        env[key] = seen[0] if len(seen) == 1 else seen
    return env


def _entries(boards: list[Board], confidence: float, metrics: tuple[str, ...] = ()) -> list[Entry]:
    entries = []
    for board in boards:
        for row in board.rows:
            runs = board.runs_of(row["method"])
            entries.append(Entry(
                scenario=board.scenario, scenario_version=board.version, quick=board.quick,
                precision=board.precision, strategy=row["strategy"],
                method=row["method"], params=runs[0].result.strategy.params, seeds=row["seeds"],
                experiences=dict(zip(board.experiences, board.metrics)),
                rows={col: _stat({r.result.seed: r.values.get(col) for r in runs}, confidence)
                      for col in _rows_of(board, metrics)},
                runs={r.result.seed: r.result.model_dump(mode="json") for r in runs},
            ))
    return sorted(entries, key=lambda e: (e.scenario, e.scenario_version, e.quick, e.precision, e.method))


def build_baseline(results_dir: str | Path, suite: dict | None = None, tolerances: dict[str, float] | None = None,
                   confidence: float = CONFIDENCE, metrics: tuple[str, ...] = ()) -> Baseline:
    """A baseline from every result under ``results_dir`` (all of them must be valid).

    ``metrics``: keys of other registered metrics (``hd95``, ``td_auc@24``...) to gate on as well.
    """
    for key in metrics:
        if get_metric(key).primary:
            raise CheckError(f"metric {key} is a primary metric: the baseline gates it already")
    boards, results = _boards(results_dir)
    versions = sorted({r.schema_version for r in results})
    if len(versions) > 1:
        raise CheckError(f"{results_dir}: results of several schema versions {versions}; re-run the suite")
    return Baseline(
        baseline_schema_version=BASELINE_SCHEMA_VERSION, result_schema_version=versions[0],
        created=datetime.now(UTC).isoformat(timespec="seconds"), suite=suite,
        environment=_environment(results), confidence=confidence,
        tolerances={**DEFAULT_TOLERANCES, **(tolerances or {})}, entries=_entries(boards, confidence, tuple(metrics)),
    )


def write_baseline(baseline: Baseline, path: str | Path) -> None:
    # allow_nan=False: a bare NaN token is not JSON, and the model refuses non-finite numbers anyway
    atomic_write_text(Path(path), json.dumps(baseline.model_dump(mode="json"), indent=2, allow_nan=False) + "\n")
