"""Option types shared by several commands."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


# `-t TAG` (repeatable), for commands that make a new image (append, squash).
TagsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--tag",
        "-t",
        metavar="TAG",
        help="Name the new image (repeatable).",
        show_default=False,
    ),
]
