"""The comparison of result files with a baseline: one verdict per row (regressed, ok, within CI,
improved, missing, undefined or n/a) and a report whose exit code fails the gate."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from unicon_bench.analysis.aggregate import Board, higher_is_better
from unicon_bench.check.baseline import (
    ENV_KEYS,
    EPS,
    FAILING,
    Baseline,
    CheckError,
    Entry,
    Stat,
    _boards,
    _environment,
    _stat,
    row_label,
    scenario_title,
    tolerance_key,
)


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
    interval: tuple[float, float] | None = None  # the paired difference's 95 % bootstrap interval (paired rows)

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


def judge_paired(delta: float, interval: tuple[float | None, float | None], tolerance: float,
                 up: bool = True) -> str:
    """The verdict of a paired row: its difference's interval entirely beyond the tolerance, or not."""
    lo, hi = interval
    if lo is None or hi is None:
        return "undefined"
    worse_lo, worse_hi = (-hi, -lo) if up else (lo, hi)  # the interval of how much worse it got
    if worse_lo > tolerance + EPS:
        return "regressed"
    if worse_hi < -tolerance - EPS:
        return "improved"
    return "within CI" if (-delta if up else delta) > tolerance + EPS else "ok"


class _Pairing:
    """The paired comparison of one entry: the baseline's runs and the current ones on the same seeds, both
    resampled with one bootstrap (``None`` when it cannot pair, with the reason in the notes)."""

    def __init__(self, entry: Entry, current_runs: list, notes: list[str]):
        from unicon_bench.results import ResultError

        self.ok = False
        if not entry.runs:
            return
        try:
            self.base = entry.results()
        except ResultError as exc:
            raise CheckError(f"the baseline's runs cannot be read: {exc}") from exc
        self.current = sorted((r.result for r in current_runs), key=lambda r: r.seed)
        if [r.seed for r in self.base] != [r.seed for r in self.current]:
            notes.append(f"{entry.title} {entry.method}: other seeds than the baseline's; unpaired comparison")
            return
        from unicon_bench.analysis.resampling import Bootstrap

        self.boot = Bootstrap()
        self.ok = True

    def difference(self, column: str) -> tuple[float | None, tuple[float | None, float | None]] | None:
        """(current - baseline point, its paired 95 % interval), or None if the two sides do not pair: other
        eval-subject counts, or per-subject values on one side only (then seeds alone would be resampled there)."""
        from unicon_bench.analysis.resampling import percentile_interval

        b, c = self.boot.estimate(self.base, column), self.boot.estimate(self.current, column)
        if (b.resampled, b.n_subjects) != (c.resampled, c.n_subjects) or b.point is None or c.point is None:
            return None
        return c.point - b.point, percentile_interval(c.replicates - b.replicates)


def _match(entry: Entry, boards: list[Board], notes: list[str]):
    """The board row of ``entry`` in the results and its board, or ``(None, None)`` if absent."""
    named = [b for b in boards if b.scenario == entry.scenario]
    wanted = (entry.scenario_version, entry.quick, entry.precision)
    board = next((b for b in named if (b.version, b.quick, b.precision) == wanted), None)
    if board is None:
        if named:
            found = ", ".join(scenario_title(b.scenario, b.version, b.quick, b.precision) for b in named)
            raise CheckError(f"scenario {entry.scenario}: the baseline is {entry.title} but the results hold {found}; "
                             "different scenario versions, quick/full or fp32/bf16 runs are never compared "
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
    skipped: list[str] = []
    boards, results = _boards(results_dir, skipped)
    # results are upgraded to the current schema on load; a baseline of an older schema names rows that
    # keep their meaning, one of a newer schema may name rows this version cannot read
    current = results[0].schema_version
    if baseline.result_schema_version > current:
        raise CheckError(f"the baseline was made from result schema version {baseline.result_schema_version}, newer "
                         f"than this unicon-bench reads ({current}); upgrade unicon-bench")
    report = Report(rows=[], notes=_env_notes(baseline, results), allow_missing=allow_missing)
    report.notes.extend(f"skipped invalid result {problem}" for problem in skipped)
    matched = set()
    for entry in baseline.entries:
        board, found = _match(entry, boards, report.notes)
        runs = board.runs_of(found["method"]) if found else []
        if found:
            matched.add((board.scenario, board.version, board.quick, board.precision, found["method"]))
        pairing = _Pairing(entry, runs, report.notes) if runs else None
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
            paired = pairing.difference(col) if pairing is not None and pairing.ok else None
            if paired is not None:
                delta, interval = paired
                verdict = judge_paired(delta, interval, tolerance, higher_is_better(col))
                report.rows.append(Row(entry, col, base, current, delta, tolerance, verdict, interval))
                continue
            if pairing is not None and pairing.ok:
                report.notes.append(f"{entry.title} {entry.method} {row_label(entry, col)}: the eval subjects differ "
                                    "from the baseline's; unpaired comparison")
            delta, allowed, verdict = judge(base, current, tolerance, higher_is_better(col))
            report.rows.append(Row(entry, col, base, current, delta, allowed, verdict))
    extra = [f"{scenario_title(b.scenario, b.version, b.quick, b.precision)} {r['method']}" for b in boards
             for r in b.rows if (b.scenario, b.version, b.quick, b.precision, r["method"]) not in matched]
    if extra:
        report.notes.append(f"not in the baseline, not checked: {', '.join(extra)}")
    if all(r.verdict == "n/a" or (allow_missing and r.verdict in FAILING[1:]) for r in report.rows):
        raise CheckError(f"nothing to compare: no baseline row has a defined value in the results under {results_dir}")
    return report
