"""`catalog save` / `catalog image save`: images out as a `docker save` archive."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from catalog.cli.state import open_from
from catalog.errors import CatalogError, os_failure
from catalog.operations.save import save_images, save_images_to_path


def save(
    ctx: typer.Context,
    images: Annotated[
        list[str],
        typer.Argument(
            metavar="IMAGE",
            help="Images to save: name[:tag], name@digest or ID. A name without a tag "
            "saves every tag of that repository; an ID saves the image untagged.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write to this file (atomically), instead of standard output.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Save images to a tar archive (Docker 25+ format; standard output by default)."""
    if output is None and sys.stdout.isatty():
        raise CatalogError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    catalog = open_from(ctx)
    try:
        if output is not None:
            save_images_to_path(catalog, images, output)
        else:
            stream = sys.stdout.buffer
            save_images(catalog, images, stream)
            stream.flush()
    except OSError as exc:
        # Disk full, a closed pipe, an unreadable blob: the user's environment, one line.
        target = output if output is not None else "standard output"
        raise os_failure(exc, f"saving to {target}") from None


def register(app: typer.Typer, image_app: typer.Typer) -> None:
    app.command("save")(save)
    image_app.command("save")(save)
