"""An open catalog: where it lives, its database and its content store; or, for a
listing, only a reader of its database (`open_sqlite_reader`, `open_postgres_reader`)."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from catalog.db import revision
from catalog.db.reader import PostgresReader, SqliteReader
from catalog.errors import CatalogError
from catalog.settings import Location
from catalog.storage.content import ContentStore
from catalog.storage.reserve import keep_reserve

if TYPE_CHECKING:  # a listing reads its database without SQLAlchemy (open_*_reader)
    from catalog.db.engine import Database


@dataclass
class Catalog:
    location: Location
    database: Database
    store: ContentStore
    # What the user should know about how the catalog was opened (a released reserve on
    # a full disk): the CLI prints each as a warning, the server logs it.
    notices: list[str] = field(default_factory=list)

    def close(self) -> None:
        self.database.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_catalog(
    location: Location, *, check_schema: bool = True, use_reserve: bool = True
) -> Catalog:
    """Open (and on first use create) the catalog at `location`.

    With `check_schema`, a new empty database is migrated to the current schema and one at
    another revision is refused (SchemaOutOfDate names `catalog db upgrade`). With
    `use_reserve`, a full disk makes it release the space kept back beside a SQLite file
    (catalog.storage.reserve), so that this command can run; without, it keeps it.
    """
    from sqlalchemy.exc import DBAPIError

    from catalog.db.engine import Database, create_catalog_engine
    from catalog.db.failures import DatabaseFailure, database_reason, is_database_condition

    try:
        location.root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CatalogError(
            f"cannot create the catalog root {location.root}: {exc.strerror}"
        ) from None
    notices = []
    if location.database_url.get_backend_name() == "sqlite":
        database_file = location.database_url.database
        if database_file and database_file != ":memory:" and not database_file.startswith("file:"):
            notice = keep_reserve(Path(database_file), release=use_reserve)
            if notice is not None:
                notices.append(notice)
    engine = create_catalog_engine(location.database_url)
    database = Database(engine)
    try:
        if check_schema:
            revision.check_schema(engine)
    except DBAPIError as exc:
        database.dispose()
        if not is_database_condition(exc):
            raise
        raise DatabaseFailure(
            f"cannot open the database {location.display_url}: {database_reason(exc)}"
            + _read_only_hint(location)
        ) from None
    except BaseException:
        database.dispose()
        raise
    return Catalog(
        location=location,
        database=database,
        store=ContentStore(location.blobs_dir),
        notices=notices,
    )


def _read_only_hint(location: Location) -> str:
    """` (its file system is read-only)` when that is why SQLite could not open its file:
    SQLite itself only says "unable to open database file"."""
    database = location.database_url.database
    if location.database_url.get_backend_name() != "sqlite" or not database:
        return ""
    try:
        read_only = bool(os.statvfs(Path(database).parent).f_flag & os.ST_RDONLY)
    except OSError:
        return ""
    return " (its file system is read-only)" if read_only else ""


def open_sqlite_reader(
    database_file: Path, *, use_reserve: bool = True
) -> tuple[SqliteReader, list[str]] | None:
    """A reader of the catalog in `database_file` and the notices of its opening, opened
    without SQLAlchemy (the listing's start-up: docs/listing.md §13); None when it must
    be opened as every other command opens it (`open_catalog`): no such file yet (it is
    created), another revision (migrated or refused), or an error (said in its words)."""
    if not database_file.is_file():
        return None
    notice = keep_reserve(database_file, release=use_reserve)
    try:
        reader = SqliteReader(database_file)
    except sqlite3.Error:
        return None
    try:
        if revision.at_head(reader):
            return reader, [] if notice is None else [notice]
    except sqlite3.Error:
        pass
    reader.close()
    return None


def open_postgres_reader(conninfo: str) -> PostgresReader | None:
    """A reader of the catalog in the PostgreSQL database `conninfo` names, opened
    without SQLAlchemy (as `open_sqlite_reader`); None when it must be opened as every
    other command opens it: unreachable, or at another revision (said in its words)."""
    try:
        reader = PostgresReader(conninfo)
    except Exception:  # psycopg.Error, or a connection string libpq refuses
        return None
    try:
        at_head = revision.at_head(reader)
    except Exception:  # psycopg.Error: no revision table yet, or worse
        at_head = False
    if at_head:
        return reader
    reader.close()
    return None
