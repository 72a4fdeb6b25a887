"""`catalog demo`: build a sample catalog and show what catalog says about it."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import URL

from catalog.cli import images as images_command
from catalog.cli import report as report_commands
from catalog.cli import squash as squash_commands
from catalog.cli import system as system_command
from catalog.cli.state import open_from, state
from catalog.errors import Conflict
from catalog.operations.demo import build_demo, is_empty
from catalog.settings import DATABASE_FILE

SQUASH_IMAGE = "demo/worker:latest"
SQUASH_PARENT = "demo/base:latest"
SQUASH_TAG = "demo/worker:squashed"


def _given_on_command_line(ctx: typer.Context, name: str) -> bool:
    source = ctx.find_root().get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def _heading(command: str) -> None:
    typer.echo(f"\n$ catalog {command}")


def demo(
    ctx: typer.Context,
    root: Annotated[
        Path | None,
        typer.Option(
            "--root",
            metavar="DIR",
            help="Build the demo catalog here. Default: the global --root if given on the "
            "command line, else a new temporary directory (kept, and named at the end).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Add the demo's images even to a catalog that already holds images, names "
            "or containers (its demo/* tags move to them).",
        ),
    ] = False,
) -> None:
    """Build a sample catalog from images made on the spot, then show it.

    A base image, apps sharing its layers, tags, an untagged leaf, an intermediate image
    and containers, made with the same code as `catalog image append`, `catalog tag`
    and `catalog container create`; then `catalog images`, `catalog system df -v`, a
    squash (`catalog image squash`) and reports. The database is the root's SQLite file
    unless --db is given on the command line (CATALOG_ROOT and CATALOG_DATABASE_URL are
    not used: they name your own catalog).
    """
    cli_state = state(ctx)
    made_root = False
    if root is None and _given_on_command_line(ctx, "root") and cli_state.root is not None:
        root = cli_state.root
    if root is None:
        root = Path(tempfile.mkdtemp(prefix="catalog-demo-"))
        made_root = True
    root = root.expanduser().absolute()
    cli_state.root = root
    if not _given_on_command_line(ctx, "database_url"):
        sqlite = URL.create("sqlite", database=str(root / DATABASE_FILE))
        cli_state.database_url = sqlite.render_as_string(hide_password=False)

    try:
        catalog = open_from(ctx)
        with catalog.database.read() as session:
            empty = is_empty(session=session)
        if not empty and not force:
            raise Conflict(
                f"the catalog at {root} already holds images: give the demo a new --root "
                "(or --force to add the demo's images to it)"
            )
        typer.echo(f"Building a demo catalog in {root}")
        with tempfile.TemporaryDirectory(dir=root, prefix=".demo-layers-") as workdir:
            made = build_demo(catalog, workdir=Path(workdir), now=datetime.now(UTC))
    except BaseException:
        if made_root:
            shutil.rmtree(root, ignore_errors=True)
        raise
    typer.echo(
        f"Made {len(made.images)} images and {len(made.containers)} containers: demo/base, "
        "built in two steps\n(the first is left untagged under it: an intermediate image), "
        "demo/web, demo/api and\ndemo/worker built on it, an unrelated demo/tools, and an "
        "untagged leaf: the old\ndemo/api:latest, left behind when that tag moved to 1.1."
    )

    _heading("images")
    images_command.images(ctx)
    _heading("images -a")
    images_command.images(ctx, all_images=True)
    _heading("system df -v")
    system_command.df(ctx, verbose=True)
    # Squash the worker's two layers above the base into one; the base's stay shared.
    _heading(f"image squash --parent {SQUASH_PARENT} -t {SQUASH_TAG} {SQUASH_IMAGE}")
    squash_commands.squash(ctx, SQUASH_IMAGE, parent=SQUASH_PARENT, tags=[SQUASH_TAG])
    _heading("images demo/worker")
    images_command.images(ctx, "demo/worker")
    _heading("report usage-by-repository")
    report_commands.report(ctx, name="usage-by-repository")
    _heading("report reclaimable")
    report_commands.report(ctx, name="reclaimable")

    location = catalog.location
    where = f"--root {root}"
    if _given_on_command_line(ctx, "database_url"):
        where += " --db ..."
    typer.echo(
        f"\nThe demo catalog stays in {root} ({location.display_url}).\n"
        f"Try: catalog {where} report --list\n"
        f"     catalog {where} report --html report.html"
    )


def register(app: typer.Typer, image_app: typer.Typer) -> None:
    app.command("demo")(demo)
