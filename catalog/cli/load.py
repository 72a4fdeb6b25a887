"""`catalog load` and `catalog image load`: images from a `docker save` or OCI archive."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)

from catalog.cli.state import open_from
from catalog.domain.platform import parse_platform
from catalog.errors import CatalogError
from catalog.operations.load import load_archive

HELP = (
    "Load images from a tar archive (docker save v1.2, Docker 25+, go-containerregistry, "
    "OCI layout; optionally gzip/zstd/bzip2/xz compressed) or an OCI layout directory; "
    "STDIN by default."
)


class RichLoadProgress:
    """A progress bar per layer on stderr (LoadProgress)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None
        self._total = 0

    def layer_started(self, description: str, total: int) -> None:
        self._total = total
        self._task = self._progress.add_task(f"Loading layer {description}", total=total)

    def layer_advanced(self, count: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, count)

    def layer_finished(self) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=self._total)
            self._task = None


@contextmanager
def progress_bar(enabled: bool) -> Iterator[RichLoadProgress | None]:
    """Rich progress bars on stderr while the block runs, or None when not `enabled`."""
    if not enabled:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        yield RichLoadProgress(progress)


def load(
    ctx: typer.Context,
    input_path: Annotated[
        Path | None,
        typer.Option(
            "--input",
            "-i",
            metavar="FILE",
            help="Read from a tar archive file or an OCI layout directory, instead of STDIN.",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Suppress the load progress.")
    ] = False,
    platform: Annotated[
        str | None,
        typer.Option(
            "--platform",
            metavar="OS/ARCH[/VARIANT]",
            help="Load only this platform (os/arch[/variant]). Without it, linux/amd64 "
            "is chosen from a multi-platform index.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Load images from a tar archive or STDIN, as `docker load` does."""
    wanted = parse_platform(platform) if platform is not None else None
    catalog = open_from(ctx, adds_data=True)
    if input_path is None:
        stdin = typer.get_binary_stream("stdin")
        if stdin.isatty():
            raise CatalogError("requested load from stdin, but stdin is empty")
        source: Path | BinaryIO = stdin
    else:
        source = input_path
    with progress_bar(enabled=not quiet and sys.stderr.isatty()) as progress:
        result = load_archive(catalog, source, platform=wanted, progress=progress)
    for line in result.lines():
        typer.echo(line)


def register(app: typer.Typer, image_app: typer.Typer) -> None:
    """Add `catalog load` and `catalog image load`."""
    app.command("load", help=HELP)(load)
    image_app.command("load", help=HELP)(load)
