"""Facts kept for the listing, changed in the same transaction as what they follow
(docs/listing.md §12).

A listing reads one narrow row per image (`images.sort_key`, `unique_size`, the counts and
the JSON texts) instead of grouping `image_layers`, `image_references`, `image_labels` and
`containers` on every call. Each writer calls one function here after its own change,
and the function touches only the rows that change: O(the write), never O(images).

- `new_image_columns`: what an image row is inserted with (`sort_key`, `labels_json`);
- `image_added` / `image_removed`: `layers.ref_count` of its chains; `unique_size` of the
  image and of the one other image that owns a chain whose count moves between 1 and 2;
  its parent's `child_count`; its `container_count`;
- `parent_set`: a parent's `child_count` (load's setParentID);
- `names_changed`: `tag_count`, `digest_count`, `repo_tags`, `repo_digests` of the images
  whose references changed; `names_columns`: the same as values of an UPDATE of the image's
  row that its writer runs anyway (a tag: LastTagTime);
- `container_added` / `container_removed`: `container_count`.

`kept_fact_differences` recomputes every fact from the rows, in a fixed number of
statements whose rows are streamed, and lists those that differ (`catalog fsck`);
`rewrite_kept_facts` writes the recomputed values where they differ (`fsck --repair`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from catalog.db.kept_values import StoredName, labels_json, names_json, sort_key
from catalog.db.models import (
    Container,
    Image,
    ImageLabel,
    ImageLayer,
    ImageReference,
    Layer,
)

# Rows fetched at a time by the recomputations.
_BATCH = 5000

IMAGE_COUNTS = ("unique_size", "child_count", "tag_count", "digest_count", "container_count")
IMAGE_TEXTS = ("sort_key", "labels_json", "repo_tags", "repo_digests")
# Every kept column, by table.
KEPT_COLUMNS = {"images": IMAGE_COUNTS + IMAGE_TEXTS, "layers": ("ref_count",)}


def new_image_columns(created: datetime | None, labels: Mapping[str, str] | None) -> dict[str, Any]:
    """The kept columns a new image row is inserted with (the others start at their
    defaults: no names, no children, then `image_added`)."""
    return {"sort_key": sort_key(created), "labels_json": labels_json(labels)}


# --- writers ------------------------------------------------------------------------------
# Statements built once and run on the session's connection: a write runs a few of them on
# a few rows each, and building one, or the ORM's handling of it, would cost more than
# running it. The writers' own rows are in the database already (they flush).

_IMAGES = cast(Table, Image.__table__)
_LAYERS = cast(Table, Layer.__table__)
_CHAINS: Any = bindparam("chains", expanding=True)


def _counting(change: int) -> Any:
    """Move the chains' reference counts; their counts and sizes after."""
    return (
        update(_LAYERS)
        .where(_LAYERS.c.chain_id.in_(_CHAINS))
        .values(ref_count=_LAYERS.c.ref_count + change)
        .returning(_LAYERS.c.chain_id, _LAYERS.c.ref_count, _LAYERS.c.diff_size)
    )


_COUNT_UP = _counting(1)
_COUNT_DOWN = _counting(-1)
_OWNERS = select(ImageLayer.image_id, ImageLayer.chain_id).where(
    ImageLayer.chain_id.in_(_CHAINS), ImageLayer.image_id != bindparam("but")
)
_ADD_UNIQUE = (
    update(_IMAGES)
    .where(_IMAGES.c.id == bindparam("image"))
    .values(unique_size=_IMAGES.c.unique_size + bindparam("change"))
)
_NEW_IMAGE = (
    update(_IMAGES)
    .where(_IMAGES.c.id == bindparam("image"))
    .values(
        unique_size=bindparam("unique"),
        container_count=select(func.count())
        .select_from(Container)
        .where(Container.image_id == bindparam("image"))
        .scalar_subquery(),
    )
)
_ADD = {
    column: update(_IMAGES)
    .where(_IMAGES.c.id == bindparam("image"))
    .values({column: _IMAGES.c[column] + bindparam("change")})
    for column in ("child_count", "container_count")
}
_REFERENCES = select(
    ImageReference.image_id, ImageReference.repository, ImageReference.tag, ImageReference.digest
).where(ImageReference.image_id.in_(bindparam("images", expanding=True)))
_NAMES = (
    update(_IMAGES)
    .where(_IMAGES.c.id == bindparam("image"))
    .values(
        tag_count=bindparam("tag_count"),
        digest_count=bindparam("digest_count"),
        repo_tags=bindparam("repo_tags"),
        repo_digests=bindparam("repo_digests"),
    )
)


def _run(session: Session, statement: Any, parameters: Any) -> Any:
    return session.connection().execute(statement, parameters)


# One image's references, as names_columns reads them on every tag: straight from the DBAPI
# cursor (text columns: no Row objects, no result processing), compiled once per dialect.
_NAMES_OF_ONE = select(ImageReference.repository, ImageReference.tag, ImageReference.digest).where(
    ImageReference.image_id == bindparam("image")
)
_NAMES_OF_ONE_SQL: dict[str, tuple[str, Sequence[str] | None]] = {}


def _names_of_one(session: Session, image_id: str) -> list[StoredName]:
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name not in _NAMES_OF_ONE_SQL:
        compiled: Any = _NAMES_OF_ONE.compile(dialect=dialect)
        _NAMES_OF_ONE_SQL[dialect.name] = (compiled.string, compiled.positiontup)
    sql, positions = _NAMES_OF_ONE_SQL[dialect.name]
    named = {"image": image_id}
    parameters: Any = named if positions is None else tuple(named[p] for p in positions)
    raw: Any = connection.connection.dbapi_connection
    cursor = raw.cursor()
    try:
        cursor.execute(sql, parameters)
        return cast(list[StoredName], cursor.fetchall())
    finally:
        cursor.close()


def _move_unique_sizes(session: Session, chains: Mapping[str, int], but: str) -> None:
    """Chains now used by one image besides `but`: that image gains (or loses) their
    bytes."""
    if not chains:
        return
    changes: dict[str, int] = defaultdict(int)
    for image_id, chain in _run(session, _OWNERS, {"chains": list(chains), "but": but}):
        changes[image_id] += chains[chain]
    if changes:
        _run(session, _ADD_UNIQUE, [{"image": i, "change": c} for i, c in changes.items()])


def _count(session: Session, image_id: str | None, column: str, change: int) -> None:
    if image_id is not None:
        _run(session, _ADD[column], {"image": image_id, "change": change})


def image_added(
    *, session: Session, image_id: str, chains: Sequence[str], parent_id: str | None
) -> None:
    """After an image's row and layer list are inserted: its chains' reference counts, the
    unique sizes they move, its parent's child count, its container count (containers
    may outlive an image deleted with `rmi -f` and count again when it comes back)."""
    unique = 0
    if chains:
        now_shared: dict[str, int] = {}
        for chain, count, diff_size in _run(session, _COUNT_UP, {"chains": list(chains)}):
            if count == 1:
                unique += diff_size
            elif count == 2:  # its one other user no longer has it alone
                now_shared[chain] = -diff_size
        _move_unique_sizes(session, now_shared, image_id)
    _run(session, _NEW_IMAGE, {"image": image_id, "unique": unique})
    _count(session, parent_id, "child_count", 1)


def image_removed(
    *, session: Session, image_id: str, chains: Sequence[str], parent_id: str | None
) -> None:
    """After an image's row (and so its layer list) is deleted: its chains' reference
    counts, the unique sizes they move, its parent's child count."""
    if chains:
        now_unique = {
            chain: diff_size
            for chain, count, diff_size in _run(session, _COUNT_DOWN, {"chains": list(chains)})
            if count == 1
        }
        _move_unique_sizes(session, now_unique, image_id)
    _count(session, parent_id, "child_count", -1)


def parent_set(*, session: Session, parent_id: str) -> None:
    """After an image without a parent was given `parent_id`."""
    _count(session, parent_id, "child_count", 1)


def container_added(*, session: Session, image_id: str) -> None:
    _count(session, image_id, "container_count", 1)


def container_removed(*, session: Session, image_id: str) -> None:
    """After a container row is deleted (its image may be gone: nothing to change then)."""
    _count(session, image_id, "container_count", -1)


def names_columns(*, session: Session, image_id: str) -> dict[str, Any]:
    """The names facts of `image_id` (its references flushed), as values for an UPDATE of
    its row that its writer runs anyway (set_reference's LastTagTime), instead of
    `names_changed` for it: a second UPDATE of the row, after a read through the ORM's
    result machinery, cost a tag on PostgreSQL twice the 10% the kept facts may."""
    tag_count, digest_count, tags, digests = names_json(_names_of_one(session, image_id))
    return {
        "tag_count": tag_count,
        "digest_count": digest_count,
        "repo_tags": tags,
        "repo_digests": digests,
    }


def names_changed(*, session: Session, image_ids: Iterable[str | None]) -> None:
    """After references of these images were added, moved or deleted: their counts and
    RepoTags/RepoDigests texts, from their references (images that are gone are skipped)."""
    wanted = sorted({image_id for image_id in image_ids if image_id is not None})
    if not wanted:
        return
    references: dict[str, list[StoredName]] = {image_id: [] for image_id in wanted}
    for image_id, repository, tag, digest in _run(session, _REFERENCES, {"images": wanted}):
        references[image_id].append((repository, tag, digest))
    rows = []
    for image_id, named in references.items():
        tag_count, digest_count, tags, digests = names_json(named)
        rows.append(
            {
                "image": image_id,
                "tag_count": tag_count,
                "digest_count": digest_count,
                "repo_tags": tags,
                "repo_digests": digests,
            }
        )
    _run(session, _NAMES, rows)


# --- recomputation ----------------------------------------------------------------------


@dataclass(frozen=True)
class KeptFactDifference:
    """A kept fact that is not what the rows give: `subject` is an image ID (a chain ID
    for `ref_count`)."""

    subject: str
    column: str
    kept: Any
    recomputed: Any

    @property
    def table(self) -> str:
        return "layers" if self.column == "ref_count" else "images"

    def detail(self) -> str:
        return f"kept {self.column} is {self.kept!r}, the rows give {self.recomputed!r}"


def _streamed(session: Session, statement: Any) -> Iterator[Any]:
    return iter(session.execute(statement.execution_options(yield_per=_BATCH)))


def _count_differences(session: Session) -> Iterator[KeptFactDifference]:
    """The counts and unique sizes, recomputed in SQL: only differing rows come back."""
    per_chain = (
        select(ImageLayer.chain_id, func.count().label("n"))
        .group_by(ImageLayer.chain_id)
        .subquery("per_chain")
    )
    ref_count = func.coalesce(per_chain.c.n, 0)
    for chain, kept, recomputed in _streamed(
        session,
        select(Layer.chain_id, Layer.ref_count, ref_count)
        .outerjoin(per_chain, per_chain.c.chain_id == Layer.chain_id)
        .where(Layer.ref_count != ref_count)
        .order_by(Layer.chain_id),
    ):
        yield KeptFactDifference(chain, "ref_count", kept, recomputed)

    alone = (
        select(ImageLayer.chain_id)
        .group_by(ImageLayer.chain_id)
        .having(func.count() == 1)
        .subquery("alone")
    )
    unique = (
        select(ImageLayer.image_id, func.sum(Layer.diff_size).label("n"))
        .join(Layer, Layer.chain_id == ImageLayer.chain_id)
        .where(ImageLayer.chain_id.in_(select(alone.c.chain_id)))
        .group_by(ImageLayer.image_id)
        .subquery("unique_sizes")
    )
    child = aliased(Image)
    children = (
        select(child.parent_id.label("image_id"), func.count().label("n"))
        .where(child.parent_id.isnot(None))
        .group_by(child.parent_id)
        .subquery("children")
    )

    def references(kind: Any, name: str) -> Any:
        return (
            select(ImageReference.image_id, func.count().label("n"))
            .where(kind.isnot(None))
            .group_by(ImageReference.image_id)
            .subquery(name)
        )

    tags = references(ImageReference.tag, "tags")
    digests = references(ImageReference.digest, "digests")
    containers = (
        select(Container.image_id, func.count().label("n"))
        .group_by(Container.image_id)
        .subquery("containers")
    )
    sources = (unique, children, tags, digests, containers)
    recomputed = [func.coalesce(source.c.n, 0) for source in sources]
    kept = [Image.unique_size, Image.child_count, Image.tag_count, Image.digest_count]
    kept.append(Image.container_count)
    statement = select(Image.id, *kept, *recomputed)
    for source in sources:
        statement = statement.outerjoin(source, source.c.image_id == Image.id)
    statement = statement.where(or_(*[a != b for a, b in zip(kept, recomputed, strict=True)]))
    half = len(IMAGE_COUNTS)
    for image_id, *values in _streamed(session, statement.order_by(Image.id)):
        for column, was, now in zip(IMAGE_COUNTS, values[:half], values[half:], strict=True):
            if was != now:
                yield KeptFactDifference(image_id, column, was, int(now))


def _grouped(rows: Iterator[Any], width: int) -> Iterator[tuple[Any, list[Any]]]:
    """Rows ordered by image, the image's `width` columns first, then one joined row's
    columns: (the image's columns, the joined rows' columns) per image."""
    head: Any = None
    group: list[Any] = []
    for row in rows:
        if head is not None and row[0] != head[0]:
            yield head, group
            group = []
        head = tuple(row[:width])
        group.append(tuple(row[width:]))
    if head is not None:
        yield head, group


def _text_differences(session: Session) -> Iterator[KeptFactDifference]:
    """sort_key and the JSON texts, recomputed in Python from rows streamed per image."""
    for image_id, created, kept in _streamed(
        session, select(Image.id, Image.created, Image.sort_key).order_by(Image.id)
    ):
        expected = sort_key(created)
        if kept != expected:
            yield KeptFactDifference(image_id, "sort_key", kept, expected)

    labels = (
        select(Image.id, Image.labels_json, ImageLabel.key, ImageLabel.value)
        .outerjoin(ImageLabel, ImageLabel.image_id == Image.id)
        .order_by(Image.id)
    )
    for (image_id, kept_labels), rows in _grouped(_streamed(session, labels), 2):
        pairs = {key: value for key, value in rows if key is not None}
        expected_labels = labels_json(pairs)
        if kept_labels != expected_labels:
            yield KeptFactDifference(image_id, "labels_json", kept_labels, expected_labels)

    names = (
        select(
            Image.id,
            Image.repo_tags,
            Image.repo_digests,
            ImageReference.repository,
            ImageReference.tag,
            ImageReference.digest,
        )
        .outerjoin(ImageReference, ImageReference.image_id == Image.id)
        .order_by(Image.id)
    )
    for (image_id, kept_tags, kept_digests), rows in _grouped(_streamed(session, names), 3):
        _, _, tags, digests = names_json(row for row in rows if row[0] is not None)
        if kept_tags != tags:
            yield KeptFactDifference(image_id, "repo_tags", kept_tags, tags)
        if kept_digests != digests:
            yield KeptFactDifference(image_id, "repo_digests", kept_digests, digests)


def kept_fact_differences(*, session: Session) -> list[KeptFactDifference]:
    """Every kept fact that differs from its recomputation from the rows: chains first,
    then images by ID."""
    return [*_count_differences(session), *_text_differences(session)]


def rewrite_kept_facts(*, session: Session) -> list[KeptFactDifference]:
    """Write the recomputed value of every kept fact that differs; the differences."""
    differences = kept_fact_differences(session=session)
    layers = cast(Table, Layer.__table__)
    images = cast(Table, Image.__table__)
    for difference in differences:
        table = layers if difference.table == "layers" else images
        key = table.c.chain_id if table is layers else table.c.id
        session.execute(
            update(table)
            .where(key == difference.subject)
            .values({difference.column: difference.recomputed})
        )
    return differences
