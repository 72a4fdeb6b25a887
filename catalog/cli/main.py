"""The `catalog` application: global options, error handling, and the command tree."""

from __future__ import annotations

import contextlib
import json
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.exceptions import TyperException

from catalog import __version__
from catalog.cli import image
from catalog.cli.helptext import PLAIN_HELP, use_plain_help
from catalog.cli.lazy import Lazy, LazyGroup
from catalog.cli.options import OutputFormat
from catalog.cli.state import CliState, open_from
from catalog.errors import CatalogError, os_failure
from catalog.settings import DATABASE_URL_ENV, ROOT_ENV

# The commands, by the module that registers them (`register(app, image_app)`): imported
# only when used (catalog.cli.lazy). Each has its help's first paragraph, which
# `catalog --help` lists (tests/cli/test_docs.py checks they agree).
COMMANDS: dict[str, Lazy] = {
    "save": Lazy(
        "catalog.cli.save",
        "Save images to a tar archive (Docker 25+ format; standard output by default).",
    ),
    "tag": Lazy(
        "catalog.cli.tag",
        "Create TARGET as a new tag for the image SOURCE names (an existing tag moves).",
    ),
    "rmi": Lazy(
        "catalog.cli.rmi",
        "Remove one or more images: untag a name, delete an ID, as docker rmi does.",
    ),
    "history": Lazy(
        "catalog.cli.history",
        "Show the history of an image, newest first, as docker history does.",
    ),
    "load": Lazy(
        "catalog.cli.load",
        "Load images from a tar archive (docker save v1.2, Docker 25+, go-containerregistry,"
        " OCI layout; optionally gzip/zstd/bzip2/xz compressed) or an OCI layout directory;"
        " STDIN by default.",
    ),
    "images": Lazy("catalog.cli.images", "List images (as `docker images`), newest first."),
    "report": Lazy(
        "catalog.cli.report",
        "Run a report over the catalog: disk by repository, sharing, what can go, growth.",
    ),
    "demo": Lazy(
        "catalog.cli.demo", "Build a sample catalog from images made on the spot, then show it."
    ),
    "gc": Lazy(
        "catalog.cli.gc",
        "Remove layers no image uses, blobs nothing references or holds, and what killed"
        " writers left (temporary files, leases); print what was reclaimed.",
    ),
    "fsck": Lazy(
        "catalog.cli.fsck",
        "Verify blobs (re-hashed), configs, chain IDs, diff sizes, references and containers;"
        " print one `kind: subject: detail` line per problem and exit 1 on any error.",
    ),
    "serve": Lazy(
        "catalog.cli.serve",
        "Serve the Docker Engine API for images (and catalog's own endpoints) until"
        " interrupted: point DOCKER_HOST at it and use `docker` or docker-py. A browser gets a"
        " read-only web view of the catalog at the same address.",
    ),
    "pull": Lazy(
        "catalog.cli.registry", "Download an image from a registry, as `docker pull` does."
    ),
    "push": Lazy("catalog.cli.registry", "Upload an image to a registry, as `docker push` does."),
    "login": Lazy(
        "catalog.cli.registry",
        "Log in to a registry: check the credentials with it, then keep them in the docker"
        " CLI's config.json (or its credential helper), as `docker login` does.",
    ),
    "logout": Lazy(
        "catalog.cli.registry",
        "Log out from a registry: forget its credentials, as `docker logout` does.",
    ),
    "db": Lazy("catalog.cli.db", "Manage the catalog database's schema."),
    "container": Lazy("catalog.cli.container", "Manage the containers the catalog records."),
    "system": Lazy("catalog.cli.system", "Manage the catalog as a whole."),
}


class CatalogGroup(LazyGroup):
    """Turns a CatalogError anywhere below into one line on stderr and its exit code, and
    so an operating-system or database condition (a full disk, a read-only store, a
    locked or corrupt database: catalog.db.failures); only a bug shows a traceback."""

    LAZY = COMMANDS

    # Typer's click context class is private (typer._click), hence Any.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except CatalogError as exc:
            _print_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except (typer.Exit, typer.Abort, TyperException):
            raise  # Typer's own: --help, usage errors, exit codes
        except Exception as exc:
            # Imported here: SQLAlchemy is not for `--version` (catalog.cli.lazy).
            from catalog.db.failures import as_catalog_error

            if isinstance(exc, OSError) and _while_writing_output(exc):
                failure: CatalogError | None = os_failure(exc, "writing the output")
            else:
                failure = as_catalog_error(exc, _database_shown(ctx))
            if failure is None:
                raise
            _print_error(failure)
            raise typer.Exit(failure.exit_code) from None


def _while_writing_output(error: OSError) -> bool:
    """Whether `error` came from typer.echo (catalog.cli.output names its own): a full
    disk or a closed pipe under stdout, which the message should say, not leave unnamed."""
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
app.add_typer(image.app, name="image")


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
    from catalog.db.revision import HEAD_REVISION, stored_revision
    from catalog.docker.humanize import human_size
    from catalog.services.info import count_rows

    catalog = open_from(ctx)
    with catalog.database.read() as session:
        counts = count_rows(session=session)
    current = stored_revision(catalog.database.engine)
    store_bytes = catalog.store.total_size()
    facts: dict[str, Any] = {
        "root": str(catalog.location.root),
        "database": catalog.location.display_url,
        "schema_revision": current,
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
    revision = f"{current} (head)" if current == HEAD_REVISION else str(current)
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
