"""The facts kept for the listing (docs/listing.md §12): their definitions, and a
Hypothesis state machine that runs random sequences of every kind of write through
catalog's own services and operations, on the backend under test, and after each step
compares every kept fact with its recomputation from the rows."""

from __future__ import annotations

import contextlib
import io
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import delete, select, update
from support.archive_builders import Image as ArchiveImage
from support.archive_builders import docker_archive
from support.builders import ImageBuilder, diff_id, image_config, layer_tar
from support.surgery import kept_facts_differences, sql_leaving_kept_facts

from catalog.context import Catalog
from catalog.db import kept_values
from catalog.db.kept_values import UNDATED
from catalog.db.models import Base, Container, Image, ImageReference, Layer
from catalog.docker.filters import FilterArgs
from catalog.docker.gojson import go_json_text
from catalog.domain.reference import familiar_string, parse_normalized_named
from catalog.errors import CatalogError
from catalog.operations.append import append_image
from catalog.operations.fsck.check import check_catalog
from catalog.operations.load import load_archive
from catalog.operations.squash import squash_image
from catalog.services import kept_facts
from catalog.services.containers import create_container, remove_container
from catalog.services.delete import delete_images
from catalog.services.listing import disk_usage_totals, list_images
from catalog.services.prune import delete_unused_images
from catalog.services.refstore import references_of, repo_digests, repo_tags
from catalog.services.tag import tag_image

T0 = datetime(2024, 1, 1, tzinfo=UTC)

REPOSITORY = Path(__file__).resolve().parents[2]
# Docker's algorithm, from the benchmark harness (not installed): after every module.
if str(REPOSITORY) not in sys.path:
    sys.path.append(str(REPOSITORY))

from benchmarks import baseline  # noqa: E402

# --- definitions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "created",
    [
        datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),
        datetime(1900, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_sort_key_orders_newest_first_and_gives_docker_created(created: datetime) -> None:
    key = kept_values.sort_key(created)
    assert kept_values.sort_key(created - timedelta(microseconds=1)) == key + 1
    assert key < UNDATED == kept_values.sort_key(None)
    # Go's Unix(): whole seconds, rounded down (exactly, unlike a float timestamp).
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert kept_values.created_unix(key) == (created - epoch) // timedelta(seconds=1)
    assert kept_values.created_unix(UNDATED) == 0


@pytest.mark.parametrize(
    "names",
    [
        ["busybox:latest", "localhost:5000/x:1", "busybox:1", "a/b@sha256:" + "1" * 64],
        ["docker.io/library/a/b:1", "docker.io/library/ab:2", "ghcr.io/o/p@sha256:" + "2" * 64],
        [],
    ],
)
def test_names_json_is_docker_repo_tags_and_digests(names: list[str]) -> None:
    references = [parse_normalized_named(name) for name in names]
    stored = [(r.name, r.tag, r.digest) for r in references]
    ordered = sorted(references, key=str)
    tags, digests = repo_tags(ordered), repo_digests(ordered)
    assert kept_values.names_json(stored) == (
        len(tags),
        len(digests),
        go_json_text(tags),
        go_json_text(digests),
    )
    for reference in references:
        assert kept_values.familiar_text(reference.name) + str(reference)[
            len(reference.name) :
        ] == familiar_string(reference)


# Any text a row may hold, escapes included (PostgreSQL's text has no NUL).
_TEXTS = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=8)
_STORED_TEXTS = st.tuples(
    st.tuples(st.sampled_from(["", "docker.io/", "docker.io/library/"]), _TEXTS)
    .map("".join)
    .filter(bool),
    st.one_of(
        _TEXTS.map(lambda tag: (tag, None)),
        st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True).map(lambda digest: (None, digest)),
    ),
).map(lambda row: (row[0], *row[1]))


def test_names_facts_are_names_json_of_any_stored_text(
    catalog: Catalog, images: ImageBuilder
) -> None:
    """names_changed and names_columns (read from the DBAPI cursor) write what names_json
    gives, also for texts no command writes: Go's escapes, other scripts, full names that
    tie; an image left without names gets none."""
    named, other = images.add([LAYERS[0]]), images.add([LAYERS[1]])
    facts = (Image.tag_count, Image.digest_count, Image.repo_tags, Image.repo_digests)

    @settings(max_examples=60, deadline=None)
    @given(st.lists(_STORED_TEXTS, max_size=8, unique=True))
    def check(names: list[kept_values.StoredName]) -> None:
        with catalog.database.write() as session:
            session.add_all(
                ImageReference(repository=r, tag=t, digest=d, image_id=named) for r, t, d in names
            )
            session.flush()
            kept_facts.names_changed(session=session, image_ids=[other, None, named])
            kept = session.execute(select(*facts).where(Image.id == named)).one()
            assert tuple(kept) == kept_values.names_json(names)
            empty = session.execute(select(*facts).where(Image.id == other)).one()
            assert tuple(empty) == kept_values.names_json([]) == (0, 0, "[]", "[]")
            # The same values ride on a writer's own UPDATE of the row (set_reference).
            stale = {"tag_count": 0, "digest_count": 0, "repo_tags": "", "repo_digests": ""}
            session.execute(update(Image).where(Image.id == named).values(stale))
            names_columns = kept_facts.names_columns(session=session, image_id=named)
            session.execute(update(Image).where(Image.id == named).values(names_columns))
            kept = session.execute(select(*facts).where(Image.id == named)).one()
            assert tuple(kept) == kept_values.names_json(names)
            session.execute(delete(ImageReference))
            kept_facts.names_changed(session=session, image_ids=[named])
            kept = session.execute(select(*facts).where(Image.id == named)).one()
            assert tuple(kept) == kept_values.names_json([])

    check()


def test_labels_json_is_go_map_json() -> None:
    assert kept_values.labels_json(None) is None
    assert kept_values.labels_json({}) is None
    assert kept_values.labels_json({"b": "<&>", "a": "\u00e9"}) == (
        '{"a":"\u00e9","b":"\\u003c\\u0026\\u003e"}'
    )


# --- fsck ------------------------------------------------------------------------------


def test_fsck_reports_and_repairs_damaged_kept_facts(
    catalog: Catalog, images: ImageBuilder
) -> None:
    shared = layer_tar({"base": b"b" * 100})
    base = images.add([shared], tags=["base:1"], labels={"k": "v"})
    child = images.add([shared, layer_tar({"c": b"c" * 10})], tags=["child:1"], parent=base)
    sql_leaving_kept_facts(
        catalog,
        "UPDATE images SET unique_size = 5, child_count = 0, repo_tags = '[]',"
        " labels_json = NULL, sort_key = 0 WHERE id = :id",
        id=base,
    )
    sql_leaving_kept_facts(catalog, "UPDATE layers SET ref_count = 7")
    report = check_catalog(catalog)
    kept = [p.line() for p in report.problems if p.kind == "kept-fact"]
    assert len(kept) == 2 + 5  # two chains, five facts of the base image
    assert f"kept-fact: {base}: kept repo_tags is '[]', the rows give '[\"base:1\"]'" in kept
    assert f"kept-fact: {base}: kept child_count is 0, the rows give 1" in kept
    assert report.remaining_errors == report.errors and len(report.errors) == 7
    repaired = check_catalog(catalog, repair=True)
    assert repaired.remaining_errors == []
    assert all(o.repaired and o.note == "rewrote it from the rows" for o in repaired.repairs or [])
    assert check_catalog(catalog).problems == []
    assert kept_facts_differences(catalog) == []
    with catalog.database.read() as session:
        assert session.scalar(select(Image.unique_size).where(Image.id == child)) == 10


# --- the state machine -------------------------------------------------------------------

# A few small layers: stacks drawn from them share chains (the same diff at the same
# depth on the same base) and so move unique sizes between images.
LAYERS = [layer_tar({f"f{i}": bytes([65 + i]) * (10 * (i + 1))}) for i in range(4)]
NAMES = ["app:1", "app:2", "app:latest", "tools:1", "ghcr.io/o/app:1", "localhost:5000/x:y"]
TIMES = [None, T0, T0 + timedelta(days=1), T0 - timedelta(days=365 * 60)]

# (all, shared sizes, filters): the listings compared with Docker's after every step.
LISTINGS: list[tuple[bool, bool, dict[str, list[str]]]] = [
    (False, True, {}),
    (True, True, {}),
    (False, False, {"dangling": ["true"]}),
    (False, False, {"dangling": ["false"]}),
    (False, False, {"label!": ["a"]}),
    (False, True, {"label": ["<c>="]}),
    (False, False, {"reference": ["app*"]}),
    (True, False, {"until": ["2024-01-01T12:00:00Z"]}),
]

stacks = st.lists(st.integers(0, len(LAYERS) - 1), min_size=1, max_size=3)
label_sets = st.one_of(
    st.none(), st.dictionaries(st.sampled_from(["a", "b", "<c>"]), st.sampled_from(["", "x"]))
)


class WritesKeepTheirFacts(RuleBasedStateMachine):
    """Every write a user can make, at random; every kept fact checked after each."""

    catalog: Catalog
    workdir: Path
    # Writes that went through, by rule, over all examples: proof that each one ran.
    done: ClassVar[Counter[str]] = Counter()

    def __init__(self) -> None:
        super().__init__()
        self.builder = ImageBuilder(self.catalog)
        self.layer_files: dict[int, Path] = {}
        # Containers get names of our own: picks must not depend on random IDs.
        self.containers = 0

    @initialize()
    def empty_catalog(self) -> None:
        """Each example starts from an empty catalog (the database is the test's)."""
        with self.catalog.database.write() as session:
            session.execute(update(Image).values(parent_id=None))
            for table in reversed(Base.metadata.sorted_tables):
                if table.name == "layers":
                    # RESTRICT is checked row by row: the tops of the stacks first.
                    while session.execute(
                        delete(Layer).where(
                            Layer.chain_id.not_in(
                                select(Layer.parent_chain_id)
                                .where(Layer.parent_chain_id.isnot(None))
                                .scalar_subquery()
                            )
                        )
                    ).rowcount:  # type: ignore[attr-defined]
                        pass
                session.execute(delete(table))

    # --- what is there -----------------------------------------------------------------

    def image_ids(self) -> list[str]:
        with self.catalog.database.read() as session:
            return sorted(session.scalars(select(Image.id)))

    def pick(self, data: st.DataObject, choices: list[Any]) -> Any:
        return data.draw(st.sampled_from(choices)) if choices else None

    def has_images(self) -> bool:
        return bool(self.image_ids())

    # --- writes ------------------------------------------------------------------------

    @rule(data=st.data(), stack=stacks, labels=label_sets, when=st.sampled_from(TIMES))
    def register(
        self,
        data: st.DataObject,
        stack: list[int],
        labels: dict[str, str] | None,
        when: datetime | None,
    ) -> None:
        """register_image and set_reference: what append, squash and pull write."""
        parent = self.pick(data, [None, *self.image_ids()])
        tags = data.draw(st.lists(st.sampled_from(NAMES), max_size=2, unique=True))
        layers = [LAYERS[i] for i in stack]
        extra = {} if when is not None else {"created": "0001-01-01T00:00:00Z"}
        config = image_config(
            [diff_id(layer) for layer in layers],
            created=when or T0,
            labels=labels,
            extra=extra,
        )
        with contextlib.suppress(CatalogError):
            self.builder.add(layers, tags=tags, parent=parent, config=config)
            self.done["register"] += 1

    @rule(data=st.data(), stack=stacks, labels=label_sets)
    def load(self, data: st.DataObject, stack: list[int], labels: dict[str, str] | None) -> None:
        """catalog load: a docker save archive, tags moved, a parent set on an image the
        catalog already has."""
        parent = self.pick(data, [None, *self.image_ids()])
        tags = data.draw(st.lists(st.sampled_from(NAMES), max_size=2, unique=True))
        image = ArchiveImage(
            layers=[LAYERS[i] for i in stack], tags=tags, parent=parent, labels=labels
        )
        with contextlib.suppress(CatalogError):
            load_archive(self.catalog, io.BytesIO(docker_archive([image])))
            self.done["load"] += 1

    @precondition(has_images)
    @rule(data=st.data(), name=st.sampled_from(NAMES))
    def tag(self, data: st.DataObject, name: str) -> None:
        source = self.pick(data, self.image_ids())
        with self.catalog.database.write() as session:
            tag_image(session=session, source=source, target=name)
        self.done["tag"] += 1

    @rule(data=st.data(), force=st.booleans(), prune=st.booleans())
    def rmi(self, data: st.DataObject, force: bool, prune: bool) -> None:
        """catalog rmi by a name (untag) or by ID (delete), with or without -f, --no-prune."""
        term = self.pick(data, NAMES + [i.removeprefix("sha256:")[:12] for i in self.image_ids()])
        with self.catalog.database.write() as session:
            deletion = delete_images(session=session, terms=[term], force=force, prune=prune)
        for record in deletion.records:
            self.done["rmi " + next(iter(record))] += 1

    @rule(dangling=st.booleans())
    def prune(self, dangling: bool) -> None:
        filters = FilterArgs({"dangling": ["true" if dangling else "false"]})
        with self.catalog.database.write() as session:
            report = delete_unused_images(session=session, filters=filters)
        self.done["prune"] += bool(report.images_deleted)

    @precondition(has_images)
    @rule(data=st.data(), squash_layers=st.one_of(st.none(), st.integers(1, 2)))
    def squash(self, data: st.DataObject, squash_layers: int | None) -> None:
        image = self.pick(data, self.image_ids())
        tags = data.draw(st.lists(st.sampled_from(NAMES), max_size=1))
        with contextlib.suppress(CatalogError):
            squash_image(self.catalog, image, layers=squash_layers, tags=tags, now=T0)
            self.done["squash"] += 1

    @rule(data=st.data(), layer=st.integers(0, len(LAYERS) - 1))
    def append(self, data: st.DataObject, layer: int) -> None:
        base = self.pick(data, ["scratch", *self.image_ids()])
        tags = data.draw(st.lists(st.sampled_from(NAMES), max_size=1))
        path = self.layer_files.get(layer)
        if path is None:
            path = self.layer_files[layer] = self.workdir / f"layer{layer}.tar"
            path.write_bytes(LAYERS[layer])
        with contextlib.suppress(CatalogError):
            append_image(
                self.catalog, base, path, tags=tags, labels=["a=1"], created="2024-01-02T00:00:00Z"
            )
            self.done["append"] += 1

    @precondition(has_images)
    @rule(data=st.data(), state=st.sampled_from(["created", "running", "exited"]))
    def container_create(self, data: st.DataObject, state: str) -> None:
        image = self.pick(data, self.image_ids())
        self.containers += 1
        with self.catalog.database.write() as session:
            create_container(session=session, image=image, name=f"c{self.containers}", state=state)
        self.done["container create"] += 1

    @rule(data=st.data(), force=st.booleans())
    def container_rm(self, data: st.DataObject, force: bool) -> None:
        with self.catalog.database.read() as session:
            containers = sorted(session.scalars(select(Container.name)))
        container = self.pick(data, containers)
        if container is None:
            return
        with contextlib.suppress(CatalogError), self.catalog.database.write() as session:
            remove_container(session=session, term=container, force=force)
            self.done["container rm"] += 1

    # --- the contract --------------------------------------------------------------------

    @invariant()
    def every_kept_fact_is_its_recomputation(self) -> None:
        assert kept_facts_differences(self.catalog) == []

    @invariant()
    def the_listing_is_dockers(self) -> None:
        """Listings from the kept facts give what Docker's algorithm gives from the rows."""
        with self.catalog.database.read() as session:
            state = baseline.load(session)
            for all_images, shared_size, filters in LISTINGS:
                ours = list_images(
                    session=session,
                    filters=FilterArgs(filters),
                    all_images=all_images,
                    shared_size=shared_size,
                )
                theirs = baseline.images(
                    state, FilterArgs(filters), all_images=all_images, shared_size=shared_size
                )
                assert baseline.summaries_fingerprint(
                    s.to_api() for s in ours
                ) == baseline.summaries_fingerprint(theirs), (all_images, shared_size, filters)
            totals = disk_usage_totals(session=session)
        docker = baseline.disk_usage(state)
        assert (
            totals.total_count,
            totals.active_count,
            totals.reclaimable,
            totals.total_size,
        ) == (
            docker["TotalCount"],
            docker["ActiveCount"],
            docker["Reclaimable"],
            docker["TotalSize"],
        )


@pytest.mark.slow
def test_random_writes_keep_every_fact(catalog: Catalog, tmp_path: Path) -> None:
    WritesKeepTheirFacts.catalog = catalog
    WritesKeepTheirFacts.workdir = tmp_path
    run = settings(
        max_examples=25,
        stateful_step_count=30,
        # The same sequences every run: the coverage asserted below cannot come and go.
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    WritesKeepTheirFacts.TestCase.settings = run
    WritesKeepTheirFacts.done.clear()
    WritesKeepTheirFacts.TestCase().runTest()
    kinds = ["register", "load", "tag", "rmi Untagged", "rmi Deleted", "prune", "squash"]
    kinds += ["append", "container create", "container rm"]
    assert {kind: WritesKeepTheirFacts.done[kind] > 0 for kind in kinds} == dict.fromkeys(
        kinds, True
    ), WritesKeepTheirFacts.done


def test_a_moved_tag_and_a_deleted_sharer_move_unique_sizes(
    catalog: Catalog, images: ImageBuilder
) -> None:
    """The 1 <-> 2 transitions by hand: a second image on the same base takes the base's
    bytes out of the first image's unique size, and deleting it gives them back."""
    base_layer, own = layer_tar({"b": b"b" * 100}), layer_tar({"o": b"o" * 7})
    first = images.add([base_layer], tags=["first:1"])

    def unique(image_id: str) -> int:
        with catalog.database.read() as session:
            value = session.scalar(select(Image.unique_size).where(Image.id == image_id))
            return int(value or 0)

    assert unique(first) == 100
    second = images.add([base_layer, own], tags=["second:1"])
    assert (unique(first), unique(second)) == (0, 7)
    with catalog.database.write() as session:
        delete_images(session=session, terms=["second:1"])
        assert references_of(session, first)
    assert unique(first) == 100
