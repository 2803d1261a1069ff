"""The CI regression gate: result files against a committed baseline, uncertainty included.

- ``baseline``: the baseline file (schema, build from results, load, write) and its tolerances;
- ``gate``: the row-by-row comparison and its verdicts;
- ``render``: the report as a rich table or Markdown.

Statistics come from ``unicon_bench.analysis``; this package never imports the leaderboard.
"""

from unicon_bench.check.baseline import (
    BASELINE_SCHEMA_VERSION,
    DEFAULT_TOLERANCES,
    ENV_KEYS,
    FAILING,
    SUMMARY_ROWS,
    Baseline,
    CheckError,
    Entry,
    Stat,
    build_baseline,
    load_baseline,
    row_label,
    scenario_title,
    tolerance_key,
    write_baseline,
)
from unicon_bench.check.gate import Report, Row, compare, judge, judge_paired
from unicon_bench.check.render import HEADERS, markdown, rich_table

__all__ = [
    "BASELINE_SCHEMA_VERSION", "DEFAULT_TOLERANCES", "ENV_KEYS", "FAILING", "HEADERS", "SUMMARY_ROWS", "Baseline",
    "CheckError", "Entry", "Report", "Row", "Stat", "build_baseline", "compare", "judge", "judge_paired", "load_baseline", "markdown",
    "rich_table", "row_label", "scenario_title", "tolerance_key", "write_baseline",
]
