"""The listing read from kept facts (docs/listing.md §4.1, §12): the reference prefilter
and the Labels-text test against the rules they stand for, keyset pages, and the
streamed JSON against the documents the Engine API's shapes define, on the backend
under test."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from support.builders import ImageBuilder, diff_id, image_config, layer_tar
from support.strategies import STORED_REFERENCES

from catalog.context import Catalog
from catalog.db.sql import SessionReader
from catalog.docker.filters import FilterArgs
from catalog.docker.pathmatch import BadPattern, path_match
from catalog.domain.reference import (
    Named,
    familiar_name,
    familiar_string,
    parse_normalized_named,
    with_digest,
    with_name,
)
from catalog.server import documents
from catalog.server.docker_routes import df_summary_shape, summary_shape
from catalog.server.versions import ApiVersion
from catalog.services import kept_facts
from catalog.services.containers import create_container
from catalog.services.images import set_reference
from catalog.services.listing import (
    ImageSummary,
    Sql,
    familiar_sql,
    image_rows,
    json_array,
    json_items,
    labels_text_needles,
    list_images,
    listing_query,
    page_key,
    starts_with,
    stored_name_prefixes,
    summary_writer,
)

# --- the reference prefilter ----------------------------------------------------------------


def spellings(reference: Named) -> list[str]:
    """The four names Docker's reference filter tries (docs/listing.md §3.6)."""
    suffix = str(reference)[len(reference.name) :]
    return [
        familiar_string(reference),
        familiar_name(reference),
        reference.name + suffix,
        reference.name,
    ]


@st.composite
def patterns_for(draw: st.DrawFn, reference: Named) -> str:
    """A pattern made from one of the reference's spellings, some characters replaced
    with `*`, `?` or a class, or cut short by a `*`."""
    text = draw(st.sampled_from(spellings(reference)))
    chars = list(text)
    for _ in range(draw(st.integers(0, 3))):
        if not chars:
            break
        i = draw(st.integers(0, len(chars) - 1))
        chars[i] = draw(st.sampled_from(["*", "?", "[a-z]", "[^/]", "\\" + chars[i]]))
    if draw(st.booleans()):
        chars = [*chars[: draw(st.integers(0, len(chars)))], "*"]
    return "".join(chars)


@settings(max_examples=600)
@given(data=st.data(), reference=STORED_REFERENCES)
def test_the_name_prefixes_never_leave_out_a_match(data: st.DataObject, reference: Named) -> None:
    assume(reference.tag is not None or reference.digest is not None)
    pattern = data.draw(patterns_for(reference))
    try:
        matched = any(path_match(pattern, spelling) for spelling in spellings(reference))
    except BadPattern:
        return
    prefixes = stored_name_prefixes(pattern)
    if matched and prefixes:
        assert any(reference.name.startswith(prefix) for prefix in prefixes), (pattern, prefixes)


def test_name_prefixes() -> None:
    assert stored_name_prefixes("org-07/*") == [
        "org-07/",
        "docker.io/org-07/",
        "docker.io/library/org-07/",
    ]
    assert stored_name_prefixes("localhost:5000/x:*")[0] == "localhost"
    assert stored_name_prefixes("*/app") == []
    assert stored_name_prefixes("ap[p]") == ["ap", "docker.io/ap", "docker.io/library/ap"]


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=6), prefix=st.text(max_size=4))
def test_starts_with_is_str_startswith(catalog: Catalog, text: str, prefix: str) -> None:
    assume("\x00" not in text + prefix)
    with catalog.database.read() as session:
        sql = Sql(session.get_bind().dialect.name)
        sql.text = f"SELECT 1 WHERE {starts_with(sql, sql.bind(text), prefix)}"
        found = list(SessionReader(session).rows(sql.text, sql.params))
        assert bool(found) == text.startswith(prefix)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(references=st.lists(STORED_REFERENCES, min_size=1, max_size=20))
def test_familiar_name_text_is_familiar_string(catalog: Catalog, references: list[Named]) -> None:
    """The PostgreSQL reference filter's familiar name, as SQL text, on either backend."""
    with catalog.database.read() as session:
        for reference in references:
            sql = Sql(session.get_bind().dialect.name)
            sql.text = f"SELECT {familiar_sql(sql, sql.bind(str(reference)))}"
            [(got,)] = SessionReader(session).rows(sql.text, sql.params)
            assert got == familiar_string(reference), str(reference)


# --- label! on the kept Labels text ---------------------------------------------------------

ODD = st.text(st.sampled_from(list('ab"\\{},:<>&=! \u00e9\u2028')), max_size=5)


@settings(max_examples=3000)
@given(labels=st.dictionaries(ODD, ODD, max_size=4), key=ODD, value=st.none() | ODD)
def test_the_labels_text_needles_find_exactly_the_label(
    labels: dict[str, str], key: str, value: str | None
) -> None:
    needles = labels_text_needles(key, value)
    if needles is None:  # the keys `:` and `,`: probed in image_labels instead
        assert key in (":", ",")
        return
    text = kept_facts.labels_json(labels)
    found = text is not None and any(n in text for n in needles)
    expected = key in labels and (value is None or labels[key] == value)
    assert found is expected


def test_label_filters_on_odd_labels(catalog: Catalog, images: ImageBuilder) -> None:
    odd = {
        ":": ",",
        "a,": ":x",
        'k"': "v",
        "a,b": "c:d",
        "{x}": "",
        "k": 'a","k":"b',
        "<&>": "\u00e9\u2028",
    }
    with_labels = {}
    for i, (key, value) in enumerate(odd.items()):
        image = images.add([layer_tar({f"f{i}": b"x"})], tags=[f"odd{i}:1"], labels={key: value})
        with_labels[image] = {key: value}
    bare = images.add([layer_tar({"bare": b"x"})], tags=["bare:1"])
    with_labels[bare] = {}

    def listed(flag: str) -> set[str]:
        name, _, value = flag.partition("=")  # as the API takes them: nothing trimmed
        with catalog.database.read() as session:
            found = list_images(session=session, filters=FilterArgs({name: [value]}))
        return {s.id for s in found}

    for key, value in odd.items():
        has_key = {i for i, labels in with_labels.items() if key in labels}
        has_pair = {i for i, labels in with_labels.items() if labels.get(key) == value}
        assert listed(f"label={key}") == has_key
        assert listed(f"label!={key}") == set(with_labels) - has_key
        assert listed(f"label={key}={value}") == has_pair
        assert listed(f"label!={key}={value}") == set(with_labels) - has_pair
    # A value that looks like another pair does not make one.
    assert listed("label=k=b") == set()


# --- pages ------------------------------------------------------------------------------------


def test_pages_make_up_the_listing(catalog: Catalog, images: ImageBuilder) -> None:
    """Keyset pages (`after` the last row's page_key, `limit` rows) of any listing give
    the listing, whatever the ties: same creation time (then by ID) and none at all."""
    same = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(9):
        images.add([layer_tar({f"p{i}": b"p"})], tags=[f"page:{i}"], created=same)
    for i in range(4):
        images.add([layer_tar({f"q{i}": b"q"})], tags=[f"later:{i}"])
    for i in range(3):  # undated: last
        layer = layer_tar({f"u{i}": b"u"})
        config = image_config([diff_id(layer)], extra={"created": "0001-01-01T00:00:00Z"})
        images.add([layer], tags=[f"undated:{i}"], config=config)
    for filters in ({}, {"reference": ["page"]}, {"label!": ["nothing"]}):
        with catalog.database.read() as session:
            whole = list(
                image_rows(
                    session=session,
                    listing=listing_query(session=session, filters=FilterArgs(filters)),
                )
            )
            for size in (1, 2, 5):
                pages: list[Any] = []
                after = None
                while True:
                    listing = listing_query(
                        session=session, filters=FilterArgs(filters), after=after, limit=size
                    )
                    page = list(image_rows(session=session, listing=listing))
                    pages += page
                    if len(page) < size:
                        break
                    after = page_key(page[-1])
                assert pages == whole, (filters, size)
    assert [row[0] for row in whole] == sorted(row[0] for row in whole)


# --- the JSON as the Engine API's documents -------------------------------------------------

VERSIONS = [ApiVersion(f"1.{minor}") for minor in range(24, 53)]


@pytest.fixture
def varied(catalog: Catalog, images: ImageBuilder) -> Catalog:
    """Images with odd labels, tags and digests in several registries, none at all, a
    parent, containers, shared layers and no creation time."""
    base = layer_tar({"base": b"b" * 100})
    parent = images.add([base], labels={"<a>": "&\u2028\u00e9", "z": ""})
    child = images.add(
        [base, layer_tar({"c": b"c" * 7})], tags=["app:1", "ghcr.io/o/app:2"], parent=parent
    )
    images.add([layer_tar({"d": b"d"})])
    undated = layer_tar({"u": b"u" * 3})
    images.add(
        [undated],
        tags=["undated:1"],
        config=image_config([diff_id(undated)], extra={"created": "0001-01-01T00:00:00Z"}),
    )
    with catalog.database.write() as session:
        for repository in ("app", "localhost:5000/x"):
            name = with_name(parse_normalized_named(repository).name)
            digest = with_digest(name, "sha256:" + "e" * 64)
            set_reference(session=session, reference=digest, image_id=child)
        create_container(session=session, image=child, state="running")
    return catalog


@pytest.mark.parametrize("all_images", [False, True])
@pytest.mark.parametrize("shared_size", [False, True])
def test_summaries_are_the_documents_byte_for_byte(
    varied: Catalog, all_images: bool, shared_size: bool
) -> None:
    with varied.database.read() as session:
        listing = listing_query(session=session, all_images=all_images)
        rows = list(image_rows(session=session, listing=listing))
    assert len(rows) == 3 + all_images
    summaries = [ImageSummary.from_row(row, shared_size=shared_size).to_api() for row in rows]
    for version in VERSIONS:
        write = summary_writer(shared_size=shared_size, shape=summary_shape(version))
        streamed = "".join(json_array(iter([write(row) for row in rows]), chunk=50)).encode()
        expected = documents.go_json([documents.image_summary(s, version) for s in summaries])
        assert streamed == expected, version
    # The CLI's JSON is the current shape.
    current = summary_writer(shared_size=shared_size)
    assert [json.loads(current(row)) for row in rows] == summaries


@pytest.mark.parametrize("verbose", [None, False, True])
@pytest.mark.parametrize("types", [[], ["image"], ["container", "volume"], ["build-cache"]])
def test_disk_usage_pieces_are_the_document(
    varied: Catalog, verbose: bool | None, types: list[str]
) -> None:
    with varied.database.read() as session:
        rows = list(image_rows(session=session, listing=listing_query(session=session)))
    summaries = [ImageSummary.from_row(row, shared_size=True).to_api() for row in rows]
    containers = [{"Id": "c", "State": "running"}]
    for version in VERSIONS:
        wanted = set(types) if types else {"container", "image", "volume"}
        images = summaries if "image" in wanted else None
        common: dict[str, Any] = {
            "version": version,
            "types": types,
            "verbose": verbose,
            "layers_size": 107,
            "image_active": 1,
            "image_reclaimable": 5,
            "containers": containers,
        }
        expected = documents.go_json(documents.disk_usage(images=images, **common))
        write = summary_writer(shared_size=True, shape=df_summary_shape(version))
        pieces = documents.disk_usage_pieces(
            image_count=len(rows) if images is not None else None,
            image_items=lambda write=write: json_items(iter([write(r) for r in rows]), chunk=10),
            **common,
        )
        assert "".join(pieces).encode() == expected, version


@pytest.mark.parametrize("shared_size", [False, True])
def test_listed_objects_share_label_strings_and_nothing_mutable(
    catalog: Catalog, images: ImageBuilder, shared_size: bool
) -> None:
    """list_images decodes each row as from_row does; equal labels keep one key and value
    string between summaries, while every dict and list stays a summary's own."""
    labels = {"team": "a", "tier": "prod"}
    for number in range(3):
        images.add([layer_tar({f"f{number}": b"x"})], tags=[f"app:{number}"], labels=labels)
    images.add([layer_tar({"bare": b"x"})])
    with catalog.database.read() as session:
        listed = list_images(session=session, all_images=True, shared_size=shared_size)
        rows = list(
            image_rows(session=session, listing=listing_query(session=session, all_images=True))
        )
    assert listed == [ImageSummary.from_row(row, shared_size=shared_size) for row in rows]
    labelled = [s for s in listed if s.labels]
    assert len(labelled) == 3
    first, second = labelled[0], labelled[1]
    assert first.labels == second.labels == labels
    assert first.labels is not second.labels
    assert [id(k) for k in first.labels] == [id(k) for k in second.labels]
    assert first.labels is not None and second.labels is not None
    assert first.labels["tier"] is second.labels["tier"]
    empty = [s.repo_digests for s in listed]
    assert len({id(lst) for lst in empty}) == len(empty)
    first.labels["team"] = "b"
    first.repo_digests.append("x")
    assert second.labels == labels and second.repo_digests == []
    assert not hasattr(first, "__dict__")


@pytest.mark.parametrize("verbose", [None, False, True])
@pytest.mark.parametrize("types", [[], ["image"], ["container", "volume"], ["build-cache"]])
@pytest.mark.parametrize("count", [0, 1, 3])
def test_disk_usage_pieces_stream_containers_as_the_document(
    verbose: bool | None, types: list[str], count: int
) -> None:
    """Containers written as they come (`container_items`) give the document's bytes."""
    containers = [
        {"Id": f"c{n}", "Names": ["/<n>"], "State": "running" if n % 2 else "exited"}
        for n in range(count)
    ]
    images = [{"Id": "i", "Labels": {"a": "&"}, "Size": 3}]
    wanted = set(types) if types else {"container", "image", "volume"}
    for version in VERSIONS:
        common: dict[str, Any] = {
            "version": version,
            "types": types,
            "verbose": verbose,
            "layers_size": 107,
            "image_active": 1,
            "image_reclaimable": 5,
        }
        expected = documents.go_json(
            documents.disk_usage(
                images=images if "image" in wanted else None,
                containers=containers if "container" in wanted else None,
                **common,
            )
        )
        # The images as this version shows them in the document (not under test here).
        document = json.loads(expected)
        shown = document.get("Images") or document.get("ImageUsage", {}).get("Items") or []
        pieces = documents.disk_usage_pieces(
            image_count=len(images) if "image" in wanted else None,
            image_items=lambda shown=shown: iter([documents.go_json_text(i) for i in shown]),
            container_count=count if "container" in wanted else None,
            container_running=count // 2,
            container_items=lambda: json_items(
                iter([documents.go_json_text(c) for c in containers]), chunk=10
            ),
            **common,
        )
        assert "".join(pieces).encode() == expected, version
