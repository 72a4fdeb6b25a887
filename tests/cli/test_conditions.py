"""Operating-system and database conditions at the CLI's edge: one line `Error: ...` naming
what failed, exit 1, never a traceback (STYLE.md item 6); a bug keeps its traceback."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError
from typer.testing import CliRunner

import catalog.cli.images as images_cli
from catalog.cli.main import app


def run(tmp_path: Path, *args: str, db: str | None = None) -> Any:
    options = ["--root", str(tmp_path / "root")]
    if db is not None:
        options += ["--db", db]
    return CliRunner().invoke(app, [*options, *args])


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not a database, only words; " * 100)
    result = run(tmp_path, "images", db=f"sqlite:///{bogus}")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: cannot open the database sqlite:///{bogus}: file is not a database\n"
    )


def test_a_truncated_database(tmp_path: Path) -> None:
    assert run(tmp_path, "images").exit_code == 0
    whole = (tmp_path / "root" / "catalog.db").read_bytes()
    cut = tmp_path / "cut.db"
    cut.write_bytes(whole[: len(whole) // 3])
    result = run(tmp_path, "images", db=f"sqlite:///{cut}")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot open the database sqlite:///{cut}: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("raised", "line"),
    [
        (OSError(28, "No space left on device"), "no space left on device"),
        (PermissionError(13, "Permission denied", "/x/y"), "permission denied: /x/y"),
        (
            OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full")),
            "database {db}: database or disk is full",
        ),
        # A listing's reader raises its driver's own (catalog.db.reader).
        (sqlite3.OperationalError("disk I/O error"), "database {db}: disk I/O error"),
        (
            psycopg.OperationalError("server closed the connection unexpectedly\nmore"),
            "database {db}: server closed the connection unexpectedly",
        ),
    ],
)
def test_conditions_inside_a_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raised: Exception, line: str
) -> None:
    def failing(**kwargs: Any) -> Any:
        raise raised

    monkeypatch.setattr(images_cli, "listing_query", failing)
    result = run(tmp_path, "images")
    assert result.exit_code == 1
    db = f"sqlite:///{tmp_path / 'root' / 'catalog.db'}"
    assert result.stderr == f"Error: {line.format(db=db)}\n"


def test_a_bug_keeps_its_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(**kwargs: Any) -> Any:
        raise IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))

    monkeypatch.setattr(images_cli, "listing_query", failing)
    result = run(tmp_path, "images")
    assert isinstance(result.exception, IntegrityError)
