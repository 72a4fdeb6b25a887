"""Every report in one self-contained HTML file, with charts.

The file needs nothing but itself: styles are inline, charts are the SVG of
`catalog.presentation.reportcharts` written into the page, text in them is text in the
page's own sans-serif font, and nothing refers to any URL. It opens offline in any
browser.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from catalog.presentation.reportcharts import report_chart
from catalog.presentation.reportformat import OPTION_FLAGS, is_total, table_cell
from catalog.services.reports import Column, ReportResult

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
    svg = report_chart(report.name, result.rows)
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
