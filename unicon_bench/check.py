"""The CI regression gate: compare result files with a committed baseline, uncertainty included.

A baseline file (``baselines/ci.json``) holds, per scenario (name, version, quick flag) and method,
the mean, t-interval half-width and per-seed values of the final average, the BWT and the final
score on every experience, aggregated as the leaderboard does (``unicon_bench.analysis.aggregate``),
and one absolute tolerance per metric; ``--metric`` adds the final value of any other registered metric
(``hd95``, ``nsd``, ``brier``, ``ibs``, ``td_auc@24``...) on every experience that has it, judged in the
metric's own direction (a lower HD95 is an improvement). A row *regresses* when its current mean is worse than the
baseline mean by more than ``max(tolerance, sqrt(h_base**2 + h_cur**2))``, ``h`` being the half-widths
of the two t-intervals (0 for a single seed). Improvements are reported and never fail. A row absent
from the results, or undefined there, fails unless missing rows are allowed. Different scenario
versions, or quick and full runs, are never compared: that is a usage error. Result files of an older
schema are converted on load (``unicon_bench.results``), so a baseline made from schema-1 results still
gates schema-2 results on the rows it names; a newer result schema than the baseline's is compared,
an older one is not.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from unicon_bench.errors import UniconBenchError
from unicon_bench.fileio import md_escape, read_json, validate
from unicon_bench.analysis.aggregate import (
    CONFIDENCE,
    EXP_PREFIX,
    Board,
    aggregate,
    column_label,
    higher_is_better,
    load_results,
    mean_ci,
    metric_column,
    split_column,
)
from unicon_bench.metrics.columns import COLUMNS
from unicon_bench.metrics.registry import METRICS, get_metric, split_key
from unicon_bench.results import atomic_write_text

BASELINE_SCHEMA_VERSION = 1
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
    model_config = ConfigDict(extra="forbid")


class Stat(_Model):
    """One row of one method: the mean over seeds, the t-interval half-width (None: one seed)."""

    mean: float | None
    ci_half_width: float | None
    n: int = Field(ge=0)
    values: dict[int, float | None] = Field(description="seed -> value")


class Entry(_Model):
    """One method on one scenario version, quick or full."""

    scenario: str
    scenario_version: int
    quick: bool
    strategy: str
    method: str
    params: dict
    seeds: list[int]
    experiences: dict[str, str] = Field(description="experience name -> its metric (dice, auc, c_index)")
    rows: dict[str, Stat] = Field(description="final_average, bwt and final:<experience>")

    @property
    def title(self) -> str:
        return scenario_title(self.scenario, self.scenario_version, self.quick)


class Baseline(_Model):
    baseline_schema_version: int
    result_schema_version: int
    created: str
    suite: dict[str, Any] | None = None
    environment: dict[str, Any]
    confidence: float = Field(gt=0, lt=1)
    tolerances: dict[str, float]
    entries: list[Entry]


def scenario_title(name: str, version: int, quick: bool) -> str:
    return f"{name} v{version} ({'quick' if quick else 'full'})"


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
    baseline = validate(Baseline, data, f"{path}: invalid baseline", CheckError)
    for entry in baseline.entries:
        for row in entry.rows:
            if tolerance_key(entry, row) not in baseline.tolerances:
                raise CheckError(f"{path}: no tolerance for '{tolerance_key(entry, row)}' (add it under 'tolerances')")
    return baseline


def _stat(values: dict[int, float | None], confidence: float) -> Stat:
    mean, lo, hi, n = mean_ci(values.values(), confidence)
    half = None if lo is None else (hi - lo) / 2
    return Stat(mean=mean, ci_half_width=half, n=n, values=values)


def _rows_of(board: Board, metrics: tuple[str, ...] = ()) -> list[str]:
    """Gated rows: final average, each experience's final primary score, BWT, then the extra metrics."""
    extra = [metric_column(e, key) for key in metrics for e in board.experiences
             if any(metric_column(e, key) in r.values for r in board.runs)]
    return ["final_average", *(EXP_PREFIX + e for e in board.experiences), "bwt", *extra]


def _boards(results_dir: str | Path) -> tuple[list[Board], list]:
    results, problems = load_results(results_dir)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CheckError(f"{problems[0]}{more}")
    if not results:
        raise CheckError(f"no result files under {results_dir}")
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
                scenario=board.scenario, scenario_version=board.version, quick=board.quick, strategy=row["strategy"],
                method=row["method"], params=runs[0].result.strategy.params, seeds=row["seeds"],
                experiences=dict(zip(board.experiences, board.metrics)),
                rows={col: _stat({r.result.seed: r.values.get(col) for r in runs}, confidence)
                      for col in _rows_of(board, metrics)},
            ))
    return sorted(entries, key=lambda e: (e.scenario, e.scenario_version, e.quick, e.method))


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
    atomic_write_text(Path(path), json.dumps(baseline.model_dump(mode="json"), indent=2) + "\n")


@dataclass
class Row:
    """One compared row: the verdict is regressed, ok, within CI, improved, missing, undefined or n/a."""

    entry: Entry
    row: str
    base: Stat
    current: Stat | None
    delta: float | None = None  # current - baseline mean
    allowed: float | None = None  # the largest drop that still passes
    verdict: str = "missing"

    @property
    def label(self) -> str:
        return row_label(self.entry, self.row)


@dataclass
class Report:
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    allow_missing: bool = False

    def count(self, verdict: str) -> int:
        return sum(r.verdict == verdict for r in self.rows)

    @property
    def failed(self) -> list[Row]:
        bad = ("regressed",) if self.allow_missing else FAILING
        return [r for r in self.rows if r.verdict in bad]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def summary(self) -> str:
        counts = ", ".join(f"{self.count(v)} {v}" for v in ("regressed", "missing", "undefined", "within CI", "improved", "ok")
                           if self.count(v))
        head = f"FAIL: {len(self.failed)} failing row(s)" if self.failed else "PASS: no regression"
        return f"{head} ({counts}; {len(self.rows)} rows)"


def judge(base: Stat, current: Stat, tolerance: float, up: bool = True) -> tuple[float, float, str]:
    """``(delta, allowed drop, verdict)`` of one row; ``up``: higher is better."""
    delta = current.mean - base.mean
    widened = math.hypot(base.ci_half_width or 0.0, current.ci_half_width or 0.0)
    allowed = max(tolerance, widened)
    worse = -delta if up else delta
    if worse > allowed + EPS:
        return delta, allowed, "regressed"
    if -worse > allowed + EPS:
        return delta, allowed, "improved"
    return delta, allowed, "within CI" if worse > tolerance + EPS else "ok"


def _match(entry: Entry, boards: list[Board], notes: list[str]):
    """The board row of ``entry`` in the results and its board, or ``(None, None)`` if absent."""
    named = [b for b in boards if b.scenario == entry.scenario]
    board = next((b for b in named if (b.version, b.quick) == (entry.scenario_version, entry.quick)), None)
    if board is None:
        if named:
            found = ", ".join(scenario_title(b.scenario, b.version, b.quick) for b in named)
            raise CheckError(f"scenario {entry.scenario}: the baseline is {entry.title} but the results hold {found}; "
                             "different scenario versions or quick/full runs are never compared "
                             "(re-run the suite, or regenerate the baseline with --update-baseline)")
        return None, None
    same = [r for r in board.rows if r["strategy"] == entry.strategy]
    exact = [r for r in same if board.runs_of(r["method"])[0].result.strategy.params == entry.params]
    if exact or len(same) == 1:
        row = (exact or same)[0]
        if not exact:
            notes.append(f"{entry.title} {entry.method}: parameters differ from the baseline's")
        if row["seeds"] != entry.seeds:
            notes.append(f"{entry.title} {entry.method}: seeds {row['seeds']} in the results, {entry.seeds} in the baseline")
        return board, row
    if same:
        notes.append(f"{entry.title} {entry.method}: several parameter sets in the results, none the baseline's")
    return None, None


def _env_notes(baseline: Baseline, results) -> list[str]:
    current = _environment(results)
    return [f"environment differs: {key} {baseline.environment.get(key)!r} in the baseline, {current[key]!r} now "
            "(values may differ for that reason alone)" for key in ENV_KEYS if baseline.environment.get(key) != current[key]]


def compare(baseline: Baseline, results_dir: str | Path, allow_missing: bool = False) -> Report:
    """Compare every row of ``baseline`` with the results under ``results_dir``."""
    if not baseline.entries:
        raise CheckError("the baseline has no entries: nothing to compare")
    boards, results = _boards(results_dir)
    # results are upgraded to the current schema on load; a baseline of an older schema names rows that
    # keep their meaning, one of a newer schema may name rows this version cannot read
    current = results[0].schema_version
    if baseline.result_schema_version > current:
        raise CheckError(f"the baseline was made from result schema version {baseline.result_schema_version}, newer "
                         f"than this unicon-bench reads ({current}); upgrade unicon-bench")
    report = Report(rows=[], notes=_env_notes(baseline, results), allow_missing=allow_missing)
    matched = set()
    for entry in baseline.entries:
        board, found = _match(entry, boards, report.notes)
        runs = board.runs_of(found["method"]) if found else []
        if found:
            matched.add((board.scenario, board.version, board.quick, found["method"]))
        for col, base in entry.rows.items():
            tolerance = baseline.tolerances[tolerance_key(entry, col)]
            if base.mean is None:
                report.rows.append(Row(entry, col, base, None, verdict="n/a"))
                continue
            if not runs or col not in runs[0].values:
                report.rows.append(Row(entry, col, base, None, verdict="missing"))
                continue
            current = _stat({r.result.seed: r.values.get(col) for r in runs}, baseline.confidence)
            if current.mean is None:
                report.rows.append(Row(entry, col, base, current, verdict="undefined"))
                continue
            delta, allowed, verdict = judge(base, current, tolerance, higher_is_better(col))
            report.rows.append(Row(entry, col, base, current, delta, allowed, verdict))
    extra = [f"{scenario_title(b.scenario, b.version, b.quick)} {r['method']}" for b in boards for r in b.rows
             if (b.scenario, b.version, b.quick, r["method"]) not in matched]
    if extra:
        report.notes.append(f"not in the baseline, not checked: {', '.join(extra)}")
    if all(r.verdict == "n/a" or (allow_missing and r.verdict in FAILING[1:]) for r in report.rows):
        raise CheckError(f"nothing to compare: no baseline row has a defined value in the results under {results_dir}")
    return report


# ---------------------------------------------------------------- rendering


def _fmt(stat: Stat | None) -> str:
    if stat is None or stat.mean is None:
        return "–"
    ci = f" ± {stat.ci_half_width:.3f}" if stat.ci_half_width is not None else ""
    return f"{stat.mean:.3f}{ci} (n={stat.n})"


def _cells(r: Row) -> list[str]:
    delta = "–" if r.delta is None else f"{r.delta:+.3f}"
    allowed = "–" if r.allowed is None else f"{r.allowed:.3f}"
    return [r.entry.title, r.entry.method, r.label, _fmt(r.base), _fmt(r.current), delta, allowed]


HEADERS = ["scenario", "method", "metric", "baseline", "current", "Δ", "allowed drop", "verdict"]
_STYLE = {"regressed": "bold red", "missing": "red", "undefined": "red", "within CI": "yellow",
          "improved": "green", "ok": "", "n/a": "dim"}
_MARK = {"regressed": "❌ regressed", "missing": "❌ missing", "undefined": "❌ undefined", "within CI": "⚠️ within CI",
         "improved": "🟢 improved", "ok": "✅ ok", "n/a": "n/a"}


def rich_table(report: Report):
    """The comparison as a rich table."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="unicon-bench check", caption=escape(report.summary()))
    for h in HEADERS:
        table.add_column(h, justify="right" if h in ("Δ", "allowed drop") else "left")
    for r in report.rows:
        verdict = r.verdict if r.verdict not in FAILING[1:] or not report.allow_missing else f"{r.verdict} (allowed)"
        table.add_row(*(escape(c) for c in _cells(r)), f"[{_STYLE[r.verdict]}]{verdict}[/]" if _STYLE[r.verdict] else verdict)
    return table


def markdown(report: Report) -> str:
    """The comparison as Markdown for a pull-request comment: failing rows first, every row folded."""
    def table(rows: list[Row]) -> list[str]:
        lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
        for r in rows:
            mark = _MARK[r.verdict] + (" (allowed)" if report.allow_missing and r.verdict in FAILING[1:] else "")
            lines.append("| " + " | ".join(md_escape(c) for c in _cells(r)) + f" | {mark} |")
        return lines

    icon = "❌" if report.failed else "✅"
    out = [f"### {icon} unicon-bench check", "", md_escape(report.summary()), ""]
    notable = [r for r in report.rows if r.verdict not in ("ok", "n/a")]
    if notable:
        out += table(notable) + [""]
    out += ["<details><summary>All rows</summary>", ""] + table(report.rows) + ["", "</details>"]
    if report.notes:
        out += [""] + [f"- {md_escape(n)}" for n in report.notes]
    return "\n".join(out) + "\n"
