"""`catalog images` / `catalog image ls`, as the docker CLI prints them (docs/listing.md
§8)."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

import typer

from catalog.cli.options import OutputFormat
from catalog.cli.state import open_from
from catalog.docker.filters import parse_filter_flags
from catalog.docker.humanize import created_since, human_size
from catalog.docker.tabwriter import tabwrite
from catalog.domain.digest import short_id
from catalog.domain.reference import familiar_name
from catalog.services.listing import ImageSummary, list_images

NONE = "<none>"


class SortKey(StrEnum):
    created = "created"
    id = "id"
    repository = "repository"
    size = "size"
    tag = "tag"


def image_rows(image: ImageSummary, *, digests: bool) -> list[tuple[str, str, str]]:
    """docker/cli imageFormat: (repository, tag, digest) rows of one image: one per tag,
    times that repository's digests with --digests; `<none>` rows for the rest."""
    if not image.references:
        return [(NONE, NONE, NONE)]
    tags: dict[str, list[str]] = {}
    digest_refs: dict[str, list[str]] = {}
    for ref in image.references:
        if ref.tag is not None:
            tags.setdefault(familiar_name(ref), []).append(ref.tag)
        elif ref.digest is not None:
            digest_refs.setdefault(familiar_name(ref), []).append(ref.digest)
    rows = []
    for repository, repository_tags in tags.items():
        repository_digests = digest_refs.pop(repository, []) if digests else []
        digest_refs.pop(repository, None)
        for tag in repository_tags:
            rows += [(repository, tag, d) for d in repository_digests or [NONE]]
    for repository, repository_digests in digest_refs.items():
        rows += (
            [(repository, NONE, d) for d in repository_digests]
            if digests
            else [(repository, NONE, "")]
        )
    return rows


def created(image: ImageSummary) -> str:
    # Docker sends Created as Unix seconds (0 when unknown) and the CLI renders that.
    return created_since(image.created_unix)


_SORTS: dict[SortKey, tuple[Callable[[Any], Any], bool]] = {
    SortKey.id: (lambda row: row[0].id, False),
    SortKey.repository: (lambda row: (row[1], row[2]), False),
    SortKey.tag: (lambda row: (row[2], row[1]), False),
    SortKey.size: (lambda row: row[0].size, True),
}


def images(
    ctx: typer.Context,
    repository: Annotated[
        str | None,
        typer.Argument(
            metavar="REPOSITORY[:TAG]", help="Show only images matching REPOSITORY[:TAG]."
        ),
    ] = None,
    all_images: Annotated[
        bool, typer.Option("--all", "-a", help="Show all images (default hides intermediates).")
    ] = False,
    filter_flags: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            "-f",
            metavar="KEY=VALUE",
            help="Filter output: dangling, label, label!, before, since, until, reference.",
        ),
    ] = None,
    digests: Annotated[bool, typer.Option("--digests", help="Show digests.")] = False,
    no_trunc: Annotated[bool, typer.Option("--no-trunc", help="Don't truncate output.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only show image IDs.")] = False,
    output_format: Annotated[
        OutputFormat,
        typer.Option("--format", help="table, or json: the summaries as GET /images/json."),
    ] = OutputFormat.table,
    shared_size: Annotated[
        bool, typer.Option("--shared-size", help="Compute and show shared and unique sizes.")
    ] = False,
    sort: Annotated[
        SortKey, typer.Option("--sort", help="Order rows by this column.")
    ] = SortKey.created,
) -> None:
    """List images (as `docker images`), newest first."""
    args = parse_filter_flags(filter_flags or [])
    if repository:
        args.add("reference", repository)
    catalog = open_from(ctx)
    with catalog.database.read() as session:
        summaries = list_images(
            session=session, filters=args, all_images=all_images, shared_size=shared_size
        )
    if output_format is OutputFormat.json:
        if sort is not SortKey.created:
            first = {s.id: (image_rows(s, digests=False)[0]) for s in summaries}
            key, reverse = _SORTS[sort]
            summaries.sort(key=lambda s: key((s, *first[s.id])), reverse=reverse)
        typer.echo(json.dumps([s.to_api() for s in summaries], indent=2))
        return

    rows = [(s, *row) for s in summaries for row in image_rows(s, digests=digests)]
    if sort is not SortKey.created:
        key, reverse = _SORTS[sort]
        rows.sort(key=key, reverse=reverse)

    def image_id(summary: ImageSummary) -> str:
        return summary.id if no_trunc else short_id(summary.id)

    if quiet:
        for summary, *_ in rows:
            typer.echo(image_id(summary))
        return
    header = ["REPOSITORY", "TAG", *(["DIGEST"] if digests else []), "IMAGE ID", "CREATED"]
    header += ["SIZE", *(["SHARED SIZE", "UNIQUE SIZE"] if shared_size else [])]
    table = [header]
    for summary, repo, tag, digest in rows:
        cells = [repo, tag, *([digest] if digests else []), image_id(summary)]
        cells += [created(summary), human_size(summary.size, 3)]
        if shared_size:
            cells += [
                human_size(summary.shared_size, 4),
                human_size(summary.size - summary.shared_size, 4),
            ]
        table.append(cells)
    typer.echo(tabwrite(table), nl=False)


def register(app: typer.Typer, image_app: typer.Typer) -> None:
    app.command("images")(images)
    image_app.command("ls")(images)
