"""The listing a page at a time: walking the pages forwards and back gives exactly what
`list_images` gives, in its order (or sorted by size or ID), for every filter, with ties
and images without a creation time; a deep page costs the statements the first one does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, select, text, update
from support.environment import backend
from support.generated import GenerationResult, generate
from support.surgery import recompute_kept_facts

from catalog.context import Catalog
from catalog.db.models import Image
from catalog.docker.filters import FilterArgs
from catalog.errors import InvalidArgument, InvalidFilter, NotFound
from catalog.services.imagepages import PAGE_SORTS, PageSort, list_images_page
from catalog.services.listing import ImageSummary, list_images

TIE = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def generated(catalog: Catalog) -> GenerationResult:
    """300 synthetic images; then 12 of them lose their creation time and 15 share one."""
    result = generate(catalog, images=300, seed=11)
    with catalog.database.write() as session:
        ids = session.scalars(select(Image.id).order_by(Image.id)).all()
        session.execute(update(Image).where(Image.id.in_(ids[5:65:5])).values(created=None))
        session.execute(update(Image).where(Image.id.in_(ids[7:127:8])).values(created=TIE))
    recompute_kept_facts(catalog)  # the sort keys follow the times
    return result


def walk(catalog: Catalog, limit: int, **options: Any) -> Iterator[list[ImageSummary]]:
    """Every page, first to last, following `next_after`."""
    after = None
    while True:
        with catalog.database.read() as session:
            page = list_images_page(session=session, limit=limit, after=after, **options)
        yield page.images
        if page.next_after is None:
            return
        assert page.images, "a page that says more follow holds images"
        after = page.next_after


def walk_back(catalog: Catalog, limit: int, before: str, **options: Any) -> list[list[str]]:
    pages = []
    anchor: str | None = before
    while anchor is not None:
        with catalog.database.read() as session:
            page = list_images_page(session=session, limit=limit, before=anchor, **options)
        pages.append([image.id for image in page.images])
        anchor = page.previous_before
    pages.reverse()
    return pages


def expected_order(
    catalog: Catalog, images: list[ImageSummary], sort: PageSort, descending: bool
) -> list[str]:
    """The order, from first principles: the key (no creation time as the oldest), then
    ID ascending (for `id` itself, the ID in the direction asked)."""
    with catalog.database.read() as session:
        created: dict[str, datetime | None] = dict(
            session.execute(select(Image.id, Image.created)).all()
        )
    if sort == "id":
        return sorted((i.id for i in images), reverse=descending)
    if sort == "size":
        by_id = sorted(images, key=lambda i: i.id)
        return [i.id for i in sorted(by_id, key=lambda i: i.size, reverse=descending)]
    dated = sorted((i for i in images if created[i.id] is not None), key=lambda i: i.id)
    dated.sort(key=lambda i: created[i.id] or TIE, reverse=descending)
    undated = sorted(i.id for i in images if created[i.id] is None)
    return [i.id for i in dated] + undated if descending else undated + [i.id for i in dated]


def summary(image: ImageSummary) -> dict[str, Any]:
    return image.to_api()


def test_pages_in_listing_order_are_the_listing(
    catalog: Catalog, generated: GenerationResult
) -> None:
    probes = generated.probes
    cases: list[dict[str, list[str]]] = [{}, *probes.filters().values()]
    cases.append({"reference": [probes.reference], "dangling": ["true"]})
    for filters in cases:
        for all_images in (False, True):
            args = FilterArgs(filters)
            with catalog.database.read() as session:
                listed = list_images(
                    session=session, filters=args, all_images=all_images, shared_size=True
                )
            pages = list(walk(catalog, 23, filters=args, all_images=all_images))
            assert all(len(page) == 23 for page in pages[:-1]), filters
            assert [summary(i) for page in pages for i in page] == [summary(i) for i in listed], (
                filters,
                all_images,
            )
            if len(pages) > 1:
                back = walk_back(catalog, 23, pages[-1][0].id, filters=args, all_images=all_images)
                assert back == [[i.id for i in page] for page in pages[:-1]], filters


@pytest.mark.parametrize("sort", PAGE_SORTS)
@pytest.mark.parametrize("descending", [True, False])
def test_every_sort_both_ways_walks_forwards_and_back(
    catalog: Catalog, generated: GenerationResult, sort: PageSort, descending: bool
) -> None:
    with catalog.database.read() as session:
        everything = list_images(session=session, all_images=True)
    pages = list(walk(catalog, 40, sort=sort, descending=descending, all_images=True))
    ids = [image.id for page in pages for image in page]
    assert ids == expected_order(catalog, everything, sort, descending)
    back = walk_back(
        catalog, 40, pages[-1][0].id, sort=sort, descending=descending, all_images=True
    )
    assert back == [[image.id for image in page] for page in pages[:-1]]


def test_the_way_back_to_the_start_is_a_full_first_page(
    catalog: Catalog, generated: GenerationResult
) -> None:
    with catalog.database.read() as session:
        first = list_images_page(session=session, limit=10)
        third = first.images[3].id
        # Before the 4th image there are 3: the first page is shown, full, instead.
        back = list_images_page(session=session, limit=10, before=third)
    assert [i.id for i in back.images] == [i.id for i in first.images]
    assert back.previous_before is None and back.next_after == first.next_after


def test_a_deep_page_costs_the_statements_of_the_first(
    catalog: Catalog, generated: GenerationResult
) -> None:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    pages = list(walk(catalog, 20))
    deep_anchor = pages[-3][-1].id
    postgresql = backend() == "postgresql"
    with catalog.database.read() as session:
        work_mem = session.scalar(text("SHOW work_mem")) if postgresql else None
    event.listen(catalog.database.engine, "before_cursor_execute", count)
    try:
        with catalog.database.read() as session:
            list_images_page(session=session, limit=20)
            first = len(statements)
            statements.clear()
            list_images_page(session=session, limit=20, after=deep_anchor)
            deep = len(statements)
            if postgresql:  # the setting the page's statements ran with is put back
                assert session.scalar(text("SHOW work_mem")) == work_mem != "64kB"
    finally:
        event.remove(catalog.database.engine, "before_cursor_execute", count)
    # SQLite's BEGIN, then one statement reads the page's rows and their kept facts; on
    # PostgreSQL, work_mem is read, set and put back (3); a later page reads its anchor's
    # row too.
    assert first <= 2 + (3 if postgresql else 0), statements
    assert deep <= first + 1


def test_page_errors_are_one_line(catalog: Catalog, generated: GenerationResult) -> None:
    with catalog.database.read() as session:
        with pytest.raises(InvalidArgument, match="invalid sort"):
            list_images_page(session=session, sort="name")  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="page size"):
            list_images_page(session=session, limit=0)
        with pytest.raises(InvalidArgument, match="not both"):
            list_images_page(session=session, after="sha256:" + "a" * 64, before="x")
        with pytest.raises(NotFound, match="No such image"):
            list_images_page(session=session, after="sha256:" + "0" * 64)
        with pytest.raises(InvalidFilter, match="invalid filter 'colour'"):
            list_images_page(session=session, filters=FilterArgs({"colour": ["red"]}))
