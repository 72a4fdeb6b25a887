"""`docker images` as SQL: Docker's `Images(filters, all, sharedSize)` and `/system/df`.

A listing is one SELECT over `images` (docs/listing.md §4): every filter is a condition
on its kept columns (§12) or an IN over an indexed table, its rows come in the listing's
order (`ORDER BY sort_key, id`, the order of `ix_images_sort_key_id`) and carry
everything a summary shows, so they are read through the driver's cursor and written out
as they come (`image_rows`, `summary_writer`): memory does not grow with the catalog.
With a `reference` filter one more statement reads the matching names.

A page of the listing is the same statement: `listing_query(..., after=KEY, limit=N)`
lists the N images after the one whose `page_key` is KEY.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.orm import Session, aliased

from catalog.db.models import (
    DANGLING,
    UNDATED,
    Container,
    Image,
    ImageLabel,
    ImageLayer,
    ImageReference,
    Layer,
)
from catalog.db.sql import driver_rows, familiar_name, starts_with
from catalog.docker.filters import FilterArgs, label_checks
from catalog.docker.gojson import go_json_text
from catalog.docker.gotime import LATEST, GoTimeError, parse_docker_timestamp
from catalog.docker.pathmatch import BadPattern, literal_prefix, path_pattern_regex
from catalog.errors import InvalidFilter
from catalog.services.kept_facts import created_unix, names_json, sort_key
from catalog.services.lookup import resolve_image_id

LIST_FILTERS = ("before", "dangling", "label", "label!", "reference", "since", "until")

# What a listing reads of each image, in this order (ImageRow).
ROW_COLUMNS = (
    Image.sort_key,
    Image.id,
    Image.parent_id,
    Image.size,
    Image.unique_size,
    Image.container_count,
    Image.labels_json,
    Image.repo_tags,
    Image.repo_digests,
)
# sort_key, id, parent_id, size, unique_size, containers, Labels, RepoTags, RepoDigests
# (the last three as the Engine API's JSON text).
ImageRow = tuple[int, str, str | None, int, int, int, str | None, str, str]
# Where a page starts: the (sort_key, id) of the last image of the page before.
PageKey = tuple[int, str]


def page_key(row: ImageRow) -> PageKey:
    """The key a next page starts after (`listing_query(after=...)`)."""
    return row[0], row[1]


# --- the pieces of the WHERE clause -------------------------------------------------


def _reference_suffix() -> ColumnElement[str]:
    return case(
        (ImageReference.tag.isnot(None), literal(":") + ImageReference.tag),
        else_=literal("@") + ImageReference.digest,
    )


def stored_name_prefixes(pattern: str) -> list[str]:
    """Prefixes one of which begins the stored (normalized) name of every reference the
    pattern can match; none when it has no literal prefix.

    A match spells the name familiar or full, then `:tag` or `@digest`: so the pattern's
    literal prefix, cut at its first `:` or `@`, begins the familiar or the full name,
    and a familiar name is the stored one without `docker.io/` or `docker.io/library/`."""
    prefix = literal_prefix(pattern)
    for separator in ":@":
        prefix = prefix.partition(separator)[0]
    return (
        [stored + prefix for stored in ("", "docker.io/", "docker.io/library/")] if prefix else []
    )


def _name_prefix(dialect: str, pattern: str) -> ColumnElement[bool] | None:
    prefixes = stored_name_prefixes(pattern)
    if not prefixes:
        return None
    return or_(*(starts_with(dialect, ImageReference.repository, p) for p in prefixes))


def reference_condition(patterns: Sequence[str], dialect: str = "") -> ColumnElement[bool]:
    """A stored reference matches any pattern (docker >= 29.5): Go path.Match against its
    FamiliarString, FamiliarName, TagNameOnly string or Name (docs/listing.md §3.6); each
    pattern's literal prefix narrows the rows first (§3.7)."""
    familiar = familiar_name(ImageReference.repository)
    suffix = _reference_suffix()
    targets = (
        familiar + suffix,
        familiar,
        ImageReference.repository + suffix,
        ImageReference.repository,
    )
    conditions: list[ColumnElement[bool]] = []
    for pattern in patterns:
        try:
            regex = path_pattern_regex(pattern)
        except BadPattern as exc:
            raise InvalidFilter(str(exc)) from None
        matched = or_(*(target.regexp_match(regex) for target in targets))
        prefix = _name_prefix(dialect, pattern) if dialect else None
        conditions.append(matched if prefix is None else and_(prefix, matched))
    return or_(*conditions)


def _label_conditions(args: FilterArgs, dialect: str) -> list[ColumnElement[bool]]:
    """`label`: IN the images the (key, value) index finds, usually few. `label!`: on
    SQLite, a test of the kept Labels text, which the covering listing index holds, so the
    images the listing reads anyway are not probed one by one in another table; on
    PostgreSQL, NOT EXISTS, which it answers with one hashed anti-join."""
    conditions: list[ColumnElement[bool]] = []
    for check in label_checks(args):
        needles = labels_text_needles(check.key, check.value)
        if check.negate and dialect == "sqlite" and needles is not None:
            conditions.append(~_labels_text_has(needles))
            continue
        match = [ImageLabel.key == check.key]
        if check.value is not None:
            match.append(ImageLabel.value == check.value)
        if check.negate:
            conditions.append(~exists().where(ImageLabel.image_id == Image.id, *match))
        else:
            conditions.append(Image.id.in_(select(ImageLabel.image_id).where(*match)))
    return conditions


def labels_text_needles(key: str, value: str | None) -> list[str] | None:
    """Texts one of which the kept Labels text holds exactly when it has the key (with
    the value, when given); None for the keys `:` and `,`, which the text cannot tell.

    The text is Go's compact JSON of a flat string map, `{"k1":"v1","k2":"v2"}`, whose
    strings hold no raw `"`: its quotes open and close strings in turn, and between a
    closing and an opening one stands exactly one `:` or `,`. A needle `{"k":` or `,"k":`
    has two quotes with k between: unless k is `:` or `,` they open and close one string,
    k, followed by `:`, so a key; `"k":"v"` then `,` or `}` is that key with value v."""
    encoded = go_json_text(key)
    if encoded in ('":"', '","'):
        return None
    pair = encoded + ":"
    ends: tuple[str, ...] = ("",)
    if value is not None:
        pair += go_json_text(value)
        ends = (",", "}")
    return [start + pair + end for start in "{," for end in ends]


def _labels_text_has(needles: list[str]) -> ColumnElement[bool]:
    found = or_(*(func.instr(Image.labels_json, needle) > 0 for needle in needles))
    return and_(Image.labels_json.isnot(None), found)


def _sort_key_of(session: Session, term: str) -> int:
    image_id = resolve_image_id(session, term)
    key = session.scalar(select(Image.sort_key).where(Image.id == image_id))
    return UNDATED if key is None else int(key)  # 0 is the epoch, a time like any other


def _time_conditions(
    session: Session, args: FilterArgs, now: datetime
) -> list[ColumnElement[bool]]:
    """before/until share one strict upper cutoff (the oldest wins), since a strict lower
    one (the newest wins); images without a creation time drop out when either is set.
    On sort keys (minus the time): newer is smaller."""
    older: list[int] = []  # sort keys an image must be above (older than)
    for term in args.get("before"):
        key = _sort_key_of(session, term)
        if key != UNDATED:
            older.append(key)
    for value in args.get("until"):
        try:
            older.append(sort_key(parse_docker_timestamp(value, now)))
        except GoTimeError as exc:
            raise InvalidFilter(f"invalid value for 'until' filter: {exc}") from None
    newer = [k for k in (_sort_key_of(session, t) for t in args.get("since")) if k != UNDATED]
    conditions: list[ColumnElement[bool]] = []
    if older:
        cutoff = max(older)  # the oldest
        # An `until` past year 9999 is kept as LATEST (docs/differences.md §3); for Go it
        # is after every image, those created at LATEST too.
        after_all = cutoff == sort_key(LATEST) and len(args.get("before")) == 0
        conditions += [
            Image.sort_key >= cutoff if after_all else Image.sort_key > cutoff,
            Image.sort_key < UNDATED,
        ]
    if newer:
        conditions.append(Image.sort_key < min(newer))
    return conditions


def _named(matching: Callable[..., ColumnElement[bool]] | None) -> ColumnElement[bool]:
    if matching is not None:
        return matching()
    return or_(Image.tag_count > 0, Image.digest_count > 0)


def _selection(
    session: Session, args: FilterArgs, all_images: bool, now: datetime
) -> list[ColumnElement[bool]]:
    """The WHERE clause for Docker's image list (docs/listing.md §4.1 and the §4.2 table)."""
    args.validate(LIST_FILTERS)
    dangling_only = args.get_bool_or_default("dangling", False)
    matching: Callable[..., ColumnElement[bool]] | None = None
    if "reference" in args:
        dialect = session.get_bind().dialect.name
        match = reference_condition(args.get("reference"), dialect)

        def matching(*kind: ColumnElement[bool]) -> ColumnElement[bool]:
            return Image.id.in_(select(ImageReference.image_id).where(match, *kind))

    conditions: list[ColumnElement[bool]] = []
    if dangling_only:
        # Leaves without a (matching) tag; with a reference filter, a matching digest.
        if matching is None:
            # The words of ix_images_dangling's WHERE, so that SQLite uses it.
            conditions.append(text(DANGLING))  # type: ignore[arg-type]
        else:
            conditions += [
                Image.child_count == 0,
                ~matching(ImageReference.tag.isnot(None)),
                matching(ImageReference.digest.isnot(None)),
            ]
    elif "dangling" in args or matching is not None:
        conditions.append(_named(matching))  # only images with a (matching) reference
    elif not all_images:
        conditions.append(or_(_named(None), Image.child_count == 0))  # no intermediates
    conditions += _label_conditions(args, session.get_bind().dialect.name)
    conditions += _time_conditions(session, args, now)
    return conditions


# --- the listing ----------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """One listing, ready to run: its statement (ImageRow columns, in order) and, under a
    `reference` filter, the statement of the matching names (only those are shown)."""

    statement: Select[Any]
    names: Select[Any] | None = None


def listing_query(
    *,
    session: Session,
    filters: FilterArgs | None = None,
    all_images: bool = False,
    now: datetime | None = None,
    after: PageKey | None = None,
    limit: int | None = None,
) -> Listing:
    """Docker's `Images(filters, all)` as a statement, newest first (ties by ID).

    Filter errors are raised here, before anything is read. `after` and `limit` make it a
    page: the `limit` images that follow the one whose `page_key` is `after`.
    """
    args = filters or FilterArgs()
    now = now or datetime.now().astimezone()
    conditions = _selection(session, args, all_images, now)
    if after is not None:
        conditions.append(tuple_(Image.sort_key, Image.id) > tuple_(*after))
    statement = select(*ROW_COLUMNS).where(*conditions).order_by(Image.sort_key, Image.id)
    if limit is not None:
        statement = statement.limit(limit)
    names = None
    if "reference" in args:
        dialect = session.get_bind().dialect.name
        names = select(
            ImageReference.image_id,
            ImageReference.repository,
            ImageReference.tag,
            ImageReference.digest,
        ).where(reference_condition(args.get("reference"), dialect))
    return Listing(statement, names)  # type: ignore[arg-type]


def shown_names(rows: Iterable[Sequence[Any]]) -> dict[str, tuple[str, str]]:
    """RepoTags and RepoDigests (JSON text) of each image, from (image_id, repository,
    tag, digest) rows: the names a `reference` filter matched."""
    matched: dict[str, list[tuple[str, str | None, str | None]]] = defaultdict(list)
    for image_id, repository, tag, digest in rows:
        matched[image_id].append((repository, tag, digest))
    return {i: names_json(references)[2:] for i, references in matched.items()}


def image_rows(*, session: Session, listing: Listing) -> Iterator[ImageRow]:
    """The listing's rows as they are read, through the driver's cursor. Under a
    `reference` filter, RepoTags and RepoDigests hold the matching names only."""
    connection = session.connection()
    shown: dict[str, tuple[str, str]] | None = None
    if listing.names is not None:
        shown = shown_names(driver_rows(connection, listing.names))
    for row in driver_rows(connection, listing.statement):
        if shown is None:
            yield row
        else:
            tags, digests = shown.get(row[1], ("[]", "[]"))
            yield (*row[:7], tags, digests)


# --- summaries as text ------------------------------------------------------------------


@dataclass(frozen=True)
class SummaryShape:
    """How an ImageSummary is written at an API version (docs/engine-api.md §4.1); the
    default is the current shape, `catalog images --format json`'s."""

    # Below 1.43: an image without names shows `<none>:<none>`, `<none>@<none>`, and
    # empty name lists are null.
    placeholders: bool = False
    # Below 1.51: `Containers` is -1.
    containers_unknown: bool = False
    # Below 1.44: `VirtualSize` (= Size) after Size.
    virtual_size: bool = False


CURRENT_SHAPE = SummaryShape()
_NONE_TAGS = '["\\u003cnone\\u003e:\\u003cnone\\u003e"]'
_NONE_DIGESTS = '["\\u003cnone\\u003e@\\u003cnone\\u003e"]'


def summary_writer(
    *, shared_size: bool, shape: SummaryShape = CURRENT_SHAPE
) -> Callable[[ImageRow], str]:
    """A function writing one row as the Engine API's ImageSummary JSON text, keys in
    Docker's order; byte for byte what Go's encoder writes (the kept JSON texts are)."""

    def write(row: ImageRow) -> str:
        key, image_id, parent_id, size, unique, containers, labels, tags, digests = row
        if shape.placeholders:
            if tags == "[]" and digests == "[]":
                tags, digests = _NONE_TAGS, _NONE_DIGESTS
            else:
                tags = "null" if tags == "[]" else tags
                digests = "null" if digests == "[]" else digests
        shared = size - unique if shared_size else -1
        return (
            f'{{"Containers":{-1 if shape.containers_unknown else containers},'
            f'"Created":{created_unix(key)},"Id":"{image_id}",'
            f'"Labels":{labels or "null"},"ParentId":"{parent_id or ""}",'
            f'"RepoDigests":{digests},"RepoTags":{tags},'
            f'"SharedSize":{shared},"Size":{size}'
            + (f',"VirtualSize":{size}}}' if shape.virtual_size else "}")
        )

    return write


def json_items(items: Iterator[str], *, chunk: int = 1 << 16) -> Iterator[str]:
    """The items with commas between, in pieces of about `chunk` characters."""
    pending: list[str] = []
    size = 0
    first = True
    for item in items:
        if not first:
            pending.append(",")
        first = False
        pending.append(item)
        size += len(item) + 1
        if size >= chunk:
            yield "".join(pending)
            pending, size = [], 0
    if pending:
        yield "".join(pending)


def json_array(items: Iterator[str], *, chunk: int = 1 << 16) -> Iterator[str]:
    """`[item,item,...]` and a newline, as Go's encoder ends a document, in pieces."""
    yield "["
    yield from json_items(items, chunk=chunk)
    yield "]\n"


# --- the same, as objects ---------------------------------------------------------------


@dataclass(slots=True)
class ImageSummary:
    """One image as `GET /images/json` describes it.

    Slots, not a __dict__ each: a listing may hold 100k of them (docs/listing.md §11)."""

    id: str
    parent_id: str
    created: int  # Unix seconds (Go's time.Unix()), 0 without a creation time
    size: int
    shared_size: int
    containers: int
    labels: dict[str, str] | None
    repo_tags: list[str]
    repo_digests: list[str]

    @classmethod
    def from_row(cls, row: ImageRow, *, shared_size: bool) -> Self:
        return cls(*_summary_fields(shared_size)(row))

    def to_api(self) -> dict[str, Any]:
        """The API >= 1.51 shape, keys in Docker's order; arrays never null."""
        return {
            "Containers": self.containers,
            "Created": self.created,
            "Id": self.id,
            "Labels": self.labels,
            "ParentId": self.parent_id,
            "RepoDigests": self.repo_digests,
            "RepoTags": self.repo_tags,
            "SharedSize": self.shared_size,
            "Size": self.size,
        }


def _summary_fields(shared_size: bool) -> Callable[[ImageRow], tuple[Any, ...]]:
    """A function giving the fields of a row's ImageSummary, in order. The label keys
    and values it decodes are shared strings, each kept once from those it has seen: a
    catalog has few keys and, across its images, few distinct values (100k images:
    5 keys and 6,418 values in 391k labels)."""
    seen: dict[str, str] = {}
    share = seen.setdefault

    def shared_pairs(pairs: list[tuple[str, str]]) -> dict[str, str]:
        return {share(key, key): share(value, value) for key, value in pairs}

    decode_labels = json.JSONDecoder(object_pairs_hook=shared_pairs).decode
    loads = json.loads

    def fields(row: ImageRow) -> tuple[Any, ...]:
        key, image_id, parent_id, size, unique, containers, labels, tags, digests = row
        return (
            image_id,
            parent_id or "",
            created_unix(key),
            size,
            size - unique if shared_size else -1,
            containers,
            None if labels is None else decode_labels(labels),
            [] if tags == "[]" else loads(tags),
            [] if digests == "[]" else loads(digests),
        )

    return fields


def list_images(
    *,
    session: Session,
    filters: FilterArgs | None = None,
    all_images: bool = False,
    shared_size: bool = False,
    now: datetime | None = None,
) -> list[ImageSummary]:
    """Docker's `Images(filters, all, sharedSize)`, newest first (ties by ID), as objects:
    the rows of `listing_query`, for callers that want them all at once. Each row becomes
    its summary as it is read: no list of rows in between."""
    listing = listing_query(session=session, filters=filters, all_images=all_images, now=now)
    fields = _summary_fields(shared_size)
    return [ImageSummary(*fields(row)) for row in image_rows(session=session, listing=listing)]


# --- system df ----------------------------------------------------------------------------


@dataclass
class DiskUsageTotals:
    """`/system/df`'s figures for images and containers (docs/listing.md §9)."""

    total_count: int  # images listed (the default listing)
    active_count: int  # of those, with containers
    reclaimable: int  # Size - SharedSize of those without containers
    total_size: int  # the layers' bytes, each layer once, intermediates left out
    containers_total: int
    containers_running: int


@dataclass
class DiskUsage(DiskUsageTotals):
    """The totals and the images they count, as summaries with shared sizes."""

    images: list[ImageSummary]


def layers_size(*, session: Session) -> int:
    """moby ImageDiskUsage: the diff sizes of every layer chain some image uses, each
    counted once, leaving out untagged images with children (intermediates): the chains
    in use (ref_count), less those that only intermediates use."""
    intermediate = and_(Image.tag_count == 0, Image.digest_count == 0, Image.child_count > 0)
    user = aliased(Image)
    user_layer = aliased(ImageLayer)
    used_by_others = exists().where(
        user_layer.chain_id == ImageLayer.chain_id,
        user.id == user_layer.image_id,
        ~and_(user.tag_count == 0, user.digest_count == 0, user.child_count > 0),
    )
    # From the intermediates' own layer lists (few), so that the EXISTS runs for their
    # chains only: as a join, SQLite ran it for every image_layers row (3 s at 100k).
    only_intermediates = select(ImageLayer.chain_id).where(
        ImageLayer.image_id.in_(select(Image.id).where(intermediate)), ~used_by_others
    )
    in_use = select(func.coalesce(func.sum(Layer.diff_size), 0)).where(Layer.ref_count > 0)
    hidden = select(func.coalesce(func.sum(Layer.diff_size), 0)).where(
        Layer.chain_id.in_(only_intermediates)
    )
    return int(session.scalar(in_use) or 0) - int(session.scalar(hidden) or 0)


def disk_usage_totals(*, session: Session) -> DiskUsageTotals:
    """The figures of `system df`, without reading the images one by one."""
    listed = _selection(session, FilterArgs(), False, datetime.now().astimezone())
    count, active, reclaimable = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((Image.container_count > 0, 1), else_=0)), 0),
            func.coalesce(
                func.sum(case((Image.container_count == 0, Image.unique_size), else_=0)), 0
            ),
        ).where(*listed)
    ).one()
    total, running = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((Container.state == "running", 1), else_=0)), 0),
        ).select_from(Container)
    ).one()
    return DiskUsageTotals(
        total_count=int(count),
        active_count=int(active),
        reclaimable=int(reclaimable),
        total_size=layers_size(session=session),
        containers_total=int(total),
        containers_running=int(running),
    )


def disk_usage(*, session: Session) -> DiskUsage:
    """The totals, and the images listed as by default (all=false) with shared sizes."""
    totals = disk_usage_totals(session=session)
    images = list_images(session=session, shared_size=True)
    return DiskUsage(**totals.__dict__, images=images)
