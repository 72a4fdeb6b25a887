"""`catalog system df`, as the docker CLI prints it (docs/listing.md §9)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from catalog.cli.container import container_table
from catalog.cli.images import NONE, created
from catalog.cli.options import OutputFormat
from catalog.cli.state import open_from
from catalog.docker.humanize import human_size
from catalog.docker.tabwriter import tabwrite
from catalog.domain.digest import short_id
from catalog.services.container_listing import list_containers
from catalog.services.listing import DiskUsage, disk_usage

# docker/cli's containers table of `system df -v`.
DF_CONTAINER_COLUMNS = [
    "ID",
    "Image",
    "Command",
    "LocalVolumes",
    "Size",
    "RunningFor",
    "Status",
    "Names",
]

system_app = typer.Typer(help="Manage the catalog as a whole.", no_args_is_help=True)


def _omit_zero(document: dict[str, Any]) -> dict[str, Any]:
    """Go's `omitempty`: zero numbers and empty lists left out."""
    return {k: v for k, v in document.items() if v not in (0, [], None)}


def disk_usage_json(usage: DiskUsage) -> dict[str, Any]:
    """The API 1.52 verbose `/system/df` shape, for images and containers."""
    return {
        "ImageUsage": _omit_zero(
            {
                "ActiveCount": usage.active_count,
                "Reclaimable": usage.reclaimable,
                "TotalCount": len(usage.images),
                "TotalSize": usage.total_size,
                "Items": [image.to_api() for image in usage.images],
            }
        ),
        "ContainerUsage": _omit_zero(
            {"ActiveCount": usage.containers_running, "TotalCount": usage.containers_total}
        ),
    }


def _reclaimable(reclaimable: int, total: int) -> str:
    text = human_size(reclaimable, 4)
    return f"{text} ({reclaimable * 100 // total}%)" if total > 0 else text


def df(
    ctx: typer.Context,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show detailed information on space usage.")
    ] = False,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="table, or json (API 1.52 verbose shape).")
    ] = OutputFormat.table,
) -> None:
    """Show the catalog's disk usage (as `docker system df`)."""
    catalog = open_from(ctx)
    with catalog.database.read() as session:
        usage = disk_usage(session=session)
        # docker system df -v shows no virtual size for containers: no `size` here.
        containers = list_containers(session=session, all_states=True) if verbose else []
    if output_format is OutputFormat.json:
        typer.echo(json.dumps(disk_usage_json(usage), indent=2))
        return
    if not verbose:
        typer.echo(
            tabwrite(
                [
                    ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
                    [
                        "Images",
                        str(len(usage.images)),
                        str(usage.active_count),
                        human_size(usage.total_size, 4),
                        _reclaimable(usage.reclaimable, usage.total_size),
                    ],
                    # Containers' writable layers are not in the catalog: they take no space here.
                    [
                        "Containers",
                        str(usage.containers_total),
                        str(usage.containers_running),
                        "0B",
                        "0B",
                    ],
                ]
            ),
            nl=False,
        )
        return
    header = "REPOSITORY|TAG|IMAGE ID|CREATED|SIZE|SHARED SIZE|UNIQUE SIZE|CONTAINERS"
    table = [header.split("|")]
    for image in usage.images:
        tags = image.repo_tags
        repository, _, tag = tags[0].rpartition(":") if tags else (NONE, "", NONE)
        table.append(
            [
                repository,
                tag,
                short_id(image.id),
                created(image),
                human_size(image.size, 3),
                human_size(image.shared_size, 4),
                human_size(image.size - image.shared_size, 4),
                str(image.containers),
            ]
        )
    typer.echo("Images space usage:\n")
    typer.echo(tabwrite(table))
    typer.echo("Containers space usage:\n")
    typer.echo(container_table(containers, DF_CONTAINER_COLUMNS, datetime.now(UTC)), nl=False)


def register(app: typer.Typer, image_app: typer.Typer) -> None:
    del image_app  # `docker system` has no `docker image` form
    system_app.command("df")(df)
    app.add_typer(system_app, name="system")
