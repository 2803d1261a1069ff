"""``unicon-bench leaderboard``: aggregate result files into an HTML page or Markdown/CSV tables."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from unicon_bench.cli.common import fail
from unicon_bench.errors import UniconBenchError

class Format(str, Enum):
    html = "html"
    md = "md"
    csv = "csv"
    json = "json"


def leaderboard(
    results_dir: Path = typer.Argument(..., help="Folder of result JSON files (e.g. results/)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output file (html default: leaderboard.html; md/csv/json: stdout)."),
    fmt: Format = typer.Option(Format.html, "--format", "-f", help="html: self-contained page; md or csv: the overview tables; json: per scenario and method the mean, 95 % "
                                "interval and rank interval of a hierarchical bootstrap (seeds, then eval subjects)."),
    metric: Optional[str] = typer.Option(None, "--metric", "-m", help="md: also a table of this metric of the final "
                                         "models (primary, hd95, nsd, lesion_f1, brier, ibs, td_auc@24, ...) with "
                                         "per-subject bootstrap CIs; the html page has a selector for every metric."),
) -> None:
    """Aggregate result files into a leaderboard (mean ± 95 % CI per scenario and strategy)."""
    from unicon_bench.leaderboard.render import write_leaderboard

    if output is None and fmt is Format.html:
        output = Path("leaderboard.html")
    try:
        text, problems = write_leaderboard(results_dir, output, fmt.value, metric)
    except UniconBenchError as exc:
        fail(exc)
    for problem in problems:
        typer.echo(f"warning: skipped {problem}", err=True)
    if output is None:
        typer.echo(text, nl=False)
    else:
        typer.echo(f"leaderboard: {output}", err=True)
