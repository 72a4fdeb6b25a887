"""`docker images` semantics as SQL: every scenario of Docker's own listing tests that
applies to the classic image store (docs/listing.md; letters A-Z name them), checked
through the Python API and the CLI, on both backends."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from support.builders import ImageBuilder, diff_id, image_config, layer_tar
from support.files import REFERENCE_CASES, fixture
from typer.testing import Result

from catalog.context import Catalog
from catalog.db import sql
from catalog.db.sql import driver_rows
from catalog.docker.filters import FilterArgs, parse_filter_flags
from catalog.domain.imageconfig import format_timestamp
from catalog.domain.reference import parse_normalized_named, tag_name_only, with_digest, with_name
from catalog.errors import CatalogError, InvalidFilter, NotFound
from catalog.services.containers import create_container
from catalog.services.images import set_reference
from catalog.services.listing import ImageSummary, disk_usage, list_images

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def unique_layer(name: str, size: int = 1) -> bytes:
    return layer_tar({name: name.encode()[:1] * size})


class Catalogue:
    """A catalog plus the verbs the scenarios use."""

    def __init__(self, catalog: Catalog, images: ImageBuilder) -> None:
        self.catalog = catalog
        self.images = images
        self.count = 0

    def image(
        self,
        *tags: str,
        parent: str | None = None,
        layers: list[bytes] | None = None,
        labels: dict[str, str] | None = None,
        created: datetime | None = None,
    ) -> str:
        self.count += 1
        layers = layers if layers is not None else [unique_layer(f"file{self.count}")]
        created = created or T0 + timedelta(minutes=self.count)
        return self.images.add(
            layers, tags=list(tags), parent=parent, labels=labels, created=created
        )

    def tag(self, image_id: str, name: str) -> None:
        with self.catalog.database.write() as session:
            set_reference(
                session=session,
                reference=tag_name_only(parse_normalized_named(name)),
                image_id=image_id,
            )

    def digest(self, image_id: str, repository: str, digest: str) -> None:
        with self.catalog.database.write() as session:
            reference = with_digest(with_name(parse_normalized_named(repository).name), digest)
            set_reference(session=session, reference=reference, image_id=image_id)

    def container(self, image: str, state: str = "exited") -> None:
        with self.catalog.database.write() as session:
            create_container(session=session, image=image, state=state)

    def ls(self, *flags: str, **kwargs: Any) -> list[ImageSummary]:
        with self.catalog.database.read() as session:
            return list_images(session=session, filters=parse_filter_flags(flags), **kwargs)

    def ids(self, *flags: str, **kwargs: Any) -> list[str]:
        return [s.id for s in self.ls(*flags, **kwargs)]


@pytest.fixture
def cat(catalog: Catalog, images: ImageBuilder) -> Catalogue:
    return Catalogue(catalog, images)


# --- A. reference ------------------------------------------------------------------


@pytest.fixture
def utest(cat: Catalogue) -> str:
    image = cat.image("busybox:latest", "utest:tag1", "utest/docker:tag2", "utest:5000/docker:tag3")
    return image


@pytest.mark.parametrize(
    ("pattern", "tags"),
    [
        ("utest*/*", ["utest/docker:tag2", "utest:5000/docker:tag3"]),
        ("utest*", ["utest:tag1"]),
        ("utest", ["utest:tag1"]),
        ("*5000*/*", ["utest:5000/docker:tag3"]),
        ("docker.io/library/utest", ["utest:tag1"]),
        ("docker.io/library/utest:*", ["utest:tag1"]),
        ("docker.io/utest/docker", ["utest/docker:tag2"]),
        ("nomatch*", None),
    ],
)
def test_a1_reference_filter_keeps_only_matching_tags(
    cat: Catalogue, utest: str, pattern: str, tags: list[str] | None
) -> None:
    listed = cat.ls(f"reference={pattern}")
    if tags is None:
        assert listed == []
        return
    assert [s.id for s in listed] == [utest]
    assert sorted(listed[0].repo_tags) == sorted(tags)


def test_a2_several_references_are_ored(cat: Catalogue) -> None:
    image = cat.image("multi:v1", "multi:v2", "multi:v3", "multi:v4", "busybox:latest")
    [summary] = cat.ls("reference=multi:v1", "reference=multi:v2", "reference=multi:v3")
    assert summary.id == image
    assert summary.repo_tags == ["multi:v1", "multi:v2", "multi:v3"]


def _reference_filter_cases() -> list[dict[str, Any]]:
    # Part of the repository: a missing case file fails collection, never empties the cases.
    cases = list(json.loads(REFERENCE_CASES.read_text())["image_list_reference_filter"])
    assert cases, f"{REFERENCE_CASES} has no image_list_reference_filter cases"
    return cases


@pytest.mark.parametrize(
    "case", _reference_filter_cases(), ids=lambda c: str(c["reference_filter"])
)
def test_reference_filter_cases(cat: Catalogue, case: dict[str, Any]) -> None:
    image = cat.image(*case["image_tags"])
    listed = cat.ls(*(f"reference={p}" for p in case["reference_filter"]))
    tags = [t for s in listed for t in s.repo_tags]
    assert sorted(tags) == sorted(case["matching_tags_current"])
    if "expected_images" in case:
        assert len(listed) == case["expected_images"]
        assert len(listed[0].repo_tags) == case["expected_repo_tags_count"]
        assert listed[0].id == image
    for name in case.get("expected_not_listed", []):
        assert name not in tags


def test_a3_to_a6_through_the_cli(cat: Catalogue, cli: Callable[..., Result]) -> None:
    cat.image("imagewithtag:v1", "imagewithtag:v1v1", "imagewithtag:v2")
    cat.image("a.b.c.d:5000/hello")
    cat.image("myimage:v1", "myimage:v2")
    out = cli("images", "imagewithtag:v1").stdout.splitlines()
    assert [line.split()[:2] for line in out[1:]] == [["imagewithtag", "v1"]]
    out = cli("images", "imagewithtag").stdout.splitlines()
    assert sorted(line.split()[1] for line in out[1:]) == ["v1", "v1v1", "v2"]
    assert cli("images", "busybox:nonexistent").stdout.splitlines()[1:] == []
    for name in ("a.b.c.d:5000/hello", "a.b.c.d:5000/hello:latest"):
        assert "a.b.c.d:5000/hello" in cli("images", name).stdout
    assert "hello" not in cli("images", "a.b.c.d:5000/hello:no-such-tag").stdout
    rows = cli("images", "myimage").stdout.splitlines()[1:]
    assert [row.split()[0] for row in rows] == ["myimage", "myimage"]


def test_bad_reference_pattern_is_an_error(cat: Catalogue) -> None:
    cat.image("x:1")
    with pytest.raises(InvalidFilter, match=r"^syntax error in pattern$"):
        cat.ls("reference=[")


# --- B. time filters and ordering -----------------------------------------------------


@pytest.fixture
def versions(cat: Catalogue) -> list[str]:
    base = T0 + timedelta(days=1)
    return [cat.image(f"v:v{i}", created=base + timedelta(milliseconds=i)) for i in range(5)]


def test_b1_since_and_before_by_id(cat: Catalogue, versions: list[str]) -> None:
    got = cat.ids(f"since={versions[0]}", f"before={versions[4]}")
    assert sorted(got) == sorted(versions[1:4])


def test_an_image_created_at_the_epoch_is_dated(cat: Catalogue) -> None:
    """1970-01-01T00:00:00Z (SOURCE_DATE_EPOCH=0 builds) is a creation time, its sort key
    0: `since` and `before` it apply, as Docker's do; only no time at all drops them."""
    epoch = cat.image("epoch:0", created=datetime(1970, 1, 1, tzinfo=UTC))
    later = cat.image("later:1", created=datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC))
    earlier = cat.image("earlier:1", created=datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC))
    assert cat.ids(f"since={epoch}") == [later]
    assert cat.ids(f"before={epoch}") == [earlier]


def test_b2_until_folds_into_before(cat: Catalogue, versions: list[str]) -> None:
    with cat.catalog.database.read() as session:
        from catalog.db.models import Image

        created = {i.id: i.created for i in session.query(Image)}
    flags = [
        f"since={versions[0]}",
        f"until={format_timestamp(created[versions[2]])}",
        f"until={format_timestamp(created[versions[3]])}",
        f"before={versions[4]}",
    ]
    assert cat.ids(*flags) == [versions[1]]


def test_b3_b4_order_newest_first(cat: Catalogue, versions: list[str]) -> None:
    assert cat.ids("reference=v") == versions[::-1]
    assert cat.ids("since=v:v0") == versions[:0:-1]
    assert cat.ids("since=v:v1") == versions[:1:-1]
    assert cat.ids("before=v:v4") == versions[3::-1]
    assert cat.ids("before=v:v2") == versions[1::-1]
    assert cat.ids(f"before={versions[2]}") == versions[1::-1]


def test_several_before_values_take_the_oldest(cat: Catalogue, versions: list[str]) -> None:
    assert cat.ids("before=v:v4", "before=v:v2") == versions[1::-1]
    assert cat.ids("since=v:v1", "since=v:v3") == [versions[4]]


def test_until_forms(cat: Catalogue, versions: list[str]) -> None:
    now = T0 + timedelta(days=3)
    assert cat.ids("until=24h", now=now) == versions[::-1]  # all before now - 24h
    assert cat.ids("until=72h", now=now) == []
    assert cat.ids("until=2024-01-02T00:00:00.002Z") == versions[1::-1]
    assert cat.ids("until=2024-01-02", now=now) == []  # strict: exactly midnight is v0
    assert cat.ids(f"until={int((T0 + timedelta(days=2)).timestamp())}") == versions[::-1]


def test_images_without_created_drop_out_under_time_filters(cat: Catalogue) -> None:
    from support.builders import image_config

    from catalog.domain.digest import sha256_digest

    layer = unique_layer("nocreated")
    config = json.loads(image_config([sha256_digest(layer)]))
    del config["created"]
    nocreated = cat.images.add([layer], config=json.dumps(config).encode(), tags=["nc:1"])
    dated = cat.image("dated:1")
    assert cat.ids() == [dated, nocreated]  # unknown creation sorts last
    assert cat.ids("until=1h") == [dated]
    # A since/before image without a creation time adds no constraint.
    assert cat.ids("since=nc:1") == [dated, nocreated]
    assert cat.ids("before=nc:1") == [dated, nocreated]


UNTIL = "invalid value for 'until' filter: "


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "foo",
            UNTIL
            + 'failed to parse value as time or duration: invalid seconds "foo": invalid syntax',
        ),
        (
            "",
            UNTIL + "failed to parse value as time or duration: value is empty",
        ),
        (
            "2006-01-02T15:04:0Z",
            UNTIL + 'parsing time "2006-01-02T15:04:0Z" as "2006-01-02T15:04:05Z07:00": '
            'cannot parse "0Z" as "05"',
        ),
    ],
)
def test_until_errors(cat: Catalogue, value: str, message: str) -> None:
    with pytest.raises(InvalidFilter) as raised:
        cat.ls(f"until={value}")
    assert raised.value.message == message


def test_before_unknown_image(cat: Catalogue) -> None:
    cat.image("x:1")
    with pytest.raises(NotFound, match=r"^No such image: nosuch:latest$"):
        cat.ls("before=nosuch")
    with pytest.raises(CatalogError, match="must be lowercase"):
        cat.ls("since=ABC")


# --- C. labels ------------------------------------------------------------------------


def test_c1_c2_label_match(cat: Catalogue) -> None:
    one = cat.image(labels={"match": "me"})
    two = cat.image(labels={"match": "me too"})
    three = cat.image(labels={"nomatch": "me"})
    committed = cat.image(
        labels={"foo.version": "1.0.0-1", "foo.name": "bar", "foo.author": "starlord"}
    )
    plain = cat.image()
    assert set(cat.ids("label=match")) == {one, two}
    assert cat.ids("label=match=me too") == [two]
    assert cat.ids("label=foo.version=1.0.0-1") == [committed]
    assert cat.ids("label=match", "label=nomatch") == []
    assert three not in cat.ids("label=match")
    # label!: the negation (containerd store, Podman).
    assert set(cat.ids("label!=match")) == {three, committed, plain}
    assert set(cat.ids("label!=match=me")) == {two, three, committed, plain}
    assert cat.ids("label=match!=me") == cat.ids("label!=match=me")
    assert cat.ids("label=x=") == []
    empty = cat.image(labels={"x": ""})
    assert cat.ids("label=x=") == [empty]
    assert cat.ls("label=match=me")[0].labels == {"match": "me"}
    assert [s.labels for s in cat.ls() if s.id == plain] == [None]


def test_label_too_long(cat: Catalogue) -> None:
    with pytest.raises(InvalidFilter, match=r"greater than maximum size \(4096 bytes\)"):
        cat.ls("label=" + "k" * 4000 + "=" + "v" * 100)


# --- D. dangling, intermediate and invalid filters ------------------------------------


def test_d1_cli_trims_and_lowercases_filter_names(
    cat: Catalogue, cli: Callable[..., Result]
) -> None:
    cat.image("x:1")
    cat.image()
    outputs = {
        cli("images", "-q", "-f", spelling).stdout
        for spelling in (
            "dangling=true",
            "Dangling=true",
            " dangling=true",
            "dangling=true ",
            "dangling = true",
        )
    }
    assert len(outputs) == 1
    assert len(outputs.pop().split()) == 1


def test_d2_moved_tag_leaves_a_dangling_image(cat: Catalogue) -> None:
    foobox = cat.image("foobox")
    busybox = cat.image("busybox")
    cat.tag(busybox, "foobox")
    assert cat.ids("dangling=true") == [foobox]
    assert foobox not in cat.ids("dangling=false")
    assert foobox in cat.ids()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["dangling=invalid"], "invalid filter 'dangling=[invalid]'"),
        (["dangling=true", "dangling=false"], "invalid filter 'dangling=[true false]'"),
        (["foo=123"], "invalid filter 'foo'"),
        (["FOO=123"], "invalid filter 'foo'"),
    ],
)
def test_d3_d4_invalid_filters(cat: Catalogue, flags: list[str], message: str) -> None:
    with pytest.raises(InvalidFilter) as raised:
        cat.ls(*flags)
    assert raised.value.message == message


def test_invalid_filter_texts_through_the_cli(cli: Callable[..., Result]) -> None:
    assert cli("images", "-f", "nonsense", exit_code=1).stderr == (
        "Error: bad format of filter (expected name=value)\n"
    )
    assert cli("images", "-f", "dangling=maybe", exit_code=1).stderr == (
        "Error: invalid filter 'dangling=[maybe]'\n"
    )
    assert cli("images", "-f", "before=nosuch", exit_code=1).stderr == (
        "Error: No such image: nosuch:latest\n"
    )


def test_d5_intermediate_images_are_hidden(cat: Catalogue) -> None:
    parent = cat.image()
    child = cat.image("scratch-image", parent=parent)
    assert cat.ids() == [child]
    assert cat.ids(all_images=True) == [child, parent]


def test_true_and_one_are_the_same(cat: Catalogue) -> None:
    cat.image()
    assert cat.ids("dangling=1") == cat.ids("dangling=true")
    assert cat.ids("dangling=0") == cat.ids("dangling=false") == []
    assert cat.ids("dangling=true", "dangling=1") == cat.ids("dangling=true")


# --- E. digests -----------------------------------------------------------------------

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def test_e2_e3_digest_rows_and_digest_only_dangling(
    cat: Catalogue, cli: Callable[..., Result]
) -> None:
    one = cat.image()
    two = cat.image()
    cat.digest(one, "repo", D1)
    cat.digest(two, "repo", D2)
    rows = [line.split()[:3] for line in cli("images", "--digests").stdout.splitlines()[1:]]
    assert sorted(rows) == [["repo", "<none>", D1], ["repo", "<none>", D2]]
    assert set(cat.ids("dangling=true")) == {one, two}  # digest-only leaves count as dangling
    assert set(cat.ids("dangling=false")) == {one, two}  # ... but are not removed by false
    cat.tag(one, "repo:dangle1")
    assert cat.ids("dangling=true") == [two]
    rows = [line.split()[:3] for line in cli("images", "--digests").stdout.splitlines()[1:]]
    assert sorted(rows) == [["repo", "<none>", D2], ["repo", "dangle1", D1]]
    rows = [line.split()[:3] for line in cli("images").stdout.splitlines()[1:]]
    assert sorted(rows) == sorted([["repo", "<none>", two[7:19]], ["repo", "dangle1", one[7:19]]])
    [summary] = cat.ls("reference=repo:dangle1")
    assert (summary.repo_tags, summary.repo_digests) == (["repo:dangle1"], [])
    [summary] = cat.ls(f"reference=repo@{D1}")
    assert (summary.repo_tags, summary.repo_digests) == ([], [f"repo@{D1}"])


# --- F. sizes and counts --------------------------------------------------------------


def test_f1_same_diff_at_other_positions_is_not_shared(cat: Catalogue) -> None:
    foo, bar, asdf = unique_layer("foo"), unique_layer("bar"), unique_layer("asdf")
    cat.image("multilayer", layers=[bar, foo])
    cat.image("multilayer2", layers=[asdf, foo])
    assert [s.shared_size for s in cat.ls(shared_size=True)] == [0, 0]


def test_z7_shared_size_counts_hidden_parents(cat: Catalogue) -> None:
    l1, l2, l3 = unique_layer("l1", 100), unique_layer("l2", 20), unique_layer("l3", 7)
    parent = cat.image(layers=[l1])
    app = cat.image("app:1", layers=[l1, l2], parent=parent)
    by_id = {s.id: s for s in cat.ls(shared_size=True)}
    assert (by_id[app].size, by_id[app].shared_size) == (120, 100)
    other = cat.image("b:1", layers=[l1, l3])
    by_id = {s.id: s for s in cat.ls(shared_size=True)}
    assert by_id[other].shared_size == by_id[app].shared_size == 100
    assert all(s.shared_size == -1 for s in cat.ls())


def test_container_counts(cat: Catalogue) -> None:
    used = cat.image("used:1")
    unused = cat.image("unused:1")
    cat.container("used:1", "running")
    cat.container("used:1", "exited")
    cat.container("used:1", "created")
    counts = {s.id: s.containers for s in cat.ls()}
    assert counts == {used: 3, unused: 0}


def test_f3_disk_usage(cat: Catalogue, cli: Callable[..., Result]) -> None:
    with cat.catalog.database.read() as session:
        empty = disk_usage(session=session)
    assert (empty.total_size, empty.reclaimable, empty.active_count, empty.images) == (0, 0, 0, [])
    busybox = cat.image("busybox:latest", layers=[unique_layer("bb", 4000)])
    with cat.catalog.database.read() as session:
        usage = disk_usage(session=session)
    assert usage.active_count == 0
    assert len(usage.images) == 1
    assert usage.total_size == usage.reclaimable == usage.images[0].size > 0
    assert usage.images[0].repo_tags == ["busybox:latest"]
    cat.container(busybox, "running")
    document = json.loads(cli("system", "df", "--format", "json").stdout)
    assert document["ImageUsage"]["ActiveCount"] == 1
    assert "Reclaimable" not in document["ImageUsage"]  # 0, omitted as Go's omitempty does
    assert document["ImageUsage"]["Items"][0]["Containers"] == 1
    assert document["ContainerUsage"] == {"ActiveCount": 1, "TotalCount": 1}
    table = cli("system", "df").stdout.splitlines()
    assert table[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert table[1].split() == ["Images", "1", "1", "4kB", "0B", "(0%)"]


def test_layers_of_intermediates_are_not_in_the_total(cat: Catalogue) -> None:
    l1, l2 = unique_layer("l1", 100), unique_layer("l2", 20)
    parent = cat.image(layers=[l1, unique_layer("only-parent", 50)])
    cat.image("app:1", layers=[l1, l2], parent=parent)
    with cat.catalog.database.read() as session:
        usage = disk_usage(session=session)
    assert usage.total_size == 120


# --- G. CLI formatting ----------------------------------------------------------------


def test_g_table_format(cat: Catalogue, cli: Callable[..., Result]) -> None:
    assert cli("images").stdout == "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n"
    image = cat.image("image:tag1", layers=[unique_layer("x", 10)])
    cat.digest(image, "image", D1)
    bare = cat.image(layers=[unique_layer("y", 10)])
    lines = cli("images").stdout.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert lines[1].split()[:3] == ["<none>", "<none>", bare[7:19]]
    assert lines[2].split()[:3] == ["image", "tag1", image[7:19]]
    assert lines[2].endswith("10B")
    digest_lines = cli("images", "--digests").stdout.splitlines()
    assert digest_lines[0].split() == [
        "REPOSITORY",
        "TAG",
        "DIGEST",
        "IMAGE",
        "ID",
        "CREATED",
        "SIZE",
    ]
    assert digest_lines[2].split()[:4] == ["image", "tag1", D1, image[7:19]]
    assert cli("images", "-q").stdout == f"{bare[7:19]}\n{image[7:19]}\n"
    assert cli("images", "-q", "--no-trunc").stdout == f"{bare}\n{image}\n"


def test_column_widths_follow_docker_tabwriter(cat: Catalogue, cli: Callable[..., Result]) -> None:
    cat.image("image:tag1", created=datetime.now(UTC) - timedelta(hours=24))
    header, row = cli("images").stdout.splitlines()
    # minwidth 10, padding 3: REPOSITORY(10)+3, TAG -> 10, IMAGE ID(12)+3, CREATED(12)+3
    assert header == "REPOSITORY   TAG       IMAGE ID       CREATED        SIZE"
    assert row.startswith("image        tag1      ")
    assert "24 hours ago   " in row


def test_json_format_is_the_api_summary(cat: Catalogue, cli: Callable[..., Result]) -> None:
    image = cat.image("json:1", labels={"a": "b"})
    cat.container("json:1")
    [summary] = json.loads(cli("images", "--format", "json", "--shared-size").stdout)
    assert list(summary) == [
        "Containers",
        "Created",
        "Id",
        "Labels",
        "ParentId",
        "RepoDigests",
        "RepoTags",
        "SharedSize",
        "Size",
    ]
    assert summary["Id"] == image
    assert summary["RepoTags"] == ["json:1"]
    assert summary["RepoDigests"] == []
    assert summary["Containers"] == 1
    assert summary["Labels"] == {"a": "b"}
    assert summary["SharedSize"] == 0
    assert isinstance(summary["Created"], int)


def test_sort_options(cat: Catalogue, cli: Callable[..., Result]) -> None:
    cat.image("b:2", layers=[unique_layer("s", 5)])
    cat.image("a:9", layers=[unique_layer("t", 50)])
    cat.image("c:1", layers=[unique_layer("u", 500)])

    def column(flag: str, index: int) -> list[str]:
        rows = cli("images", "--sort", flag).stdout.splitlines()[1:]
        return [row.split()[index] for row in rows]

    assert column("repository", 0) == ["a", "b", "c"]
    assert column("tag", 1) == ["1", "2", "9"]
    assert column("size", 0) == ["c", "a", "b"]
    assert column("created", 0) == ["c", "a", "b"]


# --- Z. derived from the code ---------------------------------------------------------


@pytest.fixture
def z(cat: Catalogue) -> dict[str, str]:
    p = cat.image()
    a = cat.image("app:1", parent=p)
    d = cat.image()
    g = cat.image()
    cat.digest(g, "repo", D1)
    return {"P": p, "A": a, "D": d, "G": g}


@pytest.mark.parametrize(
    ("flags", "all_images", "expected"),
    [
        ((), False, "GDA"),  # Z1
        ((), True, "GDAP"),  # Z2
        (("dangling=true",), False, "GD"),  # Z3
        (("dangling=true",), True, "GD"),
        (("dangling=false",), False, "GA"),  # Z4
        (("dangling=false",), True, "GA"),
        (("reference=app",), False, "A"),  # Z5
        (("reference=repo",), False, "G"),
        (("reference=app", "dangling=true"), False, ""),
        (("before=app:1",), True, "P"),  # Z6
        (("before=app:1",), False, ""),
        (("since=app:1",), False, "GD"),
    ],
)
def test_z_truth_table(
    cat: Catalogue, z: dict[str, str], flags: tuple[str, ...], all_images: bool, expected: str
) -> None:
    names = {v: k for k, v in z.items()}
    got = "".join(names[i] for i in cat.ids(*flags, all_images=all_images))
    assert got == expected


def test_z9_until_is_strict(cat: Catalogue, z: dict[str, str]) -> None:
    with cat.catalog.database.read() as session:
        from catalog.db.models import Image

        created = session.get(Image, z["A"]).created  # type: ignore[union-attr]
    assert created is not None
    assert z["A"] not in cat.ids(f"until={format_timestamp(created)}", all_images=True)
    assert z["P"] in cat.ids(f"until={format_timestamp(created)}", all_images=True)


# --- a fixed number of statements -----------------------------------------------------


@pytest.fixture
def statements(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement run: through the engine, and the listing's own, whose rows are
    read through the driver's cursor (catalog.db.sql.driver_rows)."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    def recorded_rows(connection: Any, statement: Any, **kwargs: Any) -> Iterator[Any]:
        seen.append(str(statement))
        return driver_rows(connection, statement, **kwargs)

    monkeypatch.setattr(sql, "driver_rows", recorded_rows)
    event.listen(catalog.database.engine, "before_cursor_execute", record)
    yield seen
    event.remove(catalog.database.engine, "before_cursor_execute", record)


def test_listing_is_a_fixed_number_of_statements(cat: Catalogue, statements: list[str]) -> None:
    def count(**kwargs: Any) -> int:
        statements.clear()
        cat.ls("label=k", "reference=*", **kwargs)
        return len([s for s in statements if s.lstrip().upper().startswith("SELECT")])

    for i in range(3):
        cat.image(f"img{i}:1", labels={"k": "v"})
    small = count(shared_size=True)
    for i in range(3, 30):
        image = cat.image(f"img{i}:1", f"alias{i}:1", labels={"k": "v", "other": str(i)})
        cat.container(image)
    # The matching names, then the images: shared sizes and containers are kept facts.
    assert count(shared_size=True) == small == 2
    assert count() == 2
    with cat.catalog.database.read() as session:
        statements.clear()
        disk_usage(session=session)
    assert len(statements) <= 7


def test_filters_from_python_api_accept_filterargs(cat: Catalogue) -> None:
    image = cat.image("api:1")
    with cat.catalog.database.read() as session:
        found = list_images(session=session, filters=FilterArgs({"reference": ["api"]}))
    assert [s.id for s in found] == [image]


# --- set up through the commands a user runs -----------------------------------------


def test_scenarios_built_with_the_cli(cli: Callable[..., Result], tmp_path: Any) -> None:
    """Z1-Z4 and F3 with images made by `catalog image append`, `catalog load` and
    `catalog container create`, listed through the CLI's JSON."""
    layers = {}
    for name in ("p", "a", "d"):
        layers[name] = tmp_path / f"{name}.tar"
        layers[name].write_bytes(layer_tar({name: name.encode() * 100}))

    def append(base: str, layer: str, *tags: str) -> str:
        args = [arg for tag in tags for arg in ("-t", tag)]
        return str(cli("image", "append", base, str(layers[layer]), *args).stdout.strip())

    parent = append("scratch", "p")
    app = append(parent, "a", "app:1")
    dangling = append("scratch", "d")
    dive = fixture("wagoodman-dive/test-docker-image.tar")
    assert cli("load", "-i", str(dive)).stdout == "Loaded image: dive-test:latest\n"
    cli("container", "create", "--image", "app:1", "--state", "running")

    def listed(*args: str) -> dict[str, dict[str, Any]]:
        summaries = json.loads(cli("images", "--format", "json", *args).stdout)
        return {s["Id"]: s for s in summaries}

    default = listed()
    assert app in default and dangling in default and parent not in default
    assert parent in listed("-a")
    assert list(listed("-f", "dangling=true")) == [dangling]
    assert dangling not in listed("-f", "dangling=false")
    assert default[app]["Containers"] == 1
    assert default[app]["ParentId"] == parent
    [dive] = [s for s in default.values() if s["RepoTags"] == ["dive-test:latest"]]
    assert dive["Size"] == 1220598  # the fixture's regular-file bytes
    shared = listed("--shared-size")
    # app = parent layer (100 bytes, shared with the hidden parent) + its own (100 bytes)
    assert (shared[app]["Size"], shared[app]["SharedSize"]) == (200, 100)
    document = json.loads(cli("system", "df", "--format", "json").stdout)["ImageUsage"]
    assert document["TotalCount"] == 3
    assert document["ActiveCount"] == 1
    assert document["Reclaimable"] == dive["Size"] + shared[dangling]["Size"]


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo", "America/Los_Angeles"])
def test_extreme_creation_times_list(
    catalog: Catalog,
    images: ImageBuilder,
    cli: Callable[..., Result],
    zone: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 12: one image created in the last nanosecond of 9999 (or in year 1) made table
    listings, `system df -v` and `history` crash. They show what the docker CLI shows:
    `Less than a second ago` for a future time, `292 years ago` (Go's saturated duration)
    for an ancient one, and the local time with the year Go would write."""
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        for tag, created in (
            ("last:1", "9999-12-31T23:59:59.999999999Z"),
            ("first:1", "0001-01-01T00:00:00.5Z"),
        ):
            layer = unique_layer(tag[:4])
            config = image_config(
                [diff_id(layer)],
                history=[{"created": created, "created_by": "x"}],
                extra={"created": created},
            )
            images.add([layer], tags=[tag], config=config)
        table = cli("images").stdout.splitlines()
        assert "Less than a second ago" in table[1] and table[1].startswith("last")
        assert "292 years ago" in table[2] and table[2].startswith("first")
        summaries = json.loads(cli("images", "--format", "json").stdout)
        assert [s["Created"] for s in summaries] == [253402300799, -62135596800]
        assert "Less than a second ago" in cli("system", "df", "-v").stdout
        assert "Less than a second ago" in cli("history", "last:1").stdout
        at = cli("history", "-H=false", "last:1").stdout.splitlines()[1].split()[1]
        expected = {
            "UTC": "9999-12-31T23:59:59Z",
            "Asia/Tokyo": "10000-01-01T08:59:59+09:00",
            "America/Los_Angeles": "9999-12-31T15:59:59-08:00",
        }
        assert at == expected[zone]
        cli("history", "-H=false", "first:1")
        inspected = json.loads(cli("image", "inspect", "last:1").stdout)[0]
        assert inspected["Created"] == "9999-12-31T23:59:59.999999999Z"
        assert [
            line.split()[0]
            for line in cli("images", "-f", "until=999999999999").stdout.splitlines()[1:]
        ] == ["last", "first"]
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
