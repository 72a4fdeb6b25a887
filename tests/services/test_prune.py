"""`catalog image prune`: the prune scenarios of docs/listing.md §10, on both backends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from support.builders import ImageBuilder, layer_tar
from typer.testing import Result

from catalog.context import Catalog
from catalog.docker.filters import FilterArgs, parse_filter_flags
from catalog.errors import InvalidFilter
from catalog.operations.removal import prune_images
from catalog.services.containers import create_container
from catalog.services.listing import disk_usage, list_images
from catalog.services.prune import PruneReport

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def prune(catalog: Catalog, *flags: str) -> PruneReport:
    return prune_images(catalog, parse_filter_flags(flags))


def ids(catalog: Catalog) -> set[str]:
    with catalog.database.read() as session:
        return {s.id for s in list_images(session=session, all_images=True)}


def deleted(report: PruneReport) -> list[str]:
    return [r["Deleted"] for r in report.images_deleted if "Deleted" in r]


def untagged(report: PruneReport) -> list[str]:
    return [r["Untagged"] for r in report.images_deleted if "Untagged" in r]


def layer(name: str, size: int = 10) -> bytes:
    return layer_tar({name: b"x" * size})


def test_dangling_only_by_default(catalog: Catalog, images: ImageBuilder) -> None:
    tagged = images.add([layer("a")], tags=["test"], labels={"foo": "bar"})
    dangling = images.add([layer("b", 25)])
    report = prune(catalog, "dangling=true")
    assert deleted(report)[0] == dangling
    assert report.space_reclaimed == 25
    assert ids(catalog) == {tagged}
    report = prune(catalog, "dangling=false")
    assert untagged(report) == ["test:latest"]
    assert ids(catalog) == set()


def test_label_filters(catalog: Catalog, images: ImageBuilder) -> None:
    one = images.add([layer("1")], tags=["test1"], labels={"foo": "bar"})
    two = images.add([layer("2")], tags=["test2"], labels={"bar": "foo"})
    report = prune(catalog, "dangling=false", "label=foo=bar")
    assert one in deleted(report)
    assert ids(catalog) == {two}
    report = prune(catalog, "dangling=false", "label!=bar=foo")
    assert deleted(report) == []
    report = prune(catalog, "dangling=false", "label=bar=foo")
    assert two in deleted(report)


def test_negative_label_keeps_the_labelled(catalog: Catalog, images: ImageBuilder) -> None:
    keep = images.add([layer("k")], tags=["withlabel"], labels={"on_prune": "keep"})
    gone = images.add([layer("n")], tags=["nolabel"])
    report = prune(catalog, "label!=on_prune=keep", "dangling=false")
    assert gone in deleted(report)
    assert keep not in str(report.images_deleted)
    assert ids(catalog) == {keep}


def test_image_in_use_keeps_its_last_tag(catalog: Catalog, images: ImageBuilder) -> None:
    tags = ["h", "a", "j", "o", "s", "q", "w", "e", "r", "t", "z"]
    image = images.add([layer("busybox")], tags=[f"busybox:{t}" for t in tags])
    with catalog.database.write() as session:
        create_container(session=session, image=image, state="running")
    report = prune(catalog, "dangling=false")
    assert len(untagged(report)) == 10
    assert deleted(report) == []
    assert "busybox:z" not in untagged(report)
    assert ids(catalog) == {image}


@pytest.mark.parametrize("state", ["running", "exited", "created"])
def test_used_dangling_image_survives(catalog: Catalog, images: ImageBuilder, state: str) -> None:
    image = images.add([layer("d")])
    with catalog.database.write() as session:
        create_container(session=session, image=image, state=state)
    assert prune(catalog, "dangling=true").images_deleted == []
    assert ids(catalog) == {image}


def test_reclaimed_equals_the_total_size(catalog: Catalog, images: ImageBuilder) -> None:
    images.add([layer("a", 1000), layer("b", 500)], tags=["busybox"])
    with catalog.database.read() as session:
        before = disk_usage(session=session).total_size
    report = prune(catalog, "dangling=false")
    assert report.space_reclaimed == before == 1500
    with catalog.database.read() as session:
        assert disk_usage(session=session).total_size == 0
    # Both layers' blob rows went, and their files after the commit.
    assert len(set(report.blob_digests)) == 2
    assert list(catalog.store.iter_blobs()) == []
    assert len(report.blob_digests) == 2


def test_shared_layers_are_not_reclaimed(catalog: Catalog, images: ImageBuilder) -> None:
    base = layer("base", 1000)
    keep = images.add([base, layer("keep", 1)], tags=["keep"])
    images.add([base, layer("gone", 7)])
    report = prune(catalog)
    assert report.space_reclaimed == 7
    assert ids(catalog) == {keep}


def test_until_is_inclusive_and_single(catalog: Catalog, images: ImageBuilder) -> None:
    old = images.add([layer("old")], created=T0)
    new = images.add([layer("new")], created=T0 + timedelta(days=1))
    prune(catalog, "until=2024-01-01T00:00:00Z")
    assert ids(catalog) == {new}
    assert old not in ids(catalog)
    with pytest.raises(InvalidFilter, match=r"^more than one until filter specified$"):
        prune(catalog, "until=1h", "until=2h")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["reference=x"], "invalid filter 'reference'"),
        (["dangling=maybe"], "invalid filter 'dangling=[maybe]'"),
    ],
)
def test_prune_filter_errors(catalog: Catalog, flags: list[str], message: str) -> None:
    with pytest.raises(InvalidFilter) as raised:
        prune(catalog, *flags)
    assert raised.value.message == message


def test_intermediate_parents_go_with_their_child(catalog: Catalog, images: ImageBuilder) -> None:
    parent = images.add([layer("p")])
    child = images.add([layer("p"), layer("c")], parent=parent)
    report = prune(catalog)
    assert deleted(report)[:1] == [child]
    assert parent in deleted(report)
    assert ids(catalog) == set()


def test_cli(catalog: Catalog, images: ImageBuilder, cli: Callable[..., Result]) -> None:
    keep = images.add([layer("k")], tags=["keep:1"])
    gone = images.add([layer("g", 2000)])
    result = cli("image", "prune", "-f")
    assert result.stdout.startswith(f"Deleted Images:\ndeleted: {gone}\n")
    assert result.stdout.endswith("\nTotal reclaimed space: 2kB\n")
    assert cli("image", "prune", "-f").stdout == "Total reclaimed space: 0B\n"
    cancelled = cli("image", "prune", "-a", input="n\n", exit_code=1)
    assert "WARNING! This will remove all images without at least one container" in cancelled.stdout
    assert keep in ids(catalog)
    assert "untagged: keep:1" in cli("image", "prune", "-a", input="y\n").stdout
    assert ids(catalog) == set()
    assert not list(catalog.store.iter_blobs())


def test_python_api_default_is_dangling(catalog: Catalog, images: ImageBuilder) -> None:
    tagged = images.add([layer("t")], tags=["t"])
    images.add([layer("u")])
    prune_images(catalog, FilterArgs())
    assert ids(catalog) == {tagged}


def test_label_filters_without_values(catalog: Catalog, images: ImageBuilder) -> None:
    """`{"label!": []}` over the API was an SQL syntax error (an empty AND); moby's
    MatchKVList holds when a filter has no values, so `label!` prunes nothing and `label`
    restricts nothing."""
    kept = images.add([layer("k")])
    nothing = prune_images(catalog, FilterArgs({"label!": []}))
    assert deleted(nothing) == [] and ids(catalog) == {kept}
    everything = prune_images(catalog, FilterArgs({"label": []}))
    assert kept in deleted(everything) and ids(catalog) == set()
