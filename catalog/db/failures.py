"""Operating-system and database conditions as one line (STYLE.md item 6): a full disk, an
I/O error, a read-only store, a locked, full, corrupt or unreachable database are not
bugs, and neither the CLI nor the server shows a traceback for them.

`as_catalog_error` is what the edges (catalog.cli.main, catalog.server.app) call with an
exception that is not a CatalogError: it gives the CatalogError to report, or None for a
real bug (which keeps its traceback). Operations name what they were doing where they
can (`catalog.errors.os_failure`: `no space left on device while storing layer ...`);
this is the net below them.
"""

from __future__ import annotations

import sqlite3
import sys

from sqlalchemy.exc import DatabaseError, DBAPIError, InternalError, OperationalError

from catalog.errors import CatalogError, SystemFailure

__all__ = ["DatabaseFailure", "as_catalog_error", "database_reason", "is_database_condition"]


class DatabaseFailure(CatalogError):
    """The database could not do what was asked: locked, full, read-only, corrupt, not a
    database, unreachable."""


def database_reason(error: BaseException) -> str:
    """The driver's own first line (`database or disk is full`), without SQLAlchemy's
    statement and parameters."""
    original = error.orig if isinstance(error, DBAPIError) else error
    lines = str(original).strip().splitlines() if original is not None else []
    return lines[0] if lines else type(error).__name__


def is_database_condition(error: BaseException) -> bool:
    """True for the database's conditions (OperationalError, InternalError, a bare
    DatabaseError such as "file is not a database"); False for what a bug causes
    (IntegrityError, ProgrammingError, DataError...)."""
    if isinstance(error, OperationalError | InternalError):
        return True
    if type(error) is DatabaseError:
        return True
    # The drivers' own, from a listing's reader (catalog.db.reader), without SQLAlchemy.
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(error, psycopg.OperationalError | psycopg.InternalError):
        return True
    return isinstance(error, sqlite3.OperationalError) or type(error) is sqlite3.DatabaseError


def _first_cause(error: BaseException) -> BaseException:
    """The earliest database condition `error` was raised while handling: after an I/O
    error SQLite ends the transaction itself, and what SQLAlchemy then fails to do (roll
    back to a savepoint that is gone) says nothing of why."""
    earliest = error
    seen = {id(error)}
    current = error.__context__
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if is_database_condition(current):
            earliest = current
        current = current.__context__
    return earliest


def as_catalog_error(error: BaseException, database: str) -> CatalogError | None:
    """The one-line error for `error`, naming the database (`database`, its URL without
    password) for a database condition; None if `error` is a bug."""
    if isinstance(error, CatalogError):
        return error
    if is_database_condition(error):
        return DatabaseFailure(f"database {database}: {database_reason(_first_cause(error))}")
    if isinstance(error, OSError):
        reason = error.strerror or str(error) or type(error).__name__
        reason = reason[:1].lower() + reason[1:]
        if error.filename is not None:
            reason = f"{reason}: {error.filename}"
        return SystemFailure(reason, error.errno)
    return None
