"""Damaging a catalog on purpose, and reading back what it holds (rows, tables, files)."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from catalog.context import Catalog
from catalog.db.models import Base, Blob, Image, ImageReference, Layer
from catalog.services.kept_facts import (
    KEPT_COLUMNS,
    kept_fact_differences,
    rewrite_kept_facts,
)
from catalog.storage.content import TEMPORARY_PREFIX

HOUR = 3600.0


def sql(catalog: Catalog, statement: str, /, **params: Any) -> int:
    """Run one statement in a write transaction, foreign keys enforced; the rows it hit.

    The facts kept for the listing are then recomputed from the damaged rows, as if the
    damage had come through the writers: a test damages one fact at a time (use
    `sql_leaving_kept_facts` to damage the kept facts themselves)."""
    hit = sql_leaving_kept_facts(catalog, statement, **params)
    recompute_kept_facts(catalog)
    return hit


def sql_leaving_kept_facts(catalog: Catalog, statement: str, /, **params: Any) -> int:
    """Run one statement in a write transaction, and nothing else; the rows it hit."""
    with catalog.database.write() as session:
        result = session.execute(text(statement), params)
        return int(result.rowcount)  # type: ignore[attr-defined]


def recompute_kept_facts(catalog: Catalog) -> None:
    """Make the facts kept for the listing what the rows give (as `fsck --repair` does)."""
    with catalog.database.write() as session:
        rewrite_kept_facts(session=session)


def kept_facts_differences(catalog: Catalog) -> list[str]:
    """Every kept fact that is not what the rows give, one line each (none, normally)."""
    with catalog.database.read() as session:
        return [f"{d.subject}: {d.detail()}" for d in kept_fact_differences(session=session)]


def sql_without_foreign_keys(catalog: Catalog, *statements: str, **params: Any) -> None:
    """Run statements with foreign keys off, as only a bug or a hand edit could; then
    recompute the kept facts, as `sql` does."""
    url = catalog.location.database_url
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        connection = sqlite3.connect(url.database)  # foreign keys are off by default
        try:
            for statement in statements:
                connection.execute(statement, params)
            connection.commit()
        finally:
            connection.close()
    else:
        with catalog.database.engine.begin() as connection:
            # Replica mode skips the triggers PostgreSQL checks foreign keys with.
            connection.execute(text("SET LOCAL session_replication_role = replica"))
            for statement in statements:
                connection.execute(text(statement), params)
    recompute_kept_facts(catalog)


def age(path: Path, seconds: float = 2 * HOUR) -> Path:
    """Make `path` look last modified `seconds` ago."""
    when = time.time() - seconds
    os.utime(path, (when, when))
    return path


def age_store(catalog: Catalog, seconds: float = 2 * HOUR) -> None:
    """Age every file in the store (blobs and temporary files)."""
    for path in catalog.store.directory.iterdir():
        age(path, seconds)


def temporary_file(catalog: Catalog, name: str, data: bytes) -> Path:
    path = catalog.store.directory / f"{TEMPORARY_PREFIX}{name}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def table_rows(
    catalog: Catalog, *, with_kept_facts: bool = True
) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted: the catalog's whole state in the database
    (without the facts kept for the listing, which move with every write, if told)."""
    found = {}
    with catalog.database.read() as session:
        for table in Base.metadata.sorted_tables:
            left_out = () if with_kept_facts else KEPT_COLUMNS.get(table.name, ())
            columns = [column for column in table.columns if column.name not in left_out]
            rows = session.execute(select(*columns))
            found[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return found


def row_counts(catalog: Catalog) -> dict[str, int]:
    """How many rows each table holds."""
    with catalog.database.read() as session:
        return {
            table.name: session.scalar(select(func.count()).select_from(table)) or 0
            for table in Base.metadata.sorted_tables
        }


def layer_rows(catalog: Catalog) -> set[str]:
    with catalog.database.read() as session:
        return set(session.scalars(select(Layer.chain_id)))


def blob_rows(catalog: Catalog) -> set[str]:
    with catalog.database.read() as session:
        return set(session.scalars(select(Blob.digest)))


def image_rows(catalog: Catalog) -> set[str]:
    with catalog.database.read() as session:
        return set(session.scalars(select(Image.id)))


def reference_rows(catalog: Catalog) -> set[str]:
    with catalog.database.read() as session:
        return {
            f"{r}:{t}" if t else f"{r}@{d}"
            for r, t, d in session.execute(
                select(ImageReference.repository, ImageReference.tag, ImageReference.digest)
            )
        }


def blob_files(catalog: Catalog) -> set[str]:
    return {blob.digest for blob in catalog.store.iter_blobs()}


def store_entries(catalog: Catalog) -> set[str]:
    """Every name in the store's directory, temporary files included."""
    directory = catalog.store.directory
    return {p.name for p in directory.iterdir()} if directory.is_dir() else set()


def drop_image_rows(catalog: Catalog, image_id: str) -> None:
    """Delete an image's rows but leave its layers: what an interrupted or buggy delete
    could leave behind (its config, layer list, labels and history cascade)."""
    with catalog.database.write() as session:
        session.execute(text("DELETE FROM image_references WHERE image_id = :id"), {"id": image_id})
        session.execute(text("DELETE FROM images WHERE id = :id"), {"id": image_id})
    recompute_kept_facts(catalog)
