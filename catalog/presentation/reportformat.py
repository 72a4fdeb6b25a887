"""Reports as text: an aligned table (docker's tabwriter layout), JSON or CSV.

The table is for people: short IDs, sizes in go-units' decimal units, times to the second
in UTC. JSON and CSV are for programs and keep every value exact: full IDs, byte counts
as integers, RFC 3339 times, booleans as true/false, none as null (JSON) or empty (CSV).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from catalog.docker.humanize import human_size
from catalog.docker.tabwriter import tabwrite
from catalog.domain.digest import short_id
from catalog.domain.imageconfig import format_timestamp
from catalog.services.reports import Column, ReportResult

# The report options as the CLI's flags: how `report` takes them and its errors name them.
OPTION_FLAGS = {
    "older_than": "--older-than",
    "max_tags": "--max-tags",
    "period": "--period",
    "limit": "--limit",
}
# What a table shows for a missing value, by column kind.
_TABLE_NONE = {"name": "<none>", "period": "<unknown>", "time": "<unknown>"}


def is_total(row: dict[str, Any]) -> bool:
    """A totals row (reclaimable's `all` rows): its missing values are blanks, not `<none>`."""
    return bool(row.get("scope", "image") != "image")


def table_cell(column: Column, value: Any, *, total: bool = False) -> str:
    """A value as a person reads it in a table."""
    if value is None:
        return "" if total else _TABLE_NONE.get(column.kind, "")
    if column.kind == "id":
        return short_id(str(value))
    if column.kind == "bytes":
        return human_size(int(value), 4)
    if column.kind == "time":
        assert isinstance(value, datetime)
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if column.kind == "flag":
        return "yes" if value else "no"
    return str(value)


def json_value(column: Column, value: Any) -> Any:
    """A value as JSON keeps it: exact."""
    if value is None:
        return None
    if column.kind == "time":
        assert isinstance(value, datetime)
        return format_timestamp(value)
    if column.kind == "flag":
        return bool(value)
    if column.kind in ("count", "bytes"):
        return int(value)
    return value


def csv_cell(column: Column, value: Any) -> str:
    converted = json_value(column, value)
    if converted is None:
        return ""
    if isinstance(converted, bool):
        return "true" if converted else "false"
    return str(converted)


def as_table(result: ReportResult) -> str:
    columns = result.report.columns
    rows: list[Sequence[str]] = [[column.title for column in columns]]
    rows += [
        [table_cell(c, row[c.name], total=is_total(row)) for c in columns] for row in result.rows
    ]
    return tabwrite(rows)


def json_rows(result: ReportResult) -> list[dict[str, Any]]:
    columns = result.report.columns
    return [{c.name: json_value(c, row[c.name]) for c in columns} for row in result.rows]


def as_json(result: ReportResult) -> str:
    return json.dumps(json_rows(result), indent=2) + "\n"


def as_csv(result: ReportResult) -> str:
    columns = result.report.columns
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([column.name for column in columns])
    for row in result.rows:
        writer.writerow([csv_cell(c, row[c.name]) for c in columns])
    return buffer.getvalue()
