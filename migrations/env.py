"""Alembic environment. catalog runs it in process (see catalog.db.schema), always handing it a
connection that is already inside a transaction, so a migration and the revision stamp
commit together."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from catalog.db.models import Base
from catalog.db.schema import include_object_for

config = context.config


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite can't ALTER most things: batch mode rebuilds the table under the same name,
        # which works because every constraint is named (models.NAMING_CONVENTION).
        render_as_batch=True,
        compare_type=True,
        compare_server_default=True,
        # Indexes made on one backend only (models.only_on) are not missing on the other.
        include_object=include_object_for(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `catalog db upgrade`, which supplies a connection")
run_migrations(connection)
