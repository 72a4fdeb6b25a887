"""`catalog report`: batch reports over the catalog, as a table, JSON, CSV or one HTML page."""

from __future__ import annotations

import errno
import json
import os
import secrets
import textwrap
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from catalog.cli.state import open_from
from catalog.errors import CatalogError
from catalog.presentation.reportformat import OPTION_FLAGS, as_csv, as_json, as_table
from catalog.services.reports import REPORTS, Report, ReportOptions, run_report, run_reports


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class PeriodChoice(StrEnum):
    week = "week"
    month = "month"


def write_file(path: Path, text: str) -> None:
    """Write `text` to `path` atomically: to a new temporary file beside it (mode 0o666
    less the umask, as any file a command creates), flushed, then renamed over `path`."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            temporary.replace(path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CatalogError(f"cannot write {path}: {reason}") from None


def _option_help(report: Report) -> str:
    parts = []
    for name in report.options:
        default = getattr(report.defaults, name)
        flag = OPTION_FLAGS[name]
        parts.append(f"{flag} (default {default})" if default is not None else flag)
    return ", ".join(parts)


def describe_reports() -> str:
    """The reports, their options and what their numbers mean, for `--list`."""
    blocks = []
    for report in REPORTS.values():
        lines = [f"{report.name}: {report.summary}"]
        if report.options:
            lines.append(f"    options: {_option_help(report)}")
        lines += textwrap.wrap(
            report.description, width=88, initial_indent="    ", subsequent_indent="    "
        )
        lines.append("    columns: " + ", ".join(column.title for column in report.columns))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def registry_json() -> list[dict[str, Any]]:
    return [
        {
            "name": report.name,
            "title": report.title,
            "summary": report.summary,
            "description": report.description,
            "options": {OPTION_FLAGS[n]: getattr(report.defaults, n) for n in report.options},
            "columns": [
                {"name": c.name, "title": c.title, "kind": c.kind, "description": c.description}
                for c in report.columns
            ],
        }
        for report in REPORTS.values()
    ]


def report(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME",
            help="The report to run: " + ", ".join(REPORTS) + ".",
            show_default=False,
        ),
    ] = None,
    list_reports: Annotated[
        bool,
        typer.Option("--list", help="List the reports, their options and what they count."),
    ] = False,
    html_file: Annotated[
        Path | None,
        typer.Option(
            "--html",
            metavar="FILE",
            help="Write every report, with charts, to one self-contained HTML file.",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[
        ReportFormat,
        typer.Option("--format", help="table (for people), json or csv (exact values)."),
    ] = ReportFormat.table,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write to this file instead of standard output.",
            show_default=False,
        ),
    ] = None,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            metavar="WHEN",
            help="reclaimable, stale-tags: created at or before WHEN, a duration before now "
            "(720h) or a time (2024-05-01, 2024-05-01T12:00:00Z, Unix seconds).",
            show_default=False,
        ),
    ] = None,
    max_tags: Annotated[
        int | None,
        typer.Option(
            "--max-tags",
            metavar="N",
            help="stale-tags: tags of a repository beyond its newest N (default 10).",
            show_default=False,
        ),
    ] = None,
    period: Annotated[
        PeriodChoice | None,
        typer.Option("--period", help="growth: per week (default) or month.", show_default=False),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            metavar="N",
            help="layer-sharing: the top N layers (default 20).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run a report over the catalog: disk by repository, sharing, what can go, growth.

    Every report is one SQL query; `catalog report --list` says what each one counts.
    """
    if list_reports:
        if name is not None or html_file is not None:
            raise typer.BadParameter("--list takes no report NAME and no --html")
        if output_format is ReportFormat.csv:
            raise typer.BadParameter("--list is shown as a table or as JSON")
        text = (
            json.dumps(registry_json(), indent=2) + "\n"
            if output_format is ReportFormat.json
            else describe_reports()
        )
        _emit(text, output)
        return
    options = ReportOptions(
        older_than=older_than,
        max_tags=max_tags,
        period=period.value if period is not None else None,
        limit=limit,
    )
    if html_file is not None:
        if name is not None:
            raise typer.BadParameter("--html writes every report: give no report NAME")
        if output is not None:
            raise typer.BadParameter("--html names its own FILE: give no --output")
        from catalog.cli.reporthtml import render_html  # matplotlib: loaded only for HTML

        catalog = open_from(ctx)
        with catalog.database.read() as session:
            results = run_reports(session=session, options=options, option_names=OPTION_FLAGS)
        page = render_html(results, source=catalog.location.display_url)
        write_file(html_file, page)
        return
    if name is None:
        raise typer.BadParameter("give a report NAME, --list or --html FILE")
    catalog = open_from(ctx)
    with catalog.database.read() as session:
        result = run_report(session=session, name=name, options=options, option_names=OPTION_FLAGS)
    if output_format is ReportFormat.json:
        text = as_json(result)
    elif output_format is ReportFormat.csv:
        text = as_csv(result)
    else:
        text = as_table(result)
    _emit(text, output)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_file(output, text)


def register(app: typer.Typer, image_app: typer.Typer) -> None:
    app.command("report", no_args_is_help=True)(report)
