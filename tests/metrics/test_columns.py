"""The summary and cost column table drives the aggregate's directions and labels, check's
tolerances and the leaderboard's precision."""

from __future__ import annotations

from pathlib import Path

import pytest

from unicon_bench.analysis import aggregate
from unicon_bench.check import DEFAULT_TOLERANCES, SUMMARY_ROWS
from unicon_bench.leaderboard.render import format_cell
from unicon_bench.metrics.columns import COLUMNS, columns_of, precision
from unicon_bench.metrics.registry import METRICS
from unicon_bench.results import read_result

FIXTURE = Path(__file__).parents[1] / "fixtures" / "result_schema1_ct_tasks.json"


def test_every_column_the_aggregate_shows_has_a_registered_direction():
    result = read_result(FIXTURE)
    shown = [*aggregate.SCORES, *(aggregate.EXP_PREFIX + e for e in result.scenario.experiences), *aggregate.COSTS]
    for col in [*shown, *aggregate.run_values(result)]:
        if col.startswith(aggregate.EXP_PREFIX):
            key = aggregate.split_column(col)[1]
            assert key is None or key.split("@")[0] in METRICS
            continue
        assert col in COLUMNS, col
        assert aggregate.higher_is_better(col) == (COLUMNS[col].direction == "higher")
        assert aggregate.column_label(col) == COLUMNS[col].label
    with pytest.raises(KeyError, match="no registered direction"):
        aggregate.higher_is_better("accuracy_of_vibes")


def test_aggregate_tables_are_derived_from_the_columns():
    assert aggregate.SCORES == columns_of("score") == ("final_average", "bwt", "fwt", "forgetting", "plasticity")
    assert aggregate.COSTS == columns_of("cost")
    assert aggregate.LOWER_IS_BETTER == {c.name for c in COLUMNS.values() if c.direction == "lower"}
    assert aggregate.LOWER_IS_BETTER >= {"forgetting", *aggregate.COSTS}
    assert aggregate.LABELS == {c.name: c.label for c in COLUMNS.values()}


def test_check_tolerances_come_from_the_columns_and_the_metric_registry():
    gated = {c.name: c.tolerance for c in COLUMNS.values() if c.tolerance is not None}
    assert gated == {"final_average": 0.05, "bwt": 0.05} and SUMMARY_ROWS == tuple(gated)
    assert DEFAULT_TOLERANCES == {**gated, **{m.name: m.tolerance for m in METRICS.values()}}


def test_leaderboard_precision_comes_from_the_columns():
    one_seed = {"mean": 12.3456, "lo": None, "hi": None}
    assert [precision(c) for c in ("wall_time_s", "peak_rss_mb", "buffer_mb", "bwt", "final:CT/hd95")] == [1, 0, 2, 3, 3]
    assert format_cell("wall_time_s", one_seed) == "12.3" and format_cell("peak_rss_mb", one_seed) == "12"
    assert format_cell("final:CT", one_seed) == "12.346"
