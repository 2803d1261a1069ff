"""The leaderboard's tables: Markdown, CSV and JSON (the HTML page is ``render``).

Every interval is the hierarchical bootstrap of ``unicon_bench.analysis`` (training seeds, then eval
subjects where the result files keep them); "not significantly different from the best" is its paired
comparison, Holm-corrected. This module renders only: the statistics live in ``unicon_bench.analysis``.
"""

from __future__ import annotations

import csv
import io
import json

from unicon_bench.analysis.aggregate import Board, column_label, column_precision
from unicon_bench.fileio import md_escape


def _interval(lo, hi, d: int = 3) -> str:
    return "–" if lo is None else f"[{lo:.{d}f}, {hi:.{d}f}]"


def _markdown_metric(board: Board, key: str) -> list[str]:
    """The final-model table of one metric: mean ± CI over seeds and the per-subject bootstrap CI."""
    from unicon_bench.analysis.final_metrics import metric_table

    table = metric_table(board, key)
    if not table["experiences"]:
        return [f"{md_escape(board.title)}: no experience has the metric {md_escape(key)}."]
    head = ["strategy", *(f"{e} {m}" for e, m, _c in table["experiences"])]
    lines = [f"#### {md_escape(board.title)}: final {md_escape(table['label'])} ({table['direction']} is better; "
             "mean ± 95 % CI over seeds, [95 % bootstrap CI over subjects])", "",
             "| " + " | ".join(md_escape(h) for h in head) + " |", "|:---|" + "---:|" * len(table["experiences"])]
    for r in table["rows"]:
        cells = []
        for _e, _m, col in table["experiences"]:
            c = r["cells"][col]
            text = "–" if c["mean"] is None else f"{c['mean']:.3f}" + ("" if c["lo"] is None else f" ± {(c['hi'] - c['lo']) / 2:.3f}")
            text += f" {_interval(c['boot_lo'], c['boot_hi'])}"
            cells.append(f"**{text}**" if c["best"] else (f"*{text}*" if c["tied"] else text))
        lines.append("| " + " | ".join([md_escape(r["method"]), *cells]) + " |")
    return lines


def table_statistics(board: Board, boot=None) -> dict:
    """Every overview cell's hierarchical-bootstrap estimate and, per column, each method's paired comparison
    with the best, from one bootstrap (``boot``, default a new one): the Markdown and CSV tables; the HTML
    page adds ranks and verdicts from the same bootstrap."""
    from unicon_bench.analysis.compare import against_best
    from unicon_bench.analysis.ranks import overview_intervals
    from unicon_bench.analysis.resampling import N_BOOT, Bootstrap

    boot = boot or Bootstrap(N_BOOT)
    return {"intervals": overview_intervals(board, boot),
            "vs_best": {c: against_best(board, c, boot) for c in board.columns}}


def _marks(stats: dict, method: str, col: str, cell: dict) -> tuple[float | None, float | None, bool, bool]:
    """(interval low, high, best, not significantly different from the best) of one board cell."""
    from unicon_bench.analysis.compare import not_different
    from unicon_bench.analysis.resampling import SEEDS

    est = stats["intervals"][col][method]
    lo, hi = est.interval()
    if est.n_seeds < 2 and est.resampled == SEEDS:
        lo = hi = None  # one seed and nothing else resampled: no interval
    vs = stats["vs_best"][col].get(method)
    return lo, hi, bool(cell["best"]), not cell["best"] and vs is not None and not_different(vs)


MARKDOWN_LEGEND = ("Mean over seeds [95 % hierarchical bootstrap interval: training seeds, then eval subjects where the "
                   "result files keep them]. **Bold**: best; *italic*: not significantly different from the best "
                   "(paired comparison on the same seeds and subjects, Holm-corrected p ≥ 0.05).")


def render_markdown(boards: list[Board], metric: str | None = None) -> str:
    """One Markdown table per board: mean [bootstrap interval], best in bold, not significantly different
    from the best in italics.

    ``metric``: also a table of that metric key of the final models (``primary``, ``hd95``...).
    """
    parts = [MARKDOWN_LEGEND]
    for board in boards:
        stats = table_statistics(board)
        header = ["strategy", "paradigm", "seeds", *(column_label(c) for c in board.columns)]
        lines = [f"### {md_escape(board.title)}", "", "| " + " | ".join(md_escape(h) for h in header) + " |",
                 "|" + "|".join([":---", ":---", "---:"] + ["---:"] * len(board.columns)) + "|"]
        for r in board.rows:
            cells = []
            for c in board.columns:
                cell = r["cells"][c]
                lo, hi, best, tied = _marks(stats, r["method"], c, cell)
                d = column_precision(c)
                text = "–" if cell["mean"] is None else f"{cell['mean']:.{d}f}" + (
                    "" if lo is None else f" {_interval(lo, hi, d)}")
                cells.append(f"**{text}**" if best else (f"*{text}*" if tied else text))
            lines.append("| " + " | ".join([md_escape(r["method"]), r["paradigm"], str(r["n_seeds"]), *cells]) + " |")
        if metric is not None:
            lines += [""] + _markdown_metric(board, metric)
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet runs a cell starting so as a formula


def csv_cell(value):
    """A text cell a spreadsheet shows as text: one starting like a formula gets a leading ``'`` (OWASP)."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def render_csv(boards: list[Board]) -> str:
    """The overview tables of all boards in one CSV: mean, the hierarchical-bootstrap interval's bounds and the
    marks per column (best; not significantly different from the best, paired).

    Text cells that a spreadsheet would evaluate (``=HYPERLINK(...)``) are written as text (``csv_cell``);
    numbers are written as they are."""
    import pandas as pd

    frames = []
    for b in boards:  # the intervals and the "not different from the best" marks of the hierarchical bootstrap
        frame, stats = b.frame(), table_statistics(b)
        for i, r in enumerate(b.rows):
            for c in b.columns:
                lo, hi, _best, tied = _marks(stats, r["method"], c, r["cells"][c])
                frame.loc[i, [f"{c}_ci_low", f"{c}_ci_high", f"{c}_not_sig_different"]] = [lo, hi, tied]
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True).map(csv_cell)
    buf = io.StringIO()
    frame.to_csv(buf, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    return buf.getvalue()


def render_json(boards: list[Board]) -> str:
    """Per board and method: the headline (final average) with its hierarchical-bootstrap interval and rank
    interval, and the same for every matrix column (``unicon_bench.analysis.ranks``; serialised here only)."""
    from dataclasses import asdict

    from unicon_bench.analysis.ranks import LEGEND, across_boards, board_statistics
    from unicon_bench.analysis.resampling import N_BOOT

    out = []
    for board in boards:
        stats = board_statistics(board)
        rows = []
        for i, row in enumerate(stats["final_average"]):
            rec = {k: v for k, v in asdict(row).items() if k != "rank_freq"}
            rec["strategy"] = board.rows[i]["strategy"] if board.rows[i]["method"] == row.method else None
            rec["columns"] = {col: {k: v for k, v in asdict(ranks[i]).items() if k not in ("method", "n_seeds")}
                              for col, ranks in stats.items()}
            rows.append(rec)
        out.append({"scenario": board.scenario, "version": board.version, "quick": board.quick,
                    "precision": board.precision, "title": board.title, "methods": rows})
    cd = across_boards(boards) if len(boards) > 1 else None
    doc = {"legend": LEGEND, "n_boot": N_BOOT, "boards": out,
           "critical_difference": asdict(cd) if cd is not None else None}  # Friedman + Nemenyi over boards x experiences
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"
