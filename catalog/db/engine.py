"""The database engine and sessions: built by a factory, never at import.

SQLite policy lives here. pysqlite on Python 3.11 opens transactions
itself, lazily and only before DML, which breaks SAVEPOINTs and lets two writers deadlock
into "database is locked". So we switch its handling off (`isolation_level=None`) and emit
`BEGIN` ourselves: `BEGIN IMMEDIATE` for writers, which takes the write lock up front and
therefore waits on `busy_timeout` instead of failing half-way through a transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

BUSY_TIMEOUT_MS = 30_000
SQLITE_PRAGMAS = (
    "PRAGMA foreign_keys = ON",
    f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
    "PRAGMA synchronous = NORMAL",
)
_BEGIN_OPTION = "catalog_sqlite_begin"
# PostgreSQL advisory lock keys: any constants, the same in every catalog process.
WRITER_LOCK = 0x63617477  # "catw"


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    assert isinstance(dbapi_connection, sqlite3.Connection)
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see module doc)
    cursor = dbapi_connection.cursor()
    try:
        # journal_mode is persistent in the file; setting it on every connect is cheap and
        # covers a database created by another tool. In-memory databases answer "memory".
        cursor.execute("PRAGMA journal_mode = WAL")
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    statement = connection.get_execution_options().get(_BEGIN_OPTION, "BEGIN")
    connection.exec_driver_sql(statement)


def create_catalog_engine(url: URL | str, **kwargs: Any) -> Engine:
    """An Engine for `url` with catalog's connection policy applied."""
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def writer_engine(engine: Engine) -> Engine:
    """The same engine (same pool), whose transactions begin as writers."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})
    return engine


class Database:
    """An engine with separate session factories for readers and writers."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._readers = sessionmaker(engine, expire_on_commit=False)
        self._writers = sessionmaker(writer_engine(engine), expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; rolled back at the end, it never writes."""
        with self._readers() as session:
            try:
                yield session
            finally:
                session.rollback()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose work commits once at the end, or not at all on an exception.

        Writers run one at a time on both backends: SQLite's BEGIN IMMEDIATE takes the
        write lock; on PostgreSQL a transaction-level advisory lock does the same, so two
        loads of one image (or two tags of one name) can't race between check and insert.
        Readers are never blocked.
        """
        with self._writers() as session, session.begin():
            if self.dialect == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITER_LOCK})
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
