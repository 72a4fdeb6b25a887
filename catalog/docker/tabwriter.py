"""Tables as the docker CLI prints them: Go's text/tabwriter with docker's settings
(minimum width 10, padding 3, spaces), widths counted in characters; the last column is
not padded."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator, Sequence

MIN_WIDTH = 10
PADDING = 3


def tabwrite(rows: Sequence[Sequence[str]]) -> str:
    """The rows (header first) as aligned text, one line each, newline-terminated."""
    if not rows:
        return ""
    columns = max(len(row) for row in rows)
    widths = [
        max(MIN_WIDTH, max(len(row[i]) for row in rows if i < len(row)) + PADDING)
        for i in range(columns - 1)
    ]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("".join(cells) + (row[-1] if row else ""))
    return "\n".join(lines) + "\n"


def tabwrite_lines(header: Sequence[str], rows: Iterable[Sequence[str]]) -> Iterator[str]:
    """The same as `tabwrite([header, *rows])`, one line (with its newline) at a time.

    The widths depend on every row, so the rows are all read first, but kept as one
    string each (cells never hold a tab), not as lists of cells."""
    widths = [len(cell) for cell in header]
    joined: list[str] = []
    for row in rows:
        for i, cell in enumerate(row):
            if len(cell) > widths[i]:
                widths[i] = len(cell)
        joined.append("\t".join(row))
    pads = [max(MIN_WIDTH, width + PADDING) for width in widths[:-1]]

    def line(cells: Sequence[str]) -> str:
        return "".join(c.ljust(w) for c, w in zip(cells, pads, strict=False)) + cells[-1] + "\n"

    yield line(header)
    for text in joined:
        yield line(text.split("\t"))


def _char_width(char: str) -> int:
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def ellipsis(text: str, max_width: int) -> str:
    """docker/cli formatter.Ellipsis: cut `text` to `max_width` display columns (East
    Asian wide characters count 2), the last one an ellipsis."""
    if max_width <= 0:
        return ""
    if max_width == 1:
        return text[:1]
    if len(text.encode("utf-8", "surrogatepass")) == len(text):  # ASCII, as Go checks
        return text if len(text) <= max_width else text[: max_width - 1] + "\u2026"
    display: list[int] = []
    width = 0
    for char in text:
        width += _char_width(char)
        display.append(width)
    if width <= max_width:
        return text
    for i in range(len(display) - 1):
        if display[i] <= max_width - 1 < display[i + 1]:
            return text[: i + 1] + "\u2026"
    return text
