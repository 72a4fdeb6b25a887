"""`catalog serve`: the Docker Engine API for images, so `docker` and docker-py work
against the catalog."""

from __future__ import annotations

import contextlib
import socket
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from catalog.cli.state import open_from
from catalog.errors import CatalogError
from catalog.server.app import EngineApp
from catalog.server.listen import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    TlsFiles,
    bind_tcp,
    bind_unix,
    check_exposure,
    serve,
    server_config,
)
from catalog.server.versions import API_VERSION, MIN_API_VERSION


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def serve_command(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            metavar="ADDR",
            help=f"Address to listen on (default {DEFAULT_HOST}). One that is not loopback "
            "needs --tls-cert, --tls-key and --tls-ca, or --insecure.",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            metavar="PORT",
            min=0,
            max=65535,
            help=f"TCP port (default {DEFAULT_PORT}; 0 picks a free one).",
            show_default=False,
        ),
    ] = None,
    unix: Annotated[
        Path | None,
        typer.Option(
            "--unix",
            metavar="PATH",
            help="Listen on this unix socket (created mode 0600), instead of TCP unless "
            "--host or --port is given too.",
            show_default=False,
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            "--tls-cert",
            metavar="FILE",
            help="The server's TLS certificate (PEM).",
            show_default=False,
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(
            "--tls-key", metavar="FILE", help="The key of --tls-cert (PEM).", show_default=False
        ),
    ] = None,
    tls_ca: Annotated[
        Path | None,
        typer.Option(
            "--tls-ca",
            metavar="FILE",
            help="Require client certificates signed by this CA (as dockerd --tlsverify).",
            show_default=False,
        ),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Allow a non-loopback address without TLS client verification.",
        ),
    ] = False,
    log_level: Annotated[
        LogLevel, typer.Option("--log-level", help="How much the server logs.")
    ] = LogLevel.info,
) -> None:
    """Serve the Docker Engine API for images (and catalog's own endpoints) until
    interrupted: point DOCKER_HOST at it and use `docker` or docker-py. A browser gets a
    read-only web view of the catalog at the same address."""
    if (tls_cert is None) != (tls_key is None):
        raise CatalogError("--tls-cert and --tls-key go together")
    if tls_ca is not None and tls_cert is None:
        raise CatalogError("--tls-ca needs --tls-cert and --tls-key")
    tls = TlsFiles(tls_cert, tls_key, tls_ca) if tls_cert and tls_key else None
    if unix is not None and tls is not None:
        raise CatalogError("--unix cannot be combined with TLS: the socket's file mode protects it")
    use_tcp = unix is None or host is not None or port is not None
    tcp_host = host or DEFAULT_HOST
    tcp_port = DEFAULT_PORT if port is None else port
    warning = check_exposure(tcp_host, tls, insecure=insecure) if use_tcp else None
    catalog = open_from(ctx)
    # The web view also answers to the name given with --host (besides the address).
    app = EngineApp(catalog, web_hosts=[tcp_host] if use_tcp else [])
    sockets: list[socket.socket] = []
    try:
        addresses = []
        if use_tcp:
            tcp = bind_tcp(tcp_host, tcp_port)
            sockets.append(tcp)
            scheme = "https" if tls is not None else "tcp"
            addresses.append(f"{scheme}://{_url_host(tcp_host)}:{tcp.getsockname()[1]}")
        if unix is not None:
            sockets.append(bind_unix(unix.absolute()))
            addresses.append(f"unix://{unix.absolute()}")
        if warning:
            typer.echo(warning, err=True)
        for address in addresses:
            docker_host = address.replace("https://", "tcp://")
            typer.echo(
                f"Serving the Docker Engine API {MIN_API_VERSION}-{API_VERSION} at {address}"
                f"  (DOCKER_HOST={docker_host})",
                err=True,
            )
            if not address.startswith("unix://"):
                web = address.replace("tcp://", "http://")
                typer.echo(f"Web view (read-only) at {web}/", err=True)
        config = server_config(
            app,
            tls=tls,
            log_level=log_level.value,
            # Requests over TCP must name the server (catalog.server.middleware).
            host_names=[tcp_host] if use_tcp else [],
        )
        serve(config, sockets)
    finally:
        for sock in sockets:
            sock.close()
        if unix is not None:
            with contextlib.suppress(FileNotFoundError):
                unix.absolute().unlink()


def register(app: typer.Typer, image_app: typer.Typer) -> None:
    """Add `catalog serve`."""
    app.command("serve")(serve_command)
