"""Terminal rendering of one run's result (the table ``unicon-bench run`` prints)."""

from __future__ import annotations

from rich.table import Table

from unicon_bench.results import RunResult


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def summary_table(result: RunResult) -> Table:
    """The trained x evaluated matrix with the summary metrics and cost underneath."""
    init, rows = result.rows()
    names = result.scenario.experiences
    title = (
        f"{result.strategy.name} on {result.scenario.name} v{result.scenario.version}"
        f"{' (quick)' if result.scenario.quick else ''}, seed {result.seed}"
    )
    table = Table(title=title)
    table.add_column("trained on \\ evaluated on")
    for name, metric in zip(names, result.scenario.metrics):
        table.add_column(f"{name} ({metric})", justify="right")
    table.add_row("untrained", *map(_fmt, init))
    for name, row in zip(names, rows):
        table.add_row(f"{name}", *map(_fmt, row))
    s, c = result.summary, result.cost
    table.caption = (
        f"final avg {_fmt(s.final_average)} | BWT {_fmt(s.bwt)} | FWT {_fmt(s.fwt)} | "
        f"forgetting {_fmt(s.forgetting)} | plasticity {_fmt(s.plasticity)}\n"
        f"trainable params per exp {c.trainable_params} of {c.total_params} | "
        f"wall {c.wall_time_s:.1f}s | peak RSS {c.peak_rss_mb:.0f} MB | buffer {c.buffer_bytes} B"
    )
    if c.weights_sha256 or (c.frozen and c.frozen != "none"):
        weights = f"weights {c.backbone_weights} (sha256 {c.weights_sha256[:12]}) | " if c.weights_sha256 else ""
        table.caption += f"\n{weights}backbone frozen: {c.frozen} ({c.frozen_params} params)"
    return table
