"""``unicon-bench compare``: one method against the baselines, paired, with verdicts and power."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from unicon_bench.cli.common import fail
from unicon_bench.errors import UniconBenchError


class Format(str, Enum):
    table = "table"
    md = "md"
    csv = "csv"
    json = "json"


class FailOn(str, Enum):
    worse = "worse"


class Test(str, Enum):
    bootstrap = "bootstrap"
    t = "t"


class CompareUsageError(UniconBenchError):
    """An unknown method or metric, or no result files."""


HEADERS = ["scenario", "against", "metric", "Δ", "95 % CI", "p", "p Holm", "verdict", "MDE", "seeds", "subjects",
           "resampled"]
FIELDS = ["scenario", "scenario_version", "quick", "precision", "method", "against", "metric", "delta", "ci_low",
          "ci_high", "p", "p_holm", "verdict", "n_seeds", "n_subjects", "mde", "resampled", "mean_method",
          "mean_against", "higher_is_better", "rope", "test"]
STYLE = {"better": "green", "worse": "bold red", "equivalent": "cyan", "inconclusive": "yellow"}


def _num(x, fmt: str = "{:+.3f}") -> str:
    return "–" if x is None else fmt.format(x)


def _seeds_for(c, want: float | None) -> str:
    if want is None:
        return ""
    n = c.seeds_for(want)
    return "more subjects" if n is None and c.se is not None else _num(n, "{}")


def _cells(c, want: float | None = None) -> list[str]:
    title = f"{c.scenario} v{c.scenario_version}" + (" (quick)" if c.quick else "") + \
        ("" if c.precision == "fp32" else f" {c.precision}")
    ci = "–" if c.ci_low is None else f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}]"
    cells = [title, c.against, c.metric, _num(c.delta), ci, _num(c.p, "{:.4f}"), _num(c.p_holm, "{:.4f}"), c.verdict,
             _num(c.mde, "{:.3f}"), str(c.n_seeds), "–" if c.n_subjects is None else str(c.n_subjects), c.resampled]
    return cells + ([_seeds_for(c, want)] if want is not None else [])


def _headers(want: float | None) -> list[str]:
    return HEADERS + ([f"seeds for {want:g}"] if want is not None else [])


def _record(c, want: float | None) -> dict:
    record = {k: c.record()[k] for k in FIELDS}
    if want is not None:  # None: not reachable with more seeds alone (the eval subjects limit it)
        record.update(wanted_difference=want, seeds_needed=c.seeds_for(want))
    return record


def legend(comparisons, rope: float, test: str, want: float | None = None) -> str:
    how = ("percentile interval and two-sided bootstrap p" if test == "bootstrap" else
           "t interval and p from the bootstrap SE with seeds − 1 df")
    method = comparisons[0].method if comparisons else ""
    return (f"Δ = {method} − against, paired (same seeds and eval subjects); {how} over a hierarchical bootstrap "
            f"(seeds, then subjects where recorded: 'resampled'); Holm across the {len(comparisons)} rows; verdict in "
            f"the metric's direction, 'equivalent' = CI inside ±{rope:g}; MDE = smallest difference detectable "
            "with 80 % power at α = 0.05." + ("" if want is None else
            f" Seeds for {want:g}: seeds needed to detect a true difference of {want:g} with 80 % power, the "
            "eval-subject part of the variance held fixed ('more subjects': seeds alone cannot reach it)."))


def render(comparisons, fmt: str, rope: float, test: str, want: float | None = None) -> str:
    if fmt == "json":
        import json

        return json.dumps([_record(c, want) for c in comparisons], indent=2) + "\n"
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        w = csv.DictWriter(buf, FIELDS + (["wanted_difference", "seeds_needed"] if want is not None else []),
                           lineterminator="\n")
        w.writeheader()
        for c in comparisons:
            w.writerow(_record(c, want))
        return buf.getvalue()
    from unicon_bench.fileio import md_escape

    headers = _headers(want)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(md_escape(x) for x in _cells(c, want)) + " |" for c in comparisons]
    return "\n".join(lines) + "\n\n" + md_escape(legend(comparisons, rope, test, want)) + "\n"


def _print_table(comparisons, rope: float, test: str, want: float | None = None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    method = comparisons[0].method if comparisons else ""
    table = Table(title=f"unicon-bench compare: {escape(method)}", caption=escape(legend(comparisons, rope, test, want)))
    for h in _headers(want):
        table.add_column(h, justify="left" if h in ("scenario", "against", "metric", "verdict", "resampled") else "right")
    for c in comparisons:
        cells = [escape(x) for x in _cells(c, want)]
        cells[7] = f"[{STYLE[c.verdict]}]{cells[7]}[/]"
        table.add_row(*cells)
    Console().print(table)


def _boards(paths: list[Path]):
    from unicon_bench.analysis.aggregate import aggregate, load_results

    results, problems = [], []
    for path in paths:
        found, bad = load_results(path)
        results += found
        problems += bad
    if not results:
        detail = f" ({len(problems)} invalid, e.g. {problems[0]})" if problems else ""
        raise CompareUsageError(f"no valid result files under {', '.join(map(str, paths))}{detail}")
    return aggregate(results), problems


def _check_names(boards, method: str, against: list[str], metrics: list[str]) -> None:
    from unicon_bench.analysis.resampling import SUMMARIES, is_column

    mine = [b for b in boards if method in b.methods()]
    every = sorted({m for b in boards for m in b.methods()})
    if not mine:
        raise CompareUsageError(f"unknown method {method!r}; the results hold: {', '.join(every)}")
    others = {m for b in mine for m in b.methods()} - {method}
    for name in against:
        if name not in others:
            raise CompareUsageError(f"unknown method {name!r} to compare against (on the boards of {method}); "
                                    f"available: {', '.join(sorted(others)) or '(none)'}")
    names = [*SUMMARIES, *sorted({f"final:{e}" for b in mine for e in b.experiences})]
    for m in metrics:
        if not any(is_column(m, b.experiences) for b in mine):
            raise CompareUsageError(f"unknown metric {m!r}; choose one of {', '.join(names)} "
                                    "(or final:<experience>/<metric key>, e.g. final:ct_seg/hd95)")


def compare(
    results: List[Path] = typer.Argument(..., help="Folders (or files) of result JSON files, e.g. results/ or "
                                         "benchmarks/results/cpu-default-suite."),
    method: str = typer.Option(..., "--method", help="The method to judge, as the leaderboard labels it "
                               "(strategy name, e.g. unicon; 'ewc (tuned)' or 'ewc [lambda=10]' where one strategy has several rows)."),
    against: Optional[List[str]] = typer.Option(None, "--against", help="A baseline to compare with (repeatable); "
                                                "default: every other method on each scenario's board."),
    metric: Optional[List[str]] = typer.Option(None, "--metric", "-m", help="What to compare (repeatable): "
                                               "final_average (default), bwt, fwt, forgetting, plasticity, "
                                               "final:<experience> or final:<experience>/<metric key>."),
    rope: float = typer.Option(0.01, "--rope", min=0.0, help="Region of practical equivalence, in the metric's unit: "
                               "a difference whose 95 % interval lies inside ±ROPE is 'equivalent'."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table (terminal), md, csv or json."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
    fail_on: Optional[FailOn] = typer.Option(None, "--fail-on", help="worse: exit 1 if any verdict is 'worse' "
                                             "(a CI gate for a new method)."),
    test: Test = typer.Option(Test.t, "--test", help="t (default): the hierarchical bootstrap's SE of the paired "
                              "difference in a t reference with seeds − 1 df (over seeds alone, exactly the paired "
                              "t-test); bootstrap: percentile interval and bootstrap p, which over-state certainty "
                              "with few seeds (3 seeds of one sign give the smallest p there is)."),
    n_boot: int = typer.Option(5000, "--n-boot", min=100, help="Bootstrap replicates (the smallest p is 2/(n+1))."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap draws."),
    want: Optional[float] = typer.Option(None, "--want", min=0.0, help="A difference worth detecting (in the "
                                         "metric's unit): adds the seeds each comparison would need to detect it "
                                         "with 80 % power (json/csv: seeds_needed)."),
) -> None:
    """Compare a method with baselines, paired, per scenario (board): Δ, 95 % CI, p, Holm, verdict, power.

    Methods sharing training seeds and eval subjects are resampled together (a hierarchical bootstrap:
    seeds, then the eval subjects where result files keep per-subject values), so the difference is
    paired. Holm corrects the p-values across all rows shown. A verdict reads better / worse (Holm p
    < 0.05, in the metric's direction: a lower forgetting is better), equivalent (95 % CI inside
    ±rope) or inconclusive; MDE is the smallest true difference the data would detect with 80 %
    power. Example:

      unicon-bench compare benchmarks/results/cpu-default-suite --method unicon --against naive --against joint
    """
    from unicon_bench.analysis.compare import compare_boards
    from unicon_bench.fileio import atomic_write_text, check_output_file

    try:
        if output is not None:
            check_output_file(output, "compare output")
        boards, problems = _boards(results)
        metrics = list(metric or ["final_average"])
        _check_names(boards, method, list(against or []), metrics)
        rows = compare_boards(boards, method, against or None, metrics, rope=rope, n_boot=n_boot, seed=seed,
                              test=test.value)
    except UniconBenchError as exc:
        fail(exc)
    for problem in problems:
        typer.echo(f"warning: skipped {problem}", err=True)
    if fmt is Format.table and output is None:
        _print_table(rows, rope, test.value, want)
    else:
        text = render(rows, "md" if fmt is Format.table else fmt.value, rope, test.value, want)
        if output is None:
            typer.echo(text, nl=False)
        else:
            atomic_write_text(output, text)
            typer.echo(f"compare: {output}", err=True)
    if fail_on is FailOn.worse and any(c.verdict == "worse" for c in rows):
        raise typer.Exit(1)
