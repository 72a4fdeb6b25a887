"""Hostile input (issue 12, item 5): every case of the corpus (benchmarks.reliability.corpus)
against a catalog that holds images, on the backend under test.

A refused case must end with one line and change nothing: every table dumped before and
after is the same, no file appears outside the catalog's root, and no temporary or spool
file is left. Blob files a refused load had already stored (verified, named by no row:
what `catalog gc` removes, docs/archives.md §5) are counted, removed, and not a failure.
An accepted case must load and leave `catalog fsck` clean (in a catalog of its own).

- archives and layers: `catalog load -i FILE` and `catalog image append scratch FILE`
  through the CLI in process (Typer's runner), or `load_archive` with lowered limits;
- command lines: bad references, filters, timestamps and options for every command;
- requests: the same through `catalog serve` (a real socket), for every endpoint, plus
  hostile archives as `POST /images/load` bodies;
- a real process: a sample of the cases through the `catalog` console script, whose
  stderr must be exactly one line (all of them in the full form).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, select, text
from typer.testing import CliRunner

from benchmarks.reliability.corpus import (
    ACCEPT,
    INVALID_REFERENCES,
    LAYER,
    SECOND_LAYER,
    ArchiveCase,
    RequestCase,
    archive_cases,
    command_cases,
    config,
    docker_members,
    encode,
    request_cases,
    tar,
)
from benchmarks.reliability.results import ClassResult, RunSettings
from catalog.cli.main import app as cli_app
from catalog.context import Catalog, open_catalog
from catalog.db.models import Base
from catalog.domain.reference import parse_normalized_named
from catalog.errors import CatalogError, InvalidReference
from catalog.operations.fsck.check import check_catalog
from catalog.operations.load import TEMPORARY_DIRNAME, load_archive
from catalog.server.app import EngineApp
from catalog.server.listen import BackgroundServer, bind_tcp, server_config
from catalog.settings import Location, normalize_database_url
from catalog.storage.content import TEMPORARY_PREFIX
from catalog.storage.layers import ingest_layer

__all__ = ["CatalogUnderTest", "run", "snapshot"]


# --- a catalog on the backend under test ----------------------------------------------


@dataclass
class CatalogUnderTest:
    catalog: Catalog
    root: Path
    url: str
    work: Path

    def cli(self, *args: str) -> Any:
        return CliRunner().invoke(cli_app, ["--root", str(self.root), "--db", self.url, *args])


@contextlib.contextmanager
def database(settings: RunSettings, directory: Path) -> Iterator[str]:
    """The URL of a new database on the backend under test, dropped afterwards."""
    if settings.database_url is None:
        directory.mkdir(parents=True, exist_ok=True)
        yield f"sqlite:///{directory / 'catalog.db'}"
        return
    admin_url = normalize_database_url(settings.database_url)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"catalog_reliability_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def catalog_under_test(
    settings: RunSettings, name: str, *, populated: bool = True
) -> Iterator[CatalogUnderTest]:
    """A new catalog holding two images (`hostile:1`, and `other:1` on top of it)."""
    directory = settings.workdir / f"{name}-{uuid.uuid4().hex[:6]}"
    with database(settings, directory / "db") as url:
        root = directory / "root"
        location = Location(root=root, database_url=normalize_database_url(url))
        with open_catalog(location) as catalog:
            work = directory / "inputs"
            work.mkdir(parents=True)
            if populated:
                base = tar(docker_members())
                load_archive(catalog, io.BytesIO(base))
                child_config = encode(
                    config([*(hashlib_digest(x) for x in (LAYER, SECOND_LAYER))], author="x")
                )
                load_archive(
                    catalog,
                    io.BytesIO(
                        tar(
                            docker_members(
                                config_bytes=child_config,
                                layers=[LAYER, SECOND_LAYER],
                                tags=["other:1", "other:latest"],
                            )
                        )
                    ),
                )
            yield CatalogUnderTest(catalog, root, url, work)
    shutil.rmtree(directory, ignore_errors=True)


def hashlib_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- what "unchanged" means -----------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    tables: dict[str, list[str]]
    blobs: dict[str, int]
    temporary: list[str]
    spools: list[str]
    outside: list[str]


def _files(directory: Path) -> list[str]:
    if not directory.exists():
        return []
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def snapshot(env: CatalogUnderTest) -> Snapshot:
    """Every row of every table, the blob files, temporary and spool files, and the files
    beside the catalog (where a hostile archive would write if it escaped)."""
    tables: dict[str, list[str]] = {}
    with env.catalog.database.read() as session:
        connection = session.connection()
        for table in Base.metadata.sorted_tables:
            rows = connection.execute(select(table)).all()
            tables[table.name] = sorted(repr(tuple(row)) for row in rows)
    store = env.catalog.store.directory
    blobs = {}
    temporary = []
    if store.exists():
        for path in store.iterdir():
            if path.name.startswith(TEMPORARY_PREFIX):
                temporary.append(path.name)
            else:
                blobs[path.name] = path.stat().st_size
    outside = [
        name
        for name in _files(env.root.parent)
        if not name.startswith(("root", "db")) or name.startswith("root/..")
    ]
    return Snapshot(tables, blobs, sorted(temporary), _files(env.root / TEMPORARY_DIRNAME), outside)


def differences(before: Snapshot, after: Snapshot, env: CatalogUnderTest) -> tuple[list[str], int]:
    """What changed (as failures), and how many verified, unreferenced blob files a
    refused load left for gc (removed here, so that every case starts alike)."""
    problems = []
    for table, rows in before.tables.items():
        if after.tables[table] != rows:
            problems.append(f"table {table} changed")
    left = 0
    for name, size in after.blobs.items():
        if name in before.blobs:
            if before.blobs[name] != size:
                problems.append(f"blob {name[:12]} changed size")
            continue
        path = env.catalog.store.directory / name
        if hashlib.sha256(path.read_bytes()).hexdigest() != name:
            problems.append(f"blob file {name[:12]} does not hold what its name says")
        path.unlink()
        left += 1
    problems += [
        f"blob {name[:12]} disappeared" for name in before.blobs if name not in after.blobs
    ]
    if after.temporary != before.temporary:
        problems.append(
            f"temporary files left: {sorted(set(after.temporary) - set(before.temporary))}"
        )
    if after.spools != before.spools:
        problems.append(f"spool files left: {sorted(set(after.spools) - set(before.spools))}")
    if after.outside != before.outside:
        problems.append(
            f"files outside the catalog: {sorted(set(after.outside) ^ set(before.outside))}"
        )
    return problems, left


def one_line_error(result: Any, exit_code: int = 1) -> str | None:
    """What is wrong with a CLI result that must be a one-line error (None: nothing)."""
    output = (result.stdout or "") + (result.stderr or "")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return f"raised {type(result.exception).__name__}: {result.exception}"
    if "Traceback" in output:
        return "printed a traceback"
    if result.exit_code != exit_code:
        return f"exit {result.exit_code}, not {exit_code}: {output.strip()[:300]!r}"
    if exit_code == 1:
        lines = result.stderr.splitlines()
        if len(lines) != 1 or not lines[0].startswith("Error: "):
            return f"stderr is not one `Error:` line: {result.stderr[:300]!r}"
    return None


# --- archives and layers --------------------------------------------------------------


def _archive_trial(env: CatalogUnderTest, case: ArchiveCase, path: Path) -> str | None:
    if case.limits is not None or case.layer_limits is not None:
        try:
            if case.append:
                with path.open("rb") as file:
                    ingest_layer(env.catalog.store, file, limits=case.layer_limits or _default())
            else:
                load_archive(env.catalog, path, limits=case.limits, layer_limits=case.layer_limits)
        except CatalogError as exc:
            return "more than one line" if "\n" in exc.message else None
        except Exception as exc:  # the very thing this suite looks for
            return f"raised {type(exc).__name__}: {str(exc)[:200]}"
        return "accepted"
    if case.append:
        result = env.cli("image", "append", "scratch", str(path))
    else:
        result = env.cli("load", "-q", "-i", str(path))
    return one_line_error(result)


def _default() -> Any:
    from catalog.storage.layers import DEFAULT_LIMITS

    return DEFAULT_LIMITS


def _accepted_trial(settings: RunSettings, case: ArchiveCase, data: bytes) -> str | None:
    with catalog_under_test(settings, "accepted", populated=False) as env:
        path = env.work / "input.tar"
        path.write_bytes(data)
        args = ("image", "append", "scratch") if case.append else ("load", "-q", "-i")
        result = env.cli(*args, str(path))
        if result.exit_code != 0:
            return f"refused: {(result.stderr or str(result.exception)).strip()[:300]!r}"
        report = check_catalog(env.catalog)
        if report.errors:
            return f"fsck: {report.errors[0].line()}"
    return None


def sample(cases: Sequence[Any], settings: RunSettings, step: int) -> list[Any]:
    """Every case in the full form; in the bounded one every `step`-th, starting where
    the seed says, so that runs with other seeds cover the others."""
    if settings.full or step <= 1:
        return list(cases)
    return list(cases[settings.seed % step :: step])


def archive_trials(settings: RunSettings) -> ClassResult:
    every = archive_cases(full=settings.full)
    cases = sample(every, settings, 3)
    started = time.perf_counter()
    failures: list[str] = []
    leftovers = 0
    with catalog_under_test(settings, "archives") as env:
        for case in cases:
            data = case.build()
            if case.expect == ACCEPT:
                problem = _accepted_trial(settings, case, data)
                if problem:
                    failures.append(f"{case.name}: {problem}")
                continue
            path = env.work / "hostile.tar"
            path.write_bytes(data)
            del data
            before = snapshot(env)
            problem = _archive_trial(env, case, path)
            changes, left = differences(before, snapshot(env), env)
            leftovers += left
            if problem or changes:
                failures.append(f"{case.name}: {'; '.join(filter(None, [problem, *changes]))}")
            path.unlink()
    details = [
        f"- {len(cases)} of the {len(every)} archives and layers of this form "
        f"({sum(c.expect == ACCEPT for c in cases)} valid but odd, which must load); groups: "
        + ", ".join(sorted({c.group for c in cases})),
        f"- refused loads that left verified, unreferenced blobs for `catalog gc`: {leftovers}",
        *(f"- FAILED {line}" for line in failures),
    ]
    return ClassResult(
        "hostile archives and layers",
        settings.backend,
        len(cases),
        len(failures),
        time.perf_counter() - started,
        details,
    )


# --- command lines --------------------------------------------------------------------


def _check_invalid_references() -> None:
    for ref in INVALID_REFERENCES:
        try:
            parse_normalized_named(ref)
        except InvalidReference:
            continue
        raise AssertionError(f"the corpus takes {ref!r} for an invalid reference; it parses")


def command_trials(settings: RunSettings) -> ClassResult:
    _check_invalid_references()
    every = command_cases()
    cases = sample(every, settings, 4)
    started = time.perf_counter()
    failures: list[str] = []
    with catalog_under_test(settings, "commands") as env:
        layer = env.work / "layer.tar"
        layer.write_bytes(tar([]))
        for case in cases:
            args = [
                a.replace("{tmp}", str(env.work)).replace("{layer}", str(layer)) for a in case.args
            ]
            before = snapshot(env)
            result = env.cli(*args)
            problem = one_line_error(result, case.exit_code)
            changes, _ = differences(before, snapshot(env), env)
            if problem or (changes and not case.changes):
                shown = " ".join(a if len(a) < 40 else a[:37] + "..." for a in case.args)
                failures.append(f"`{shown!r}`: {'; '.join(filter(None, [problem, *changes]))}")
    return ClassResult(
        "hostile command lines",
        settings.backend,
        len(cases),
        len(failures),
        time.perf_counter() - started,
        [
            f"- {len(cases)} of {len(every)} command lines: bad and missing references for "
            "every command that takes one, bad and extreme times and filters, out-of-range options",
            *(f"- FAILED {line}" for line in failures),
        ],
    )


# --- requests -------------------------------------------------------------------------


@contextlib.contextmanager
def serving(env: CatalogUnderTest) -> Iterator[str]:
    """`catalog serve` of the catalog, in this process, on a free loopback port."""
    sock = bind_tcp("127.0.0.1", 0)
    server = BackgroundServer(server_config(EngineApp(env.catalog), log_level="critical"), [sock])
    with server.running():
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def _request_problem(case: RequestCase, response: httpx.Response) -> str | None:
    if response.status_code >= 500:
        return f"status {response.status_code}: {response.text[:200]!r}"
    if case.load:
        lines = [json.loads(line) for line in response.text.splitlines() if line.strip()]
        errors = [line for line in lines if "error" in line]
        if response.status_code != 200 or len(errors) != 1:
            return f"load answered {response.status_code}: {response.text[:200]!r}"
        message = errors[0]["error"]
        if "\n" in message or "internal error" in message:
            return f"load error {message[:200]!r}"
        return None
    if response.status_code < 400:
        return f"accepted ({response.status_code})"
    if response.headers.get("content-type") != "application/json":
        return f"{response.status_code} is not JSON: {response.text[:200]!r}"
    message = response.json().get("message", "")
    if not message or "\n" in message:
        return f"message {message!r} is not one line"
    return None


def request_trials(settings: RunSettings) -> ClassResult:
    started = time.perf_counter()
    failures: list[str] = []
    archives = [c for c in archive_cases(full=False) if c.group != "bombs"]
    cases = request_cases(archives)
    with (
        catalog_under_test(settings, "requests") as env,
        serving(env) as base,
        httpx.Client(base_url=base, timeout=60) as client,
    ):
        for case in cases:
            before = snapshot(env)
            try:
                response = client.request(
                    case.method,
                    case.path,
                    params=case.params,
                    content=case.body,
                    headers=dict(case.headers),
                )
                problem = _request_problem(case, response)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            changes, _ = differences(before, snapshot(env), env)
            if problem or changes:
                shown = f"{case.method} {case.path[:60]} {str(case.params)[:80]}"
                failures.append(f"{shown}: {'; '.join(filter(None, [problem, *changes]))}")
        if client.get("/_ping").text != "OK":
            failures.append("the server stopped answering")
    return ClassResult(
        "hostile requests",
        settings.backend,
        len(cases),
        len(failures),
        time.perf_counter() - started,
        [
            f"- {len(cases)} requests to every endpoint: bad and missing names, filters, "
            "times, platforms, options, JSON bodies, and hostile archives as load bodies",
            *(f"- FAILED {line}" for line in failures),
        ],
    )


# --- a real process -------------------------------------------------------------------


def console_script() -> list[str]:
    found = shutil.which("catalog", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "catalog"]


def process_trials(settings: RunSettings) -> ClassResult:
    """The CLI as users run it: stderr must be exactly one `Error:` line."""
    started = time.perf_counter()
    archives = [
        c
        for c in archive_cases(full=settings.full)
        if c.expect != ACCEPT and c.limits is None and c.layer_limits is None
    ]
    commands = [
        c for c in command_cases() if c.exit_code == 1 and not any("\x00" in a for a in c.args)
    ]
    if settings.full:  # every refused archive; command lines differ less between processes
        commands = sample(commands, RunSettings(False, settings.seed, settings.workdir), 4)
    else:
        # A sample (each run starts an interpreter, a second or more): archives of four
        # groups and two command lines, which ones turning with the seed.
        first: dict[str, ArchiveCase] = {}
        for case in archives:
            first.setdefault(case.group, case)
        groups = list(first.values())
        archives = sample(groups, settings, max(len(groups) // 3, 1))[:3]
        commands = sample(commands, settings, len(commands))[:1]
    failures: list[str] = []
    with catalog_under_test(settings, "process") as env:
        environment = {**os.environ, "CATALOG_ROOT": str(env.root), "CATALOG_DATABASE_URL": env.url}
        layer = env.work / "layer.tar"
        layer.write_bytes(tar([]))
        path = env.work / "hostile.tar"
        runs: list[tuple[str, list[str], ArchiveCase | None]] = []
        for case in archives:
            verb = ["image", "append", "scratch"] if case.append else ["load", "-q", "-i"]
            runs.append((case.name, [*verb, str(path)], case))
        for command in commands:
            args = [
                a.replace("{tmp}", str(env.work)).replace("{layer}", str(layer))
                for a in command.args
            ]
            runs.append((" ".join(a[:30] for a in command.args), args, None))
        for name, args, archive in runs:
            if archive is not None:
                path.write_bytes(archive.build())
            before = snapshot(env)
            done = subprocess.run(
                [*console_script(), *args],
                capture_output=True,
                text=True,
                env=environment,
                cwd=env.work,
                timeout=600,
                check=False,
            )
            lines = done.stderr.splitlines()
            problem = None
            if done.returncode != 1 or len(lines) != 1 or not lines[0].startswith("Error: "):
                problem = f"exit {done.returncode}, stderr {done.stderr[-300:]!r}"
            changes, _ = differences(before, snapshot(env), env)
            path.unlink(missing_ok=True)
            if problem or changes:
                failures.append(f"{name}: {'; '.join(filter(None, [problem, *changes]))}")
    return ClassResult(
        "hostile input, a real process",
        settings.backend,
        len(runs),
        len(failures),
        time.perf_counter() - started,
        [
            f"- {len(runs)} runs of the `catalog` console script "
            + (
                "(every refused archive, a quarter of the command lines)"
                if settings.full
                else "(a sample: archives of three groups, one command line)"
            ),
            *(f"- FAILED {line}" for line in failures),
        ],
    )


TRIALS: Sequence[Callable[[RunSettings], ClassResult]] = (
    archive_trials,
    command_trials,
    request_trials,
    process_trials,
)


def run(settings: RunSettings) -> list[ClassResult]:
    return [trial(settings) for trial in TRIALS]
