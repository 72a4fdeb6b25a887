"""`catalog image prune`, as `docker image prune` asks, deletes and reports."""

from __future__ import annotations

from typing import Annotated

import typer

from catalog.cli.state import open_from, warn_on_stderr
from catalog.docker.filters import parse_filter_flags
from catalog.docker.humanize import human_size
from catalog.operations.removal import prune_images

DANGLING_WARNING = "WARNING! This will remove all dangling images."
ALL_WARNING = (
    "WARNING! This will remove all images without at least one container associated to them."
)


def prune(
    ctx: typer.Context,
    all_images: Annotated[
        bool, typer.Option("--all", "-a", help="Remove all unused images, not just dangling ones.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Do not prompt for confirmation.")
    ] = (False),
    filter_flags: Annotated[
        list[str] | None,
        typer.Option(
            "--filter", metavar="KEY=VALUE", help="Provide filter values (until, label, label!)."
        ),
    ] = None,
) -> None:
    """Remove unused images (dangling ones, or with -a every image no container uses)."""
    args = parse_filter_flags(filter_flags or [])
    # The docker CLI always sends dangling=!all, so a user's dangling filter conflicts.
    args.add("dangling", "false" if all_images else "true")
    if not force:
        warning = ALL_WARNING if all_images else DANGLING_WARNING
        if not typer.confirm(f"{warning}\nAre you sure you want to continue?", default=False):
            typer.echo("Error: image prune has been cancelled", err=True)
            raise typer.Exit(1)
    report = prune_images(open_from(ctx), args, warn=warn_on_stderr)
    if report.images_deleted:
        lines = ["Deleted Images:"]
        for record in report.images_deleted:
            lines += [f"{kind.lower()}: {value}" for kind, value in record.items()]
        typer.echo("\n".join(lines) + "\n")
    typer.echo(f"Total reclaimed space: {human_size(report.space_reclaimed, 4)}")


def register(app: typer.Typer, image_app: typer.Typer) -> None:
    image_app.command("prune")(prune)
