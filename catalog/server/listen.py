"""Where `catalog serve` listens, what it refuses, and running uvicorn.

Safe by default: a TCP address that is not loopback is refused unless TLS with client
certificates is set up (as `dockerd --tlsverify`), or the user says `--insecure`. A unix
socket is created with mode 0600 (its owner only), and a stale one left by a dead server
is replaced, while a live one is never taken over.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import ssl
import stat
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from catalog.errors import CatalogError
from catalog.server.limits import ConnectionLimits, GuardedConfig
from catalog.server.middleware import HostPolicy, guarded
from catalog.server.web.app import serves as web_serves

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 2375
# Connections the kernel queues before they are accepted (accepting is quick: the
# connection limits apply once they are, catalog.server.limits).
LISTEN_BACKLOG = 1024
# Request line plus headers (h11's buffer): bounds the URL, and so the `filters` JSON.
MAX_HEADER_BYTES = 64 << 10


@dataclass(frozen=True)
class TlsFiles:
    """The server's certificate and key, and the CA its clients' certificates must chain
    to (None: clients are not asked for one)."""

    cert: Path
    key: Path
    ca: Path | None = None

    def check(self) -> None:
        for label, path in (
            ("--tls-cert", self.cert),
            ("--tls-key", self.key),
            ("--tls-ca", self.ca),
        ):
            if path is not None and not path.is_file():
                raise CatalogError(f"{label}: no such file: {path}")


def is_loopback(host: str) -> bool:
    """True when every address `host` names is a loopback address."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise CatalogError(f"cannot resolve --host {host}: {exc.strerror}") from None
    return bool(infos) and all(
        ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos
    )


def check_exposure(host: str, tls: TlsFiles | None, *, insecure: bool) -> str | None:
    """Refuse to serve the catalog (which can delete images) to the network unprotected.

    Returns a warning to show, if any. Loopback needs nothing; another address needs TLS
    with `--tls-ca` (clients must prove who they are), or `--insecure`.
    """
    if tls is not None:
        tls.check()
    if is_loopback(host):
        return None
    if tls is not None and tls.ca is not None:
        return None
    if insecure:
        what = "TLS without client certificates" if tls is not None else "plain HTTP"
        return (
            f"WARNING: serving {host} with {what}: anyone who can reach it can load, "
            "tag and delete images"
        )
    if tls is not None:
        raise CatalogError(
            f"refusing to serve {host} without client certificates: add --tls-ca, "
            "or --insecure to accept any client"
        )
    raise CatalogError(
        f"refusing to serve {host}, which is not a loopback address, without TLS: give "
        "--tls-cert, --tls-key and --tls-ca, or --insecure"
    )


def bind_tcp(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port` (port 0: any free port)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM
        )[0]
    except socket.gaierror as exc:
        raise CatalogError(f"cannot resolve --host {host}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        raise CatalogError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def _in_use(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def bind_unix(path: Path) -> socket.socket:
    """A listening unix socket at `path`, mode 0600 from the start (created under a
    umask of 0177, then chmod'ed). A stale socket there is replaced; a live one, or any
    other kind of file, is refused."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(mode):
            raise CatalogError(f"refusing to replace {path}: it is not a socket")
        if _in_use(path):
            raise CatalogError(f"{path} is in use by another server")
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o177)
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise CatalogError(f"cannot listen on {path}: {exc.strerror}") from None
    finally:
        os.umask(previous)
    path.chmod(0o600)
    sock.listen(LISTEN_BACKLOG)
    return sock


def server_config(
    app: ASGIApp,
    *,
    tls: TlsFiles | None = None,
    log_level: str = "info",
    limits: ConnectionLimits | None = None,
    host_names: Sequence[str] = (),
) -> uvicorn.Config:
    """uvicorn's settings: the app behind the request limit and the Engine API's guard
    (catalog.server.middleware; `host_names` are names the server serves besides IP
    addresses and localhost; the web view's pages check requests themselves), the
    connection limits (catalog.server.limits), TLS, and no `server: uvicorn` header."""
    limits = limits or ConnectionLimits()
    options: dict[str, Any] = {}
    if tls is not None:
        options.update(ssl_certfile=str(tls.cert), ssl_keyfile=str(tls.key))
        if tls.ca is not None:
            options.update(ssl_ca_certs=str(tls.ca), ssl_cert_reqs=ssl.CERT_REQUIRED)
    return GuardedConfig(
        guarded(
            app,
            max_requests=limits.max_requests,
            policy=HostPolicy.serving(host_names),
            own_policy=web_serves,
        ),
        limits=limits,
        lifespan="on",
        log_level=log_level,
        access_log=log_level in ("debug", "info"),
        server_header=False,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_graceful_shutdown=10,
        **options,
    )


class _Server(uvicorn.Server):
    """uvicorn's server, except that a stop asked for by SIGINT or SIGTERM ends `serve`
    normally (exit status 0, the unix socket removed) instead of re-raising the signal
    once shut down."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()


def serve(config: uvicorn.Config, sockets: Sequence[socket.socket]) -> None:
    """Serve on `sockets` until SIGINT or SIGTERM, then shut down gracefully."""
    server = _Server(config)
    server.run(sockets=list(sockets))
    if not server.started:
        raise CatalogError("the server did not start (see the messages above)")


class BackgroundServer:
    """uvicorn serving `sockets` in a thread of this process (tests, embedding)."""

    def __init__(self, config: uvicorn.Config, sockets: Sequence[socket.socket]) -> None:
        self.server = uvicorn.Server(config)
        self.sockets = list(sockets)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": self.sockets}, daemon=True
        )

    def start(self, timeout: float = 30.0) -> None:
        self.thread.start()
        waited = 0.0
        while not self.server.started:
            if not self.thread.is_alive() or waited >= timeout:
                raise CatalogError("the background server did not start")
            self.thread.join(0.02)
            waited += 0.02

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()

    @contextlib.contextmanager
    def running(self) -> Iterator[BackgroundServer]:
        self.start()
        try:
            yield self
        finally:
            self.stop()
