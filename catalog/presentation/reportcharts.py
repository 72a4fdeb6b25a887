"""The reports' charts as SVG, for the HTML report (`catalog report --html`) and the web
view's report pages.

Charts are drawn by matplotlib (its SVG renderer, no display, no pyplot state); text in
them is text (`svg.fonttype: none`), and nothing in them refers to any URL. Each chart's
element IDs carry a prefix, so several can sit in one page.

Charts: disk by repository (unique and shared bytes, stacked), growth over time (new bytes
per period and the running total), and the most shared layers (bytes saved).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from catalog.docker.humanize import human_size

UNIQUE_COLOUR = "#2b6cb0"
SHARED_COLOUR = "#9ac1e6"
LINE_COLOUR = "#c05621"
MAX_BARS = 15

_SVG_PROLOGUE = re.compile(r"\A.*?(?=<svg)", re.DOTALL)
_SVG_ID = re.compile(r'\sid="([^"]+)"')


def _bytes_axis(value: float, _position: int) -> str:
    return human_size(max(value, 0), 3)


def _svg(figure: Figure, prefix: str) -> str:
    """The figure as an <svg> element whose IDs are unique in the page."""
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


# Report name -> its chart (None when the rows give nothing to draw).
CHARTS: dict[str, Callable[[Sequence[dict[str, Any]]], str | None]] = {
    "usage-by-repository": disk_by_repository_chart,
    "growth": growth_chart,
    "layer-sharing": shared_layers_chart,
}


def report_chart(name: str, rows: Sequence[dict[str, Any]]) -> str | None:
    """The SVG chart of report `name` over its rows; None if it has none or nothing to draw."""
    chart = CHARTS.get(name)
    return chart(rows) if chart is not None else None
