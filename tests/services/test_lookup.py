"""Finding an image by what a user typed (docs/references.md §5, moby GetImage)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from support.builders import ImageBuilder, layer_tar
from typer.testing import Result

from catalog.context import Catalog
from catalog.domain.reference import parse_normalized_named
from catalog.errors import InvalidReference, NotFound
from catalog.services.images import set_reference
from catalog.services.lookup import resolve_image, resolve_image_id

DIGEST = "sha256:" + "ab" * 32
UPPER = "invalid reference format: repository name"


def resolve(catalog: Catalog, term: str) -> str:
    with catalog.database.read() as session:
        return resolve_image_id(session, term)


def error_of(catalog: Catalog, term: str) -> tuple[type[Exception], str]:
    with pytest.raises((NotFound, InvalidReference)) as caught:
        resolve(catalog, term)
    return type(caught.value), str(caught.value)


def distinct_images(images: ImageBuilder, count: int) -> list[str]:
    return [images.add([layer_tar({f"file{i}": f"content {i}".encode()})]) for i in range(count)]


def test_full_ids_with_and_without_the_algorithm(catalog: Catalog, images: ImageBuilder) -> None:
    image_id = images.add([layer_tar({"a": b"a"})])
    assert resolve(catalog, image_id) == image_id
    assert resolve(catalog, image_id.removeprefix("sha256:")) == image_id
    with catalog.database.read() as session:
        assert resolve_image(session, image_id).id == image_id


def test_unique_prefixes_of_every_length(catalog: Catalog, images: ImageBuilder) -> None:
    ids = distinct_images(images, 3)
    for image_id in ids:
        hex_id = image_id.removeprefix("sha256:")
        others = [other.removeprefix("sha256:") for other in ids if other != image_id]
        for length in (1, 2, 3, 4, 5, 12, 20, 63, 64):
            prefix = hex_id[:length]
            if any(other.startswith(prefix) for other in others):
                continue  # not unique: covered by the ambiguity test
            assert resolve(catalog, prefix) == image_id, prefix
            assert resolve(catalog, "sha256:" + prefix) == image_id, prefix


def test_an_ambiguous_prefix_is_not_found(catalog: Catalog, images: ImageBuilder) -> None:
    # 17 images: two of them must share their first hex digit.
    ids = sorted(distinct_images(images, 17))
    # Sorted, so the images that share a first digit are neighbours.
    first = next((a, b) for a, b in itertools.pairwise(ids) if a[7] == b[7])
    common = ""
    for x, y in zip(first[0][7:], first[1][7:], strict=True):
        if x != y:
            break
        common += x
    assert error_of(catalog, common) == (NotFound, f"No such image: {common}:latest")
    assert error_of(catalog, "sha256:" + common) == (NotFound, f"No such image: sha256:{common}")
    # One more digit tells them apart.
    assert resolve(catalog, first[0][7 : 7 + len(common) + 1]) == first[0]
    assert resolve(catalog, first[1][7 : 7 + len(common) + 1]) == first[1]


def test_names_default_to_latest_and_are_normalized(catalog: Catalog, images: ImageBuilder) -> None:
    latest = images.add([layer_tar({"a": b"1"})], tags=["busybox"])
    tagged = images.add([layer_tar({"a": b"2"})], tags=["busybox:1.36"])
    other = images.add([layer_tar({"a": b"3"})], tags=["localhost:5000/team/app:v1"])
    for term in ("busybox", "busybox:latest", "library/busybox", "docker.io/library/busybox"):
        assert resolve(catalog, term) == latest, term
    assert resolve(catalog, "index.docker.io/library/busybox:1.36") == tagged
    assert resolve(catalog, "localhost:5000/team/app:v1") == other
    assert error_of(catalog, "localhost:5000/team/app") == (
        NotFound,
        "No such image: localhost:5000/team/app:latest",
    )
    assert error_of(catalog, "busybox:1.35") == (NotFound, "No such image: busybox:1.35")


def test_digest_references(catalog: Catalog, images: ImageBuilder) -> None:
    image_id = images.add([layer_tar({"a": b"1"})], tags=["app:1"])
    with catalog.database.write() as session:
        set_reference(
            session=session, reference=parse_normalized_named(f"app@{DIGEST}"), image_id=image_id
        )
    assert resolve(catalog, f"app@{DIGEST}") == image_id
    assert resolve(catalog, f"docker.io/library/app@{DIGEST}") == image_id
    # name:tag@digest is looked up by its digest alone: the tag need not exist.
    assert resolve(catalog, f"app:nonexistent@{DIGEST}") == image_id
    # The name must match.
    assert error_of(catalog, f"other@{DIGEST}") == (NotFound, f"No such image: other@{DIGEST}")
    other_digest = "sha256:" + "cd" * 32
    assert error_of(catalog, f"app@{other_digest}") == (
        NotFound,
        f"No such image: app@{other_digest}",
    )


def test_a_name_wins_over_an_id_prefix(catalog: Catalog, images: ImageBuilder) -> None:
    first, second = distinct_images(images, 2)
    prefix = second[7:19]
    with catalog.database.write() as session:
        set_reference(
            session=session, reference=parse_normalized_named(prefix + ":latest"), image_id=first
        )
    assert resolve(catalog, prefix) == first
    assert resolve(catalog, "sha256:" + prefix) == second


def test_missing_ids(catalog: Catalog, images: ImageBuilder) -> None:
    images.add([layer_tar({"a": b"1"})])
    zeros = "0" * 64
    assert error_of(catalog, zeros) == (NotFound, f"No such image: sha256:{zeros}")
    assert error_of(catalog, "sha256:" + zeros) == (NotFound, f"No such image: sha256:{zeros}")
    assert error_of(catalog, "sha512:" + "0" * 128) == (
        NotFound,
        "No such image: sha512:" + "0" * 128,
    )
    assert error_of(catalog, "nope") == (NotFound, "No such image: nope:latest")


@pytest.mark.parametrize(
    ("term", "message"),
    [
        ("", "invalid reference format"),
        ("a b", "invalid reference format"),
        ("Busybox", f"{UPPER} (library/Busybox) must be lowercase"),
        ("busybox:", "invalid reference format"),
        ("-busybox", "invalid reference format"),
        ("A" * 64, f"{UPPER} (library/{'A' * 64}) must be lowercase"),
        ("busybox@sha256:abc", "invalid reference format"),
        ("busybox@sha256:" + "a" * 32, "invalid checksum digest length"),
    ],
)
def test_bad_references_are_refused_with_dockers_text(
    catalog: Catalog, term: str, message: str
) -> None:
    assert error_of(catalog, term) == (InvalidReference, message)


def test_lookup_errors_through_the_cli(cli: Callable[..., Result], images: ImageBuilder) -> None:
    images.add([layer_tar({"a": b"1"})], tags=["present"])
    result = cli("image", "inspect", "Absent", exit_code=1)
    assert result.stderr == (
        "Error: invalid reference format: repository name (library/Absent) must be lowercase\n"
    )
    result = cli("history", "absent", exit_code=1)
    assert result.stderr == "Error: No such image: absent:latest\n"
