"""The engine's connection policy, read back from real databases."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError

from catalog.context import Catalog
from catalog.db.engine import Database, create_catalog_engine
from catalog.db.models import Blob, Image, ImageLayer, ImageReference
from catalog.db.reader import BUSY_TIMEOUT_MS
from catalog.db.schema import ensure_schema
from catalog.domain.digest import sha256_digest


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Database:
    engine = create_catalog_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    ensure_schema(engine)
    return Database(engine)


def test_sqlite_pragmas_are_set_on_every_connection(sqlite_database: Database) -> None:
    with sqlite_database.engine.connect() as connection:
        pragmas = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("foreign_keys", "journal_mode", "busy_timeout", "synchronous")
        }
    assert pragmas == {
        "foreign_keys": 1,
        "journal_mode": "wal",
        "busy_timeout": BUSY_TIMEOUT_MS,
        "synchronous": 1,  # NORMAL
    }


def test_sqlite_savepoint_rolls_back_only_its_part(sqlite_database: Database) -> None:
    # Without the explicit BEGIN, pysqlite's own transaction handling makes this silently
    # keep the inner insert.
    kept, dropped = sha256_digest(b"kept"), sha256_digest(b"dropped")
    with sqlite_database.write() as session:
        session.add(Blob(digest=kept, size=4))
        session.flush()
        nested = session.begin_nested()
        session.add(Blob(digest=dropped, size=7))
        session.flush()
        nested.rollback()
    with sqlite_database.read() as session:
        assert set(session.scalars(select(Blob.digest))) == {kept}


def test_sqlite_writer_takes_the_write_lock_at_begin(
    sqlite_database: Database, tmp_path: Path
) -> None:
    with sqlite_database.write() as session:
        session.execute(select(1))  # the transaction has begun; nothing written yet
        other = sqlite3.connect(tmp_path / "catalog.db", isolation_level=None, timeout=0)
        try:
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("BEGIN IMMEDIATE")
            # Readers are not blocked (WAL).
            assert other.execute("SELECT count(*) FROM blobs").fetchone() == (0,)
        finally:
            other.close()


def test_reader_session_never_writes(sqlite_database: Database) -> None:
    with sqlite_database.read() as session:
        session.add(Blob(digest=sha256_digest(b"x"), size=1))
        session.flush()
    with sqlite_database.read() as session:
        assert session.scalar(select(func.count()).select_from(Blob)) == 0


WRITER = textwrap.dedent(
    """
    import sys
    from sqlalchemy import func, select
    from catalog.context import open_catalog
    from catalog.domain.digest import sha256_digest
    from catalog.db.models import Blob
    from catalog.settings import Location, normalize_database_url
    from pathlib import Path

    url, root, tag, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    location = Location(root=Path(root), database_url=normalize_database_url(url))
    with open_catalog(location) as catalog:
        for i in range(count):
            # read-then-write in one transaction: the pattern that deadlocks without
            # BEGIN IMMEDIATE ("database is locked" at the first write)
            with catalog.database.write() as session:
                n = session.scalar(select(func.count()).select_from(Blob))
                session.add(Blob(digest=sha256_digest(f"{tag}-{i}".encode()), size=n))
    print("ok")
    """
)


def test_two_processes_write_at_once(catalog: Catalog, db_url: str, tmp_path: Path) -> None:
    per_process = 60
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, db_url, str(tmp_path / "root"), tag, str(per_process)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        assert "database is locked" not in err
        assert out.strip() == "ok"
    with catalog.database.read() as session:
        assert session.scalar(select(func.count()).select_from(Blob)) == 2 * per_process


def test_foreign_keys_are_enforced(catalog: Catalog) -> None:
    missing = sha256_digest(b"no such layer")
    image_id = sha256_digest(b"{}")
    with pytest.raises(IntegrityError), catalog.database.write() as session:
        session.add(Image(id=image_id, os="linux", architecture="amd64", size=0))
        session.flush()
        session.add(ImageLayer(image_id=image_id, position=0, chain_id=missing))
        session.flush()


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:" + "A" * 64,  # upper case
        "sha256:" + "0" * 63,  # short
        "sha512:" + "0" * 64,  # wrong algorithm
        "sha256:" + "0" * 63 + "g",  # not hex
        "0" * 71,
    ],
)
def test_digest_shape_is_checked_by_the_database(catalog: Catalog, digest: str) -> None:
    with catalog.database.write() as session, pytest.raises(IntegrityError):
        session.execute(insert(Blob).values(digest=digest, size=0, created_at=func.now()))


@pytest.mark.rows_by_hand
def test_one_image_per_repository_tag(catalog: Catalog) -> None:
    first, second = sha256_digest(b"1"), sha256_digest(b"2")
    with catalog.database.write() as session:
        for image_id in (first, second):
            session.add(Image(id=image_id, os="linux", architecture="amd64", size=0))
        session.add(ImageReference(repository="docker.io/library/a", tag="latest", image_id=first))
    with pytest.raises(IntegrityError), catalog.database.write() as session:
        session.add(ImageReference(repository="docker.io/library/a", tag="latest", image_id=second))
        session.flush()


def test_reference_is_a_tag_or_a_digest_never_both(catalog: Catalog) -> None:
    image_id = sha256_digest(b"1")
    with catalog.database.write() as session:
        session.add(Image(id=image_id, os="linux", architecture="amd64", size=0))
    with pytest.raises(IntegrityError), catalog.database.write() as session:
        session.add(
            ImageReference(
                repository="docker.io/library/a", tag="1", digest=image_id, image_id=image_id
            )
        )
        session.flush()


@pytest.mark.rows_by_hand
def test_datetimes_come_back_as_utc(catalog: Catalog) -> None:
    from datetime import datetime, timedelta, timezone

    created = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    image_id = sha256_digest(b"t")
    with catalog.database.write() as session:
        session.add(Image(id=image_id, os="linux", architecture="amd64", size=0, created=created))
    with catalog.database.read() as session:
        stored = session.scalar(select(Image.created))
        later = session.scalar(
            select(func.count()).where(Image.created > created - timedelta(microseconds=1))
        )
    assert stored == created
    assert stored is not None and stored.utcoffset() == timedelta(0)
    assert later == 1
    with catalog.database.read() as session:
        assert session.execute(text("SELECT count(*) FROM images")).scalar() == 1


def test_writers_run_one_at_a_time(catalog: Catalog) -> None:
    """While a writer is open, a second writer can't start (readers still can)."""
    from catalog.db.engine import WRITER_LOCK

    with catalog.database.write() as session:
        session.execute(select(1))
        with catalog.database.engine.connect() as other:
            if catalog.database.dialect == "postgresql":
                taken = other.execute(
                    text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": WRITER_LOCK}
                ).scalar()
                assert taken is False
            else:
                other.exec_driver_sql("PRAGMA busy_timeout = 0")
                with pytest.raises(Exception, match="database is locked"):
                    other.exec_driver_sql("BEGIN IMMEDIATE")
            assert other.execute(select(func.count()).select_from(Blob)).scalar() == 0
            other.rollback()


def test_a_writer_waits_out_a_busy_lock_instead_of_failing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite gives up waiting for the write lock after busy_timeout ("database is
    locked"); the lock is taken before any work, so it is taken again, and the writer is
    never told (issue 12: no "database is locked" surfaced)."""
    from catalog.db import engine as engine_module
    from catalog.db import reader as reader_module

    monkeypatch.setattr(
        reader_module,
        "SQLITE_PRAGMAS",
        tuple(
            "PRAGMA busy_timeout = 100" if "busy_timeout" in p else p
            for p in reader_module.SQLITE_PRAGMAS
        ),
    )
    monkeypatch.setattr(engine_module, "LOCK_RETRY_DELAY", 0.05)
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    holder = engine_module.Database(engine_module.create_catalog_engine(url))
    waiter = engine_module.Database(engine_module.create_catalog_engine(url))
    with holder.write() as session:
        session.execute(text("CREATE TABLE t (x INTEGER)"))
    held = threading.Event()

    def hold() -> None:
        with holder.write() as session:
            session.execute(text("INSERT INTO t VALUES (1)"))
            held.set()
            time.sleep(0.6)  # several busy timeouts of the waiter

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10)
    started = time.monotonic()
    with waiter.write() as session:
        session.execute(text("INSERT INTO t VALUES (2)"))
    thread.join()
    assert time.monotonic() - started >= 0.3
    with waiter.read() as session:
        assert sorted(session.scalars(text("SELECT x FROM t"))) == [1, 2]
    holder.dispose()
    waiter.dispose()
