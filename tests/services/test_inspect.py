"""`catalog image inspect` and `catalog image history` against numbers computed here."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from support.builders import ImageBuilder, diff_id, layer_tar
from typer.testing import Result

from catalog.context import Catalog
from catalog.docker.humanize import go_rfc3339, human_duration
from catalog.docker.tabwriter import ellipsis, tabwrite
from catalog.domain.reference import parse_normalized_named
from catalog.errors import NotFound
from catalog.services.images import set_reference
from catalog.services.inspect import image_history, inspect_image, inspect_images, rfc3339_nano

FILES_1 = {"etc/os-release": b"ID=test\n", "bin/sh": b"\x7fELF" + b"x" * 1000}
FILES_2 = {"app/main.py": b"print('hello')\n" * 7}
FILES_3 = {"data/blob": b"z" * 4321}
L1, L2, L3 = layer_tar(FILES_1), layer_tar(FILES_2), layer_tar(FILES_3)
SIZE_1 = sum(len(v) for v in FILES_1.values())
SIZE_2 = sum(len(v) for v in FILES_2.values())
SIZE_3 = sum(len(v) for v in FILES_3.values())
DIGEST = "sha256:" + "d1" * 32


def config_bytes(layers: list[bytes], **fields: Any) -> bytes:
    """A config as a builder writes it: our fields, rootfs from the layers."""
    document = {
        "architecture": "arm64",
        "os": "linux",
        **fields,
        "rootfs": {"type": "layers", "diff_ids": [diff_id(layer) for layer in layers]},
    }
    return json.dumps(document, separators=(",", ":")).encode()


def inspect(catalog: Catalog, term: str) -> dict[str, Any]:
    with catalog.database.read() as session:
        return inspect_image(session=session, term=term)


def test_inspect_shape_and_values(catalog: Catalog, images: ImageBuilder) -> None:
    container_config = {
        "Env": ["PATH=/bin"],
        "Cmd": ["sh", "-c", "echo <hi> && exit"],
        "Labels": {"a": "b"},
        "ExposedPorts": {"80/tcp": {}},
    }
    # Keys of old builders' container config, and empty fields: moby's typed Config
    # (DockerOCIImageConfig, all omitempty) shows neither.
    stored_config = {**container_config, "Hostname": "legacy", "Tty": True, "WorkingDir": ""}
    parent = images.add([L1])
    raw = config_bytes(
        [L1, L2],
        created="2023-05-06T07:08:09.123456789Z",
        author="Jane <jane@example.com>",
        comment="built by hand",
        docker_version="24.0.7",
        variant="v8",
        config=stored_config,
        history=[{"created_by": "one"}, {"created_by": "two", "comment": "ignored"}],
    )
    image_id = images.add([L1, L2], config=raw, parent=parent, tags=["zzz:1", "app:2"])
    with catalog.database.write() as session:
        set_reference(
            session=session,
            reference=parse_normalized_named(f"localhost:5000/app@{DIGEST}"),
            image_id=image_id,
        )
    before = datetime.now(UTC)
    document = inspect(catalog, "app:2")
    assert list(document) == [
        "Id",
        "RepoTags",
        "RepoDigests",
        "Parent",
        "Comment",
        "Created",
        "DockerVersion",
        "Author",
        "Config",
        "Architecture",
        "Variant",
        "Os",
        "Size",
        "RootFS",
        "Metadata",
    ]
    assert document["Id"] == "sha256:" + __import__("hashlib").sha256(raw).hexdigest()
    assert document["RepoTags"] == ["app:2", "zzz:1"]
    assert document["RepoDigests"] == [f"localhost:5000/app@{DIGEST}"]
    assert document["Parent"] == parent
    assert document["Comment"] == "built by hand"
    assert document["Created"] == "2023-05-06T07:08:09.123456789Z"
    assert document["DockerVersion"] == "24.0.7"
    assert document["Author"] == "Jane <jane@example.com>"
    assert document["Config"] == container_config
    assert (document["Architecture"], document["Variant"], document["Os"]) == (
        "arm64",
        "v8",
        "linux",
    )
    assert document["Size"] == SIZE_1 + SIZE_2
    assert document["RootFS"] == {"Type": "layers", "Layers": [diff_id(L1), diff_id(L2)]}
    tagged = datetime.fromisoformat(document["Metadata"]["LastTagTime"])
    assert before - timedelta(minutes=5) < tagged <= before


def test_inspect_defaults(catalog: Catalog, images: ImageBuilder) -> None:
    raw = config_bytes(
        [L3], history=[{"created_by": "x", "comment": "from history"}], **{"os.version": "10.0"}
    )
    image_id = images.add([L3], config=raw)
    document = inspect(catalog, image_id)
    assert document["RepoTags"] == [] and document["RepoDigests"] == []
    assert document["Parent"] == ""
    assert document["Comment"] == "from history"  # moby: the last history entry's comment
    assert "Created" not in document
    assert "Variant" not in document
    assert document["OsVersion"] == "10.0"
    assert document["Author"] == document["DockerVersion"] == ""
    assert document["Config"] == {}
    assert document["Size"] == SIZE_3
    assert document["Metadata"] == {"LastTagTime": "0001-01-01T00:00:00Z"}


def test_inspect_an_image_without_layers(catalog: Catalog, images: ImageBuilder) -> None:
    image_id = images.add([], config=config_bytes([], created="2020-01-02T03:04:05Z"))
    document = inspect(catalog, image_id)
    assert document["Size"] == 0
    assert document["RootFS"] == {"Type": "layers"}
    assert document["Created"] == "2020-01-02T03:04:05Z"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("2023-05-06T07:08:09Z", "2023-05-06T07:08:09Z"),
        ("2023-05-06T07:08:09.000000000Z", "2023-05-06T07:08:09Z"),
        ("2023-05-06T07:08:09.120000000+02:00", "2023-05-06T07:08:09.12+02:00"),
        ("2023-05-06T07:08:09.1234567891Z", "2023-05-06T07:08:09.123456789Z"),
        ("2023-05-06t07:08:09.5-00:00", "2023-05-06T07:08:09.5Z"),
        ("2023-05-06T07:08:09.000001+00:00", "2023-05-06T07:08:09.000001Z"),
        ("not a time", None),
    ],
)
def test_rfc3339_nano(text: str, shown: str | None) -> None:
    assert rfc3339_nano(text) == shown


def test_inspect_several_and_missing(
    cli: Callable[..., Result], catalog: Catalog, images: ImageBuilder
) -> None:
    first = images.add([L1], tags=["one"])
    second = images.add([L2], tags=["two"])
    result = cli("image", "inspect", "two", "missing", first[7:19], exit_code=1)
    documents = json.loads(result.stdout)
    assert [d["Id"] for d in documents] == [second, first]
    assert result.stdout.startswith('[\n    {\n        "Id": ')  # 4-space indent, as docker
    assert result.stderr == "Error: No such image: missing:latest\n"
    result = cli("image", "inspect", "missing", exit_code=1)
    assert result.stdout == "[]\n"
    with catalog.database.read() as session, pytest.raises(NotFound):
        inspect_image(session=session, term="missing")


@contextmanager
def counting(catalog: Catalog) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(catalog.database.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(catalog.database.engine, "before_cursor_execute", count)


def test_inspect_loads_rows_in_a_fixed_number_of_queries(
    catalog: Catalog, images: ImageBuilder
) -> None:
    ids = [images.add([layer_tar({"f": str(i).encode()})], tags=[f"t{i}:1"]) for i in range(6)]
    with counting(catalog) as one, catalog.database.read() as session:
        inspect_images(session=session, terms=ids[:1])
    with counting(catalog) as six, catalog.database.read() as session:
        documents, _ = inspect_images(session=session, terms=ids)
    assert [d["RepoTags"] for d in documents] == [[f"t{i}:1"] for i in range(6)]
    # Full IDs: one lookup each; everything else is the same few queries.
    assert len(six) - len(one) == 5


# --- history ---


def history_chain(images: ImageBuilder) -> tuple[str, str, str]:
    """Three images as `docker build` leaves them: each adds one step to its parent."""
    steps = [
        {"created": "2020-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
        {"created": "2020-01-02T00:00:00Z", "created_by": "COPY app /app # buildkit"},
        {
            "created": "2020-01-03T00:00:00.9Z",
            "created_by": "ENV\tMODE=prod",
            "comment": "set the mode",
            "empty_layer": True,
        },
        {"created": "2020-01-04T00:00:00Z", "created_by": "RUN " + "x" * 60},
    ]
    base = images.add([L1], config=config_bytes([L1], history=steps[:1]), tags=["base:1"])
    middle = images.add([L1, L2], config=config_bytes([L1, L2], history=steps[:3]), parent=base)
    top = images.add(
        [L1, L2, L3],
        config=config_bytes([L1, L2, L3], history=steps),
        parent=middle,
        tags=["top:2", "top:1"],
    )
    return base, middle, top


def unix(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def test_history_entries(catalog: Catalog, images: ImageBuilder) -> None:
    base, middle, top = history_chain(images)
    with catalog.database.read() as session:
        items = [item.to_json() for item in image_history(session=session, term="top:1")]
    # moby walks one parent per history entry, so IDs go top, middle, base and then
    # <missing>, whatever the layers.
    assert items == [
        {
            "Id": top,
            "Created": unix("2020-01-04T00:00:00+00:00"),
            "CreatedBy": "RUN " + "x" * 60,
            "Tags": ["top:1", "top:2"],
            "Size": SIZE_3,
            "Comment": "",
        },
        {
            "Id": middle,
            "Created": unix("2020-01-03T00:00:00+00:00"),
            "CreatedBy": "ENV\tMODE=prod",
            "Tags": None,
            "Size": 0,
            "Comment": "set the mode",
        },
        {
            "Id": base,
            "Created": unix("2020-01-02T00:00:00+00:00"),
            "CreatedBy": "COPY app /app # buildkit",
            "Tags": ["base:1"],
            "Size": SIZE_2,
            "Comment": "",
        },
        {
            "Id": "<missing>",
            "Created": unix("2020-01-01T00:00:00+00:00"),
            "CreatedBy": "/bin/sh -c #(nop) ADD file:abc in / ",
            "Tags": None,
            "Size": SIZE_1,
            "Comment": "",
        },
    ]


def test_history_of_an_image_without_history(catalog: Catalog, images: ImageBuilder) -> None:
    image_id = images.add([L1], config=config_bytes([L1]))
    with catalog.database.read() as session:
        assert image_history(session=session, term=image_id) == []


def test_history_table(cli: Callable[..., Result], images: ImageBuilder) -> None:
    base, middle, top = history_chain(images)
    now = datetime.now(UTC)

    def since(day: int) -> str:
        return human_duration(now - datetime(2020, 1, day, tzinfo=UTC)) + " ago"

    rows = [
        ("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"),
        (top[7:19], since(4), "RUN " + "x" * 40 + "…", "4.32kB", ""),  # 45 columns
        (middle[7:19], since(3), "ENV MODE=prod", "0B", "set the mode"),  # tab: a space
        (base[7:19], since(2), "COPY app /app # buildkit", "105B", ""),
        ("<missing>", since(1), "/bin/sh -c #(nop) ADD file:abc in / ", "1.01kB", ""),
    ]
    # Go's tabwriter as docker sets it up: cells padded to the widest plus 3, at least 10.
    widths = [max(10, max(len(row[i]) for row in rows) + 3) for i in range(4)]
    expected = "".join(
        "".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + row[4] + "\n"
        for row in rows
    )
    result = cli("history", "top:1")
    assert result.stdout == expected
    assert widths == [15, len(since(1)) + 3, 48, 10]


def test_history_options(cli: Callable[..., Result], images: ImageBuilder) -> None:
    base, middle, top = history_chain(images)
    full = cli("image", "history", "--no-trunc", "--human=false", "top:1").stdout.splitlines()
    assert full[0].startswith("IMAGE" + " " * (71 + 3 - 5) + "CREATED AT   ")
    assert full[1].startswith(top + "   " + go_rfc3339(unix("2020-01-04T00:00:00+00:00")))
    assert "RUN " + "x" * 60 + "   " + str(SIZE_3) in full[1]
    assert cli("history", "-H=false", "top:1").stdout.splitlines()[1].split()[-1] == str(SIZE_3)
    assert cli("history", "-q", "top:1").stdout.splitlines() == [
        top[7:19],
        middle[7:19],
        base[7:19],
        "<missing>",
    ]
    lines = cli("history", "--format", "json", "top:1").stdout.splitlines()
    rows = [json.loads(line) for line in lines]
    assert list(rows[0]) == ["Comment", "CreatedAt", "CreatedBy", "CreatedSince", "ID", "Size"]
    assert rows[0]["ID"] == top[7:19]
    assert rows[0]["Size"] == "4.32kB"
    assert rows[0]["CreatedBy"] == "RUN " + "x" * 40 + "…"
    assert rows[1]["Comment"] == "set the mode"
    assert rows[3]["ID"] == "<missing>"
    result = cli("history", "--human", "maybe", "top:1", exit_code=2)
    assert "strconv.ParseBool" in result.output


@pytest.mark.parametrize(
    ("text", "width", "shown"),
    [
        ("short", 45, "short"),
        ("x" * 45, 45, "x" * 45),
        ("x" * 46, 45, "x" * 44 + "…"),
        ("abcdef", 1, "a"),
        ("abcdef", 0, ""),
        ("日本語のテキスト", 8, "日本語…"),  # wide characters count two columns
        ("日本語", 6, "日本語"),
        ("é" * 10, 5, "éééé…"),
    ],
)
def test_ellipsis(text: str, width: int, shown: str) -> None:
    assert ellipsis(text, width) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.5, "Less than a second"),
        (1, "1 second"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (120, "2 minutes"),
        (59 * 60, "59 minutes"),
        (3600, "About an hour"),
        (int(1.6 * 3600), "2 hours"),
        (47 * 3600, "47 hours"),
        (48 * 3600, "2 days"),
        (13 * 86400, "13 days"),
        (14 * 86400, "2 weeks"),
        (59 * 86400, "8 weeks"),
        (60 * 86400, "2 months"),
        (729 * 86400, "24 months"),
        (730 * 86400, "2 years"),
    ],
)
def test_human_duration(seconds: float, shown: str) -> None:
    assert human_duration(timedelta(seconds=seconds)) == shown


def test_tabwrite() -> None:
    assert tabwrite([["A", "BB", "C"], ["xxxxxxxxxxxx", "y", "z"]]) == (
        "A              BB        C\nxxxxxxxxxxxx   y         z\n"
    )
