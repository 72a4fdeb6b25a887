"""fsck's check of the database itself, below the rows: the backend's own integrity check.

* SQLite: `PRAGMA integrity_check`, which reads every page of the file and checks the
  b-trees, their order, the free list and every index against its table (a corrupt page
  that no query of ours happens to read is found here).
* PostgreSQL: `bt_index_check` of the amcheck extension on every B-tree index of the
  catalog's tables, when the extension is installed in the database (`CREATE EXTENSION
  amcheck`, by the database's owner: fsck changes no schema). Without it, the check is
  skipped and fsck says so. PostgreSQL's heap pages carry no checksums unless the cluster
  was initialised with them, and reading them all is `pg_amcheck`'s job, not catalog's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from catalog.db.engine import Database
from catalog.db.models import Base
from catalog.operations.fsck.problems import Problem

# Lines of `PRAGMA integrity_check` kept (it stops at 100 by default).
MAX_LINES = 20


@dataclass
class DatabaseCheck:
    """What was checked (`how`, for fsck's summary) and the problems found."""

    how: str
    problems: list[Problem] = field(default_factory=list)


def check_database(database: Database, subject: str) -> DatabaseCheck:
    """Run the backend's integrity check; `subject` names the database in problems."""
    if database.dialect == "sqlite":
        return _check_sqlite(database, subject)
    if database.dialect == "postgresql":
        return _check_postgresql(database, subject)
    return DatabaseCheck(f"no integrity check for {database.dialect}")


def _corrupt(subject: str, detail: str) -> Problem:
    return Problem(
        "database-corrupt",
        subject,
        detail,
        unrepairable="restore the database from a backup (catalog db upgrade keeps one)",
    )


def _check_sqlite(database: Database, subject: str) -> DatabaseCheck:
    check = DatabaseCheck("PRAGMA integrity_check")
    try:
        with database.engine.connect() as connection:
            lines = [
                str(row[0])
                for row in connection.exec_driver_sql(f"PRAGMA integrity_check({MAX_LINES})")
            ]
    except DBAPIError as exc:  # so damaged that the check itself cannot run
        check.problems.append(_corrupt(subject, _reason(exc)))
        return check
    if lines != ["ok"]:
        check.problems += [_corrupt(subject, line) for line in lines]
    return check


def _check_postgresql(database: Database, subject: str) -> DatabaseCheck:
    tables = sorted(Base.metadata.tables)
    with database.engine.connect() as connection:
        installed = connection.scalar(
            text("SELECT count(*) FROM pg_extension WHERE extname = 'amcheck'")
        )
        if not installed:
            return DatabaseCheck("no index check: the amcheck extension is not installed")
        indexes = connection.execute(
            text(
                "SELECT c.oid, c.relname FROM pg_index i"
                " JOIN pg_class c ON c.oid = i.indexrelid"
                " JOIN pg_class t ON t.oid = i.indrelid"
                " JOIN pg_am a ON a.oid = c.relam"
                " WHERE a.amname = 'btree' AND t.relname = ANY(:tables)"
                " AND t.relnamespace = to_regnamespace(current_schema())::oid"
                " ORDER BY c.relname"
            ),
            {"tables": tables},
        ).all()
    check = DatabaseCheck(f"amcheck bt_index_check of {len(indexes)} indexes")
    for oid, name in indexes:
        try:
            with database.engine.connect() as connection:
                connection.execute(text("SELECT bt_index_check(:oid)"), {"oid": oid})
        except DBAPIError as exc:
            check.problems.append(_corrupt(subject, f"index {name}: {_reason(exc)}"))
    return check


def _reason(exc: DBAPIError) -> str:
    lines = str(exc.orig).strip().splitlines() if exc.orig is not None else []
    return lines[0] if lines else type(exc).__name__
