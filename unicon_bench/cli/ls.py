"""``unicon-bench ls``: the registered strategies or scenarios, read without importing torch."""

from __future__ import annotations

from enum import Enum

import typer

from unicon_bench.errors import UniconBenchError


class What(str, Enum):
    strategies = "strategies"
    scenarios = "scenarios"


def ls(what: What = typer.Argument(..., help="What to list.")) -> None:
    """List strategies or scenarios with a one-line description."""
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    if what is What.strategies:
        from unicon_bench.registry import STRATEGIES

        for col in ("name", "family", "description", "kinds", "trains", "source"):
            table.add_column(col)
        for e in STRATEGIES.entries():
            table.add_row(e.name, e.family or "-", e.summary, ",".join(e.compatible), e.trainable, e.origin)
    else:
        from unicon_bench.scenario import get_scenario, list_scenarios

        for col in ("name", "version", "kind", "identity", "experiences", "description"):
            table.add_column(col)
        for name in list_scenarios():
            try:
                s = get_scenario(name)
            except UniconBenchError as exc:
                table.add_row(name, "", "", "", "", f"[red]invalid: {exc}")
                continue
            exps = " -> ".join(e.name for e in s.experiences)
            table.add_row(s.name, str(s.version), s.kind, "yes" if s.task_identity_at_test else "no", exps, s.description)
    Console(width=200).print(table)
