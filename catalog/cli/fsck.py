"""`catalog fsck`: check that the rows and the files tell the same, true story."""

from __future__ import annotations

from typing import Annotated

import typer

from catalog.cli.state import open_from
from catalog.operations.fsck.check import check_catalog


def fsck(
    ctx: typer.Context,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Fix what is safe to fix (sizes re-derived from verified data, rows and "
            "files nothing can use); say what was fixed and what was not.",
        ),
    ] = False,
) -> None:
    """Verify blobs (re-hashed), configs, chain IDs, diff sizes, references and containers;
    print one `kind: subject: detail` line per problem and exit 1 on any error."""
    catalog = open_from(ctx)
    report = check_catalog(catalog, repair=repair)
    for line in report.lines():
        typer.echo(line)
    typer.echo(report.summary(), err=True)
    if report.remaining_errors:
        raise typer.Exit(1)


def register(app: typer.Typer, image_app: typer.Typer) -> None:
    """A catalog-wide command: top level only (not a `docker image` verb)."""
    del image_app
    app.command("fsck")(fsck)
