"""`catalog image inspect`: images' details as Docker's ImageInspect documents."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from catalog.cli.state import open_from
from catalog.services.inspect import inspect_images


def inspect(
    ctx: typer.Context,
    images: Annotated[
        list[str], typer.Argument(metavar="IMAGE", help="Names or IDs of the images.")
    ],
) -> None:
    """Show images' details as a JSON array in the shape of Docker's ImageInspect.

    Images that are not found are reported on stderr after the array, exit status 1.
    """
    catalog = open_from(ctx)
    with catalog.database.read() as session:
        documents, failures = inspect_images(session=session, terms=images)
    typer.echo(json.dumps(documents, indent=4, ensure_ascii=False))
    for failure in failures:
        typer.echo(f"Error: {failure.error.message}", err=True)
    if failures:
        raise typer.Exit(1)


def register(app: typer.Typer, image_app: typer.Typer) -> None:
    del app  # `docker inspect` inspects any object: not this command
    image_app.command("inspect")(inspect)
