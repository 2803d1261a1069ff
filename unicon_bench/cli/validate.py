"""``unicon-bench validate``: check result files against the result schema."""

from __future__ import annotations

from pathlib import Path

import typer

def validate(files: list[Path] = typer.Argument(..., help="Result JSON files or folders of them.")) -> None:
    """Check result files against the result schema; exit 1 if any is invalid."""
    from unicon_bench.results import ResultError, find_results, read_result

    bad = 0
    paths = [p for f in files for p in find_results(f)]
    if not paths:
        typer.echo("error: no result files found", err=True)
        raise typer.Exit(2)
    for path in paths:
        try:
            r = read_result(path)
            typer.echo(f"ok    {path}  ({r.scenario.name} v{r.scenario.version}, {r.strategy.name}, seed {r.seed})")
        except ResultError as exc:
            bad += 1
            typer.echo(f"FAIL  {exc}")
    raise typer.Exit(1 if bad else 0)
