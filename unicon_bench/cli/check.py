"""``unicon-bench check``: the regression gate of result files against a committed baseline."""

from __future__ import annotations

import io
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from unicon_bench.cli.common import fail
from unicon_bench.fileio import check_output_file
from unicon_bench.errors import UniconBenchError


class CheckFormat(str, Enum):
    rich = "rich"
    md = "md"


def check(
    results_dir: Path = typer.Argument(..., help="Folder of result JSON files (e.g. results/ci/)."),
    baseline: Path = typer.Option(..., "--baseline", "-b", help="Baseline file, e.g. baselines/ci.json."),
    update_baseline: bool = typer.Option(False, "--update-baseline", help="Write the baseline from the results instead of checking."),
    allow_missing: bool = typer.Option(False, "--allow-missing", help="Baseline rows absent from the results do not fail."),
    fmt: CheckFormat = typer.Option(CheckFormat.rich, "--format", "-f", help="rich: a terminal table; md: Markdown for a pull-request comment."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the table to FILE instead of stdout."),
    suite: Optional[Path] = typer.Option(None, "--suite", help="The suite YAML the results came from (recorded by --update-baseline)."),
    metric: Optional[list[str]] = typer.Option(None, "--metric", "-m", help="With --update-baseline: also gate on this "
                                               "metric's final value per experience (repeatable: hd95, nsd, lesion_f1, "
                                               "brier, ibs, td_auc@24, ...), in its own direction."),
) -> None:
    """Regression gate: compare RESULTS_DIR with a baseline; exit 1 if any row regressed, 2 on usage errors.

    Every (scenario, strategy) row of the baseline (final average, final score per experience, BWT, and
    the metrics added with --metric) is judged in the metric's direction (a higher HD95 is worse).

    Paired (a baseline written by this version, results on the baseline's seeds): the difference current -
    baseline is resampled over seeds and eval subjects with one draw for both sides; the row regresses when
    the difference's whole 95 % interval lies below -tolerance. Identical runs differ by exactly 0.

    Unpaired (older baselines, other seeds): the row regresses when its mean gets worse by more than
    max(tolerance, sqrt(ci_base^2 + ci_current^2)), the t-intervals over seeds.
    """
    from unicon_bench import check as gate

    try:
        if output is not None:
            check_output_file(output, "--output")  # before the comparison, not after it
        if update_baseline:
            check_output_file(baseline, "--baseline")
            tolerances, info = None, None
            if baseline.exists():
                tolerances = gate.load_baseline(baseline).tolerances  # keep the team's tolerances
            if suite is not None:
                from unicon_bench.sweep import load_suite

                s = load_suite(suite)
                info = {"name": s.name, "file": suite.as_posix(), "strategies": s.strategy_names(),
                        "scenarios": s.scenario_names(), "seeds": s.seed_list(), "quick": s.quick, "params": s.params}
            new = gate.build_baseline(results_dir, suite=info, tolerances=tolerances, metrics=tuple(metric or ()))
            gate.write_baseline(new, baseline)
            typer.echo(f"baseline: {len(new.entries)} entries, {sum(len(e.rows) for e in new.entries)} rows -> {baseline}")
            return
        base = gate.load_baseline(baseline)
        if suite is not None and base.suite is not None:
            from unicon_bench.sweep import load_suite

            if load_suite(suite).name != base.suite.get("name"):
                raise gate.CheckError(f"suite {suite} is not the suite the baseline came from ({base.suite.get('name')})")
        report = gate.compare(base, results_dir, allow_missing=allow_missing)
    except UniconBenchError as exc:
        fail(exc)
    from rich.console import Console

    from unicon_bench.fileio import atomic_write_text

    if fmt is CheckFormat.md:
        text = gate.markdown(report)
    elif output is None:
        text = None
        Console().print(gate.rich_table(report))
    else:
        console = Console(width=200, no_color=True, record=True, file=io.StringIO())
        console.print(gate.rich_table(report))
        text = console.export_text()
    if output is None and text is not None:
        typer.echo(text, nl=False)
    elif output is not None:
        try:
            atomic_write_text(output, text)
        except UniconBenchError as exc:  # the disk filled up since the check above
            fail(exc)
    for note in report.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(report.summary(), err=True)
    raise typer.Exit(report.exit_code)
