"""The HTML page shows analysis' statistics, not its own: every overview interval, the marks "not
significantly different from the best", the reference-method verdicts, the rank ranks and the CD caption
are checked against ``unicon_bench.analysis`` computed here; the seeds-only bootstrap of the cost columns
against numpy by hand.
"""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from unicon_bench.analysis.aggregate import column_precision
from unicon_bench.analysis.compare import against_best, not_different, verdicts_against
from unicon_bench.analysis.ranks import across_boards, board_ranks, column_estimate, values_estimate
from unicon_bench.analysis.resampling import BOTH, N_BOOT, SEEDS, Bootstrap
from unicon_bench.leaderboard.render import load_boards, render_html

RUNS = {"ct_to_pet": ["naive", "joint", "specialized", "ewc"], "ct_sites": ["naive", "joint", "ewc"]}


@pytest.fixture(scope="module")
def boards(quick_run, tmp_path_factory):
    """Boards of real quick runs (two seeds each; the session's quick runs are shared with test_render)."""
    root = tmp_path_factory.mktemp("page_statistics")
    for scenario, strategies in RUNS.items():
        for strategy in strategies:
            for seed in (0, 1):
                path = quick_run(strategy, scenario, seed)[1]
                dest = root / scenario / strategy / Path(path).name
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, dest)
    return load_boards(root)[0]


class Overview(HTMLParser):
    """Rows of every ``table.overview``: method, data-verdicts, first-cell title, and per cell (class, text, interval)."""

    def __init__(self):
        super().__init__()
        self.tables, self.row, self.cell, self.small, self.inside = [], None, None, False, False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.inside = "overview" in (a.get("class") or "")
            if self.inside:
                self.tables.append([])
        elif self.inside and tag == "tr" and "data-method" in a:
            self.row = {"method": a["data-method"], "verdicts": json.loads(a["data-verdicts"]), "cells": []}
            self.tables[-1].append(self.row)
        elif self.row is not None and tag == "td":
            self.cell = {"cls": a.get("class") or "", "text": "", "interval": "", "title": a.get("title") or ""}
            self.row["cells"].append(self.cell)
        elif self.cell is not None and tag == "small":
            self.small = True

    def handle_endtag(self, tag):
        if tag == "small":
            self.small = False
        elif tag == "td":
            self.cell = None
        elif tag == "table":
            self.inside, self.row = False, None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell["interval" if self.small else "text"] += data.strip()


def parse(html: str) -> list[list[dict]]:
    p = Overview()
    p.feed(html)
    return p.tables


def test_cells_show_the_hierarchical_bootstrap_and_the_paired_marks(boards):
    html = render_html(boards, figures=False)
    assert "percentile interval of a hierarchical bootstrap" in html and "Holm-corrected across the column" in html
    assert "t-interval" not in html.split("Final models by metric")[0]  # the overview no longer states t-intervals
    tables = parse(html)
    assert [len(t) for t in tables] == [len(b.rows) for b in boards]
    for board, rows in zip(boards, tables):
        boot = Bootstrap(N_BOOT)
        best = {c: against_best(board, c, boot) for c in board.columns}
        for row in rows:
            cells = row["cells"][3:]  # after strategy, paradigm, seeds
            assert len(cells) == len(board.columns)
            for col, cell in zip(board.columns, cells):
                est = column_estimate(board, row["method"], col, boot)
                lo, hi = est.interval()
                d = column_precision(col)
                assert cell["text"] == ("–" if est.point is None else f"{est.point:.{d}f}")
                assert cell["interval"] == ("" if lo is None else f"[{lo:.{d}f}, {hi:.{d}f}]")
                if col == "final_average" or col.startswith("final:"):
                    assert est.resampled == BOTH and f"(resampled: {BOTH})" in cell["title"]
                vs = best[col].get(row["method"])
                tied = vs is not None and not_different(vs)
                assert ("tied" in cell["cls"].split()) == tied, (board.title, row["method"], col)
                assert ("best" in cell["cls"].split()) == (vs is None and est.point is not None)
                if vs is not None:
                    assert f"Holm-corrected p = {vs.p_holm:.3g}" in cell["title"]


def test_final_scores_resample_subjects_and_costs_resample_seeds(boards):
    board, boot = boards[0], Bootstrap(N_BOOT)
    for m in board.methods():
        assert column_estimate(board, m, "final_average", boot).resampled == BOTH  # quick runs keep subjects
        runs = board.runs_of(m)
        est = values_estimate(runs, "wall_time_s", boot)
        x = np.array([r.values["wall_time_s"] for r in sorted(runs, key=lambda r: r.result.seed)])
        assert est.resampled == SEEDS and est.point == pytest.approx(x.mean())
        np.testing.assert_allclose(est.replicates, x[boot.seed_index(len(x))].mean(axis=1))  # by hand
        lo, hi = est.interval()
        assert x.min() <= lo <= hi <= x.max()


def test_embedded_verdicts_and_ranks_are_analysis(boards):
    html = render_html(boards, figures=False)
    for board, rows in zip(boards, parse(html)):
        boot = Bootstrap(N_BOOT)
        ranks = {r.method: r for r in board_ranks(board, "final_average", boot)}
        want = {ref: verdicts_against(board, ref, boot=boot) for ref in board.methods()}
        for row in rows:
            m = row["method"]
            got = {ref: v[0] for ref, v in row["verdicts"].items()}
            assert got == {ref: ("reference" if ref == m else want[ref][m].verdict) for ref in board.methods()}
            assert all(v in ("better", "worse", "equivalent", "inconclusive", "reference") for v in got.values())
            r = ranks[m]
            assert f"rank {r.rank:g} (95 % rank interval {r.rank_low:g}–{r.rank_high:g})" == row["cells"][0]["title"]
        for a in board.methods():  # a verdict and its mirror agree
            for b in board.methods():
                if a != b:
                    mirror = {"better": "worse", "worse": "better"}.get(want[b][a].verdict, want[b][a].verdict)
                    assert want[a][b].verdict == mirror


def test_cd_caption_and_when_there_is_none(boards):
    cd = across_boards(boards)
    assert cd is not None and sorted(cd.methods) == sorted(set(RUNS["ct_sites"]) & set(RUNS["ct_to_pet"]))
    html = render_html(boards, figures=True)
    assert f"CD = {cd.cd:.2f}" in html and f"χ² = {cd.chi2:.2f}, p = {cd.p:.2g}" in html
    assert html.count('class="cd-diagram"><img src="data:image/png;base64,') == 1
    assert html.count('class="rank-blobs"><img src="data:image/png;base64,') == len(boards)
    assert "resample training seeds and eval subjects" in " ".join(html.split())
    one = render_html(boards[:1], figures=False)
    assert "No critical-difference diagram" in one and "here 1 board(s)" in one and "cd-diagram" not in one
