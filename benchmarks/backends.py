"""Where benchmark catalogs live: a SQLite file in a scratch directory, or a new database
on a PostgreSQL server (CATALOG_BENCH_DATABASE_URL, else a throwaway cluster started
with the repository's `.ci/start-postgres`)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

from catalog.settings import normalize_database_url

BENCH_DATABASE_URL_ENV = "CATALOG_BENCH_DATABASE_URL"
REPOSITORY = Path(__file__).resolve().parents[1]
BACKENDS = ("sqlite", "postgresql")


class BackendUnavailable(RuntimeError):
    """A backend the run asked for cannot be had (say why, and measure the rest)."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def postgres_server(scratch: Path) -> Iterator[URL]:
    """The URL of a PostgreSQL server where databases may be created."""
    configured = os.environ.get(BENCH_DATABASE_URL_ENV)
    if configured:
        yield normalize_database_url(configured)
        return
    start = REPOSITORY / ".ci" / "start-postgres"
    stop = REPOSITORY / ".ci" / "stop-postgres"
    if not start.is_file():
        raise BackendUnavailable(f"no {BENCH_DATABASE_URL_ENV} and no {start}")
    directory = scratch / "postgres"
    directory.mkdir(parents=True, exist_ok=True)
    # The cluster runs as the postgres user, which must reach its data directory.
    for path in (directory, *directory.parents):
        if path == Path("/") or path.stat().st_mode & 0o005 == 0o005:
            break
        path.chmod(path.stat().st_mode | 0o005)
    try:
        started = subprocess.run(
            ["bash", str(start), str(directory), str(_free_port())],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        stderr = getattr(exc, "stderr", "") or ""
        raise BackendUnavailable(f"could not start PostgreSQL: {stderr.strip()[-400:]}") from exc
    try:
        yield normalize_database_url(started.stdout.strip().splitlines()[-1])
    finally:
        subprocess.run(["bash", str(stop), str(directory)], check=False, timeout=120)


@contextmanager
def new_database(backend: str, scratch: Path, server: URL | None, label: str) -> Iterator[URL]:
    """A new, empty database on `backend`; dropped (or deleted) afterwards."""
    if backend == "sqlite":
        directory = scratch / f"sqlite-{label}"
        directory.mkdir(parents=True, exist_ok=True)
        try:
            yield URL.create("sqlite", database=str(directory / "catalog.db"))
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    if server is None:
        raise BackendUnavailable("no PostgreSQL server")
    name = f"catalog_bench_{label}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.set(database=name)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def server_version(url: URL) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                return "SQLite " + str(
                    connection.exec_driver_sql("select sqlite_version()").scalar()
                )
            return str(connection.exec_driver_sql("show server_version").scalar()).join(
                ("PostgreSQL ", "")
            )
    finally:
        engine.dispose()
