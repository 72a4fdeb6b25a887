"""`catalog image append`: build an image of a base plus one layer, without Docker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from catalog.cli.options import TagsOption
from catalog.cli.state import open_from
from catalog.operations.append import append_image


def append(
    ctx: typer.Context,
    base: Annotated[
        str,
        typer.Argument(
            metavar="BASE",
            help="The base image (name[:tag], name@digest or ID), or `scratch` for none.",
            show_default=False,
        ),
    ],
    layer: Annotated[
        Path,
        typer.Argument(
            metavar="LAYER",
            help="The layer: a tar (uncompressed, gzip or zstd) or a directory, packed "
            "deterministically (sorted, mtime 0, owner 0:0).",
            show_default=False,
        ),
    ],
    tags: TagsOption = None,
    labels: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            metavar="KEY=VALUE",
            help="Set a label in config.Labels (repeatable).",
            show_default=False,
        ),
    ] = None,
    message: Annotated[
        str | None,
        typer.Option(
            "--message",
            "-m",
            metavar="MESSAGE",
            help="The new history entry's comment.",
            show_default=False,
        ),
    ] = None,
    created: Annotated[
        str | None,
        typer.Option(
            "--created",
            metavar="TIME",
            help="Creation time, RFC 3339 (2024-05-01T12:00:00Z). Default: now.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Make a new image of BASE plus one layer and print its ID.

    The new image records BASE as its parent, as `docker build` does.
    """
    catalog = open_from(ctx, adds_data=True)
    image_id = append_image(
        catalog,
        base,
        layer,
        tags=tags or [],
        labels=labels or [],
        message=message,
        created=created,
    )
    typer.echo(image_id)


def register(app: typer.Typer, image_app: typer.Typer) -> None:
    del app  # no top-level alias: Docker has no such command
    image_app.command("append")(append)
