"""`catalog image ...`: the group that holds every image command, as `docker image` does.

Command modules register themselves here and, where Docker has a top-level alias
(`docker load`, `docker rmi`, ...), on the main app too; each is imported when used
(catalog.cli.lazy), listed meanwhile with its help's first paragraph; see
`catalog.cli.main`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import typer

from catalog.cli.helptext import PLAIN_HELP
from catalog.cli.lazy import Lazy, LazyGroup


class ImageGroup(LazyGroup):
    IMAGE_GROUP = True
    LAZY: ClassVar[Mapping[str, Lazy]] = {
        "save": Lazy(
            "catalog.cli.save",
            "Save images to a tar archive (Docker 25+ format; standard output by default).",
        ),
        "append": Lazy(
            "catalog.cli.append", "Make a new image of BASE plus one layer and print its ID."
        ),
        "tag": Lazy(
            "catalog.cli.tag",
            "Create TARGET as a new tag for the image SOURCE names (an existing tag moves).",
        ),
        "rm": Lazy(
            "catalog.cli.rmi",
            "Remove one or more images: untag a name, delete an ID, as docker rmi does.",
        ),
        "inspect": Lazy(
            "catalog.cli.inspect",
            "Show images' details as a JSON array in the shape of Docker's ImageInspect.",
        ),
        "history": Lazy(
            "catalog.cli.history",
            "Show the history of an image, newest first, as docker history does.",
        ),
        "load": Lazy(
            "catalog.cli.load",
            "Load images from a tar archive (docker save v1.2, Docker 25+,"
            " go-containerregistry, OCI layout; optionally gzip/zstd/bzip2/xz compressed) or"
            " an OCI layout directory; STDIN by default.",
        ),
        "ls": Lazy("catalog.cli.images", "List images (as `docker images`), newest first."),
        "prune": Lazy(
            "catalog.cli.prune",
            "Remove unused images (dangling ones, or with -a every image no container uses).",
        ),
        "squash": Lazy(
            "catalog.cli.squash",
            "Squash IMAGE's layers above PARENT into one new layer and print the new image's ID.",
        ),
        "pull": Lazy(
            "catalog.cli.registry", "Download an image from a registry, as `docker pull` does."
        ),
        "push": Lazy(
            "catalog.cli.registry", "Upload an image to a registry, as `docker push` does."
        ),
    }


app = typer.Typer(help="Manage images.", no_args_is_help=True, cls=ImageGroup, **PLAIN_HELP)
