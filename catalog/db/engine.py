"""The database engine and sessions: built by a factory, never at import.

SQLite policy lives here. pysqlite on Python 3.11 opens transactions
itself, lazily and only before DML, which breaks SAVEPOINTs and lets two writers deadlock
into "database is locked". So we switch its handling off (`isolation_level=None`) and emit
`BEGIN` ourselves: `BEGIN IMMEDIATE` for writers, which takes the write lock up front and
therefore waits on `busy_timeout` instead of failing half-way through a transaction.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from catalog.db.reader import configure_sqlite

_BEGIN_OPTION = "catalog_sqlite_begin"
# PostgreSQL advisory lock keys: any constants, the same in every catalog process.
WRITER_LOCK = 0x63617477  # "catw"
# Taking SQLite's write lock: each attempt waits busy_timeout (catalog.db.reader), then backs off.
LOCK_ATTEMPTS = 4
LOCK_RETRY_DELAY = 0.05


def _busy(error: OperationalError) -> bool:
    """SQLite's SQLITE_BUSY: another writer held the lock for all of busy_timeout."""
    original = error.orig
    code = getattr(original, "sqlite_errorcode", None)
    return code == sqlite3.SQLITE_BUSY or "database is locked" in str(original)


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    assert isinstance(dbapi_connection, sqlite3.Connection)
    configure_sqlite(dbapi_connection)


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
        Readers are never blocked. The lock is taken before the caller's work starts, so
        when SQLite gives up waiting for it ("database is locked" after busy_timeout),
        taking it is simply tried again, with backoff (`_locked`): no writer is told.
        """
        session, transaction = self._locked()
        with session, transaction:
            yield session

    def _locked(self) -> tuple[Session, SessionTransaction]:
        """A writer session whose transaction holds the writer lock."""
        delay = LOCK_RETRY_DELAY
        for attempt in range(1, LOCK_ATTEMPTS + 1):
            session = self._writers()
            transaction = session.begin()
            try:
                if self.dialect == "postgresql":
                    session.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITER_LOCK}
                    )
                else:
                    session.connection()  # BEGIN IMMEDIATE, now
            except OperationalError as exc:
                transaction.rollback()
                session.close()
                if attempt == LOCK_ATTEMPTS or not _busy(exc):
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            return session, transaction
        raise AssertionError("unreachable")  # pragma: no cover

    def dispose(self) -> None:
        self.engine.dispose()
