"""`catalog container ...`: record containers, list them, change their state, remove them.

Verbs as docker's: `create`, `ls` (docker ps), `start`, `stop`, `rm`. Commands given
several containers handle each on its own, print the name or ID as given for each one
done, and report the errors at the end (exit status 1).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from catalog.cli.helptext import PLAIN_HELP
from catalog.cli.options import OutputFormat
from catalog.cli.state import open_from
from catalog.db.models import Container
from catalog.docker.humanize import created_since, go_time_string
from catalog.docker.tabwriter import tabwrite
from catalog.domain.digest import short_id
from catalog.errors import CatalogError, NotFound
from catalog.services.containers import (
    ContainerSummary,
    create_container,
    list_containers,
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


@app.command("create")
def create(
    ctx: typer.Context,
    image: Annotated[
        str, typer.Option("--image", metavar="IMAGE", help="The image: a name or an ID.")
    ],
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
) -> None:
    """Record a new container of IMAGE and print its 64-hex ID."""
    catalog = open_from(ctx)
    with catalog.database.write() as session:
        container = create_container(session=session, image=image, name=name, state=state.value)
        container_id = container.id
    typer.echo(container_id)


def _cells(summary: ContainerSummary, *, trunc: bool) -> dict[str, str]:
    """docker/cli ContainerContext fields the catalog can fill."""
    return {
        "CreatedAt": go_time_string(summary.created),
        "ID": short_id(summary.id) if trunc else summary.id,
        "Image": summary.image,
        "Names": summary.name,
        "RunningFor": created_since(summary.created),
        "State": summary.state,
        "Status": summary.status,
    }


@app.command("ls")
def ls(
    ctx: typer.Context,
    all_states: Annotated[
        bool, typer.Option("--all", "-a", help="Show all containers (default shows running).")
    ] = False,
    no_trunc: Annotated[bool, typer.Option("--no-trunc", help="Don't truncate output.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only display IDs.")] = False,
    output_format: Annotated[
        OutputFormat,
        typer.Option("--format", help="A table, or JSON lines as docker's --format json."),
    ] = OutputFormat.table,
) -> None:
    """List containers as docker ps does: CONTAINER ID, IMAGE, CREATED, STATUS, NAMES.

    STATUS is the state alone (Up, Exited, Created): the catalog keeps no start or exit
    times. IMAGE is the image's first tag, or its short ID.
    """
    catalog = open_from(ctx)
    with catalog.database.read() as session:
        summaries = list_containers(session=session, all_states=all_states)
    cells = [_cells(summary, trunc=not no_trunc) for summary in summaries]
    if output_format is OutputFormat.json:
        for row in cells:
            typer.echo(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
        return
    if quiet:
        for row in cells:
            typer.echo(row["ID"])
        return
    rows = [["CONTAINER ID", "IMAGE", "CREATED", "STATUS", "NAMES"]]
    rows += [[r["ID"], r["Image"], r["RunningFor"], r["Status"], r["Names"]] for r in cells]
    typer.echo(tabwrite(rows), nl=False)


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
def stop(ctx: typer.Context, containers: Containers) -> None:
    """Mark running containers exited (docker stop)."""
    _each(ctx, containers, lambda session, term: stop_container(session=session, term=term))


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
