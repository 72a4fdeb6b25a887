"""`catalog gc` and `catalog fsck`: keeping a catalog's rows and files clean and true."""

from __future__ import annotations

from typing import Annotated

import typer

from catalog.cli.state import open_from
from catalog.docker.humanize import human_size
from catalog.operations.fsck.check import check_catalog
from catalog.operations.gc import DEFAULT_GRACE_SECONDS, collect_garbage


def gc(
    ctx: typer.Context,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="List what would be removed; remove nothing."),
    ] = False,
    grace: Annotated[
        float,
        typer.Option(
            "--grace",
            metavar="SECONDS",
            min=0,
            help="Keep blob files without a row and temporary files modified less than "
            "SECONDS ago: a load, append or squash writes its blobs before it commits their "
            "rows. 0 is safe only when nothing else writes to the catalog.",
        ),
    ] = DEFAULT_GRACE_SECONDS,
) -> None:
    """Remove layers no image uses, blobs nothing references and temporary files a crash
    left; print what was reclaimed."""
    catalog = open_from(ctx)
    report = collect_garbage(catalog, dry_run=dry_run, grace_seconds=grace)
    for line in report.lines():
        typer.echo(line)
    total = "Total reclaimable space" if dry_run else "Total reclaimed space"
    typer.echo(f"{total}: {human_size(report.reclaimed, 4)}")


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
    """Catalog-wide commands: top level only (they are not `docker image` verbs)."""
    del image_app
    app.command("gc")(gc)
    app.command("fsck")(fsck)
