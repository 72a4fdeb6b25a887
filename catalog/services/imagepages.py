"""The image listing a page at a time (the web view's images page, docs/web.md §2.3):
`list_images`' selection, in its order or sorted by size or ID, read with keyset
pagination.

The selection is `catalog.services.listing`'s own WHERE clause (every filter, the
dangling and `-a` rules: docs/listing.md §4), so a page lists exactly the images `catalog
images` lists, in the same order (docs/listing.md §7: newest first, ties by ID, no
creation time last). What is added here is only the paging: a page starts after (or ends
before) an anchor image, named by its ID, and the statement asks for the rows past the
anchor's (sort key, ID) in ORDER BY ... LIMIT, so the database walks an index from the
anchor instead of sorting and skipping everything before it. A deep page costs what the
first one does.

On PostgreSQL the page's statements run with a small `work_mem` (transaction-local, put
back after them): PostgreSQL decides between hashing a whole table for an EXISTS of the
selection and probing its index once per row by the rows it expects to test, without
counting the LIMIT, so for 51 rows it would hash 100,000 references and parent IDs on
every page; a hash that cannot fit leaves it the per-row probes (docs/web.md §6).

The `created` order is the kept `sort_key` (minus the creation time; no time sorts as
the oldest), so every order is one key and the ID, an index range from the anchor.

A page's summaries come from the kept facts on its rows (catalog.services.kept_facts:
shared size, containers, labels and names as the listing reads them); under a
`reference` filter, one more statement over the page's IDs gives the matching names
(only those are shown, as the listing does).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from catalog.db.kept_values import ROW_COLUMNS
from catalog.db.models import Image, ImageReference
from catalog.db.sql import one_of
from catalog.docker.filters import FilterArgs
from catalog.errors import InvalidArgument, NotFound
from catalog.services.listing import (
    ImageRow,
    ImageSummary,
    reference_where,
    selection_where,
    shown_names,
)
from catalog.services.lookup import as_reader

PageSort = Literal["created", "size", "id"]
PAGE_SORTS: tuple[PageSort, ...] = ("created", "size", "id")
# Each sort's natural direction: newest first (as `catalog images`), largest first, by ID.
DEFAULT_DESCENDING: dict[PageSort, bool] = {"created": True, "size": True, "id": False}
MAX_PAGE_SIZE = 500
# PostgreSQL's work_mem for the page's statements: too small for a hash of the whole
# images or references table, so EXISTS conditions are index probes per row.
PROBING_WORK_MEM = "64kB"

# A row of the order: the listing's ImageRow, then the creation time the page shows.
_Row = tuple[Any, ...]
_ROW_COLUMNS = (*(Image.__table__.c[name] for name in ROW_COLUMNS), Image.created)


@dataclass
class PageImage(ImageSummary):
    """An image of a page: as `GET /images/json` lists it, and when it was created."""

    created_at: datetime | None = None


@dataclass(frozen=True)
class ImagePage:
    """One page of the listing, and the anchors of its neighbours (None: no such page)."""

    images: list[PageImage]
    # Pass as `after` for the next page: the ID of this page's last image.
    next_after: str | None
    # Pass as `before` for the previous page: the ID of this page's first image.
    previous_before: str | None


@dataclass(frozen=True)
class _Order:
    """A page's order: `key` in `descending` order, ties by ID ascending (for `id`
    itself, the ID in the direction asked)."""

    key: Any
    descending: bool

    def order_by(self, *, backwards: bool) -> list[Any]:
        descending = self.descending != backwards
        if self.key is Image.id:
            return [Image.id.desc() if descending else Image.id.asc()]
        key = self.key.desc() if descending else self.key.asc()
        return [key, Image.id.desc() if backwards else Image.id.asc()]

    def past(self, value: Any, image_id: str, *, backwards: bool) -> ColumnElement[bool]:
        """The rows after (before, `backwards`) the row (value, image_id), as a range on
        the key an index can answer: key >= v AND (key > v OR id > i), and its mirrors."""
        lower: ColumnElement[bool] = Image.id < image_id
        higher: ColumnElement[bool] = Image.id > image_id
        # Towards the end of the order is down the key when it is descending.
        down = self.descending != backwards
        if self.key is Image.id:
            return lower if down else higher
        tie = lower if backwards else higher
        past: ColumnElement[bool] = (
            and_(self.key <= value, or_(self.key < value, tie))
            if down
            else and_(self.key >= value, or_(self.key > value, tie))
        )
        return past


def _order(sort: PageSort, descending: bool) -> _Order:
    if sort == "created":
        # Newest first is the sort key ascending (no creation time: the largest key).
        return _Order(Image.sort_key, not descending)
    return _Order(Image.size if sort == "size" else Image.id, descending)


def _anchor_value(sort: PageSort, anchor: _Row) -> Any:
    return {"created": anchor[0], "size": anchor[3], "id": anchor[1]}[sort]


def _page_rows(
    session: Session,
    conditions: Sequence[ColumnElement[bool]],
    order: _Order,
    sort: PageSort,
    anchor: _Row | None,
    *,
    backwards: bool,
    count: int,
) -> list[_Row]:
    """Up to `count` rows next to the anchor (after it, or before it when `backwards`),
    in listing order; from the start of the order without an anchor."""
    where = list(conditions)
    if anchor is not None:
        value = _anchor_value(sort, anchor)
        where.append(order.past(value, anchor[1], backwards=backwards))
    statement = (
        select(*_ROW_COLUMNS)
        .where(*where)
        .order_by(*order.order_by(backwards=backwards))
        .limit(count)
    )
    with _probing_per_row(session):
        rows: list[_Row] = [tuple(row) for row in session.execute(statement)]
    if backwards:
        rows.reverse()
    return rows


@contextmanager
def _probing_per_row(session: Session) -> Iterator[None]:
    """PostgreSQL: a work_mem too small to hash the selection's subqueries, for the
    statements inside (see the module doc); elsewhere nothing."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    previous = session.scalar(select(func.current_setting("work_mem")))
    session.execute(select(func.set_config("work_mem", PROBING_WORK_MEM, True)))
    try:
        yield
    finally:
        session.execute(select(func.set_config("work_mem", previous, True)))


def list_images_page(
    *,
    session: Session,
    filters: FilterArgs | None = None,
    all_images: bool = False,
    sort: PageSort = "created",
    descending: bool | None = None,
    after: str | None = None,
    before: str | None = None,
    limit: int = 50,
    now: datetime | None = None,
) -> ImagePage:
    """One page of Docker's `Images(filters, all, sharedSize=true)`: the first `limit`
    images in order, or those right after the image `after` (right before `before`)."""
    if sort not in PAGE_SORTS:
        raise InvalidArgument(f"invalid sort: {sort!r} (one of {', '.join(PAGE_SORTS)})")
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidArgument(f"invalid page size: {limit} (1 to {MAX_PAGE_SIZE})")
    if after is not None and before is not None:
        raise InvalidArgument("a page starts after an image or ends before one, not both")
    args = filters or FilterArgs()
    now = now or datetime.now().astimezone()
    conditions = [selection_where(as_reader(session), args, all_images, now).clause()]
    if descending is None:
        descending = DEFAULT_DESCENDING[sort]
    order = _order(sort, descending)

    anchor: _Row | None = None
    anchor_id = after if after is not None else before
    if anchor_id is not None:
        found = session.execute(select(*_ROW_COLUMNS).where(Image.id == anchor_id)).first()
        if found is None:
            raise NotFound(f"No such image: {anchor_id} (the page started at it)")
        anchor = tuple(found)
    backwards = before is not None
    rows = _page_rows(
        session, conditions, order, sort, anchor, backwards=backwards, count=limit + 1
    )
    more = len(rows) > limit
    if more:
        rows = rows[1:] if backwards else rows[:limit]
    images = _summaries(session, rows, args)
    first, last = (images[0].id, images[-1].id) if images else (None, None)
    if backwards:
        if not more:
            # Back at the start: the first page, full, as a link to it would show.
            return list_images_page(
                session=session,
                filters=args,
                all_images=all_images,
                sort=sort,
                descending=descending,
                limit=limit,
                now=now,
            )
        # Coming back from the next page: that page follows this one.
        return ImagePage(images, next_after=last, previous_before=first)
    return ImagePage(
        images,
        next_after=last if more else None,
        previous_before=first if anchor is not None else None,
    )


def _summaries(session: Session, rows: Sequence[_Row], args: FilterArgs) -> list[PageImage]:
    """The page's images as listed: their kept facts; under a `reference` filter, the
    matching names only (one statement over the page's IDs)."""
    shown: dict[str, tuple[str, str]] | None = None
    if rows and "reference" in args:
        connection = session.connection()
        listed = one_of(connection.dialect.name, sorted(row[1] for row in rows))
        shown = shown_names(
            connection.execute(
                select(
                    ImageReference.image_id,
                    ImageReference.repository,
                    ImageReference.tag,
                    ImageReference.digest,
                ).where(
                    listed(ImageReference.image_id),
                    reference_where(connection.dialect.name, args.get("reference")).clause(),
                )
            )
        )
    images = []
    for row in rows:
        listed_row: ImageRow = row[:9]
        if shown is not None:
            listed_row = (*listed_row[:7], *shown.get(row[1], ("[]", "[]")))
        image = PageImage.from_row(listed_row, shared_size=True)
        image.created_at = row[9]
        images.append(image)
    return images
