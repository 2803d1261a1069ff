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


def cost_scatter(board: Board) -> str:
    """Final average (mean, 95 % CI bars) against trainable-parameter share and against wall time."""
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
                if y["lo"] is not None:
                    err = [[y["mean"] - y["lo"]], [y["hi"] - y["mean"]]]
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
