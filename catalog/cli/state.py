"""What every command shares: the global options, and the catalog they open."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from catalog.settings import Location, resolve_location

if TYPE_CHECKING:  # opening a catalog imports the database's libraries: only when asked
    from catalog.context import Catalog


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


def warn_on_stderr(message: str) -> None:
    """A warning: the command did what it was asked, with something left to know."""
    typer.echo(f"Warning: {message}", err=True)
