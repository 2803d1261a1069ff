"""The gate's report as a terminal table (rich) or Markdown for a pull-request comment."""

from __future__ import annotations

from unicon_bench.check.baseline import FAILING, Stat
from unicon_bench.check.gate import Report, Row
from unicon_bench.fileio import md_escape


def _fmt(stat: Stat | None) -> str:
    if stat is None or stat.mean is None:
        return "–"
    ci = f" ± {stat.ci_half_width:.3f}" if stat.ci_half_width is not None else ""
    return f"{stat.mean:.3f}{ci} (n={stat.n})"


def _cells(r: Row) -> list[str]:
    delta = "–" if r.delta is None else f"{r.delta:+.3f}"
    if r.interval is not None and r.interval[0] is not None:
        delta += f" [{r.interval[0]:+.3f}, {r.interval[1]:+.3f}]"  # paired: the difference's 95 % interval
    allowed = "–" if r.allowed is None else f"{r.allowed:.3f}"
    return [r.entry.title, r.entry.method, r.label, _fmt(r.base), _fmt(r.current), delta, allowed]


HEADERS = ["scenario", "method", "metric", "baseline", "current", "Δ [paired 95 % CI]", "allowed drop", "verdict"]
_STYLE = {"regressed": "bold red", "missing": "red", "undefined": "red", "within CI": "yellow",
          "improved": "green", "ok": "", "n/a": "dim"}
_MARK = {"regressed": "❌ regressed", "missing": "❌ missing", "undefined": "❌ undefined", "within CI": "⚠️ within CI",
         "improved": "🟢 improved", "ok": "✅ ok", "n/a": "n/a"}


def rich_table(report: Report):
    """The comparison as a rich table."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="unicon-bench check", caption=escape(report.summary()))
    for h in HEADERS:
        table.add_column(h, justify="right" if h in (HEADERS[5], "allowed drop") else "left")
    for r in report.rows:
        verdict = r.verdict if r.verdict not in FAILING[1:] or not report.allow_missing else f"{r.verdict} (allowed)"
        table.add_row(*(escape(c) for c in _cells(r)), f"[{_STYLE[r.verdict]}]{verdict}[/]" if _STYLE[r.verdict] else verdict)
    return table


def markdown(report: Report) -> str:
    """The comparison as Markdown for a pull-request comment: failing rows first, every row folded."""
    def table(rows: list[Row]) -> list[str]:
        lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
        for r in rows:
            mark = _MARK[r.verdict] + (" (allowed)" if report.allow_missing and r.verdict in FAILING[1:] else "")
            lines.append("| " + " | ".join(md_escape(c) for c in _cells(r)) + f" | {mark} |")
        return lines

    icon = "❌" if report.failed else "✅"
    out = [f"### {icon} unicon-bench check", "", md_escape(report.summary()), ""]
    notable = [r for r in report.rows if r.verdict not in ("ok", "n/a")]
    if notable:
        out += table(notable) + [""]
    out += ["<details><summary>All rows</summary>", ""] + table(report.rows) + ["", "</details>"]
    if report.notes:
        out += [""] + [f"- {md_escape(n)}" for n in report.notes]
    return "\n".join(out) + "\n"
