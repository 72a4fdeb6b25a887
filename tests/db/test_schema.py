"""Migrations: one head, exactly the models' schema, up/down/up, and the revision gate."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from support.builders import ImageBuilder, diff_id, image_config, layer_tar
from support.surgery import table_rows
from typer.testing import CliRunner

from catalog.cli.main import app
from catalog.context import Catalog, open_catalog
from catalog.db import revision, schema
from catalog.db.engine import create_catalog_engine
from catalog.db.models import Base
from catalog.domain.reference import parse_normalized_named, with_digest, with_name
from catalog.errors import SchemaOutOfDate
from catalog.operations.demo import build_demo
from catalog.services.images import set_reference
from catalog.settings import Location, normalize_database_url


def describe_schema(engine: Engine) -> dict[str, Any]:
    """Everything reflection tells about catalog's tables, in a comparable form."""
    inspector = inspect(engine)
    tables: dict[str, Any] = {}
    for table in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
        tables[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], c.get("autoincrement"))
                for c in inspector.get_columns(table)
            ],
            "primary_key": inspector.get_pk_constraint(table),
            "foreign_keys": sorted(
                (
                    fk["name"],
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                    fk["options"].get("ondelete"),
                )
                for fk in inspector.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                for ix in inspector.get_indexes(table)
            ),
            "unique": sorted(
                (uq["name"], tuple(uq["column_names"]))
                for uq in inspector.get_unique_constraints(table)
            ),
            "checks": sorted(
                (ck["name"], " ".join(ck["sqltext"].split()))
                for ck in inspector.get_check_constraints(table)
            ),
            "options": inspector.get_table_options(table),
        }
    return tables


def test_migrations_have_one_head() -> None:
    script = ScriptDirectory.from_config(schema.alembic_config())
    assert len(script.get_heads()) == 1


def test_the_gate_knows_the_head() -> None:
    """The schema gate compares with the head revision recorded in catalog.db.revision
    (so that opening a catalog needs no Alembic): a new migration must move it."""
    assert schema.head_revision() == revision.HEAD_REVISION


def test_migrating_an_empty_database_gives_the_models_schema(
    new_db_url: Callable[[], str],
) -> None:
    migrated = create_catalog_engine(new_db_url())
    modelled = create_catalog_engine(new_db_url())
    try:
        schema.upgrade(migrated)
        Base.metadata.create_all(modelled)
        assert describe_schema(migrated) == describe_schema(modelled)
        assert set(describe_schema(migrated)) == set(Base.metadata.tables)
        assert schema.schema_drift(migrated) == []
    finally:
        migrated.dispose()
        modelled.dispose()


def test_sqlite_tables_keep_without_rowid(tmp_path: Path) -> None:
    engine = create_catalog_engine(f"sqlite:///{tmp_path / 'c.db'}")
    schema.upgrade(engine)
    with engine.connect() as connection:
        ddl = dict(
            connection.execute(text("SELECT name, sql FROM sqlite_master WHERE type='table'")).all()
        )
    engine.dispose()
    for table in ("image_layers", "image_labels", "image_history"):
        assert "WITHOUT ROWID" in ddl[table]


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    engine = create_catalog_engine(db_url)
    try:
        assert schema.upgrade(engine).after == schema.head_revision()
        assert schema.downgrade(engine, "base") is None
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        schema.upgrade(engine)
        assert schema.schema_drift(engine) == []
        assert schema.schema_state(engine).is_current
    finally:
        engine.dispose()


def test_drift_is_detected(db_url: str) -> None:
    engine = create_catalog_engine(db_url)
    try:
        schema.upgrade(engine)
        with engine.begin() as connection:
            connection.execute(text("DROP INDEX ix_images_created"))
        drift = schema.schema_drift(engine)
        assert [d[0] for d in drift] == ["add_index"]
    finally:
        engine.dispose()


@pytest.fixture
def migrations_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process's migrations, in a copy that a test may add a revision to."""
    copy = tmp_path / "migrations"
    shutil.copytree(schema.migrations_dir(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(schema, "migrations_dir", lambda: copy)
    return copy


def test_the_next_revision_is_generated_from_the_models(db_url: str, migrations_copy: Path) -> None:
    engine = create_catalog_engine(db_url)
    try:
        head = schema.head_revision()
        expected = f"{int(head) + 1:04d}"
        # The models have an index the database lacks, as after a change to models.py.
        with engine.begin() as connection:
            connection.execute(text("DROP INDEX ix_images_created"))
        path = schema.new_revision(engine, "Index images by creation time")
        assert path.parent == migrations_copy / "versions"
        assert path.name == f"{expected}_index_images_by_creation_time.py"
        written = path.read_text()
        assert f"revision: str = {expected!r}" in written
        assert f"down_revision: str | None = {head!r}" in written
        assert "batch_alter_table" in written and "create_index" in written
        assert schema.head_revision() == expected
        schema.upgrade(engine)  # the generated revision makes the database the models' again
        assert schema.schema_drift(engine) == []
        schema.downgrade(engine, head)
        assert [d[0] for d in schema.schema_drift(engine)] == ["add_index"]
    finally:
        engine.dispose()


def test_db_revision_command(cli: Callable[..., Any], migrations_copy: Path) -> None:
    revisions = sorted(p.name for p in (migrations_copy / "versions").glob("0*.py"))
    refused = cli("db", "revision", "-m", "nothing", exit_code=1)
    assert refused.stderr.startswith("Error: the models and the database agree")
    assert sorted(p.name for p in (migrations_copy / "versions").glob("0*.py")) == revisions
    written = cli("db", "revision", "-m", "Backfill something", "--empty").stdout
    path = Path(written.removeprefix("Wrote ").strip())
    assert path.name == f"{int(revisions[-1][:4]) + 1:04d}_backfill_something.py"
    assert "def upgrade() -> None:\n    pass" in path.read_text()


def test_new_catalog_is_created_on_first_use(location: Location) -> None:
    with open_catalog(location) as catalog:
        assert schema.schema_state(catalog.database.engine).is_current


def test_older_revision_is_refused_with_the_command_to_run(
    location: Location, newer_catalog: str
) -> None:
    engine = create_catalog_engine(location.database_url)
    # Build the database at the real head, as the previous release would have left it.
    schema.upgrade(engine, newer_catalog)
    engine.dispose()
    with pytest.raises(SchemaOutOfDate, match=r"run `catalog db upgrade`"):
        open_catalog(location)


def test_newer_revision_is_refused(
    location: Location, newer_catalog: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_catalog_engine(location.database_url)
    schema.upgrade(engine)  # to 9999, which the real catalog does not know
    engine.dispose()
    monkeypatch.undo()  # back to the real catalog's migrations
    with pytest.raises(SchemaOutOfDate, match="written by a newer catalog"):
        open_catalog(location)


def test_upgrading_a_newer_database_is_refused_before_any_backup(
    tmp_path: Path, newer_catalog: str, monkeypatch: pytest.MonkeyPatch, runner: CliRunner
) -> None:
    """The issue's case: `db upgrade` wrote a .bak, then failed with a traceback."""
    database = tmp_path / "catalog.db"
    engine = create_catalog_engine(f"sqlite:///{database}")
    schema.upgrade(engine)  # to 9999
    engine.dispose()
    monkeypatch.undo()
    result = runner.invoke(
        app, ["--root", str(tmp_path / "root"), "--db", f"sqlite:///{database}", "db", "upgrade"]
    )
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        f"Error: the catalog database is at schema revision 9999, unknown to this catalog"
        f" (head {newer_catalog}): it was written by a newer catalog; upgrade catalog\n"
    )
    assert list(tmp_path.glob("*.bak")) == []  # no backup written


def test_upgrade_backs_up_a_sqlite_file_first(tmp_path: Path, newer_catalog: str) -> None:
    location = Location(
        root=tmp_path / "root",
        database_url=normalize_database_url(f"sqlite:///{tmp_path / 'catalog.db'}"),
    )
    engine = create_catalog_engine(location.database_url)
    schema.upgrade(engine, newer_catalog)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO blobs (digest, size, created_at)"
                " VALUES (:d, 1, '2024-01-01 00:00:00.000000')"
            ),
            {"d": "sha256:" + "a" * 64},
        )
    result = schema.upgrade(engine)
    engine.dispose()
    assert (result.before, result.after) == (newer_catalog, "9999")
    assert result.backup is not None and result.backup.parent == tmp_path
    backup = sqlite3.connect(result.backup)
    try:
        assert backup.execute("SELECT version_num FROM alembic_version").fetchone() == (
            newer_catalog,
        )
        assert backup.execute("SELECT count(*) FROM blobs").fetchone() == (1,)
    finally:
        backup.close()


def test_0006_backfills_what_the_writers_keep(
    catalog: Catalog, images: ImageBuilder, tmp_path: Path
) -> None:
    """Down to 0005 (the kept columns dropped) and up again: the migration's backfill
    gives exactly what the writers kept, and every other row is as it was."""
    build_demo(catalog, workdir=tmp_path / "demo", now=datetime(2026, 1, 1, tzinfo=UTC))
    labelled = images.add(
        [layer_tar({"a": b"a" * 10})],
        tags=["labelled:1", "registry.example.com:5000/team/labelled:2"],
        labels={"z": "<&>", "a": "\u00e9\u2028", "m": ""},
        created=datetime(1960, 2, 29, 12, 0, 0, 123456, tzinfo=UTC),
    )
    undated = layer_tar({"u": b"u"})
    images.add(
        [undated],
        # Docker's zero time: no creation time.
        config=image_config([diff_id(undated)], extra={"created": "0001-01-01T00:00:00Z"}),
    )
    with catalog.database.write() as session:
        for repository in ("labelled", "docker.io/org/labelled"):
            name = with_name(parse_normalized_named(repository).name)
            set_reference(
                session=session,
                reference=with_digest(name, "sha256:" + "d" * 64),
                image_id=labelled,
            )
    before = table_rows(catalog)
    assert any("labelled@sha256:" in str(row) for row in before["images"])  # kept by the writers
    engine = catalog.database.engine
    schema.downgrade(engine, "0005")
    assert "sort_key" not in {c["name"] for c in inspect(engine).get_columns("images")}
    schema.upgrade(engine)
    assert table_rows(catalog) == before
