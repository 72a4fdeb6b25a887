"""`catalog db ...`: the database schema's revision, and the next one."""

from __future__ import annotations

from typing import Annotated

import typer

from catalog.cli.helptext import PLAIN_HELP
from catalog.cli.state import open_from
from catalog.db import schema

app = typer.Typer(help="Manage the catalog database's schema.", no_args_is_help=True, **PLAIN_HELP)


def _describe(revision: str | None, head: str) -> str:
    if revision is None:
        return "none (empty database)"
    return f"{revision} (head)" if revision == head else revision


@app.command()
def upgrade(ctx: typer.Context) -> None:
    """Migrate the database to the current schema, backing up a SQLite file first."""
    catalog = open_from(ctx, check_schema=False)
    result = schema.upgrade(catalog.database.engine)
    if result.before == result.after:
        typer.echo(f"Database already at {_describe(result.after, result.after)}")
        return
    if result.backup is not None:
        typer.echo(f"Backed up {catalog.location.display_url} to {result.backup}")
    before = result.before or "empty"
    typer.echo(f"Upgraded database from {before} to {result.after}")


@app.command()
def current(ctx: typer.Context) -> None:
    """Print the database's schema revision."""
    catalog = open_from(ctx, check_schema=False)
    state = schema.schema_state(catalog.database.engine)
    typer.echo(_describe(state.current, state.head))


@app.command()
def check(ctx: typer.Context) -> None:
    """Compare the database's schema with catalog's models; exit 1 on any drift."""
    catalog = open_from(ctx, check_schema=False)
    state = schema.schema_state(catalog.database.engine)
    problems: list[str] = []
    if not state.is_current:
        problems.append(
            f"database at revision {_describe(state.current, state.head)}, "
            f"catalog needs {state.head}: run `catalog db upgrade`"
        )
    problems.extend(str(diff) for diff in schema.schema_drift(catalog.database.engine))
    if problems:
        for problem in problems:
            typer.echo(f"drift: {problem}", err=True)
        raise typer.Exit(1)
    typer.echo(f"No drift: database at {_describe(state.current, state.head)} matches the models")


@app.command()
def revision(
    ctx: typer.Context,
    message: Annotated[
        str,
        typer.Option(
            "--message", "-m", metavar="MESSAGE", help="What the revision changes; names its file."
        ),
    ],
    empty: Annotated[
        bool,
        typer.Option("--empty", help="No operations: a revision to fill in by hand."),
    ] = False,
) -> None:
    """Write the next migration: what turns the database (at the head revision) into the
    models' schema, as Alembic's autogenerate sees it. For developers, from a checkout:
    the file goes into migrations/versions/; read it before committing it."""
    catalog = open_from(ctx)
    path = schema.new_revision(catalog.database.engine, message, empty=empty)
    typer.echo(f"Wrote {path}")


def register(main_app: typer.Typer, image_app: typer.Typer) -> None:
    del image_app  # no `catalog image` form
    main_app.add_typer(app, name="db")
