"""Shared fixtures. The backend is SQLite unless CATALOG_TEST_DATABASE_URL names a
PostgreSQL server, in which case every test gets a fresh database on it.

CATALOG_TEST_REQUIRE_ALL=1 (set by .ci/run) turns every skip into a failure, so CI can't
pass by skipping what it was meant to check. Helpers that are not fixtures are in
tests/support/; the tests are grouped as the package is (domain/, storage/, db/, ...).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from support import killed_catalog
from support.builders import ImageBuilder
from support.environment import REQUIRE_ALL_ENV, TEST_DATABASE_URL_ENV, console_script, strict
from support.surgery import kept_facts_differences
from typer.testing import CliRunner, Result

from catalog.cli.main import app
from catalog.context import Catalog, open_catalog
from catalog.db import revision, schema
from catalog.db.engine import create_catalog_engine
from catalog.settings import Location, normalize_database_url


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if strict() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under {REQUIRE_ALL_ENV}=1: {report.longrepr}"


def pytest_report_header() -> str:
    url = os.environ.get(TEST_DATABASE_URL_ENV)
    backend = make_url(url).render_as_string(hide_password=True) if url else "SQLite (default)"
    return f"catalog test backend: {backend}; strict: {strict()}"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database migrated to the current schema, copied for each test that needs a
    catalog (migrating each time would cost more than the test)."""
    server_url = os.environ.get(TEST_DATABASE_URL_ENV)
    if not server_url:
        path = tmp_path_factory.mktemp("template") / "catalog.db"
        engine = create_catalog_engine(f"sqlite:///{path}")
        schema.upgrade(engine)
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        yield str(path)
        return
    admin_url = normalize_database_url(server_url)
    name = f"catalog_template_{uuid.uuid4().hex[:16]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_catalog_engine(admin_url.set(database=name))
    schema.upgrade(engine)
    engine.dispose()  # CREATE DATABASE ... TEMPLATE needs it without connections
    yield name
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def new_db_url(tmp_path: Path, migrated_template: str) -> Iterator[Callable[..., str]]:
    """Make URLs of new databases on the backend under test, empty or (`migrated=True`)
    at the current schema; dropped afterwards."""
    server_url = os.environ.get(TEST_DATABASE_URL_ENV)
    made: list[str] = []
    admin_url = normalize_database_url(server_url) if server_url else None
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT") if admin_url else None

    def make(*, migrated: bool = False) -> str:
        name = f"catalog_test_{uuid.uuid4().hex[:16]}"
        if admin is None or admin_url is None:
            path = tmp_path / (name + ".db")
            if migrated:
                shutil.copyfile(migrated_template, path)
            return f"sqlite:///{path}"
        template = f' TEMPLATE "{migrated_template}"' if migrated else ""
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"{template}'))
        made.append(name)
        return admin_url.set(database=name).render_as_string(hide_password=False)

    yield make
    if admin is not None:
        with admin.connect() as connection:
            for name in made:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def db_url(new_db_url: Callable[..., str]) -> str:
    """The URL of a new database at the current schema, on the backend under test."""
    return new_db_url(migrated=True)


@pytest.fixture
def empty_db_url(new_db_url: Callable[..., str]) -> str:
    """The URL of a new, empty database on the backend under test."""
    return new_db_url()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def location(root: Path, db_url: str) -> Location:
    return Location(root=root, database_url=normalize_database_url(db_url))


@pytest.fixture
def catalog(location: Location, request: pytest.FixtureRequest) -> Iterator[Catalog]:
    """An open, migrated, empty catalog. Afterwards, whatever the test wrote through
    catalog's writers, every fact kept for the listing must be what the rows give
    (docs/listing.md §12); tests marked `rows_by_hand` write rows themselves."""
    with open_catalog(location) as opened:
        yield opened
        if request.node.get_closest_marker("rows_by_hand") is None:
            differences = kept_facts_differences(opened)
            assert not differences, "kept facts differ from the rows:\n" + "\n".join(differences)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def cli(runner: CliRunner, root: Path, db_url: str) -> Callable[..., Result]:
    """Run `catalog --root ROOT --db URL ARGS...` in process; check the exit code."""

    def invoke(*args: str, exit_code: int | None = 0, **kwargs: Any) -> Result:
        result = runner.invoke(app, ["--root", str(root), "--db", db_url, *args], **kwargs)
        if exit_code is not None:
            assert result.exit_code == exit_code, (result.output, result.exception)
        return result

    return invoke


NEXT_REVISION = '''
"""A later revision, for tests."""
from alembic import op

revision = "9999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("containers") as batch_op:
        batch_op.create_index("ix_containers_created", ["created"])


def downgrade() -> None:
    with op.batch_alter_table("containers") as batch_op:
        batch_op.drop_index("ix_containers_created")
'''


@pytest.fixture
def newer_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Make this process a catalog whose schema has one more revision than the real one."""
    head = schema.head_revision()
    copy = tmp_path / "migrations"
    shutil.copytree(schema.migrations_dir(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "versions" / "9999_next.py").write_text(NEXT_REVISION.format(head=head))
    monkeypatch.setattr(schema, "migrations_dir", lambda: copy)
    # The head a build records for its schema gate (catalog.db.revision).
    monkeypatch.setattr(revision, "HEAD_REVISION", "9999")
    return head


@pytest.fixture
def images(catalog: Catalog) -> ImageBuilder:
    """Adds real images (layers in the store, rows in the database) to `catalog`."""
    return ImageBuilder(catalog)


@pytest.fixture
def run_catalog(
    root: Path, db_url: str, tmp_path: Path
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed `catalog` console script on this test's catalog, as a user would:
    a subprocess, started elsewhere so the source tree can't shadow the installed package.
    With `killed_at=POINT`, the CLI dies at that fault point as a kill would (exit 137)."""
    argv = [console_script()]
    env = {**os.environ, "CATALOG_ROOT": str(root), "CATALOG_DATABASE_URL": db_url}

    def run(
        *args: str, killed_at: str | None = None, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        options: dict[str, Any] = {"capture_output": True, "text": True, "timeout": 60}
        options.update(kwargs)
        started = (
            argv if killed_at is None else [sys.executable, killed_catalog.__file__, killed_at]
        )
        return subprocess.run([*started, *args], cwd=tmp_path, env=env, check=False, **options)

    return run
