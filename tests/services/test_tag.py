"""`catalog tag`: Docker's client checks, then the daemon's (moby image_tag, refstore)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from support.builders import ImageBuilder, layer_tar
from typer.testing import Result

from catalog.context import Catalog
from catalog.db.models import Image, ImageReference
from catalog.errors import InvalidReference, NotFound
from catalog.services.tag import tag_image

DIGEST = "sha256:" + "ab" * 32


def references(catalog: Catalog) -> set[tuple[str, str | None, str]]:
    with catalog.database.read() as session:
        rows = session.execute(
            select(ImageReference.repository, ImageReference.tag, ImageReference.image_id)
        ).all()
    return {(r.repository, r.tag, r.image_id) for r in rows}


def last_tag_time(catalog: Catalog, image_id: str) -> datetime | None:
    with catalog.database.read() as session:
        return session.scalar(select(Image.last_tag_time).where(Image.id == image_id))


def tag(catalog: Catalog, source: str, target: str) -> str:
    with catalog.database.write() as session:
        image_id, _ = tag_image(session=session, source=source, target=target)
    return image_id


def test_tag_normalizes_and_defaults_to_latest(catalog: Catalog, images: ImageBuilder) -> None:
    image_id = images.add([layer_tar({"a": b"1"})])
    assert last_tag_time(catalog, image_id) is None
    before = datetime.now(UTC) - timedelta(seconds=1)
    assert tag(catalog, image_id, "foo") == image_id
    tag(catalog, image_id[7:15], "index.docker.io/team/bar:v1")
    tag(catalog, "foo", "localhost:5000/baz:2")
    assert references(catalog) == {
        ("docker.io/library/foo", "latest", image_id),
        ("docker.io/team/bar", "v1", image_id),
        ("localhost:5000/baz", "2", image_id),
    }
    stamped = last_tag_time(catalog, image_id)
    assert stamped is not None and before <= stamped <= datetime.now(UTC)


def test_an_existing_tag_moves(catalog: Catalog, images: ImageBuilder) -> None:
    first = images.add([layer_tar({"a": b"1"})], tags=["app:1"])
    second = images.add([layer_tar({"a": b"2"})])
    tag(catalog, second, "app:1")
    assert references(catalog) == {("docker.io/library/app", "1", second)}
    assert first != second


def test_retagging_the_same_image_updates_last_tag_time(
    catalog: Catalog, images: ImageBuilder
) -> None:
    image_id = images.add([layer_tar({"a": b"1"})])
    tag(catalog, image_id, "app")
    first = last_tag_time(catalog, image_id)
    tag(catalog, image_id, "app")
    second = last_tag_time(catalog, image_id)
    assert first is not None and second is not None and second > first
    assert references(catalog) == {("docker.io/library/app", "latest", image_id)}


DIGEST_TARGET = "refusing to create a tag with a digest reference"
AMBIGUOUS = "refusing to create an ambiguous tag using digest algorithm as name"
NOT_VALID = 'Error parsing reference: "{}" is not a valid repository/tag: '
BAD_FORMAT = "invalid reference format"
UPPER_APP = "invalid reference format: repository name (library/App) must be lowercase"
HEX64 = "ab" * 32


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [
        ("app", f"app@{DIGEST}", DIGEST_TARGET),
        ("app", f"app:1@{DIGEST}", DIGEST_TARGET),
        ("app", "sha256:sometag", AMBIGUOUS),
        ("app", "docker.io/library/sha256", AMBIGUOUS),
        ("app", "-app:1", NOT_VALID.format("-app:1") + BAD_FORMAT),
        ("app", "App:1", NOT_VALID.format("App:1") + UPPER_APP),
        ("app", "app:" + "x" * 129, NOT_VALID.format("app:" + "x" * 129) + BAD_FORMAT),
        ("App", "app:2", NOT_VALID.format("App") + UPPER_APP),
        (
            "app",
            HEX64,
            NOT_VALID.format(HEX64)
            + f"invalid repository name ({HEX64}), cannot specify 64-byte hexadecimal strings",
        ),
    ],
)
def test_refused_targets_and_sources(
    catalog: Catalog, images: ImageBuilder, source: str, target: str, message: str
) -> None:
    image_id = images.add([layer_tar({"a": b"1"})], tags=["app:1"])
    with pytest.raises(InvalidReference) as caught:
        tag(catalog, source, target)
    assert str(caught.value) == message
    assert references(catalog) == {("docker.io/library/app", "1", image_id)}


def test_client_checks_come_before_the_source_lookup(catalog: Catalog) -> None:
    with pytest.raises(InvalidReference, match="digest reference"):
        tag(catalog, "missing", f"x@{DIGEST}")
    with pytest.raises(InvalidReference, match="ambiguous"):
        tag(catalog, "missing", "sha256:x")
    with pytest.raises(NotFound, match=r"^No such image: missing:latest$"):
        tag(catalog, "missing", "x")
    assert references(catalog) == set()


def test_tag_cli(cli: Callable[..., Result], catalog: Catalog, images: ImageBuilder) -> None:
    image_id = images.add([layer_tar({"a": b"1"})], tags=["app:1"])
    assert cli("tag", "app:1", "app:2").stdout == ""
    assert cli("image", "tag", image_id, "other").stdout == ""
    assert references(catalog) == {
        ("docker.io/library/app", "1", image_id),
        ("docker.io/library/app", "2", image_id),
        ("docker.io/library/other", "latest", image_id),
    }
    result = cli("tag", "app:3", "x", exit_code=1)
    assert result.stderr == "Error: No such image: app:3\n"
    result = cli("tag", "app:1", "sha256:x", exit_code=1)
    assert result.stderr == (
        "Error: refusing to create an ambiguous tag using digest algorithm as name\n"
    )
