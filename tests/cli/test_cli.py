"""The command line: global options, `info`, `db`, and errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from catalog import __version__
from catalog.cli.main import app
from catalog.db import schema
from catalog.db.engine import create_catalog_engine
from catalog.settings import (
    Location,
    default_root,
    plain_postgres_conninfo,
    plain_sqlite_file,
    resolve_location,
)


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"catalog {__version__}\n"


def test_info_creates_and_describes_a_new_catalog(cli: Callable[..., Result], root: Path) -> None:
    assert not root.exists()
    result = cli("info")
    assert root.is_dir()
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines())
    assert lines["Root"].strip() == str(root)
    assert lines["Schema revision"].strip() == f"{schema.head_revision()} (head)"
    for name in ("Images", "Layers", "References", "Containers"):
        assert lines[name].strip() == "0"
    assert lines["Store size"].strip() == "0B (0 blobs)"


def test_info_json(cli: Callable[..., Result], root: Path) -> None:
    facts = json.loads(cli("info", "--format", "json").stdout)
    assert facts["root"] == str(root)
    assert facts["schema_revision"] == schema.head_revision()
    assert facts["images"] == facts["containers"] == facts["store_bytes"] == 0


def test_database_password_is_hidden(runner: CliRunner, tmp_path: Path) -> None:
    url = "postgresql+psycopg://someone:s3cret-pw@127.0.0.1:1/nowhere"
    result = runner.invoke(app, ["--root", str(tmp_path), "--db", url, "info"])
    assert result.exit_code == 1
    assert "s3cret-pw" not in result.output
    assert result.stderr.startswith(
        "Error: cannot open the database postgresql+psycopg://someone:***@"
    )
    assert len(result.stderr.splitlines()) == 1


def test_unsupported_database_is_one_line(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["--root", str(tmp_path), "--db", "mysql://x/y", "info"])
    assert result.exit_code == 1
    assert (
        result.stderr
        == "Error: unsupported database 'mysql': use sqlite:/// or postgresql+psycopg://\n"
    )


def test_usage_error_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--no-such-option"])
    assert result.exit_code == 2


def test_root_and_database_from_the_environment(runner: CliRunner, tmp_path: Path) -> None:
    root = tmp_path / "env-root"
    result = runner.invoke(app, ["info", "--format", "json"], env={"CATALOG_ROOT": str(root)})
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    assert facts["root"] == str(root)
    assert facts["database"] == f"sqlite:///{root / 'catalog.db'}"
    other_db = tmp_path / "elsewhere.db"
    result = runner.invoke(
        app,
        ["info", "--format", "json"],
        env={"CATALOG_ROOT": str(root), "CATALOG_DATABASE_URL": f"sqlite:///{other_db}"},
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["database"] == f"sqlite:///{other_db}"
    assert other_db.exists()


def test_default_root_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_root() == tmp_path / "xdg" / "catalog"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_root() == tmp_path / "home" / ".local" / "share" / "catalog"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_root() == tmp_path / "home" / ".local" / "share" / "catalog"


@pytest.mark.parametrize(
    "url",
    [
        None,
        "sqlite:///relative/catalog.db",
        "sqlite:////abs/catalog.db",
        "sqlite+pysqlite:////abs/catalog.db",
        "sqlite:////abs/c%20d.db",
        "sqlite:////abs/c.db?mode=ro",
        "sqlite:///:memory:",
        "sqlite://",
        "postgresql://u@h/db",
    ],
)
def test_a_plain_sqlite_file_is_the_one_the_url_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str | None
) -> None:
    """`catalog images` reads a SQLite file without parsing its URL (docs/listing.md §13):
    only when the file is plain to see, and then the very file SQLAlchemy would open."""
    monkeypatch.delenv("CATALOG_DATABASE_URL", raising=False)
    plain = plain_sqlite_file(tmp_path, url)
    location = resolve_location(tmp_path, url)
    database = location.database_url.database
    plain_url = url is None or not any(c in url for c in "%?")
    if location.is_sqlite and plain_url and database not in (None, ":memory:"):
        assert plain == Path(database)  # type: ignore[arg-type]
    else:
        assert plain is None


def test_a_postgresql_url_is_a_libpq_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    """`catalog images` connects with psycopg alone (docs/listing.md §13): SQLAlchemy's
    URL, its driver name dropped, is libpq's URI for the same database."""
    monkeypatch.delenv("CATALOG_DATABASE_URL", raising=False)
    url = "postgresql+psycopg://u%40x:p%2Fw@h:5433/db?sslmode=disable"
    assert plain_postgres_conninfo(url) == "postgresql://u%40x:p%2Fw@h:5433/db?sslmode=disable"
    assert plain_postgres_conninfo("postgres://h/db") == "postgresql://h/db"
    assert plain_postgres_conninfo("sqlite:///x.db") is None
    assert plain_postgres_conninfo(None) is None


def test_db_commands(runner: CliRunner, root: Path, empty_db_url: str) -> None:
    def cli(*args: str) -> Result:
        result = runner.invoke(app, ["--root", str(root), "--db", empty_db_url, *args])
        assert result.exit_code == 0, result.output
        return result

    head = schema.head_revision()
    assert cli("db", "upgrade").stdout == f"Upgraded database from empty to {head}\n"
    assert cli("db", "upgrade").stdout == f"Database already at {head} (head)\n"
    assert cli("db", "current").stdout == f"{head} (head)\n"
    assert "No drift" in cli("db", "check").stdout


def test_db_check_reports_drift(cli: Callable[..., Result], db_url: str) -> None:
    from sqlalchemy import text

    from catalog.db.engine import create_catalog_engine

    cli("db", "upgrade")
    engine = create_catalog_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_containers_image_id_state"))
    engine.dispose()
    result = cli("db", "check", exit_code=1)
    assert "drift:" in result.stderr
    assert "ix_containers_image_id_state" in result.stderr


def test_out_of_date_catalog_is_refused_then_upgraded(
    cli: Callable[..., Result], db_url: str, location: Location, newer_catalog: str
) -> None:
    head = newer_catalog
    engine = create_catalog_engine(location.database_url)
    schema.upgrade(engine, head)  # as the previous release left it
    engine.dispose()

    refused = cli("info", exit_code=1)
    assert refused.stderr == (
        f"Error: the catalog database is at schema revision {head}, this catalog needs 9999: "
        "run `catalog db upgrade`\n"
    )
    # A listing, which reads a SQLite file without SQLAlchemy, is refused in the same words.
    assert cli("images", exit_code=1).stderr == refused.stderr
    upgraded = cli("db", "upgrade")
    assert f"Upgraded database from {head} to 9999" in upgraded.stdout
    if db_url.startswith("sqlite"):
        assert "Backed up" in upgraded.stdout
    assert "9999 (head)" in cli("info").stdout


def test_cli_as_a_subprocess(run_catalog: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """The installed console script, run from elsewhere so the source tree can't shadow it."""
    done = run_catalog("info", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["schema_revision"] == schema.head_revision()
    failed = run_catalog("--db", "mysql://x/y", "info")
    assert failed.returncode == 1
    assert failed.stderr.count("\n") == 1 and "Traceback" not in failed.stderr
