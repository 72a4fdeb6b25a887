"""`catalog image squash`: a parent's layers plus one layer holding the rest, as moby's
SquashImage makes it."""

from __future__ import annotations

from typing import Annotated

import typer

from catalog.cli.options import TagsOption
from catalog.cli.state import open_from
from catalog.operations.squash import squash_image


def squash(
    ctx: typer.Context,
    image: Annotated[
        str,
        typer.Argument(
            metavar="IMAGE",
            help="The image to squash (name[:tag], name@digest or ID).",
            show_default=False,
        ),
    ],
    parent: Annotated[
        str | None,
        typer.Option(
            "--parent",
            metavar="PARENT",
            help="Keep PARENT's layers (the first layers of IMAGE) and squash the rest. "
            "Default: IMAGE's recorded parent, else every layer.",
            show_default=False,
        ),
    ] = None,
    layers: Annotated[
        int | None,
        typer.Option(
            "--layers",
            metavar="N",
            help="Squash the top N layers of IMAGE instead (N >= 2).",
            show_default=False,
        ),
    ] = None,
    tags: TagsOption = None,
    message: Annotated[
        str | None,
        typer.Option(
            "--message",
            "-m",
            metavar="MESSAGE",
            help="The new history entry's comment. Default: `merge IMAGE to PARENT`, or "
            "`create new from IMAGE`.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Squash IMAGE's layers above PARENT into one new layer and print the new image's ID.

    The new image has PARENT's layers plus one layer with the difference between
    PARENT's filesystem and IMAGE's (the whole filesystem, with no whiteouts, when there
    is no parent). IMAGE itself is not changed.
    """
    catalog = open_from(ctx, adds_data=True)
    result = squash_image(
        catalog, image, parent=parent, layers=layers, tags=tags or [], message=message
    )
    typer.echo(result.image_id)


def register(app: typer.Typer, image_app: typer.Typer) -> None:
    del app  # no top-level alias: Docker has no such command
    image_app.command("squash")(squash)
