"""`catalog image history` (also `catalog history`): an image's history, newest first,
as docker history prints it."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from catalog.cli.options import OutputFormat
from catalog.cli.state import open_from
from catalog.docker.humanize import HUMAN_EPOCH, created_since, go_rfc3339, human_size
from catalog.docker.tabwriter import ellipsis, tabwrite
from catalog.domain.digest import short_id
from catalog.services.inspect import HistoryItem, image_history

CREATED_BY_WIDTH = 45
_GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def parse_go_bool(value: str, flag: str) -> bool:
    """Go's strconv.ParseBool, as pflag reads `--flag=VALUE` for a boolean flag."""
    value = value.removeprefix("=")
    if value in _GO_TRUE:
        return True
    if value in _GO_FALSE:
        return False
    raise typer.BadParameter(
        f'invalid argument "{value}" for "{flag}" flag: strconv.ParseBool: parsing'
        f' "{value}": invalid syntax'
    )


def _history_cells(item: HistoryItem, *, human: bool, trunc: bool) -> dict[str, str]:
    """docker/cli historyContext: every field as the formatter renders it."""
    created_at = go_rfc3339(item.created)
    if not human:
        since = created_at
    elif item.created <= HUMAN_EPOCH:
        since = ""
    else:
        since = created_since(item.created)
    created_by = item.created_by.replace("\t", " ")
    return {
        "Comment": item.comment,
        "CreatedAt": created_at,
        "CreatedBy": ellipsis(created_by, CREATED_BY_WIDTH) if trunc else created_by,
        "CreatedSince": since,
        "ID": short_id(item.id) if trunc else item.id,
        "Size": human_size(item.size, 3) if human else str(item.size),
    }


def history(
    ctx: typer.Context,
    image: Annotated[str, typer.Argument(metavar="IMAGE", help="The image's name or ID.")],
    no_trunc: Annotated[bool, typer.Option("--no-trunc", help="Don't truncate output.")] = False,
    human: Annotated[
        str,
        typer.Option(
            "--human",
            "-H",
            metavar="BOOL",
            help="Print sizes and dates in human readable format (--human=false: bytes and "
            "RFC 3339 times).",
        ),
    ] = "true",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only show image IDs.")] = False,
    output_format: Annotated[
        OutputFormat,
        typer.Option("--format", help="A table, or JSON lines as docker's --format json."),
    ] = OutputFormat.table,
) -> None:
    """Show the history of an image, newest first, as docker history does.

    Entries older than the image's build parents show `<missing>` as their ID.
    """
    is_human = parse_go_bool(human, "-H, --human")
    catalog = open_from(ctx)
    with catalog.database.read() as session:
        items = image_history(session=session, term=image)
    cells = [_history_cells(item, human=is_human, trunc=not no_trunc) for item in items]
    if output_format is OutputFormat.json:
        for row in cells:
            typer.echo(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
        return
    if quiet:
        for row in cells:
            typer.echo(row["ID"])
        return
    created_header = "CREATED" if is_human else "CREATED AT"
    created_key = "CreatedSince" if is_human else "CreatedAt"
    rows = [["IMAGE", created_header, "CREATED BY", "SIZE", "COMMENT"]]
    rows += [
        [row["ID"], row[created_key], row["CreatedBy"], row["Size"], row["Comment"]]
        for row in cells
    ]
    typer.echo(tabwrite(rows), nl=False)


def register(app: typer.Typer, image_app: typer.Typer) -> None:
    app.command("history")(history)
    image_app.command("history")(history)
