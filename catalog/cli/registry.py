"""`catalog pull`, `catalog push`, `catalog login` and `catalog logout`: registries, as
the docker CLI speaks to them, with docker's config file for credentials."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)

from catalog.cli.state import open_from, state
from catalog.domain.platform import parse_platform
from catalog.domain.reference import familiar_string
from catalog.errors import CatalogError
from catalog.operations.pull import parse_pull_reference, pull
from catalog.operations.push import parse_push_reference, push
from catalog.registry.client import check_credentials
from catalog.registry.credentials import (
    Credentials,
    DockerConfig,
    credentials_key,
    hostname_of,
    lookup,
    normalize_server,
)
from catalog.registry.progress import SilentProgress, TransferProgress
from catalog.registry.settings import DOCKER_HUB_INDEX, RegistrySettings, load_settings

InsecureOption = Annotated[
    list[str] | None,
    typer.Option(
        "--insecure-registry",
        metavar="HOST[:PORT]",
        help="Allow plain HTTP and unverified TLS for this registry (repeatable); "
        "127.0.0.0/8 and ::1 always are, as in docker.",
        show_default=False,
    ),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="Suppress verbose output (the progress).")
]


SERVER_HELP = "The registry (HOST[:PORT]); Docker Hub by default."


class RichProgress:
    """Per-layer lines with rich bars (bytes, speed), as `docker pull` draws them."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    def _task(self, layer: str) -> TaskID:
        with self._lock:
            task = self._tasks.get(layer)
            if task is None:
                task = self._progress.add_task(f"{layer}: Waiting", total=None)
                self._tasks[layer] = task
            return task

    def status(self, text: str, layer: str | None = None) -> None:
        if layer is None:
            self._progress.console.print(text, highlight=False)
            return
        task = self._task(layer)
        done = text in ("Pull complete", "Already exists", "Pushed", "Layer already exists")
        done = done or text.startswith("Mounted from")
        if done:
            total = self._progress.tasks[task].total or 0
            self._progress.update(task, description=f"{layer}: {text}", completed=total)
        else:
            self._progress.update(task, description=f"{layer}: {text}")

    def advance(self, layer: str, action: str, current: int, total: int) -> None:
        self._progress.update(
            self._task(layer), description=f"{layer}: {action}", completed=current, total=total
        )


class LineProgress:
    """Status lines without bars (not a terminal), as docker prints them there."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def status(self, text: str, layer: str | None = None) -> None:
        line = f"{layer}: {text}" if layer else text
        with self._lock:
            typer.echo(line)

    def advance(self, layer: str, action: str, current: int, total: int) -> None:
        return


@contextmanager
def transfer_progress(quiet: bool) -> Iterator[TransferProgress]:
    if quiet:
        yield SilentProgress()
        return
    if not sys.stdout.isatty():
        yield LineProgress()
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    with Progress(*columns, console=Console(), transient=False) as progress:
        yield RichProgress(progress)


def _settings(ctx: typer.Context, insecure: list[str] | None) -> RegistrySettings:
    return load_settings(state(ctx).location.root, insecure or ())


def pull_command(
    ctx: typer.Context,
    reference: Annotated[
        str, typer.Argument(metavar="NAME[:TAG|@DIGEST]", help="The image in a registry.")
    ],
    platform: Annotated[
        str | None,
        typer.Option(
            "--platform",
            metavar="OS/ARCH[/VARIANT]",
            help="Pull this platform (os/arch[/variant]) of a multi-platform image; "
            "default: the host's.",
            show_default=False,
        ),
    ] = None,
    all_tags: Annotated[
        bool, typer.Option("--all-tags", "-a", help="Download all tagged images in the repository.")
    ] = False,
    quiet: QuietOption = False,
    insecure: InsecureOption = None,
) -> None:
    """Download an image from a registry, as `docker pull` does."""
    wanted = parse_platform(platform) if platform is not None else None
    named, defaulted = parse_pull_reference(reference, all_tags=all_tags)
    settings = _settings(ctx, insecure)
    catalog = open_from(ctx, adds_data=True)
    if defaulted and not quiet:
        typer.echo("Using default tag: latest")
    if all_tags and not quiet:
        typer.echo(f"Pulling every tag of {familiar_string(named)}")
    with transfer_progress(quiet) as progress:
        results = pull(
            catalog,
            reference,
            settings=settings,
            credentials=lookup,
            platform=wanted,
            all_tags=all_tags,
            progress=progress,
        )
    if all_tags:
        typer.echo(named.name)
    else:
        typer.echo(str(results[0].reference))


def push_command(
    ctx: typer.Context,
    reference: Annotated[
        str,
        typer.Argument(
            metavar="NAME[:TAG]", help="An image in the catalog, named for the registry."
        ),
    ],
    quiet: QuietOption = False,
    insecure: InsecureOption = None,
) -> None:
    """Upload an image to a registry, as `docker push` does."""
    _, defaulted = parse_push_reference(reference)
    settings = _settings(ctx, insecure)
    catalog = open_from(ctx)
    if defaulted and not quiet:
        typer.echo("Using default tag: latest")
    with transfer_progress(quiet) as progress:
        result = push(catalog, reference, settings=settings, credentials=lookup, progress=progress)
    if quiet:
        typer.echo(str(result.reference))


def _registry_domain(key: str) -> str:
    return "docker.io" if key == DOCKER_HUB_INDEX else hostname_of(key)


def login_command(
    ctx: typer.Context,
    server: Annotated[
        str | None,
        typer.Argument(
            help="The registry (HOST[:PORT]); Docker Hub by default.", show_default=False
        ),
    ] = None,
    username: Annotated[
        str | None,
        typer.Option("--username", "-u", metavar="USERNAME", help="Username.", show_default=False),
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            "--password", "-p", metavar="PASSWORD", help="Password or token.", show_default=False
        ),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Take the password from stdin.")
    ] = False,
    insecure: InsecureOption = None,
) -> None:
    """Log in to a registry: check the credentials with it, then keep them in the docker
    CLI's config.json (or its credential helper), as `docker login` does."""
    key = normalize_server(server or "")
    if password is not None and password_stdin:
        raise CatalogError("--password and --password-stdin are mutually exclusive")
    if password_stdin:
        if not username:
            raise CatalogError("Must provide --username with --password-stdin")
        password = typer.get_text_stream("stdin").read().rstrip("\r\n")
    elif password is not None:
        typer.echo(
            "WARNING! Using --password via the CLI is insecure. Use --password-stdin.", err=True
        )
    config = DockerConfig()
    if username is None or password is None:
        if not sys.stdin.isatty():
            raise CatalogError("Cannot perform an interactive login from a non TTY device")
        username = username or typer.prompt("Username")
        password = password or typer.prompt("Password", hide_input=True)
    if not username or not password:
        raise CatalogError("Username and password are required")
    credentials = Credentials(username=username, password=password)
    check_credentials(_settings(ctx, insecure), _registry_domain(key), credentials)
    where = config.store(credentials_key(_registry_domain(key)), credentials)
    if where == str(config.path):
        typer.echo(f"WARNING! Your password will be stored unencrypted in {config.path}.", err=True)
    typer.echo("Login Succeeded")


def logout_command(
    server: Annotated[
        str | None,
        typer.Argument(
            help="The registry (HOST[:PORT]); Docker Hub by default.", show_default=False
        ),
    ] = None,
) -> None:
    """Log out from a registry: forget its credentials, as `docker logout` does."""
    key = credentials_key(_registry_domain(normalize_server(server or "")))
    typer.echo(f"Removing login credentials for {key}")
    DockerConfig().erase(key)


def register(app: typer.Typer, image_app: typer.Typer) -> None:
    """Add `catalog pull/push` (and `catalog image pull/push`), `catalog login/logout`."""
    app.command("pull")(pull_command)
    image_app.command("pull")(pull_command)
    app.command("push")(push_command)
    image_app.command("push")(push_command)
    app.command("login")(login_command)
    app.command("logout")(logout_command)
