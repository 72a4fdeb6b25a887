"""`catalog container ...`: record containers, list them, change their state, remove them.

Verbs as docker's: `create`, `ls` (docker ps), `start`, `stop`, `rm`. Commands given
several containers handle each on its own, print the name or ID as given for each one
done, and report the errors at the end (exit status 1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from catalog.cli.helptext import PLAIN_HELP
from catalog.cli.options import OutputFormat
from catalog.cli.state import open_from
from catalog.db.models import Container
from catalog.docker.containers import quoted_command
from catalog.docker.filters import parse_filter_flags
from catalog.docker.gojson import marshal
from catalog.docker.gotime import GoTimeError, parse_docker_timestamp
from catalog.docker.humanize import created_since, go_time_string, human_size
from catalog.docker.tabwriter import tabwrite_lines
from catalog.domain.digest import short_id
from catalog.domain.reference import Named, familiar_string, parse_normalized_named
from catalog.errors import CatalogError, InvalidArgument, NotFound
from catalog.services.container_listing import ContainerView, list_containers
from catalog.services.containers import (
    create_container,
    remove_container,
    start_container,
    stop_container,
)

app = typer.Typer(
    help="Manage the containers the catalog records.", no_args_is_help=True, **PLAIN_HELP
)


class InitialState(StrEnum):
    created = "created"
    running = "running"
    exited = "exited"


def _when(option: str, value: str | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_docker_timestamp(value, now)
    except GoTimeError as exc:
        raise InvalidArgument(f"invalid {option} {value!r}: {exc}") from None


def _labels(values: list[str]) -> dict[str, str]:
    """docker's --label: `key=value`, or `key` for an empty value."""
    labels: dict[str, str] = {}
    for value in values:
        key, _, text = value.partition("=")
        if not key:
            raise InvalidArgument(f"invalid label {value!r}: empty key")
        labels[key] = text
    return labels


@app.command(
    "create",
    context_settings={"allow_interspersed_args": False},
)
def create(
    ctx: typer.Context,
    image: Annotated[
        str,
        typer.Option("--image", metavar="IMAGE", help="The image: a name or an ID, kept as given."),
    ],
    command: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="COMMAND",
            help="The command and its arguments (default: the image's CMD; after the ENTRYPOINT).",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            metavar="NAME",
            help="The container's name (default: a random adjective_surname).",
        ),
    ] = None,
    state: Annotated[
        InitialState, typer.Option("--state", help="The state to record it in.")
    ] = InitialState.created,
    entrypoint: Annotated[
        str | None,
        typer.Option(
            "--entrypoint",
            metavar="CMD",
            help="Overwrite the image's ENTRYPOINT (an empty string clears it).",
        ),
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label", "-l", metavar="KEY=VALUE", help="A label, over the image's (repeatable)."
        ),
    ] = None,
    created: Annotated[
        str | None,
        typer.Option("--created", metavar="WHEN", help="When it was created (default: now)."),
    ] = None,
    started: Annotated[
        str | None,
        typer.Option(
            "--started",
            metavar="WHEN",
            help="When it started (running or exited; default: when created).",
        ),
    ] = None,
    finished: Annotated[
        str | None,
        typer.Option("--finished", metavar="WHEN", help="When it exited (exited; default: now)."),
    ] = None,
    exit_code: Annotated[
        int, typer.Option("--exit-code", metavar="N", help="Its exit code (exited).")
    ] = 0,
) -> None:
    """Record a new container of IMAGE, as docker create would make it, and print its
    64-hex ID. WHEN is Docker's --since/--until syntax: a Go duration ago (72h), a date
    or time (2024-05-01T12:00:00Z) or Unix seconds."""
    catalog = open_from(ctx)
    now = datetime.now(UTC)
    with catalog.database.write() as session:
        container = create_container(
            session=session,
            image=image,
            name=name,
            state=state.value,
            entrypoint=None if entrypoint is None else ([entrypoint] if entrypoint else []),
            cmd=command or None,
            labels=_labels(label or []),
            created=_when("--created", created, now),
            started_at=_when("--started", started, now),
            finished_at=_when("--finished", finished, now),
            exit_code=exit_code,
        )
        container_id = container.id
    typer.echo(container_id)


def _size(view: ContainerView) -> str:
    """docker/cli ContainerContext.Size: the writable layer (empty here), and the
    image's layers as `virtual`."""
    shown = human_size(0, 3)
    if view.size_root_fs:
        shown += f" (virtual {human_size(view.size_root_fs, 3)})"
    return shown


def _cells(view: ContainerView, *, trunc: bool, now: datetime) -> dict[str, str]:
    """docker/cli ContainerContext's fields, as `docker ps --format json` gives them."""
    return {
        "Command": quoted_command(view.command, trunc=trunc),
        "CreatedAt": go_time_string(view.created),
        "ID": short_id(view.id) if trunc else view.id,
        "Image": shown_image(view.image, view.image_id, trunc=trunc),
        "Labels": ",".join(sorted(f"{k}={v}" for k, v in view.labels.items())),
        "LocalVolumes": "0",
        "Mounts": "",
        "Names": view.name,
        "Networks": "",
        "Ports": "",
        "RunningFor": created_since(view.created, now),
        "Size": _size(view),
        "State": view.state,
        "Status": view.status(now),
    }


COLUMN_HEADERS = {
    "ID": "CONTAINER ID",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "LocalVolumes": "LOCAL VOLUMES",
    "Size": "SIZE",
    "RunningFor": "CREATED",
    "Status": "STATUS",
    "Ports": "PORTS",
    "Names": "NAMES",
}


def container_table(
    views: list[ContainerView], columns: list[str], now: datetime, *, trunc: bool = True
) -> str:
    """A docker table of containers (`docker ps`, `docker system df -v`)."""
    return "".join(container_lines(views, columns, now, trunc=trunc))


def container_lines(
    views: Iterable[ContainerView], columns: list[str], now: datetime, *, trunc: bool = True
) -> Iterator[str]:
    """`container_table`, one line at a time, each view read once and kept as its line."""
    header = [COLUMN_HEADERS[c] for c in columns]
    rows = (
        [cells[c] for c in columns] for cells in (_cells(v, trunc=trunc, now=now) for v in views)
    )
    return tabwrite_lines(header, rows)


def _truncate_id(value: str) -> str:
    """moby stringid.TruncateID: what follows a `:`, cut to 12 characters."""
    return value.partition(":")[2][:12] if ":" in value else value[:12]


def shown_image(image: str, image_id: str, *, trunc: bool) -> str:
    """docker/cli ContainerContext.Image: the short ID when the image is shown by its
    ID; a name without its digest (a tag kept); as it is with --no-trunc."""
    if not image:
        return "<no image>"
    if not trunc:
        return image
    if _truncate_id(image_id) == _truncate_id(image):
        return _truncate_id(image_id)
    try:
        named = parse_normalized_named(image)
    except CatalogError:
        return image
    return familiar_string(Named(named.domain, named.path, named.tag, None))


PS_COLUMNS = ["ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"]


@app.command("ls")
def ls(
    ctx: typer.Context,
    all_states: Annotated[
        bool, typer.Option("--all", "-a", help="Show all containers (default shows running).")
    ] = False,
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            "-f",
            metavar="KEY=VALUE",
            help="docker ps's filters: ancestor, before, since, exited, id, label, name,"
            " status, health, ...",
        ),
    ] = None,
    last: Annotated[
        int,
        typer.Option(
            "--last", "-n", metavar="N", help="Show the N last created (includes all states)."
        ),
    ] = -1,
    latest: Annotated[
        bool,
        typer.Option("--latest", "-l", help="Show the latest created (includes all states)."),
    ] = False,
    no_trunc: Annotated[bool, typer.Option("--no-trunc", help="Don't truncate output.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only display IDs.")] = False,
    size: Annotated[bool, typer.Option("--size", "-s", help="Display total file sizes.")] = False,
    output_format: Annotated[
        OutputFormat,
        typer.Option("--format", help="A table, or JSON lines as docker's --format json."),
    ] = OutputFormat.table,
) -> None:
    """List containers as docker ps does: CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS,
    PORTS, NAMES (and SIZE with --size), newest first.

    IMAGE is the image as the container was created with it while that name still gives
    the same image, else the image's ID (as the daemon shows it).
    """
    catalog = open_from(ctx)
    limit = 1 if latest and last == -1 else last
    with catalog.database.read() as session:
        views = list_containers(
            session=session,
            all_states=all_states,
            filters=parse_filter_flags(filters or []),
            limit=limit,
            size=size,
        )
    now = datetime.now(UTC)
    if quiet:
        for view in views:
            typer.echo(view.id if no_trunc else short_id(view.id))
        return
    if output_format is OutputFormat.json:
        for view in views:
            cells = _cells(view, trunc=not no_trunc, now=now)
            # docker 28's JSON also has the image manifest's Platform: catalog keeps none.
            typer.echo(marshal({**cells, "Platform": None}))
        return
    columns = [*PS_COLUMNS, "Size"] if size else PS_COLUMNS
    typer.echo(container_table(views, columns, now, trunc=not no_trunc), nl=False)


def _each(
    ctx: typer.Context,
    terms: list[str],
    action: Callable[[Session, str], Container],
    *,
    forgive_not_found: bool = False,
) -> None:
    """Apply `action` to each container in its own transaction; print each term done,
    then the errors; exit 1 on an error (with `forgive_not_found`, not for "No such")."""
    catalog = open_from(ctx)
    failures: list[CatalogError] = []
    for term in terms:
        try:
            with catalog.database.write() as session:
                action(session, term)
        except CatalogError as exc:
            failures.append(exc)
            continue
        typer.echo(term)
    for failure in failures:
        typer.echo(f"Error: {failure.message}", err=True)
    if any(not (forgive_not_found and isinstance(f, NotFound)) for f in failures):
        raise typer.Exit(1)


Containers = Annotated[
    list[str], typer.Argument(metavar="CONTAINER", help="Container IDs, ID prefixes or names.")
]


@app.command("start")
def start(ctx: typer.Context, containers: Containers) -> None:
    """Mark containers running (docker start)."""
    _each(ctx, containers, lambda session, term: start_container(session=session, term=term))


@app.command("stop")
def stop(
    ctx: typer.Context,
    containers: Containers,
    exit_code: Annotated[
        int, typer.Option("--exit-code", metavar="N", help="The exit code to record.")
    ] = 0,
) -> None:
    """Mark running containers exited now (docker stop)."""
    _each(
        ctx,
        containers,
        lambda session, term: stop_container(session=session, term=term, exit_code=exit_code),
    )


@app.command("rm")
def rm(
    ctx: typer.Context,
    containers: Containers,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Remove running containers too.")
    ] = False,
) -> None:
    """Remove containers (docker rm); a running one needs --force."""
    _each(
        ctx,
        containers,
        lambda session, term: remove_container(session=session, term=term.strip("/"), force=force),
        forgive_not_found=force,
    )


def register(main_app: typer.Typer, image_app: typer.Typer) -> None:
    del image_app  # containers have no `catalog image` form
    main_app.add_typer(app, name="container")
