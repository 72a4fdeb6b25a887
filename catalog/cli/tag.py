"""`catalog tag` and `catalog rmi` (also `catalog image tag` / `catalog image rm`)."""

from __future__ import annotations

from typing import Annotated

import typer

from catalog.cli.state import open_from
from catalog.errors import NotFound
from catalog.services.delete import delete_images, remove_blob_files
from catalog.services.tag import tag_image


def tag(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="The image: a name[:tag], name@digest or ID.")],
    target: Annotated[str, typer.Argument(help="The new name[:tag] (latest by default).")],
) -> None:
    """Create TARGET as a new tag for the image SOURCE names (an existing tag moves)."""
    catalog = open_from(ctx)
    with catalog.database.write() as session:
        tag_image(session=session, source=source, target=target)


def remove(
    ctx: typer.Context,
    images: Annotated[list[str], typer.Argument(help="Names or IDs of the images.")],
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
    catalog = open_from(ctx)
    with catalog.database.write() as session:
        deletion = delete_images(session=session, terms=images, force=force, prune=not no_prune)
    # The rows are gone for good: now the files of the blobs no layer uses any more.
    with catalog.database.read() as session:
        remove_blob_files(session=session, store=catalog.store, digests=deletion.blob_digests)
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
    app.command("tag")(tag)
    image_app.command("tag")(tag)
    app.command("rmi")(remove)
    image_app.command("rm")(remove)
