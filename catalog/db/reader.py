"""Reading a catalog through its DB-API driver, with statements written as SQL text.

The listing (catalog.services.listing) is SQL text with `:name` parameters, so that it
runs without SQLAlchemy, whose import alone costs more than a whole `catalog images` on
a small catalog (docs/listing.md §13). A `Reader` runs such text:

- `SqliteReader`: a `sqlite3` connection opened here, with the connection policy every
  catalog connection gets (`configure_sqlite`, which catalog.db.engine applies to the
  engine's connections too), in one read transaction;
- `PostgresReader`: a psycopg connection opened here, in one read transaction, its
  listings read through server-side cursors as the sessions' are (`POSTGRES_STREAMING`);
- `catalog.db.sql.SessionReader`: a session's own connection, in its transaction, for
  the server and the commands that have opened the catalog with SQLAlchemy anyway.

Only the standard library, catalog's pure modules and (for PostgreSQL) psycopg are
imported here.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import re
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from catalog.db.kept_values import familiar_text

BUSY_TIMEOUT_MS = 30_000
SQLITE_PRAGMAS = (
    "PRAGMA foreign_keys = ON",
    f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
    "PRAGMA synchronous = NORMAL",
)
# Rows fetched from a cursor at a time.
BATCH = 2000
# The SQL function a reference filter calls on SQLite (`reference_matches`).
REFERENCE_MATCH = "catalog_reference_match"
# Before a streamed read on PostgreSQL: plan for all the rows, not (PostgreSQL's default
# for cursors) the first 10%, as a fast-start plan can probe a subquery once per row;
# sort in memory.
POSTGRES_STREAMING = ("SET LOCAL cursor_tuple_fraction = 1.0", "SET LOCAL work_mem = '64MB'")
# A `:name` parameter in SQL text, found as SQLAlchemy's text() finds them.
_PARAMETER = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")
# Names of PostgreSQL server-side cursors: unique within a connection.
CURSOR_NUMBERS = itertools.count()


@runtime_checkable
class Reader(Protocol):
    """Runs SQL text with `:name` parameters and gives its rows as the driver does."""

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`: what the text must be written for."""
        ...

    def rows(
        self, sql: str, params: Mapping[str, Any], *, stream: bool = True
    ) -> Iterator[tuple[Any, ...]]:
        """The rows of `sql`, read as they are iterated (the cursor closes at the end).
        `stream=False` for a few rows: no server-side cursor on PostgreSQL."""
        ...


def first_row(reader: Reader, sql: str, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The first row of `sql` (a lookup of a few rows), or None."""
    return next(iter(list(reader.rows(sql, params, stream=False))), None)


# --- SQLite --------------------------------------------------------------------------


# Bounded: a server's clients choose the patterns.
_compiled = functools.lru_cache(maxsize=256)(re.compile)


def reference_matches(regex: str, repository: str, tag: str | None, digest: str | None) -> bool:
    """A stored reference matches a `reference` filter's pattern (as a regex: Go's
    path.Match, catalog.docker.pathmatch) when its FamiliarString, FamiliarName, full
    string or Name does (docs/listing.md §3.6). On SQLite one call per row does the four
    tests; PostgreSQL runs the same tests as SQL (catalog.services.listing)."""
    pattern = _compiled(regex)
    familiar = familiar_text(repository)
    suffix = f":{tag}" if tag is not None else f"@{digest}"
    search = pattern.search
    return bool(
        search(familiar + suffix)
        or search(familiar)
        or search(repository + suffix)
        or search(repository)
    )


def configure_sqlite(connection: sqlite3.Connection) -> None:
    """The policy of every catalog connection to SQLite (catalog.db.engine explains
    `isolation_level`): WAL, foreign keys, busy timeout, and the listing's function."""
    connection.isolation_level = None  # BEGIN is ours
    cursor = connection.cursor()
    try:
        # journal_mode is persistent in the file; setting it on every connect is cheap and
        # covers a database created by another tool. In-memory databases answer "memory".
        cursor.execute("PRAGMA journal_mode = WAL")
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()
    connection.create_function(REFERENCE_MATCH, 4, reference_matches, deterministic=True)


def sqlite_rows(
    connection: sqlite3.Connection, sql: str, params: Mapping[str, Any]
) -> Iterator[tuple[Any, ...]]:
    cursor = connection.cursor()
    try:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(BATCH):
            yield from rows
    finally:
        with contextlib.suppress(sqlite3.Error):
            cursor.close()


class SqliteReader:
    """A catalog's SQLite file, read in one transaction (all its statements see one
    state of the catalog); closed by `close` or at the end of a `with` block."""

    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path, check_same_thread=False)
        try:
            configure_sqlite(self.connection)
            self.connection.execute("BEGIN")
        except BaseException:
            self.connection.close()
            raise

    def rows(
        self, sql: str, params: Mapping[str, Any], *, stream: bool = True
    ) -> Iterator[tuple[Any, ...]]:
        return sqlite_rows(self.connection, sql, params)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.connection.rollback()
        self.connection.close()

    def __enter__(self) -> SqliteReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --- PostgreSQL ----------------------------------------------------------------------


def pyformat(sql: str) -> str:
    """SQL text with `:name` parameters in psycopg's `%(name)s` style (`%` doubled)."""
    return _PARAMETER.sub(r"%(\1)s", sql.replace("%", "%%"))


class PostgresReader:
    """A catalog's PostgreSQL database (a libpq connection string or URI), read in one
    transaction; closed by `close` or at the end of a `with` block."""

    dialect = "postgresql"

    def __init__(self, conninfo: str) -> None:
        import psycopg

        self.connection = psycopg.connect(conninfo)

    def rows(
        self, sql: str, params: Mapping[str, Any], *, stream: bool = True
    ) -> Iterator[tuple[Any, ...]]:
        if not stream:
            with self.connection.cursor() as cursor:
                cursor.execute(pyformat(sql), params)
                return iter(cursor.fetchall())
        return self._streamed(pyformat(sql), params)

    def _streamed(self, sql: str, params: Mapping[str, Any]) -> Iterator[tuple[Any, ...]]:
        for setting in POSTGRES_STREAMING:
            self.connection.execute(setting)
        cursor = self.connection.cursor(name=f"catalog_rows_{next(CURSOR_NUMBERS)}")
        try:
            cursor.execute(sql, params)
            while rows := cursor.fetchmany(BATCH):
                yield from rows
        finally:
            with contextlib.suppress(Exception):
                cursor.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.rollback()
        self.connection.close()

    def __enter__(self) -> PostgresReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
