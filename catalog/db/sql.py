"""SQL the two backends spell differently, in one place: everything else catalog writes
runs unchanged on SQLite and PostgreSQL.

- `insert_ignoring_duplicates`: the dialect's `INSERT ... ON CONFLICT DO NOTHING`;
- `one_of`: `column IN (ids)` with the IDs as one parameter (json_each / ANY(array));
- `byte_order`, `week_start`, `month_start`: constructs compiled per dialect;
- `familiar_name`: Docker's familiar form of a stored name, as one CASE for both;
- `driver_rows`: a statement's rows straight from the DBAPI cursor (server-side on
  PostgreSQL), for answers streamed as they are read; `SessionReader` runs SQL text so
  (catalog.db.reader).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    SQLColumnExpression,
    String,
    and_,
    any_,
    bindparam,
    case,
    func,
    not_,
    select,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.functions import FunctionElement

from catalog.db.reader import CURSOR_NUMBERS, POSTGRES_STREAMING

__all__ = [
    "SessionReader",
    "byte_order",
    "driver_rows",
    "familiar_name",
    "insert_ignoring_duplicates",
    "month_start",
    "one_of",
    "week_start",
]


def insert_ignoring_duplicates(
    session: Session, table: Any, rows: Sequence[Mapping[str, Any]], key: Sequence[str]
) -> None:
    """Bulk-insert `rows` into `table` (a Table or mapped class), skipping any whose `key`
    already exists: rows that images share."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    session.execute(insert(table).on_conflict_do_nothing(index_elements=list(key)), rows)


def one_of(dialect: str, ids: list[str]) -> Callable[[Any], ColumnElement[bool]]:
    """`column IN ids` with the IDs as one parameter, however many: a JSON array read by
    json_each on SQLite, an array on PostgreSQL (neither has a limit on its size, unlike
    one bound parameter per ID)."""
    if dialect == "postgresql":
        array = bindparam("listed_ids", ids, type_=postgresql.ARRAY(String))
        return lambda column: column == any_(array)
    values = func.json_each(bindparam("listed_ids", json.dumps(ids))).table_valued("value")
    return lambda column: column.in_(select(values.c.value))


def familiar_name(name: SQLColumnExpression[str]) -> ColumnElement[str]:
    """Docker's familiar form, in SQL, of a normalized `repository[:tag|@digest]` text (Go's
    FamiliarString; FamiliarName of a bare repository): drop `docker.io/`, and `library/`
    when no other path component follows. substr and like mean the same on both backends;
    a Hypothesis test checks it against `catalog.domain.reference`."""
    return case(
        (
            and_(
                func.substr(name, 1, 18) == "docker.io/library/",
                not_(func.substr(name, 19).like("%/%")),
            ),
            func.substr(name, 19),
        ),
        (func.substr(name, 1, 10) == "docker.io/", func.substr(name, 11)),
        else_=name,
    )


class byte_order(FunctionElement[str]):
    """Its text argument compared byte by byte, whatever the database's collation, so
    that names sort the same way on SQLite and on a PostgreSQL with a locale."""

    type = String()
    name = "byte_order"
    inherit_cache = True


@compiles(byte_order, "sqlite")
def _byte_order_sqlite(element: byte_order, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)}) COLLATE BINARY"


@compiles(byte_order, "postgresql")
def _byte_order_postgresql(element: byte_order, compiler: SQLCompiler, **kw: Any) -> str:
    return f'({compiler.process(element.clauses, **kw)}) COLLATE "C"'


class week_start(FunctionElement[str]):
    """The Monday (UTC) of a timestamp's ISO week, as text `YYYY-MM-DD`; NULL for NULL."""

    type = String()
    name = "week_start"
    inherit_cache = True


class month_start(FunctionElement[str]):
    """A timestamp's month (UTC), as text `YYYY-MM`; NULL for NULL."""

    type = String()
    name = "month_start"
    inherit_cache = True


# SQLite keeps timestamps as naive UTC text (models.UTCDateTime), `YYYY-MM-DD HH:MM:SS...`,
# whose date part its date functions read: 'weekday 0' moves to the next Sunday (or stays
# on one), six days back is Monday. Only the date part: SQLite rounds the time to
# milliseconds, which takes 23:59:59.9996 into the next day (and 9999-12-31 out of range).
@compiles(week_start, "sqlite")
def _week_start_sqlite(element: week_start, compiler: SQLCompiler, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    return f"date(substr({value}, 1, 10), 'weekday 0', '-6 days')"


@compiles(month_start, "sqlite")
def _month_start_sqlite(element: month_start, compiler: SQLCompiler, **kw: Any) -> str:
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 7)"


# PostgreSQL keeps timestamptz; date_trunc works in the session's zone unless given UTC.
@compiles(week_start, "postgresql")
def _week_start_postgresql(element: week_start, compiler: SQLCompiler, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    return f"to_char(date_trunc('week', ({value}) AT TIME ZONE 'UTC'), 'YYYY-MM-DD')"


@compiles(month_start, "postgresql")
def _month_start_postgresql(element: month_start, compiler: SQLCompiler, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    return f"to_char(date_trunc('month', ({value}) AT TIME ZONE 'UTC'), 'YYYY-MM')"


def driver_rows(
    connection: Connection, statement: ClauseElement, *, batch: int = 2000
) -> Iterator[tuple[Any, ...]]:
    """The rows of `statement` as the DBAPI cursor gives them, `batch` at a time: no Row
    objects and no result processing, so its columns must need none (integers, text).
    On PostgreSQL a server-side cursor, so that memory does not grow with the answer.
    The statement runs in `connection`'s transaction."""
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    assert isinstance(compiled, SQLCompiler)
    parameters: Any = compiled.params
    if compiled.positiontup is not None:  # qmark (pysqlite): in the order they appear
        parameters = tuple(parameters[name] for name in compiled.positiontup)
    raw: Any = connection.connection.dbapi_connection
    if dialect.name == "postgresql":
        for setting in POSTGRES_STREAMING:
            raw.execute(setting)
        cursor = raw.cursor(name=f"catalog_rows_{next(CURSOR_NUMBERS)}")
    else:
        cursor = raw.cursor()
    try:
        cursor.execute(compiled.string, parameters)
        while rows := cursor.fetchmany(batch):
            yield from rows
    finally:
        # A reader that stopped early may close this after its connection has gone.
        with contextlib.suppress(Exception):
            cursor.close()


class SessionReader:
    """A session as a Reader (catalog.db.reader): SQL text with `:name` parameters, run
    in the session's transaction through the driver's cursor (`driver_rows`)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    def rows(
        self, sql: str, params: Mapping[str, Any], *, stream: bool = True
    ) -> Iterator[tuple[Any, ...]]:
        if stream:
            return driver_rows(self.session.connection(), text(sql).bindparams(**params))
        if self.session.autoflush:  # as the ORM's own queries do: pending rows are seen
            self.session.flush()
        return iter([tuple(row) for row in self.session.execute(text(sql), dict(params))])
