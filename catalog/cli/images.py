"""`catalog images` / `catalog image ls`, as the docker CLI prints them (docs/listing.md
§8).

The rows are written as the listing reads them: JSON summaries and `-q` IDs one by one;
a table once its column widths are known (the docker CLI's tabwriter aligns the whole
table), from one short string per row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum
from typing import Annotated, Any

import typer

from catalog.cli.options import OutputFormat
from catalog.cli.output import Output
from catalog.cli.state import reading
from catalog.db.kept_values import created_unix
from catalog.docker.filters import parse_filter_flags
from catalog.docker.humanize import created_since, human_size
from catalog.docker.tabwriter import tabwrite_lines
from catalog.domain.digest import short_id
from catalog.services.listing import (
    ImageRow,
    image_rows,
    json_array,
    listing_query,
    summary_writer,
)

NONE = "<none>"


class SortKey(StrEnum):
    created = "created"
    id = "id"
    repository = "repository"
    size = "size"
    tag = "tag"


def name_rows(tags_json: str, digests_json: str, *, digests: bool) -> list[tuple[str, str, str]]:
    """docker/cli imageFormat: (repository, tag, digest) rows of one image from its
    RepoTags and RepoDigests: one per tag, times that repository's digests with
    --digests; `<none>` rows for the rest."""
    tags_list: list[str] = json.loads(tags_json) if tags_json != "[]" else []
    digests_list: list[str] = json.loads(digests_json) if digests_json != "[]" else []
    if not tags_list and not digests_list:
        return [(NONE, NONE, NONE)]
    tags: dict[str, list[str]] = {}
    digest_refs: dict[str, list[str]] = {}
    for text in tags_list:
        repository, _, tag = text.rpartition(":")
        tags.setdefault(repository, []).append(tag)
    for text in digests_list:
        repository, _, digest = text.partition("@")
        digest_refs.setdefault(repository, []).append(digest)
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


def created(key: int) -> str:
    # Docker sends Created as Unix seconds (0 when unknown) and the CLI renders that.
    return created_since(created_unix(key))


# How --sort orders rows (image row, repository, tag, digest): key and reverse.
_SORTS: dict[SortKey, tuple[Callable[[Any], Any], bool]] = {
    SortKey.id: (lambda row: row[0][1], False),
    SortKey.repository: (lambda row: (row[1], row[2]), False),
    SortKey.tag: (lambda row: (row[2], row[1]), False),
    SortKey.size: (lambda row: row[0][3], True),
}


def _sorted_rows(
    rows: Iterable[ImageRow], sort: SortKey, *, digests: bool
) -> Iterator[tuple[ImageRow, str, str, str]]:
    """Each image's name rows, in the listing's order or sorted by `sort`."""
    named = ((row, *names) for row in rows for names in name_rows(row[7], row[8], digests=digests))
    if sort is SortKey.created:
        return named
    key, reverse = _SORTS[sort]
    return iter(sorted(named, key=key, reverse=reverse))


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
    with reading(ctx) as reader, Output() as out:
        listing = listing_query(reader=reader, filters=args, all_images=all_images)
        rows = image_rows(reader=reader, listing=listing)
        if output_format is OutputFormat.json:
            if sort is not SortKey.created:  # by the first name row's columns
                key, reverse = _SORTS[sort]
                named = [(row, *name_rows(row[7], row[8], digests=False)[0]) for row in rows]
                rows = (item[0] for item in sorted(named, key=key, reverse=reverse))
            write = summary_writer(shared_size=shared_size)
            out.write_all(json_array(write(row) for row in rows))
            return

        def image_id(row: ImageRow) -> str:
            return row[1] if no_trunc else short_id(row[1])

        named_rows = _sorted_rows(rows, sort, digests=digests)
        if quiet:
            out.write_all(image_id(row) + "\n" for row, *_ in named_rows)
            return
        header = ["REPOSITORY", "TAG", *(["DIGEST"] if digests else []), "IMAGE ID", "CREATED"]
        header += ["SIZE", *(["SHARED SIZE", "UNIQUE SIZE"] if shared_size else [])]

        def cells(row: ImageRow, repo: str, tag: str, digest: str) -> list[str]:
            size, unique = row[3], row[4]
            found = [repo, tag, *([digest] if digests else []), image_id(row)]
            found += [created(row[0]), human_size(size, 3)]
            if shared_size:
                found += [human_size(size - unique, 4), human_size(unique, 4)]
            return found

        out.write_all(tabwrite_lines(header, (cells(*named) for named in named_rows)))


def register(app: typer.Typer, image_app: typer.Typer) -> None:
    app.command("images")(images)
    image_app.command("ls")(images)
