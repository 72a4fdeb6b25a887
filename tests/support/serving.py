"""A `catalog serve` for tests: a fresh catalog on the backend under test, populated with
`catalog load` of the shared fixtures and a few built images, served in this process on a
free loopback port (and a unix socket), with every request it saw recorded.

One server per test module keeps the suite quick; tests that change the catalog work on
names of their own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from starlette.types import Receive, Scope, Send
from typer.testing import CliRunner, Result

from catalog.cli.main import app as cli_app
from catalog.context import Catalog, open_catalog
from catalog.server.app import EngineApp, ServerLimits
from catalog.server.limits import ConnectionLimits
from catalog.server.listen import BackgroundServer, TlsFiles, bind_tcp, bind_unix, server_config
from catalog.settings import Location, normalize_database_url
from support.builders import ImageBuilder, layer_tar
from support.environment import TEST_DATABASE_URL_ENV
from support.files import fixture

LOADED_FIXTURES = (
    "google-go-containerregistry/tarball/test_bundle.tar",
    "google-go-containerregistry/tarball/hello-world-v25.tar",
    "wagoodman-dive/test-docker-image.tar",
    "wagoodman-dive/test-oci-gzip-image.tar",
    "anchore-stereoscope/valid-oci.tar",
    "containers-image/almostempty.tar",
    "google-go-containerregistry/mutate/whiteout_dir.tar",
    "google-go-containerregistry/layout/test_index",
)
DOCKER = shutil.which("docker")
DOCKER_MISSING = (
    "the docker CLI is not on PATH (install Debian's docker.io or Docker's docker-ce-cli)"
)
OPENSSL = shutil.which("openssl")
OPENSSL_MISSING = (
    "openssl, which makes the test certificates, is not on PATH (install Debian's openssl)"
)


class Recorder:
    """ASGI middleware keeping (method, path, query) of every request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[tuple[str, str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.requests.append((scope["method"], scope["path"], scope["query_string"].decode()))
        await self.app(scope, receive, send)

    def paths(self) -> list[str]:
        return [path for _, path, _ in self.requests]


@contextmanager
def fresh_database(directory: Path) -> Iterator[str]:
    """The URL of a new database on the backend under test, dropped afterwards."""
    server_url = os.environ.get(TEST_DATABASE_URL_ENV)
    if not server_url:
        yield f"sqlite:///{directory / 'catalog.db'}"
        return
    admin_url = normalize_database_url(server_url)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"catalog_test_{uuid.uuid4().hex[:16]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Served:
    """A running server and what it serves."""

    catalog: Catalog
    app: EngineApp
    recorder: Recorder
    root: Path
    db_url: str
    port: int
    unix_path: Path | None
    docker_config: Path
    ids: dict[str, str] = field(default_factory=dict)
    runner: CliRunner = field(default_factory=CliRunner)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def docker_host(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def cli(self, *args: str, exit_code: int | None = 0, **kwargs: Any) -> Result:
        """`catalog --root ROOT --db URL ARGS...` in process, on the served catalog."""
        result = self.runner.invoke(
            cli_app, ["--root", str(self.root), "--db", self.db_url, *args], **kwargs
        )
        if exit_code is not None:
            assert result.exit_code == exit_code, (args, result.output, result.exception)
        return result

    def docker(
        self,
        *args: str,
        host: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 120,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """The real docker CLI against this server (an empty DOCKER_CONFIG)."""
        assert DOCKER is not None
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.docker_config),
            "DOCKER_HOST": host or self.docker_host,
            "DOCKER_CONFIG": str(self.docker_config),
            **(env or {}),
        }
        return subprocess.run(
            [DOCKER, *args],
            capture_output=True,
            text=True,
            env=environment,
            timeout=timeout,
            check=False,
            input=input,
        )

    def paths_since(self, mark: int) -> list[str]:
        return self.recorder.paths()[mark:]


def populate(served: Served) -> None:
    """The fixtures through `catalog load`, then images with shapes the fixtures lack: a
    parent and its labelled children, a digest-only image, and containers."""
    for relative in LOADED_FIXTURES:
        served.cli("load", "-q", "-i", str(fixture(relative)))
    builder = ImageBuilder(served.catalog)
    base_layer = layer_tar({"etc/os-release": b"ID=catalog\n", "bin/sh": b"#!" + b"s" * 300})
    app_layer = layer_tar({"app/run": b"run" * 100})
    base = builder.add(
        [base_layer], created=datetime(2023, 3, 1, 12, 0, tzinfo=UTC), labels={"tier": "base"}
    )
    app = builder.add(
        [base_layer, app_layer],
        parent=base,
        tags=["app:latest", "app:1.0", "registry.example.com:5000/org/app:1"],
        labels={"tier": "web", "team": "a"},
        created=datetime(2023, 6, 1, 12, 0, tzinfo=UTC),
    )
    db = builder.add(
        [layer_tar({"db/data": b"d" * 2000})],
        tags=["db:15"],
        labels={"tier": "db"},
        created=datetime(2023, 9, 1, 12, 0, tzinfo=UTC),
    )
    digest_only = builder.add(
        [layer_tar({"only/digest": b"x" * 50})],
        tags=["digested@sha256:" + "7" * 64],
        created=datetime(2022, 1, 1, tzinfo=UTC),
    )
    served.ids.update(base=base, app=app, db=db, digest_only=digest_only)
    served.cli(
        "container", "create", "--image", "app:latest", "--name", "web", "--state", "running"
    )
    served.cli("container", "create", "--image", "db:15", "--name", "store", "--state", "exited")


@contextmanager
def serve_catalog(
    directory: Path,
    *,
    limits: ServerLimits | None = None,
    unix: bool = True,
    populated: bool = True,
    tls: TlsFiles | None = None,
    connection_limits: ConnectionLimits | None = None,
) -> Iterator[Served]:
    """A populated catalog served on 127.0.0.1:<free port> (and `directory`/docker.sock)."""
    directory.mkdir(parents=True, exist_ok=True)
    docker_config = directory / "docker-config"
    docker_config.mkdir(exist_ok=True)
    with fresh_database(directory) as url:
        root = directory / "root"
        location = Location(root=root, database_url=normalize_database_url(url))
        with open_catalog(location) as catalog:
            engine = EngineApp(catalog, limits=limits)
            recorder = Recorder(engine)
            tcp = bind_tcp("127.0.0.1", 0)
            sockets = [tcp]
            unix_path = directory / "docker.sock" if unix else None
            if unix_path is not None:
                sockets.append(bind_unix(unix_path))
            config = server_config(recorder, tls=tls, log_level="warning", limits=connection_limits)
            server = BackgroundServer(config, sockets)
            served = Served(
                catalog=catalog,
                app=engine,
                recorder=recorder,
                root=root,
                db_url=url,
                port=tcp.getsockname()[1],
                unix_path=unix_path,
                docker_config=docker_config,
            )
            if populated:
                populate(served)
            with server.running():
                yield served


def first_answer(process: subprocess.Popen[str], url: str, timeout: float = 60) -> httpx.Response:
    """GET `url` as soon as the server `process` started answers (it must not exit)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.1)


@dataclass(frozen=True)
class Certificates:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    @property
    def server(self) -> TlsFiles:
        return TlsFiles(self.server_cert, self.server_key, self.ca)


def make_certificates(directory: Path) -> Certificates:
    """Certificates made with the openssl CLI (P-256 keys, valid for two days)."""
    assert OPENSSL is not None
    directory.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run([OPENSSL, *args], cwd=directory, check=True, capture_output=True)

    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=catalog test CA")  # fmt: skip
    for name, usage in (("server", "serverAuth"), ("client", "clientAuth")):
        (directory / f"{name}.ext").write_text(
            f"subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n"
        )
        openssl("req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}")  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
                "-extfile", f"{name}.ext")  # fmt: skip
    return Certificates(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )
