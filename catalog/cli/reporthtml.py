"""Every report in one self-contained HTML file, with charts.

The file needs nothing but itself: styles are inline, charts are SVG drawn by matplotlib
(its SVG renderer, no display, no pyplot state) and written into the page, text in them
is text in the page's own sans-serif font, and nothing refers to any URL. It opens offline
in any browser.

Charts: disk by repository (unique and shared bytes, stacked), growth over time (new bytes
per period and the running total), and the most shared layers (bytes saved).
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from catalog.cli.reportformat import OPTION_FLAGS, is_total, table_cell
from catalog.docker.humanize import human_size
from catalog.services.reports import Column, ReportResult

UNIQUE_COLOUR = "#2b6cb0"
SHARED_COLOUR = "#9ac1e6"
LINE_COLOUR = "#c05621"
MAX_BARS = 15

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #1a202c; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; margin-top: 2.5rem; border-bottom: 1px solid #cbd5e0; }
p.meta, p.options { color: #4a5568; font-size: 0.9rem; }
nav ul { padding-left: 1.2rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.8rem 0; }
th, td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #e2e8f0; text-align: left; }
th { background: #edf2f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.id { font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
div.scroll { overflow-x: auto; }
figure { margin: 1rem 0; }
figure svg { max-width: 100%; height: auto; }
p.empty { font-style: italic; color: #718096; }
"""

_NUMERIC_KINDS = ("count", "bytes")
_SVG_PROLOGUE = re.compile(r"\A.*?(?=<svg)", re.DOTALL)
_SVG_ID = re.compile(r'\sid="([^"]+)"')


def _bytes_axis(value: float, _position: int) -> str:
    return human_size(max(value, 0), 3)


def _svg(figure: Figure, prefix: str) -> str:
    """The figure as an inline <svg> element whose IDs are unique in the page."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": prefix}):
        figure.savefig(
            buffer,
            format="svg",
            bbox_inches="tight",
            metadata={"Creator": None, "Date": None, "Format": None, "Type": None},
        )
    text = _SVG_PROLOGUE.sub("", buffer.getvalue(), count=1)
    for element_id in set(_SVG_ID.findall(text)):
        new = f"{prefix}-{element_id}"
        text = text.replace(f'id="{element_id}"', f'id="{new}"')
        text = text.replace(f"url(#{element_id})", f"url(#{new})")
        text = text.replace(f'href="#{element_id}"', f'href="#{new}"')
    return text


def _figure(rows: int) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(8, max(2.2, 0.38 * rows + 1.0)), layout="constrained")
    return figure, figure.add_subplot()


def disk_by_repository_chart(rows: Sequence[dict[str, Any]]) -> str | None:
    shown = [row for row in rows if row["total_bytes"] > 0][:MAX_BARS]
    if not shown:
        return None
    shown.reverse()  # largest at the top
    labels = [row["repository"] or "<none>" for row in shown]
    unique = [row["unique_bytes"] for row in shown]
    shared = [row["shared_bytes"] for row in shown]
    figure, axes = _figure(len(shown))
    axes.barh(labels, unique, color=UNIQUE_COLOUR, label="unique")
    axes.barh(labels, shared, left=unique, color=SHARED_COLOUR, label="shared")
    axes.xaxis.set_major_formatter(FuncFormatter(_bytes_axis))
    axes.set_xlabel("bytes (unique + shared = total)")
    axes.set_title("Disk by repository")
    axes.legend(loc="lower right")
    return _svg(figure, "chart-usage")


def growth_chart(rows: Sequence[dict[str, Any]]) -> str | None:
    if not rows:
        return None
    labels = [row["period"] or "unknown" for row in rows]
    new_bytes = [row["new_bytes"] for row in rows]
    cumulative = [row["cumulative_bytes"] for row in rows]
    figure = Figure(figsize=(8, 3.6), layout="constrained")
    axes = figure.add_subplot()
    positions = list(range(len(rows)))
    axes.bar(positions, new_bytes, color=UNIQUE_COLOUR, label="new bytes")
    axes.plot(positions, cumulative, color=LINE_COLOUR, marker="o", label="cumulative")
    axes.set_xticks(positions, labels, rotation=45, ha="right")
    axes.yaxis.set_major_formatter(FuncFormatter(_bytes_axis))
    axes.set_ylim(bottom=0)
    axes.set_title("Growth over time")
    axes.legend(loc="upper left")
    return _svg(figure, "chart-growth")


def shared_layers_chart(rows: Sequence[dict[str, Any]]) -> str | None:
    shown = list(rows[:MAX_BARS])
    if not shown:
        return None
    shown.reverse()
    labels = [f"{row['chain_id'][7:19]} ({row['images']} images)" for row in shown]
    figure, axes = _figure(len(shown))
    axes.barh(labels, [row["saved_bytes"] for row in shown], color=UNIQUE_COLOUR)
    axes.xaxis.set_major_formatter(FuncFormatter(_bytes_axis))
    axes.set_xlabel("bytes saved by sharing")
    axes.set_title("Most shared layers")
    return _svg(figure, "chart-sharing")


CHARTS: dict[str, Callable[[Sequence[dict[str, Any]]], str | None]] = {
    "usage-by-repository": disk_by_repository_chart,
    "growth": growth_chart,
    "layer-sharing": shared_layers_chart,
}


def _cell(column: Column, value: Any, *, total: bool) -> str:
    text = html.escape(table_cell(column, value, total=total))
    classes = "num" if column.kind in _NUMERIC_KINDS else "id" if column.kind == "id" else ""
    exact = ""
    if value is not None and column.kind in ("id", "bytes"):
        exact = f' title="{html.escape(str(value))}{" bytes" if column.kind == "bytes" else ""}"'
    class_attribute = f' class="{classes}"' if classes else ""
    return f"<td{class_attribute}{exact}>{text}</td>"


def _table(result: ReportResult) -> str:
    columns = result.report.columns
    header = "".join(
        f'<th title="{html.escape(c.description)}">{html.escape(c.title)}</th>' for c in columns
    )
    body = "\n".join(
        "<tr>" + "".join(_cell(c, row[c.name], total=is_total(row)) for c in columns) + "</tr>"
        for row in result.rows
    )
    return (
        f'<div class="scroll"><table>\n<thead><tr>{header}</tr></thead>\n'
        f"<tbody>\n{body}\n</tbody>\n</table></div>"
    )


def _options(result: ReportResult) -> str:
    settings = result.settings
    shown = []
    for name in result.report.options:
        value = getattr(settings, name)
        if value is None:
            value = "not given"
        elif name == "older_than" and settings.cutoff is not None:
            value = f"{value} (cutoff {settings.cutoff.strftime('%Y-%m-%d %H:%M:%S')} UTC)"
        shown.append(f"{OPTION_FLAGS[name]} {value}")
    return f'<p class="options">Options: {html.escape(", ".join(shown))}</p>' if shown else ""


def _section(result: ReportResult) -> str:
    report = result.report
    parts = [
        f'<section id="{report.name}">',
        f"<h2>{html.escape(report.title)} <small>({report.name})</small></h2>",
        f"<p>{html.escape(report.description)}</p>",
        _options(result),
    ]
    chart = CHARTS.get(report.name)
    svg = chart(result.rows) if chart is not None else None
    if svg is not None:
        parts.append(f"<figure>{svg}</figure>")
    if result.rows:
        parts.append(_table(result))
    else:
        parts.append('<p class="empty">Nothing to report.</p>')
    parts.append("</section>")
    return "\n".join(part for part in parts if part)


def render_html(
    results: Sequence[ReportResult], *, source: str, generated: datetime | None = None
) -> str:
    """One HTML document holding every result, with the charts for those that have one."""
    generated = (generated or datetime.now(UTC)).astimezone(UTC)
    contents = "\n".join(
        f'<li><a href="#{r.report.name}">{html.escape(r.report.title)}</a></li>' for r in results
    )
    sections = "\n".join(_section(result) for result in results)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>catalog reports</title>
<style>{STYLE}</style>
</head>
<body>
<h1>catalog reports</h1>
<p class="meta">Catalog {html.escape(source)}, {generated.strftime("%Y-%m-%d %H:%M:%S")} UTC.
Sizes are layers' diff sizes in decimal units (1 kB = 1000 bytes); hover over a size or an
ID for its exact value.</p>
<nav><ul>
{contents}
</ul></nav>
{sections}
</body>
</html>
"""
