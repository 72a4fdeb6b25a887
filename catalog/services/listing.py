"""`docker images` as SQL: Docker's `Images(filters, all, sharedSize)` and `/system/df`.

A listing is one SELECT over `images` (docs/listing.md §4): every filter is a condition
on its kept columns (§12) or an IN over an indexed table, its rows come in the listing's
order (`ORDER BY sort_key, id`, the order of `ix_images_sort_key_id`) and carry
everything a summary shows, so they are read through the driver's cursor and written out
as they come (`image_rows`, `summary_writer`): memory does not grow with the catalog.
With a `reference` filter one more statement reads the matching names.

A page of the listing is the same statement: `listing_query(..., after=KEY, limit=N)`
lists the N images after the one whose `page_key` is KEY.

The statements are SQL text for the backend at hand (`Sql`), run by a Reader
(catalog.db.reader): `catalog images` lists a SQLite catalog without importing
SQLAlchemy (§13), the server and the web view in their sessions.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Self

from catalog.db.kept_values import (
    DANGLING,
    ROW_COLUMNS,
    UNDATED,
    created_unix,
    names_json,
    sort_key,
)
from catalog.db.reader import REFERENCE_MATCH, Reader, first_row
from catalog.docker.filters import FilterArgs, label_checks
from catalog.docker.gojson import go_json_text
from catalog.docker.gotime import LATEST, GoTimeError, parse_docker_timestamp
from catalog.docker.pathmatch import BadPattern, literal_prefix, path_pattern_regex
from catalog.errors import InvalidFilter
from catalog.services.lookup import as_reader, resolve_image_id

if TYPE_CHECKING:  # `catalog images` lists without SQLAlchemy (docs/listing.md §13)
    from sqlalchemy.orm import Session

LIST_FILTERS = ("before", "dangling", "label", "label!", "reference", "since", "until")

# The ROW_COLUMNS: sort_key, id, parent_id, size, unique_size, containers, Labels,
# RepoTags, RepoDigests (the last three as the Engine API's JSON text).
ImageRow = tuple[int, str, str | None, int, int, int, str | None, str, str]
# Where a page starts: the (sort_key, id) of the last image of the page before.
PageKey = tuple[int, str]


def page_key(row: ImageRow) -> PageKey:
    """The key a next page starts after (`listing_query(after=...)`)."""
    return row[0], row[1]


# --- SQL text -------------------------------------------------------------------------


@dataclass
class Sql:
    """A statement or a condition as SQL text for one dialect, with its `:name`
    parameters (catalog.db.reader runs it; `clause` gives it to SQLAlchemy)."""

    dialect: str
    text: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def bind(self, value: Any) -> str:
        """A parameter holding `value`, as it is written in the text."""
        name = f"listing_{len(self.params)}"
        self.params[name] = value
        return ":" + name

    def position(self, haystack: str, needle: str) -> str:
        """Where `needle` first occurs in `haystack` (1-based; 0 if nowhere)."""
        function = "strpos" if self.dialect == "postgresql" else "instr"
        return f"{function}({haystack}, {needle})"

    def clause(self) -> Any:
        """The text as a SQLAlchemy condition, for statements built with it."""
        from sqlalchemy import text

        return text(self.text).bindparams(**self.params)


def _all(conditions: Sequence[str]) -> str:
    return " AND ".join(f"({c})" for c in conditions) if conditions else "1 = 1"


def _any(conditions: Sequence[str]) -> str:
    # Parenthesized whole: `x AND _any(...)` must not read as `(x AND a) OR b`.
    return "(" + " OR ".join(f"({c})" for c in conditions) + ")"


# --- the pieces of the WHERE clause -------------------------------------------------


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


def starts_with(sql: Sql, column: str, prefix: str) -> str:
    """`column` begins with `prefix`, as a condition an index answers. On SQLite, whose
    text compares byte by byte, a range of the column's own index; on PostgreSQL, whose
    collation need not order by prefix, LIKE 'prefix%', which a `text_pattern_ops` index
    answers."""
    if sql.dialect == "postgresql":
        escaped = prefix.replace("!", "!!").replace("%", "!%").replace("_", "!_")
        return f"{column} LIKE {sql.bind(escaped + '%')} ESCAPE '!'"
    if not prefix or prefix[-1] == "\U0010ffff":
        return f"substr({column}, 1, {len(prefix)}) = {sql.bind(prefix)}"
    above = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return f"{column} >= {sql.bind(prefix)} AND {column} < {sql.bind(above)}"


def familiar_sql(sql: Sql, name: str) -> str:
    """Docker's familiar form of a stored name (Go's FamiliarName), in SQL: drop
    `docker.io/`, and `library/` when no other path component follows (kept_values'
    `familiar_text` in Python, catalog.db.sql's `familiar_name` for SQLAlchemy)."""
    rest = f"substr({name}, 19)"
    return (
        f"CASE WHEN substr({name}, 1, 18) = 'docker.io/library/' "
        f"AND {sql.position(rest, chr(39) + '/' + chr(39))} = 0 THEN {rest} "
        f"WHEN substr({name}, 1, 10) = 'docker.io/' THEN substr({name}, 11) "
        f"ELSE {name} END"
    )


def _reference_match(sql: Sql, regex: str) -> str:
    """A stored reference (image_references' row) matches the regex by its familiar or
    full string or name (docs/listing.md §3.6): on SQLite one call of a Python function
    per row (catalog.db.reader.reference_matches); on PostgreSQL its `~`."""
    pattern = sql.bind(regex)
    if sql.dialect != "postgresql":
        return f"{REFERENCE_MATCH}({pattern}, repository, tag, digest)"
    familiar = familiar_sql(sql, "repository")
    suffix = "CASE WHEN tag IS NOT NULL THEN ':' || tag ELSE '@' || digest END"
    targets = (f"{familiar} || {suffix}", familiar, f"repository || {suffix}", "repository")
    return _any([f"({target}) ~ {pattern}" for target in targets])


def reference_condition(sql: Sql, patterns: Sequence[str]) -> str:
    """A stored reference matches any pattern (docker >= 29.5): Go path.Match against its
    FamiliarString, FamiliarName, TagNameOnly string or Name (docs/listing.md §3.6); each
    pattern's literal prefix narrows the rows first (§3.7)."""
    conditions = []
    for pattern in patterns:
        try:
            regex = path_pattern_regex(pattern)
        except BadPattern as exc:
            raise InvalidFilter(str(exc)) from None
        prefixes = stored_name_prefixes(pattern)
        matched = _reference_match(sql, regex)
        if prefixes:
            matched = (
                f"({_any([starts_with(sql, 'repository', p) for p in prefixes])}) AND {matched}"
            )
        conditions.append(matched)
    return _any(conditions)


def reference_where(dialect: str, patterns: Sequence[str]) -> Sql:
    """`reference_condition` on its own, over image_references."""
    sql = Sql(dialect)
    sql.text = reference_condition(sql, patterns)
    return sql


def _label_conditions(sql: Sql, args: FilterArgs) -> list[str]:
    """`label`: IN the images the (key, value) index finds, usually few. `label!`: a
    test of the kept Labels text, which the listing reads anyway (SQLite's covering
    listing index holds it), so the images are not probed one by one in another table
    (nor, on PostgreSQL, image_labels hashed whole); NOT EXISTS for the two keys the
    text cannot tell."""
    conditions = []
    for check in label_checks(args):
        needles = labels_text_needles(check.key, check.value)
        if check.negate and needles is not None:
            found = _any([f"{sql.position('labels_json', sql.bind(n))} > 0" for n in needles])
            conditions.append(f"labels_json IS NULL OR NOT ({found})")
            continue
        match = f"key = {sql.bind(check.key)}"
        if check.value is not None:
            match += f" AND value = {sql.bind(check.value)}"
        if check.negate:
            conditions.append(
                "NOT EXISTS (SELECT 1 FROM image_labels "
                f"WHERE image_labels.image_id = images.id AND {match})"
            )
        else:
            conditions.append(f"id IN (SELECT image_id FROM image_labels WHERE {match})")
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


def _sort_key_of(reader: Reader, term: str) -> int:
    image_id = resolve_image_id(reader, term)
    found = first_row(reader, "SELECT sort_key FROM images WHERE id = :id", {"id": image_id})
    return UNDATED if found is None else int(found[0])  # 0 is the epoch, a time like any other


def _time_conditions(sql: Sql, reader: Reader, args: FilterArgs, now: datetime) -> list[str]:
    """before/until share one strict upper cutoff (the oldest wins), since a strict lower
    one (the newest wins); images without a creation time drop out when either is set.
    On sort keys (minus the time): newer is smaller."""
    older: list[int] = []  # sort keys an image must be above (older than)
    for term in args.get("before"):
        key = _sort_key_of(reader, term)
        if key != UNDATED:
            older.append(key)
    for value in args.get("until"):
        try:
            older.append(sort_key(parse_docker_timestamp(value, now)))
        except GoTimeError as exc:
            raise InvalidFilter(f"invalid value for 'until' filter: {exc}") from None
    newer = [k for k in (_sort_key_of(reader, t) for t in args.get("since")) if k != UNDATED]
    conditions = []
    if older:
        cutoff = max(older)  # the oldest
        # An `until` past year 9999 is kept as LATEST (docs/differences.md §3); for Go it
        # is after every image, those created at LATEST too.
        after_all = cutoff == sort_key(LATEST) and len(args.get("before")) == 0
        conditions += [
            f"sort_key {'>=' if after_all else '>'} {sql.bind(cutoff)}",
            f"sort_key < {sql.bind(UNDATED)}",
        ]
    if newer:
        conditions.append(f"sort_key < {sql.bind(min(newer))}")
    return conditions


_NAMED = "tag_count > 0 OR digest_count > 0"


def _selection(
    sql: Sql, reader: Reader, args: FilterArgs, all_images: bool, now: datetime
) -> list[str]:
    """The WHERE clause for Docker's image list (docs/listing.md §4.1 and the §4.2 table)."""
    args.validate(LIST_FILTERS)
    dangling_only = args.get_bool_or_default("dangling", False)
    matching: Callable[[str], str] | None = None
    if "reference" in args:
        match = reference_condition(sql, args.get("reference"))

        def matching(kind: str) -> str:
            return f"id IN (SELECT image_id FROM image_references WHERE ({match}) AND {kind})"

    conditions: list[str] = []
    if dangling_only:
        # Leaves without a (matching) tag; with a reference filter, a matching digest.
        if matching is None:
            conditions.append(DANGLING)  # ix_images_dangling's own words
        else:
            conditions += [
                "child_count = 0",
                f"NOT ({matching('tag IS NOT NULL')})",
                matching("digest IS NOT NULL"),
            ]
    elif "dangling" in args or matching is not None:
        # Only images with a (matching) reference.
        conditions.append(_NAMED if matching is None else matching("1 = 1"))
    elif not all_images:
        conditions.append(f"{_NAMED} OR child_count = 0")  # no intermediates
    conditions += _label_conditions(sql, args)
    conditions += _time_conditions(sql, reader, args, now)
    return conditions


def selection_where(
    reader: Reader, args: FilterArgs, all_images: bool, now: datetime | None = None
) -> Sql:
    """The listing's WHERE clause on `images` alone (for statements of its own: the web
    view's pages, `system df`'s totals)."""
    sql = Sql(reader.dialect)
    sql.text = _all(_selection(sql, reader, args, all_images, now or datetime.now().astimezone()))
    return sql


# --- the listing ----------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """One listing, ready to run: its statement (ImageRow columns, in order) and, under a
    `reference` filter, the statement of the matching names (only those are shown)."""

    statement: Sql
    names: Sql | None = None


def listing_query(
    *,
    session: Session | None = None,
    reader: Reader | None = None,
    filters: FilterArgs | None = None,
    all_images: bool = False,
    now: datetime | None = None,
    after: PageKey | None = None,
    limit: int | None = None,
) -> Listing:
    """Docker's `Images(filters, all)` as a statement, newest first (ties by ID), read
    through `reader` (or a session's connection).

    Filter errors are raised here, before anything is read. `after` and `limit` make it a
    page: the `limit` images that follow the one whose `page_key` is `after`.
    """
    reader = _reader(session, reader)
    args = filters or FilterArgs()
    sql = Sql(reader.dialect)
    conditions = _selection(sql, reader, args, all_images, now or datetime.now().astimezone())
    if after is not None:
        conditions.append(f"(sort_key, id) > ({sql.bind(after[0])}, {sql.bind(after[1])})")
    sql.text = (
        f"SELECT {', '.join(ROW_COLUMNS)} FROM images WHERE {_all(conditions)} "
        "ORDER BY sort_key, id"
    )
    if limit is not None:
        sql.text += f" LIMIT {sql.bind(limit)}"
    names = None
    if "reference" in args:
        names = reference_where(reader.dialect, args.get("reference"))
        names.text = (
            f"SELECT image_id, repository, tag, digest FROM image_references WHERE {names.text}"
        )
    return Listing(sql, names)


def _reader(session: Session | None, reader: Reader | None) -> Reader:
    if reader is not None:
        return reader
    assert session is not None, "a listing reads through a session or a reader"
    return as_reader(session)


def shown_names(rows: Iterable[Sequence[Any]]) -> dict[str, tuple[str, str]]:
    """RepoTags and RepoDigests (JSON text) of each image, from (image_id, repository,
    tag, digest) rows: the names a `reference` filter matched."""
    matched: dict[str, list[tuple[str, str | None, str | None]]] = defaultdict(list)
    for image_id, repository, tag, digest in rows:
        matched[image_id].append((repository, tag, digest))
    return {i: names_json(references)[2:] for i, references in matched.items()}


def image_rows(
    *, session: Session | None = None, reader: Reader | None = None, listing: Listing
) -> Iterator[ImageRow]:
    """The listing's rows as they are read, through the driver's cursor. Under a
    `reference` filter, RepoTags and RepoDigests hold the matching names only."""
    reader = _reader(session, reader)
    shown: dict[str, tuple[str, str]] | None = None
    if listing.names is not None:
        shown = shown_names(reader.rows(listing.names.text, listing.names.params))
    for row in reader.rows(listing.statement.text, listing.statement.params):
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
    from sqlalchemy import and_, exists, func, select
    from sqlalchemy.orm import aliased

    from catalog.db.models import Image, ImageLayer, Layer

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
    from sqlalchemy import case, func, select

    from catalog.db.models import Image
    from catalog.services.container_listing import container_counts

    listed = selection_where(as_reader(session), FilterArgs(), False).clause()
    count, active, reclaimable = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((Image.container_count > 0, 1), else_=0)), 0),
            func.coalesce(
                func.sum(case((Image.container_count == 0, Image.unique_size), else_=0)), 0
            ),
        ).where(listed)
    ).one()
    total, running = container_counts(session=session)
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
