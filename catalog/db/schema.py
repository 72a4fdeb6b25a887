"""The database schema's revision: create, check, upgrade and back up, through Alembic;
and the next revision, generated from the models.

Alembic is configured in code (no alembic.ini needed at run time) and always gets a
connection inside a writer transaction, so concurrent first uses of a new catalog create
the schema once, and a failed upgrade leaves the old schema whole.
"""

from __future__ import annotations

import importlib.util
import sqlite3
from argparse import Namespace
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from catalog.db.engine import writer_engine
from catalog.db.models import Base
from catalog.errors import CatalogError, InvalidArgument, SchemaOutOfDate, os_failure

# Any constant works: it only has to be the same for every catalog process.
_PG_MIGRATION_LOCK = 0x636174616C6F67  # "catalog"


def migrations_dir() -> Path:
    """Where the Alembic scripts are: inside the installed package, else the source tree."""
    spec = importlib.util.find_spec("catalog.migrations")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    source_tree = Path(__file__).resolve().parents[2] / "migrations"
    if (source_tree / "env.py").is_file():
        return source_tree
    raise RuntimeError("catalog's migrations are missing from this installation")


def alembic_config(connection: Connection | None = None) -> Config:
    # quiet: Alembic's own messages ("Generating ...") would mix with the command's output.
    config = Config(cmd_opts=Namespace(quiet=True))
    config.set_main_option("script_location", str(migrations_dir()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    # Alembic reads a directory it cannot list (an I/O error) as empty: so "no revision"
    # is read again once, and if the directory cannot be listed, that is the error.
    for _ in range(2):
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        if head is not None:
            return head
    versions = migrations_dir() / "versions"
    try:
        next(versions.iterdir(), None)
    except OSError as exc:
        raise os_failure(exc, "reading catalog's migrations") from None
    raise RuntimeError("catalog has no migrations")


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _known_revisions() -> set[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return {rev.revision for rev in script.walk_revisions()}


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str

    @property
    def is_current(self) -> bool:
        return self.current == self.head


def schema_state(engine: Engine) -> SchemaState:
    with engine.connect() as connection:
        return SchemaState(current=current_revision(connection), head=head_revision())


def _lock_for_migration(connection: Connection) -> None:
    """Serialize schema changes: SQLite already holds the write lock (BEGIN IMMEDIATE)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})


def _has_foreign_tables(connection: Connection) -> bool:
    names = set(inspect(connection).get_table_names()) - {"alembic_version"}
    return bool(names)


def ensure_schema(engine: Engine) -> None:
    """Create the schema of a new, empty database; refuse a database at another revision.

    Called on every open. The common case (at head) costs one small query.
    """
    state = schema_state(engine)
    if state.is_current:
        return
    if state.current is None:
        with writer_engine(engine).begin() as connection:
            _lock_for_migration(connection)
            current = current_revision(connection)
            if current is None:
                if _has_foreign_tables(connection):
                    raise CatalogError(
                        "the database holds tables but no catalog schema revision: "
                        "point --db at an empty database or a catalog's"
                    )
                command.upgrade(alembic_config(connection), "head")
                return
        state = schema_state(engine)
        if state.is_current:
            return
    _refuse(state)


def _refuse(state: SchemaState) -> None:
    if state.current in _known_revisions():
        raise SchemaOutOfDate(
            f"the catalog database is at schema revision {state.current}, "
            f"this catalog needs {state.head}: run `catalog db upgrade`"
        )
    raise SchemaOutOfDate(
        f"the catalog database is at schema revision {state.current}, unknown to this "
        f"catalog (head {state.head}): it was written by a newer catalog; upgrade catalog"
    )


def backup_sqlite(engine: Engine, revision: str | None) -> Path | None:
    """Copy a SQLite database file beside itself (consistent, via the backup API)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    source_path = Path(database)
    if not source_path.exists():
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target_path = source_path.with_name(f"{source_path.name}.{revision or 'empty'}.{stamp}.bak")
    source = sqlite3.connect(source_path)
    try:
        target = sqlite3.connect(target_path)
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()
    return target_path


@dataclass(frozen=True)
class UpgradeResult:
    before: str | None
    after: str
    backup: Path | None


def upgrade(engine: Engine, revision: str = "head") -> UpgradeResult:
    """Upgrade in one transaction, after backing up a SQLite file that holds data.

    A database at a revision this catalog does not know (written by a newer catalog) is
    refused before anything is written, backup included."""
    state = schema_state(engine)
    if state.current is not None and state.current not in _known_revisions():
        _refuse(state)
    backup = None
    if state.current is not None and state.current != state.head:
        backup = backup_sqlite(engine, state.current)
    with writer_engine(engine).begin() as connection:
        _lock_for_migration(connection)
        before = current_revision(connection)
        command.upgrade(alembic_config(connection), revision)
        after = current_revision(connection)
    assert after is not None
    return UpgradeResult(before=before, after=after, backup=backup)


def downgrade(engine: Engine, revision: str) -> str | None:
    with writer_engine(engine).begin() as connection:
        _lock_for_migration(connection)
        command.downgrade(alembic_config(connection), revision)
        return current_revision(connection)


def include_object_for(dialect: str) -> Callable[..., bool]:
    """Alembic's `include_object` for a backend: the models' objects made on other
    backends only (models.only_on) are left out of its comparison."""

    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        dialects = getattr(obj, "info", {}).get("dialects")
        return dialects is None or dialect in dialects

    return include_object


def schema_drift(engine: Engine) -> list[Any]:
    """Differences between the database and the models, as Alembic's autogenerate sees them."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_object": include_object_for(engine.dialect.name),
            },
        )
        return list(compare_metadata(context, Base.metadata))


def next_revision_id() -> str:
    """The ID of the next revision: revisions are numbered 0001, 0002, ..."""
    head = head_revision()
    return f"{int(head) + 1:04d}" if head.isdigit() else head + "-next"


def new_revision(engine: Engine, message: str, *, empty: bool = False) -> Path:
    """Write the next migration into the migrations directory; return its file.

    Alembic's autogenerate writes the operations that turn the database (which must be at
    the head revision) into the models' schema, in batch mode for SQLite; `empty` writes a
    revision with no operations instead, for a data migration. Read the file before you
    commit it: autogenerate sees tables, columns, indexes and constraints, not renames
    or data.
    """
    if not message.strip():
        raise InvalidArgument("give the revision a message (-m): it names the file")
    state = schema_state(engine)
    if not state.is_current:
        raise SchemaOutOfDate(
            f"the database is at revision {state.current}, not at the head {state.head}: "
            "generate the next revision against a database at the head"
        )
    if not empty and not schema_drift(engine):
        raise InvalidArgument(
            "the models and the database agree: change catalog/db/models.py first "
            "(or write an empty revision for a data migration)"
        )
    with engine.connect() as connection:
        script = command.revision(
            alembic_config(connection),
            message=message,
            autogenerate=not empty,
            rev_id=next_revision_id(),
        )
    assert script is not None and not isinstance(script, list)
    return Path(script.path)
