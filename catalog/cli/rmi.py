"""`catalog rmi` (also `catalog image rm`): untag and delete images, as docker rmi does."""

from __future__ import annotations

from typing import Annotated

import typer

from catalog.cli.state import open_from, warn_on_stderr
from catalog.errors import NotFound
from catalog.operations.removal import remove_images


def remove(
    ctx: typer.Context,
    images: Annotated[
        list[str], typer.Argument(metavar="IMAGE", help="Names or IDs of the images.")
    ],
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Force removal of the image.")
    ] = False,
    no_prune: Annotated[
        bool, typer.Option("--no-prune", help="Do not delete untagged parents.")
    ] = False,
) -> None:
    """Remove one or more images: untag a name, delete an ID, as docker rmi does.

    Prints `Untagged:` and `Deleted:` lines. Each IMAGE is removed on its own; errors are
    printed at the end and make the exit status 1 (with --force, "No such image" ones do
    not).
    """
    deletion = remove_images(
        open_from(ctx), images, force=force, prune=not no_prune, warn=warn_on_stderr
    )
    for record in deletion.records:
        if "Deleted" in record:
            typer.echo(f"Deleted: {record['Deleted']}")
        else:
            typer.echo(f"Untagged: {record['Untagged']}")
    for failure in deletion.failures:
        typer.echo(f"Error: {failure.error.message}", err=True)
    fatal = any(not isinstance(f.error, NotFound) for f in deletion.failures)
    if deletion.failures and (not force or fatal):
        raise typer.Exit(1)


def register(app: typer.Typer, image_app: typer.Typer) -> None:
    app.command("rmi")(remove)
    image_app.command("rm")(remove)
