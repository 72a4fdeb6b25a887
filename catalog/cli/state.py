"""What every command shares: the global options, and the catalog they open."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from catalog.settings import (
    Location,
    plain_postgres_conninfo,
    plain_sqlite_file,
    resolve_location,
)

if TYPE_CHECKING:  # opening a catalog imports the database's libraries: only when asked
    from catalog.context import Catalog
    from catalog.db.reader import Reader


@dataclass
class CliState:
    root: Path | None
    database_url: str | None
    _catalog: Catalog | None = field(default=None, repr=False)

    @property
    def location(self) -> Location:
        return resolve_location(self.root, self.database_url)


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliState)
    return obj


def open_from(ctx: typer.Context, *, check_schema: bool = True, adds_data: bool = False) -> Catalog:
    """Open the catalog the global options name, once per command; closed when it ends.

    A command that `adds_data` (load, append, squash, pull) never takes the space kept
    back for a full disk (catalog.storage.reserve): that is for the commands that list
    and free."""
    from catalog.context import open_catalog

    cli_state = state(ctx)
    if cli_state._catalog is None:
        catalog = open_catalog(
            cli_state.location, check_schema=check_schema, use_reserve=not adds_data
        )
        for notice in catalog.notices:
            warn_on_stderr(notice)
        cli_state._catalog = catalog
        ctx.find_root().call_on_close(catalog.close)
    return cli_state._catalog


@contextmanager
def reading(ctx: typer.Context) -> Iterator[Reader]:
    """A reader of the catalog the global options name, for a listing: a SQLite file or a
    PostgreSQL database at the head revision is read through its driver alone, without
    SQLAlchemy, whose import would take most of a small listing's time (docs/listing.md
    §13); any other catalog is opened as every command opens it, and read in a session."""
    cli_state = state(ctx)
    database_file = plain_sqlite_file(cli_state.root, cli_state.database_url)
    conninfo = plain_postgres_conninfo(cli_state.database_url)
    if database_file is not None and cli_state._catalog is None:
        from catalog.context import open_sqlite_reader

        opened = open_sqlite_reader(database_file)
        if opened is not None:
            reader, notices = opened
            for notice in notices:
                warn_on_stderr(notice)
            with reader:
                yield reader
            return
    if conninfo is not None and cli_state._catalog is None:
        from catalog.context import open_postgres_reader

        postgres = open_postgres_reader(conninfo)
        if postgres is not None:
            with postgres:
                yield postgres
            return
    from catalog.db.sql import SessionReader

    with open_from(ctx).database.read() as session:
        yield SessionReader(session)


def warn_on_stderr(message: str) -> None:
    """A warning: the command did what it was asked, with something left to know."""
    typer.echo(f"Warning: {message}", err=True)
