"""`catalog` starts fast: `--version` and `--help` import no command module and none of
the heavy libraries, a listing of a SQLite catalog not even SQLAlchemy, and a command
imports what it needs and nothing more (Alembic only to migrate, Matplotlib only for HTML
reports, Starlette and uvicorn only to serve)."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from catalog.cli.image import ImageGroup
from catalog.cli.lazy import build_command
from catalog.cli.main import COMMANDS

HEAVY = (
    "sqlalchemy",
    "alembic",
    "psycopg",
    "rich",
    "matplotlib",
    "starlette",
    "uvicorn",
    "httpx",
    "zstandard",
)

# Run the CLI in a fresh interpreter; report which heavy libraries it imported.
PROBE = """
import json, sys
from catalog.cli.main import app
try:
    app(sys.argv[1:], prog_name="catalog")
except SystemExit:
    pass
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(HEAVY)))
print("\\nLOADED " + json.dumps(loaded), file=sys.stderr)
"""


def imported(*args: str, root: Path | None = None, db: str | None = None) -> list[str]:
    options = ["--root", str(root)] if root is not None else []
    options += ["--db", db] if db is not None else []
    code = PROBE.replace("json.loads(HEAVY)", repr(json.dumps(HEAVY)).join(("json.loads(", ")")))
    done = subprocess.run(
        [sys.executable, "-c", code, *options, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    line = [x for x in done.stderr.splitlines() if x.startswith("LOADED ")][-1]
    found: list[str] = json.loads(line.removeprefix("LOADED "))
    return found


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["image", "--help"]])
def test_version_and_help_import_nothing_heavy(args: list[str]) -> None:
    assert imported(*args) == []


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        # A SQLite file at the head revision is read through sqlite3 alone.
        (["images"], set()),
        (["images", "--format", "json"], set()),
        (["images", "-f", "reference=a*", "-f", "before=b", "-f", "label!=x"], set()),
        (["system", "df"], {"sqlalchemy"}),
        (["info"], {"sqlalchemy"}),
        (["report", "growth"], {"sqlalchemy"}),
        (["container", "ls"], {"sqlalchemy"}),
    ],
)
def test_a_command_imports_what_it_needs(
    tmp_path: Path, args: list[str], allowed: set[str]
) -> None:
    """The catalog exists (created by a first run): no Alembic on the way."""
    imported("db", "upgrade", root=tmp_path)
    assert set(imported(*args, root=tmp_path)) <= allowed


def test_a_listing_of_the_backend_under_test_imports_its_driver_alone(
    tmp_path: Path, db_url: str
) -> None:
    """SQLite through sqlite3, PostgreSQL through psycopg: no SQLAlchemy either way, and the
    same listing a session gives (the listing tests run both readers)."""
    expected = {"psycopg"} if db_url.startswith("postgresql") else set()
    args = ["images", "-a", "-f", "reference=a*", "-f", "label!=x", "-f", "until=2m"]
    assert set(imported(*args, root=tmp_path, db=db_url)) == expected


def first_paragraph(command: Any) -> str:
    return " ".join(inspect.cleandoc(command.help or "").split("\n\n")[0].split())


@pytest.mark.parametrize(
    ("name", "image_group"),
    [*((name, False) for name in COMMANDS), *((name, True) for name in ImageGroup.LAZY)],
)
def test_listed_summaries_are_the_commands_own(name: str, image_group: bool) -> None:
    table = ImageGroup.LAZY if image_group else COMMANDS
    command = build_command(name, table[name], image_group=image_group)
    assert table[name].summary == first_paragraph(command)
