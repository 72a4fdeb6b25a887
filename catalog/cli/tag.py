"""`catalog tag` (also `catalog image tag`): give an image another name."""

from __future__ import annotations

from typing import Annotated

import typer

from catalog.cli.state import open_from
from catalog.services.tag import tag_image


def tag(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            metavar="SOURCE_IMAGE[:TAG]", help="The image: a name[:tag], name@digest or ID."
        ),
    ],
    target: Annotated[
        str,
        typer.Argument(
            metavar="TARGET_IMAGE[:TAG]", help="The new name[:tag] (latest by default)."
        ),
    ],
) -> None:
    """Create TARGET as a new tag for the image SOURCE names (an existing tag moves)."""
    catalog = open_from(ctx)
    with catalog.database.write() as session:
        tag_image(session=session, source=source, target=target)


def register(app: typer.Typer, image_app: typer.Typer) -> None:
    app.command("tag")(tag)
    image_app.command("tag")(tag)
