"""`catalog system df`, as the docker CLI prints it (docs/listing.md §9): the totals from
the kept facts, the images (with -v or as JSON) written as the listing reads them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from sqlalchemy.orm import Session

from catalog.cli.container import container_lines
from catalog.cli.images import NONE, created
from catalog.cli.options import OutputFormat
from catalog.cli.output import Output
from catalog.cli.state import open_from
from catalog.docker.humanize import human_size
from catalog.docker.tabwriter import tabwrite, tabwrite_lines
from catalog.domain.digest import short_id
from catalog.services.container_listing import container_views
from catalog.services.listing import (
    DiskUsageTotals,
    ImageRow,
    disk_usage_totals,
    image_rows,
    json_array,
    listing_query,
    summary_writer,
)

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


def disk_usage_json(totals: DiskUsageTotals, items: Iterator[str]) -> Iterator[str]:
    """The API 1.52 verbose `/system/df` shape for images and containers, in pieces:
    the summaries (JSON texts) as they come."""
    image_usage = _omit_zero(
        {
            "ActiveCount": totals.active_count,
            "Reclaimable": totals.reclaimable,
            "TotalCount": totals.total_count,
            "TotalSize": totals.total_size,
        }
    )
    head = json.dumps(image_usage, separators=(",", ":"))[:-1]
    containers = _omit_zero(
        {"ActiveCount": totals.containers_running, "TotalCount": totals.containers_total}
    )
    tail = '},"ContainerUsage":' + json.dumps(containers, separators=(",", ":")) + "}\n"
    yield '{"ImageUsage":' + head
    if totals.total_count:
        yield (',"Items":' if image_usage else '"Items":')
        for piece in json_array(items):
            yield piece.removesuffix("\n")
    yield tail


def _listed(session: Session) -> Iterator[ImageRow]:
    """The images of `system df`: the default listing."""
    return image_rows(session=session, listing=listing_query(session=session))


def _reclaimable(reclaimable: int, total: int) -> str:
    text = human_size(reclaimable, 4)
    return f"{text} ({reclaimable * 100 // total}%)" if total > 0 else text


def _verbose_row(row: ImageRow) -> list[str]:
    key, image_id, _, size, unique, containers, _, tags, _ = row
    first = json.loads(tags)[0] if tags != "[]" else None
    repository, _, tag = first.rpartition(":") if first else (NONE, "", NONE)
    return [
        repository,
        tag,
        short_id(image_id),
        created(key),
        human_size(size, 3),
        human_size(size - unique, 4),
        human_size(unique, 4),
        str(containers),
    ]


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
    with catalog.database.read() as session, Output() as out:
        totals = disk_usage_totals(session=session)
        if output_format is OutputFormat.json:
            write = summary_writer(shared_size=True)
            out.write_all(disk_usage_json(totals, (write(row) for row in _listed(session))))
            return
        if not verbose:
            out.write(
                tabwrite(
                    [
                        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
                        [
                            "Images",
                            str(totals.total_count),
                            str(totals.active_count),
                            human_size(totals.total_size, 4),
                            _reclaimable(totals.reclaimable, totals.total_size),
                        ],
                        # Containers' writable layers are not in the catalog: no space here.
                        [
                            "Containers",
                            str(totals.containers_total),
                            str(totals.containers_running),
                            "0B",
                            "0B",
                        ],
                    ]
                )
            )
            return
        header = "REPOSITORY|TAG|IMAGE ID|CREATED|SIZE|SHARED SIZE|UNIQUE SIZE|CONTAINERS"
        out.write("Images space usage:\n\n")
        out.write_all(tabwrite_lines(header.split("|"), map(_verbose_row, _listed(session))))
        # docker system df -v shows no virtual size for containers: no `size` here.
        containers = container_views(session=session)
        out.write("\nContainers space usage:\n\n")
        out.write_all(container_lines(containers, DF_CONTAINER_COLUMNS, datetime.now(UTC)))


def register(app: typer.Typer, image_app: typer.Typer) -> None:
    del image_app  # `docker system` has no `docker image` form
    system_app.command("df")(df)
    app.add_typer(system_app, name="system")
