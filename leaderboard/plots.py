"""Leaderboard figures as PNG data URIs (matplotlib's Agg renderer, no display, no files).

Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot state). Labels may hold
user-provided strategy names, so mathtext parsing is off: a ``$`` in a name stays a dollar sign.
"""

from __future__ import annotations

import base64
import io

from unicon_bench.analysis.aggregate import Board, column_label, mean_matrix

DPI = 90
PARADIGM_COLORS = {"specialized": "#d95f02", "joint": "#1b9e77", "continual": "#7570b3"}
_RC = {"text.parse_math": False, "text.usetex": False, "font.size": 9, "axes.titlesize": 10}


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _png_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _nan(x):
    return float("nan") if x is None else x


def heatmap(board: Board, method: str) -> str:
    """The mean trained x evaluated matrix of one method, with the untrained model as row "init"."""
    import matplotlib
    import numpy as np
    import seaborn as sns

    init, matrix = mean_matrix(board.runs_of(method))
    data = np.array([[_nan(v) for v in row] for row in [init, *matrix]], dtype=float)
    n = len(board.experiences)
    with matplotlib.rc_context(_RC):
        fig = _figure(2.4 + 0.75 * n, 1.6 + 0.45 * (n + 1))
        ax = fig.subplots()
        sns.heatmap(
            data, ax=ax, vmin=0.0, vmax=1.0, cmap="viridis", annot=True, fmt=".2f", cbar=True, square=False,
            xticklabels=board.experiences, yticklabels=["init", *board.experiences], linewidths=0.5,
        )
        ax.set_xlabel("evaluated on")
        ax.set_ylabel("trained up to")
        ax.set_title(f"{method}: mean over {len(board.runs_of(method))} seed(s)")
        ax.tick_params(axis="y", rotation=0)
        return _png_uri(fig)


def curves(board: Board, method: str) -> str:
    """Each experience's mean score as training proceeds (x: init, then each trained experience).

    A ring marks the step at which the experience itself was trained.
    """
    import matplotlib

    init, matrix = mean_matrix(board.runs_of(method))
    steps = ["init", *board.experiences]
    with matplotlib.rc_context(_RC):
        fig = _figure(2.6 + 0.6 * len(steps), 2.6)
        ax = fig.subplots()
        for j, (name, metric) in enumerate(zip(board.experiences, board.metrics)):
            ys = [_nan(init[j]), *(_nan(row[j]) for row in matrix)]
            line = ax.plot(range(len(steps)), ys, marker="o", label=f"{name} ({metric})")[0]
            # the step where the experience itself is trained gets a larger marker
            ax.plot([j + 1], [ys[j + 1]], marker="o", markersize=9, color=line.get_color(), fillstyle="none")
        ax.set_xticks(range(len(steps)), steps, rotation=20)
        ax.set_xlabel("trained up to")
        ax.set_ylabel("score")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(method)
        ax.legend(fontsize=7, loc="best")
        return _png_uri(fig)


def cost_scatter(board: Board, intervals: dict | None = None) -> str:
    """Final average (mean, 95 % interval bars) against trainable-parameter share and against wall time.

    ``intervals``: per method the final average's ``analysis`` estimate (its ``interval()`` draws the bars);
    without it, the board's t-interval over seeds.
    """
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig = _figure(8.0, 3.2)
        axes = fig.subplots(1, 2, sharey=True)
        for ax, col in zip(axes, ("trainable_share", "wall_time_s")):
            for row in board.rows:
                x, y = row["cells"][col]["mean"], row["cells"]["final_average"]
                if x is None or y["mean"] is None:
                    continue
                err = None
                lo, hi = intervals[row["method"]].interval() if intervals is not None else (y["lo"], y["hi"])
                if lo is not None:
                    err = [[max(y["mean"] - lo, 0.0)], [max(hi - y["mean"], 0.0)]]  # a percentile interval may miss the mean
                ax.errorbar([x], [y["mean"]], yerr=err, fmt="o", capsize=3,
                            color=PARADIGM_COLORS.get(row["paradigm"], "gray"))
                ax.annotate(row["method"], (x, y["mean"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
            ax.set_xlabel(column_label(col))
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("final average")
        handles = [axes[0].scatter([], [], color=c, label=p) for p, c in PARADIGM_COLORS.items()]
        axes[1].legend(handles=handles, fontsize=7, loc="best", title="paradigm", title_fontsize=7)
        fig.suptitle(f"{board.title}: cost vs score")
        return _png_uri(fig)


def subject_plot(board: Board, key: str) -> str:
    """Per-subject values of the final models (all seeds) per method: box plot with the subjects as dots.

    ``key``: a per-subject metric (Dice, HD95, ..., Brier) or ``primary`` (the experiences whose primary
    metric is per-subject, i.e. Dice). Returns "" when the board has no such values.
    """
    import matplotlib
    import pandas as pd
    import seaborn as sns

    from unicon_bench.metrics.registry import get_metric

    records = []
    for j, (name, primary) in enumerate(zip(board.experiences, board.metrics)):
        metric = primary if key == "primary" else key
        if not get_metric(metric).per_subject:
            continue
        for run in board.runs:
            for v in run.result.subjects(j).get(metric, []):
                if v is not None:
                    records.append({"method": run.method, "experience": f"{name} ({metric})", "value": v})
    if not records:
        return ""
    frame = pd.DataFrame.from_records(records)
    methods = board.methods()
    with matplotlib.rc_context(_RC):
        fig = _figure(2.4 + 0.9 * len(methods), 3.0)
        ax = fig.subplots()
        sns.boxplot(data=frame, x="method", y="value", hue="experience", order=methods, ax=ax, showfliers=False,
                    fill=False, legend=False)
        sns.stripplot(data=frame, x="method", y="value", hue="experience", order=methods, ax=ax, dodge=True,
                      size=2.5, alpha=0.6, jitter=0.25)
        ax.set_xlabel("")
        ax.set_ylabel(key if key != "primary" else "primary metric")
        ax.tick_params(axis="x", rotation=20)
        ax.legend(fontsize=7, loc="best")
        ax.set_title(f"{board.title}: per subject, final model, all seeds")
        return _png_uri(fig)


def rank_blobs(title: str, ranks, paradigms: dict[str, str]) -> str:
    """challengeR's blob plot of one board: x the methods by mean bootstrap rank, y the rank 1..k.

    ``ranks``: ``analysis.ranks.MethodRank`` of each method. A dot per (method, rank) whose area is the
    share of bootstrap replicates at that rank, the 95 % rank interval as a line, the median rank as a bar.
    """
    import matplotlib
    from matplotlib.lines import Line2D

    shown = sorted((r for r in ranks if r.mean_rank is not None), key=lambda r: (r.mean_rank, r.method))
    k = len(ranks)
    area = 420.0  # points^2 of a dot at frequency 1
    with matplotlib.rc_context(_RC):
        fig = _figure(2.2 + 0.5 * max(len(shown), 2), 1.6 + 0.22 * k)
        ax = fig.subplots()
        for x, r in enumerate(shown):
            ys = [i + 1 for i, f in enumerate(r.rank_freq) if f > 0]
            sizes = [area * f for f in r.rank_freq if f > 0]
            ax.scatter([x] * len(ys), ys, s=sizes, color=PARADIGM_COLORS.get(paradigms.get(r.method), "gray"),
                       alpha=0.55, edgecolors="none", zorder=2)
            ax.vlines(x, r.rank_low, r.rank_high, color="black", linewidth=1.2, zorder=3)
            ax.plot([x - 0.28, x + 0.28], [r.median_rank] * 2, color="black", linewidth=2.2, zorder=4)
        ax.set_xticks(range(len(shown)), [r.method for r in shown], rotation=40, ha="right")
        ax.set_yticks(range(1, k + 1))
        ax.set_ylim(k + 0.7, 0.3)  # rank 1 on top
        ax.set_xlim(-0.7, len(shown) - 0.3)
        ax.set_ylabel("rank (1 = best)")
        ax.grid(axis="y", alpha=0.25)
        handles = [ax.scatter([], [], s=area * f, color="gray", alpha=0.55, edgecolors="none", label=f"{f:.0%}")
                   for f in (0.1, 0.5, 1.0)]
        handles += [Line2D([], [], color="black", linewidth=1.2, label="95 % rank interval"),
                    Line2D([], [], color="black", linewidth=2.2, label="median rank")]
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), labelspacing=1.2,
                  borderpad=0.9, title="share of replicates", title_fontsize=7)
        ax.set_title(f"{title}: rank stability of the final average")
        return _png_uri(fig)


def cd_diagram(cd) -> str:
    """Demšar's (2006) critical-difference diagram of an ``analysis.ranks.CriticalDifference``.

    An axis of average ranks (1 = best, left), each method hooked to its average rank (the better half
    labelled on the left, the rest on the right), the CD bar above, and a thick line under each group of
    methods whose average ranks differ by less than the CD. Labels: name (average rank).
    """
    import matplotlib

    order = sorted(range(len(cd.methods)), key=lambda i: (cd.avg_ranks[i], cd.methods[i]))
    k, half = len(order), (len(order) + 1) // 2
    label_in = 0.8 + 0.07 * max(len(m) for m in cd.methods)  # room for the longest name on each side
    span_in = max(4.0, 0.5 * (k - 1))
    width = span_in + 2 * label_in
    margin = label_in * (k - 1) / span_in  # label_in in data units
    groups = cd.groups
    y_rows = -0.35 - 0.2 * len(groups) - 0.15
    rows = max(half, k - half)
    bottom = y_rows - 0.32 * (rows - 1) - 0.2
    with matplotlib.rc_context(_RC):
        fig = _figure(width, 0.8 + 0.55 * (1.5 - bottom))
        fig.set_layout_engine("none")  # one axes filling the figure; the labels are placed in data units
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.set_xlim(1 - margin, k + margin)
        ax.set_ylim(bottom, 1.5)
        ax.hlines(0, 1, k, color="black", linewidth=1)
        for x in range(1, k + 1):
            ax.vlines(x, 0, 0.1, color="black", linewidth=1)
            ax.text(x, 0.15, str(x), ha="center", va="bottom", fontsize=8)
        ax.hlines(1.05, 1, 1 + cd.cd, color="black", linewidth=1.5)
        ax.vlines([1, 1 + cd.cd], 0.98, 1.12, color="black", linewidth=1.5)
        ax.text(1 + cd.cd / 2, 1.15, f"CD = {cd.cd:.2f}", ha="center", va="bottom", fontsize=8)
        for g, members in enumerate(groups):
            rs = [cd.avg_ranks[cd.methods.index(m)] for m in members]
            ax.hlines(-0.3 - 0.2 * g, min(rs) - 0.06, max(rs) + 0.06, color="black", linewidth=3.5)
        for pos, i in enumerate(order):
            r, left = cd.avg_ranks[i], pos < half
            row = pos if left else k - 1 - pos
            y = y_rows - 0.32 * row
            end = 1 - 0.15 * margin if left else k + 0.15 * margin
            ax.plot([r, r, end], [0, y, y], color="black", linewidth=0.8)
            ax.text(end + (-0.04 if left else 0.04) * margin, y, f"{cd.methods[i]} ({r:.2f})",
                    ha="right" if left else "left", va="center", fontsize=8)
        return _png_uri(fig)
