"""Where a catalog lives: its root directory and its database URL.

Precedence for each: the command-line option, then the environment variable, then the default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from catalog.errors import InvalidArgument

if TYPE_CHECKING:  # SQLAlchemy is imported when a URL is parsed, not by `catalog --help`
    from sqlalchemy.engine import URL

ROOT_ENV = "CATALOG_ROOT"
DATABASE_URL_ENV = "CATALOG_DATABASE_URL"
DATABASE_FILE = "catalog.db"
BLOBS_DIR = "blobs"


def default_root() -> Path:
    """`$XDG_DATA_HOME/catalog`, else `~/.local/share/catalog` (XDG base directory spec)."""
    xdg = os.environ.get("XDG_DATA_HOME", "")
    # The spec says a relative XDG_DATA_HOME is invalid and must be ignored.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "catalog"


def normalize_database_url(url: str | URL) -> URL:
    """Parse a SQLAlchemy URL; plain `postgresql://` means psycopg 3, our PostgreSQL driver."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InvalidArgument(f"invalid database URL {str(url)!r}: {exc}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise InvalidArgument(
            f"unsupported database {parsed.get_backend_name()!r}: use sqlite:/// or postgresql+psycopg://"
        )
    return parsed


@dataclass(frozen=True)
class Location:
    """A catalog's root directory and the URL of its metadata database."""

    root: Path
    database_url: URL

    @property
    def blobs_dir(self) -> Path:
        return self.root / BLOBS_DIR

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.get_backend_name() == "sqlite"

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for printing."""
        return self.database_url.render_as_string(hide_password=True)


def _root_path(root: Path | str | None) -> Path:
    root_value = root if root is not None else os.environ.get(ROOT_ENV) or None
    root_path = Path(root_value).expanduser() if root_value is not None else default_root()
    return root_path.absolute()


def _url_text(database_url: str | None) -> str | None:
    return database_url if database_url is not None else os.environ.get(DATABASE_URL_ENV)


_PLAIN_SQLITE_SCHEMES = ("sqlite:///", "sqlite+pysqlite:///")


def plain_sqlite_file(
    root: Path | str | None = None, database_url: str | None = None
) -> Path | None:
    """The SQLite file the options name when that is plain to see without parsing a URL
    (which imports SQLAlchemy): the default database under the root, or `sqlite:///PATH`
    with nothing more; None for anything else (resolve_location parses it)."""
    url_value = _url_text(database_url)
    if not url_value:
        return _root_path(root) / DATABASE_FILE
    for scheme in _PLAIN_SQLITE_SCHEMES:
        path = url_value.removeprefix(scheme)
        if path != url_value:
            plain = path and path != ":memory:" and not path.startswith("file:")
            return Path(path) if plain and not any(c in path for c in "?#%") else None
    return None


_POSTGRES_SCHEMES = ("postgresql+psycopg://", "postgresql://", "postgres://")


def plain_postgres_conninfo(database_url: str | None = None) -> str | None:
    """The libpq URI of a PostgreSQL URL the options name, without parsing it (which
    imports SQLAlchemy): SQLAlchemy's `postgresql+psycopg://...` is libpq's own
    `postgresql://...` (the same user, password, host, port, database and parameters,
    percent-decoded alike); None for anything else."""
    url_value = _url_text(database_url)
    for scheme in _POSTGRES_SCHEMES:
        if url_value and url_value.startswith(scheme):
            return "postgresql://" + url_value.removeprefix(scheme)
    return None


def resolve_location(root: Path | str | None = None, database_url: str | None = None) -> Location:
    """Combine options, environment and defaults into a Location."""
    root_path = _root_path(root)
    url_value = _url_text(database_url)
    if url_value:
        url = normalize_database_url(url_value)
    else:
        from sqlalchemy.engine import URL

        url = URL.create("sqlite", database=str(root_path / DATABASE_FILE))
    return Location(root=root_path, database_url=url)
