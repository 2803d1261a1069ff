"""The leaderboard's summary and cost columns, registered once: name, label, direction, unit,
kind, ``check`` tolerance and display precision.

Scores summarise the primary metric's trained x evaluated matrix (``continual.summarize``: final
average, BWT, FWT, forgetting, plasticity); costs come from the result file's cost block. The
metric columns (``final:<experience>/<metric key>``) take their direction, unit and tolerance from
the metric registry instead; they are shown with ``METRIC_PRECISION`` decimals.

The aggregate (``analysis.aggregate``), the regression gate (``check``) and the page
(``leaderboard.render``) read this table; none keeps its own list. It is a plain table rather than
a decorator registry: the columns are computed by the harness and the aggregate, not by plug-ins,
so there is no function to register them on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

METRIC_PRECISION = 3  # decimals of a metric column and of any column that does not set its own


@dataclass(frozen=True)
class Column:
    """One summary or cost column of the leaderboard."""

    name: str
    label: str
    direction: Literal["higher", "lower"]
    unit: str
    kind: Literal["score", "cost"]
    description: str
    tolerance: float | None = None  # absolute tolerance of ``check``; None: not gated by default
    precision: int = METRIC_PRECISION  # decimals shown on the leaderboard

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "higher"


_TABLE = (
    # Quick runs score 8-12 evaluation subjects: one rank swap moves an AUC or a C-index by
    # 0.02-0.06, and a few voxels move a quick Dice by a few hundredths; hence 0.05.
    Column("final_average", "final avg", "higher", "primary metric", "score",
           "mean of the primary metric over all experiences after the last one", tolerance=0.05),
    Column("bwt", "BWT", "higher", "primary metric", "score",
           "backward transfer: mean change on earlier experiences since they were learnt", tolerance=0.05),
    Column("fwt", "FWT", "higher", "primary metric", "score",
           "forward transfer: score on an experience just before training on it, minus the initial model's"),
    Column("forgetting", "forgetting", "lower", "primary metric", "score",
           "mean drop from the best score an earlier experience ever had to its final score"),
    Column("plasticity", "plasticity", "higher", "primary metric", "score",
           "mean score on each experience right after training on it"),
    Column("trainable_share", "mean trainable share", "lower", "1", "cost",
           "mean share of the parameters trained on the experiences after the first"),
    Column("trainable_share_max", "max trainable share", "lower", "1", "cost",
           "largest share of the parameters trained on one experience after the first"),
    Column("wall_time_s", "wall time (s)", "lower", "s", "cost", "wall-clock time of the run", precision=1),
    Column("peak_rss_mb", "peak RSS (MB)", "lower", "MB", "cost", "peak resident memory of the run", precision=0),
    Column("buffer_mb", "buffer (MB)", "lower", "MB", "cost", "memory kept between experiences (rehearsal buffer, stored weights)", precision=2),
)
COLUMNS: dict[str, Column] = {c.name: c for c in _TABLE}


def columns_of(kind: str) -> tuple[str, ...]:
    """Names of the score or cost columns, in display order."""
    return tuple(c.name for c in _TABLE if c.kind == kind)


def precision(name: str) -> int:
    """Decimals the leaderboard shows for a column (summary, cost or metric column)."""
    column = COLUMNS.get(name)
    return METRIC_PRECISION if column is None else column.precision
