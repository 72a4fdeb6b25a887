"""The `catalog` application: global options, error handling, and the command tree."""

from __future__ import annotations

import contextlib
import json
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from catalog import __version__
from catalog.cli import (
    append,
    container,
    db,
    demo,
    fsck,
    gc,
    history,
    image,
    images,
    inspect,
    load,
    prune,
    registry,
    report,
    rmi,
    save,
    serve,
    squash,
    system,
    tag,
)
from catalog.cli.helptext import PLAIN_HELP, use_plain_help
from catalog.cli.options import OutputFormat
from catalog.cli.state import CliState, open_from
from catalog.db import schema
from catalog.db.failures import as_catalog_error
from catalog.docker.humanize import human_size
from catalog.errors import CatalogError, os_failure
from catalog.services.info import count_rows
from catalog.settings import DATABASE_URL_ENV, ROOT_ENV


class CatalogGroup(TyperGroup):
    """Turns a CatalogError anywhere below into one line on stderr and its exit code, and
    so an operating-system or database condition (a full disk, a read-only store, a
    locked or corrupt database: catalog.db.failures); only a bug shows a traceback."""

    # Typer's click context class is private (typer._click), hence Any.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except CatalogError as exc:
            _print_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except Exception as exc:
            if isinstance(exc, OSError) and _while_writing_output(exc):
                failure: CatalogError | None = os_failure(exc, "writing the output")
            else:
                failure = as_catalog_error(exc, _database_shown(ctx))
            if failure is None:
                raise
            _print_error(failure)
            raise typer.Exit(failure.exit_code) from None


def _while_writing_output(error: OSError) -> bool:
    """Whether `error` came from printing (typer.echo): a full disk or a closed pipe
    under stdout, which the message should say rather than leave unnamed."""
    traceback = error.__traceback__
    while traceback is not None:
        code = traceback.tb_frame.f_code
        if code.co_name == "echo" and "typer" in code.co_filename:
            return True
        traceback = traceback.tb_next
    return False


def _print_error(error: CatalogError) -> None:
    # Even the error line may not get out (stderr on a full disk, a closed pipe).
    with contextlib.suppress(OSError):
        typer.echo(f"Error: {error.message}", err=True)


def _database_shown(ctx: Any) -> str:
    """The database the command was pointed at, as an error names it."""
    obj = ctx.obj
    try:
        return obj.location.display_url if isinstance(obj, CliState) else "(unknown)"
    except CatalogError:
        return "(unknown)"


app = typer.Typer(
    cls=CatalogGroup,
    name="catalog",
    help="A container-image catalog in relational tables.",
    no_args_is_help=True,
    add_completion=False,
    # A traceback means a bug: show it plainly, without local variables.
    pretty_exceptions_enable=False,
    **PLAIN_HELP,
)
app.add_typer(db.app, name="db")
app.add_typer(image.app, name="image")
# Each command module adds its commands to `app` (top-level aliases, as docker has) and to
# `image.app`, through its register(app, image_app).
COMMAND_MODULES: tuple[Any, ...] = (
    save,
    append,
    tag,
    rmi,
    inspect,
    history,
    container,
    load,
    images,
    system,
    prune,
    report,
    demo,
    gc,
    fsck,
    serve,
    squash,
    registry,
)
for _module in COMMAND_MODULES:
    _module.register(app, image.app)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"catalog {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    root: Annotated[
        Path | None,
        typer.Option(
            "--root",
            metavar="DIR",
            envvar=ROOT_ENV,
            help="The catalog's directory (database and blobs). "
            "Default: $XDG_DATA_HOME/catalog, else ~/.local/share/catalog.",
            show_default=False,
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="URL",
            envvar=DATABASE_URL_ENV,
            help="SQLAlchemy URL of the metadata database, instead of the root's SQLite file.",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Print catalog's version and exit.",
        ),
    ] = False,
) -> None:
    """A container-image catalog in relational tables."""
    ctx.obj = CliState(root=root, database_url=database_url)


@app.command()
def info(
    ctx: typer.Context,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="Output as a table or as JSON.")
    ] = OutputFormat.table,
) -> None:
    """Show where the catalog lives and what it holds."""
    catalog = open_from(ctx)
    with catalog.database.read() as session:
        counts = count_rows(session=session)
    state = schema.schema_state(catalog.database.engine)
    store_bytes = catalog.store.total_size()
    facts: dict[str, Any] = {
        "root": str(catalog.location.root),
        "database": catalog.location.display_url,
        "schema_revision": state.current,
        "images": counts.images,
        "layers": counts.layers,
        "references": counts.references,
        "containers": counts.containers,
        "blobs": counts.blobs,
        "store_bytes": store_bytes,
    }
    if output_format is OutputFormat.json:
        typer.echo(json.dumps(facts, indent=2))
        return
    revision = f"{state.current} (head)" if state.is_current else str(state.current)
    rows = [
        ("Root", facts["root"]),
        ("Database", facts["database"]),
        ("Schema revision", revision),
        ("Images", counts.images),
        ("Layers", counts.layers),
        ("References", counts.references),
        ("Containers", counts.containers),
        ("Store size", f"{human_size(store_bytes)} ({counts.blobs} blobs)"),
    ]
    for label, value in rows:
        typer.echo(f"{label + ':':<17}{value}")


use_plain_help(app)


def _terminated(signum: int, _frame: object) -> None:
    """SIGTERM unwinds as an exception does, so that every `with` block runs its clean-up
    (a squash's or a load's temporary file is removed, a lease released); the exit
    status is a signal's, 128 + 15."""
    raise SystemExit(128 + signum)


def main() -> None:
    """Console-script entry point."""
    signal.signal(signal.SIGTERM, _terminated)
    app(prog_name="catalog")
