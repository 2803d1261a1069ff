"""``unicon-bench compare`` and ``leaderboard --format json`` on synthetic folders and the committed suite."""

from __future__ import annotations

import json
import time
from pathlib import Path

from typer.testing import CliRunner

from unicon_bench.cli import app

SUITE = Path(__file__).parents[2] / "benchmarks" / "results" / "cpu-default-suite"
KEYS = {"scenario", "scenario_version", "quick", "method", "against", "metric", "delta", "ci_low", "ci_high", "p",
        "p_holm", "verdict", "n_seeds", "n_subjects", "mde"}


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_compare_json_and_fail_on(synthetic_folder, tmp_path):
    out = tmp_path / "cmp.json"
    r = invoke("compare", synthetic_folder, "--method", "naive", "--format", "json", "-o", out, "--n-boot", 500)
    assert r.exit_code == 0, r.output
    rows = json.loads(out.read_text())
    assert {(x["against"], x["verdict"]) for x in rows} == {("better", "worse"), ("copy", "equivalent")}
    assert all(KEYS <= x.keys() for x in rows)
    r = invoke("compare", synthetic_folder, "--method", "naive", "--fail-on", "worse", "--n-boot", 300)
    assert r.exit_code == 1
    r = invoke("compare", synthetic_folder, "--method", "naive", "--against", "copy", "--fail-on", "worse",
               "--format", "md", "--metric", "final:ct_seg", "--metric", "forgetting", "--n-boot", 300)
    assert r.exit_code == 0 and r.output.count("| ct\\_tasks") == 2 and "Holm across the 2 rows" in r.output
    r = invoke("compare", synthetic_folder, "--method", "better", "--format", "csv", "--n-boot", 300, "--test", "t")
    assert r.exit_code == 0 and r.output.splitlines()[0].startswith("scenario,scenario_version")


def test_compare_one_line_errors(synthetic_folder, tmp_path):
    for args, needle in [(["--method", "nope"], "unknown method 'nope'"),
                         (["--method", "naive", "--against", "nope"], "unknown method 'nope' to compare against"),
                         (["--method", "naive", "--metric", "nope"], "unknown metric 'nope'")]:
        r = invoke("compare", synthetic_folder, *args)
        assert r.exit_code == 2 and needle in r.output and r.output.count("\n") == 1, r.output
    (tmp_path / "empty").mkdir()
    r = invoke("compare", tmp_path / "empty", "--method", "naive")
    assert r.exit_code == 2 and "no valid result files" in r.output


def test_compare_on_the_committed_suite_is_fast():
    start = time.perf_counter()
    r = invoke("compare", SUITE, "--method", "naive", "--against", "joint", "--format", "json")
    assert r.exit_code == 0, r.output
    assert time.perf_counter() - start < 20  # about 3 s
    rows = {x["scenario"]: x for x in json.loads(r.output)}
    assert set(rows) == {"ct_sites", "ct_tasks", "ct_to_pet", "unicon"}
    assert rows["ct_to_pet"]["n_seeds"] == 3 and rows["ct_to_pet"]["delta"] < 0
    assert rows["ct_sites"]["resampled"] == "seeds+subjects" and rows["ct_to_pet"]["resampled"] == "seeds"


def test_leaderboard_json(synthetic_folder):
    r = invoke("leaderboard", synthetic_folder, "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    (board,) = doc["boards"]
    rows = {m["method"]: m for m in board["methods"]}
    for m in rows.values():
        assert {"mean", "ci_low", "ci_high", "rank", "rank_low", "rank_high", "n_seeds"} <= m.keys()
        assert m["ci_low"] <= m["mean"] <= m["ci_high"]
    assert rows["better"]["rank"] == 1 and rows["better"]["n_seeds"] == 5
    assert "hierarchical bootstrap" in doc["legend"]


def test_compare_want_gives_the_seeds_needed(synthetic_folder):
    """--want D adds, per comparison, the seeds that detect D with 80 % power: by hand from the MDE's SE
    parts (seed part scaling with 1/seeds, subject part fixed), and monotone in D."""
    from unicon_bench.analysis.compare import seeds_needed, z_sum

    r = invoke("compare", synthetic_folder, "--method", "naive", "--format", "json", "--n-boot", 500, "--want", 0.05)
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert all(x["wanted_difference"] == 0.05 and "seeds_needed" in x for x in rows)
    # the formula itself, by hand: se 0.02 all from seeds with 3 seeds -> 3 * (0.02 * z / d)^2 seeds
    z = z_sum(0.05, 0.8)
    assert seeds_needed(0.05, 0.02, 0.02, 3) == max(2, -(-3 * 0.02**2 // (0.05 / z) ** 2))
    assert seeds_needed(0.01, 0.02, 0.02, 3) >= seeds_needed(0.05, 0.02, 0.02, 3)
    assert seeds_needed(0.05, 0.03, 0.001, 3) is None  # the subject part alone is too large: more subjects needed
    md = invoke("compare", synthetic_folder, "--method", "naive", "--format", "md", "--n-boot", 300, "--want", 0.05)
    assert md.exit_code == 0 and "seeds for 0.05" in md.output
