"""`catalog gc`: remove what nothing uses any more, rows first, then files."""

from __future__ import annotations

from typing import Annotated

import typer

from catalog.cli.state import open_from
from catalog.docker.humanize import human_size
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
            help="Keep files modified less than SECONDS ago when their writer cannot be "
            "told (written by an older catalog or on another host): blob files without a "
            "row or a lease, and temporary files. What a running writer on this machine "
            "relies on is kept whatever SECONDS is.",
        ),
    ] = DEFAULT_GRACE_SECONDS,
) -> None:
    """Remove layers no image uses, blobs nothing references or holds, and what killed
    writers left (temporary files, leases); print what was reclaimed."""
    catalog = open_from(ctx)
    report = collect_garbage(catalog, dry_run=dry_run, grace_seconds=grace)
    for line in report.lines():
        typer.echo(line)
    total = "Total reclaimable space" if dry_run else "Total reclaimed space"
    typer.echo(f"{total}: {human_size(report.reclaimed, 4)}")


def register(app: typer.Typer, image_app: typer.Typer) -> None:
    """A catalog-wide command: top level only (not a `docker image` verb)."""
    del image_app
    app.command("gc")(gc)
