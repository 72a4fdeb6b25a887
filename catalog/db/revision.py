"""The schema gate every open goes through, without Alembic: one SELECT of the stored
revision, compared with the head revision this catalog was built with. Alembic (whose
import costs more than the rest of a listing) is loaded only when they differ: to create
a new database's schema, or to say which command to run (`catalog.db.schema`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalog.db.reader import Reader, first_row

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.exc import DBAPIError

REVISION_QUERY = "SELECT version_num FROM alembic_version"

# The newest migration in migrations/versions (tests/db/test_schema.py checks it is).
HEAD_REVISION = "0006"


def stored_revision(engine: Engine) -> str | None:
    """The revision Alembic stored, or None (no revision table, or no row)."""
    from sqlalchemy.exc import DBAPIError

    try:
        with engine.connect() as connection:
            value = connection.exec_driver_sql(REVISION_QUERY).scalar()
    except DBAPIError as exc:
        if _no_table(exc):
            return None
        raise
    return None if value is None else str(value)


def at_head(reader: Reader) -> bool:
    """The database `reader` reads is at the head revision (errors are the caller's)."""
    found = first_row(reader, REVISION_QUERY, {})
    return found is not None and found[0] == HEAD_REVISION


def _no_table(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return "no such table" in text or "does not exist" in text


def check_schema(engine: Engine) -> None:
    """Let a database at the head revision through; else create a new, empty database's
    schema, or refuse one at another revision (SchemaOutOfDate names the command)."""
    if stored_revision(engine) == HEAD_REVISION:
        return
    from catalog.db.schema import ensure_schema

    ensure_schema(engine)
