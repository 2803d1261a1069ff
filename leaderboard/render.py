"""Render aggregated boards as one self-contained HTML page, Markdown tables or CSV.

The HTML page works offline: inline CSS, a little vanilla JS (sortable tables, a scenario filter)
and figures as PNG data URIs. Every string in it goes through Jinja's autoescaping; strategy names
and parameters come from plugins and users, so nothing user-provided is ever marked safe.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from unicon_bench.analysis.aggregate import (
    COSTS,
    Board,
    LeaderboardError,
    aggregate,
    column_label,
    column_precision,
    higher_is_better,
    load_results,
)
from unicon_bench.fileio import check_output_file
from unicon_bench.results import atomic_write_text

from unicon_bench.leaderboard.tables import (  # noqa: F401  (csv_cell: re-exported)
    csv_cell,
    render_csv,
    render_json,
    render_markdown,
    table_statistics,
)

FORMATS = ("html", "md", "csv", "json")
TEMPLATES = Path(__file__).parent / "templates"


def load_boards(results_dir: str | Path) -> tuple[list[Board], list[str]]:
    """Boards from every valid result under ``results_dir`` and the problems of the invalid files."""
    results, problems = load_results(results_dir)
    if not results:
        detail = f" ({len(problems)} invalid, e.g. {problems[0]})" if problems else ""
        raise LeaderboardError(f"no valid result files under {results_dir}{detail}")
    return aggregate(results), problems


def format_cell(col: str, cell: dict) -> str:
    """``mean ± CI half-width``; the mean alone for one seed; an en dash if undefined."""
    if cell["mean"] is None:
        return "–"
    d = column_precision(col)
    if cell["lo"] is None:
        return f"{cell['mean']:.{d}f}"
    return f"{cell['mean']:.{d}f} ± {(cell['hi'] - cell['lo']) / 2:.{d}f}"


def _jsonish(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _interval(lo, hi, d: int = 3) -> str:
    return "–" if lo is None else f"[{lo:.{d}f}, {hi:.{d}f}]"


def _metric_views(board: Board, figures: bool) -> list[dict]:
    """One table (and per-subject plot) per metric key, for the board's metric selector."""
    from unicon_bench.leaderboard import plots
    from unicon_bench.analysis.final_metrics import metric_options, metric_table

    views = []
    for key in metric_options(board):
        table = metric_table(board, key)
        d = 3 if table["unit"] in ("1", "") else 2
        rows = []
        for r in table["rows"]:
            cells = []
            for _exp, _metric, col in table["experiences"]:
                c = r["cells"][col]
                text = "–" if c["mean"] is None else (
                    f"{c['mean']:.{d}f}" + ("" if c["lo"] is None else f" ± {(c['hi'] - c['lo']) / 2:.{d}f}"))
                cells.append({"text": text, "boot": _interval(c["boot_lo"], c["boot_hi"], d),
                              "cls": "best" if c["best"] else ("tied" if c["tied"] else ""),
                              "sort": "" if c["mean"] is None else repr(c["mean"])})
            rows.append({"method": r["method"], "cells": cells})
        views.append({"key": key, "label": table["label"], "unit": table["unit"], "direction": table["direction"],
                      "experiences": [{"name": e, "metric": m} for e, m, _c in table["experiences"]], "rows": rows,
                      "plot": plots.subject_plot(board, key) if figures else ""})
    return views


def _statistics(board: Board) -> dict:
    """What ``analysis`` says about one board, all from one bootstrap (so every number on it is paired):
    each overview cell's interval, each column's comparisons with its best, the ranks of the final
    average, and every method's verdicts against each reference method."""
    from unicon_bench.analysis.compare import verdicts_against
    from unicon_bench.analysis.ranks import board_ranks
    from unicon_bench.analysis.resampling import N_BOOT, Bootstrap

    boot = Bootstrap(N_BOOT)
    return {**table_statistics(board, boot),
            "ranks": board_ranks(board, "final_average", boot),
            "verdicts": {ref: verdicts_against(board, ref, boot=boot) for ref in board.methods()}}


def _overview_cell(col: str, cell: dict, estimate, vs_best) -> dict:
    """Mean, its bootstrap interval (None where it counts nothing: one seed, no subjects) and the marks."""
    from unicon_bench.analysis.compare import not_different
    from unicon_bench.analysis.resampling import SEEDS

    d = column_precision(col)
    tied = not cell["best"] and vs_best is not None and not_different(vs_best)
    lo, hi = estimate.interval()
    if cell["mean"] is None:
        text, interval, title = "–", "", "undefined"
    else:
        text = f"{cell['mean']:.{d}f}"
        if lo is None or (estimate.n_seeds < 2 and estimate.resampled == SEEDS):
            interval, title = "", f"n={estimate.n_seeds}: one seed, interval undefined"
        else:
            interval = _interval(lo, hi, d)
            title = (f"n={estimate.n_seeds} seeds, 95 % hierarchical bootstrap interval {_interval(lo, hi, d + 1)} "
                     f"(resampled: {estimate.resampled})")
        if cell["best"]:
            title += "; best"
        elif vs_best is not None:
            p = "undefined" if vs_best.p_holm is None else f"{vs_best.p_holm:.3g}"
            title += (f"; {'not ' if tied else ''}significantly different from the best "
                      f"(paired, Holm-corrected p = {p})")
    cls = "best" if cell["best"] else ("tied" if tied else "")
    return {"text": text, "interval": interval, "sort": "" if cell["mean"] is None else repr(cell["mean"]),
            "title": title, "cls": cls + (" cost" if col in COSTS else "")}


def _verdicts_of(method: str, verdicts: dict) -> str:
    """JSON ``{reference: [verdict, detail]}`` of one row, for the reference-method selector."""
    out = {}
    for ref, comparisons in verdicts.items():
        c = comparisons.get(method)
        if ref == method:
            out[ref] = ["reference", "the reference method"]
        elif c is not None:
            delta = "–" if c.delta is None else f"{c.delta:+.3f}"
            p = "–" if c.p_holm is None else f"{c.p_holm:.3g}"
            out[ref] = [c.verdict, f"{c.verdict} than {ref}: final average difference {delta} "
                        f"{_interval(c.ci_low, c.ci_high)}, Holm p {p}, MDE "
                        + ("–" if c.mde is None else f"{c.mde:.3f}")]
    return json.dumps(out, sort_keys=True)


def _resampled_sentence(ranks) -> str:
    kinds = {r.resampled for r in ranks}
    if kinds == {"seeds+subjects"}:
        return "training seeds and eval subjects (these result files keep per-subject values)"
    if kinds == {"seeds"}:
        return "training seeds only (these result files keep no per-subject values for every cell it needs)"
    return "training seeds, and eval subjects for the methods whose result files keep per-subject values"


def _board_context(index: int, board: Board, figures: bool) -> dict:
    from unicon_bench.leaderboard import plots

    stats = _statistics(board)
    columns = [
        {"key": c, "label": column_label(c), "group": "cost" if c in COSTS else "score",
         "title": f"{column_label(c)}: {'higher' if higher_is_better(c) else 'lower'} is better"}
        for c in board.columns
    ]
    ranks = {r.method: r for r in stats["ranks"]}
    rows = []
    for r in board.rows:
        m = r["method"]
        cells = [_overview_cell(c, r["cells"][c], stats["intervals"][c][m], stats["vs_best"][c].get(m))
                 for c in board.columns]
        rk = ranks[m]
        rank = "" if rk.rank is None else f"rank {rk.rank:g} (95 % rank interval {rk.rank_low:g}–{rk.rank_high:g})"
        rows.append({**r, "cells": cells, "verdicts": _verdicts_of(m, stats["verdicts"]), "rank": rank})
    runs = []
    for run in sorted(board.runs, key=lambda x: (x.method, x.result.seed)):
        res = run.result
        runs.append({
            "method": run.method, "seed": res.seed, "run_id": res.run_id, "path": str(run.path),
            "started": res.started, "finished": res.finished,
            "summary": [(k, "–" if v is None else f"{v:.4f}") for k, v in res.summary.model_dump().items()],
            "params": [(k, _jsonish(v)) for k, v in sorted(res.strategy.params.items())],
            "env": list(res.env.model_dump().items()),
            "extras": [(k, _jsonish(v)) for k, v in sorted(res.extras.items())]
            + ([("tuning", _jsonish(res.tuning.model_dump()))] if res.tuning is not None else []),
        })
    return {
        "id": f"board-{index}", "title": board.title, "quick": board.quick, "kind": board.kind,
        "experiences": [{"name": e, "metric": m} for e, m in zip(board.experiences, board.metrics)],
        "n_runs": len(board.runs), "replaced": board.replaced, "columns": columns, "rows": rows, "runs": runs,
        "scatter": plots.cost_scatter(board, stats["intervals"]["final_average"]) if figures else "",
        "blobs": plots.rank_blobs(board.title, stats["ranks"], {r["method"]: r["paradigm"] for r in board.rows})
        if figures else "",
        "resampled": _resampled_sentence(stats["ranks"]),
        "metric_views": _metric_views(board, figures),
        "figures": [{"method": m, "heatmap": plots.heatmap(board, m), "curves": plots.curves(board, m)}
                    for m in board.methods()] if figures else [],
    }


def _critical_difference(boards: list[Board], figures: bool) -> dict:
    """The CD diagram across boards (``analysis.ranks.across_boards``) with its caption, or why there is none."""
    from unicon_bench.analysis.ranks import across_boards
    from unicon_bench.leaderboard import plots

    common = set.intersection(*(set(b.methods()) for b in boards)) if boards else set()
    cd = across_boards(boards) if len(boards) > 1 else None
    if cd is None:
        return {"plot": "", "caption": "", "reason": (
            f"No critical-difference diagram: it needs at least 2 boards and at least 3 methods on every board "
            f"(the Friedman test compares 3 or more) with 2 or more final scores; here {len(boards)} board(s) "
            f"and {len(common)} method(s) in common.")}
    caption = (f"Critical-difference diagram (Demšar 2006) over {len(cd.blocks)} blocks (each board's final score "
               f"of each experience, mean over seeds) for the {len(cd.methods)} methods on every board: each "
               f"method at its average rank (1 = best); a thick line joins methods whose average ranks differ by "
               f"less than the Nemenyi critical difference CD = {cd.cd:.2f} (α = {cd.alpha:g}), i.e. that this test "
               f"cannot tell apart. Friedman test: χ² = {cd.chi2:.2f}, p = {cd.p:.2g} (Iman-Davenport F = "
               f"{cd.iman_davenport:.2f}, p = {cd.p_iman_davenport:.2g}).")
    return {"plot": plots.cd_diagram(cd) if figures else "", "caption": caption, "reason": ""}


def render_html(boards: list[Board], problems: list[str] = (), source: str = "", figures: bool = True) -> str:
    """The whole leaderboard page as one HTML string."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from unicon_bench.analysis.compare import ROPE
    from unicon_bench.analysis.resampling import N_BOOT

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    return env.get_template("leaderboard.html.j2").render(
        boards=[_board_context(i, b, figures) for i, b in enumerate(boards)],
        methods=sorted({m for b in boards for m in b.methods()}), cd=_critical_difference(boards, figures),
        n_boot=N_BOOT, rope=ROPE,
        problems=list(problems), source=source, n_runs=sum(len(b.runs) for b in boards),
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )


def write_leaderboard(results_dir: str | Path, output: str | Path | None, fmt: str = "html",
                      metric: str | None = None) -> tuple[str, list[str]]:
    """Render ``results_dir`` in ``fmt``; write it to ``output`` if given. Returns the text and the problems.

    ``metric`` (Markdown): add a table of that metric key; the HTML page has a selector for all of them.
    """
    if fmt not in FORMATS:
        raise LeaderboardError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if output is not None:
        check_output_file(output, "leaderboard output")  # before the work, not after it
    boards, problems = load_boards(results_dir)
    if fmt == "html":
        text = render_html(boards, problems, source=str(results_dir))
    elif fmt == "md":
        if metric is not None and metric != "primary":
            from unicon_bench.metrics.registry import get_metric

            get_metric(metric)  # an unknown name is a one-line usage error
        text = render_markdown(boards, metric)
    elif fmt == "json":
        text = render_json(boards)
    else:
        text = render_csv(boards)
    if output is not None:
        atomic_write_text(Path(output), text)
        umask = os.umask(0)
        os.umask(umask)
        Path(output).chmod(0o666 & ~umask)  # a page to publish, not the private temporary file's 0600
    return text, problems
