"""`catalog rmi`: moby's image_delete.go, conflict by conflict, with and without force."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from sqlalchemy import func, select
from support.builders import ImageBuilder, diff_id, image_config, layer_tar
from support.environment import console_script
from support.surgery import blob_rows, layer_rows
from typer.testing import Result

from catalog.context import Catalog
from catalog.db.models import Container, Image, ImageReference, Layer
from catalog.domain.digest import chain_ids, short_id
from catalog.domain.reference import parse_normalized_named
from catalog.errors import Conflict, InvalidReference, NotFound
from catalog.operations.removal import remove_blob_files, remove_images
from catalog.services.containers import create_container
from catalog.services.delete import (
    ImageDeletion,
    delete_images,
    is_image_id_prefix,
    is_single_reference,
)
from catalog.services.images import set_reference

DIGEST_A = "sha256:" + "a1" * 32
DIGEST_B = "sha256:" + "b2" * 32

L1 = layer_tar({"one": b"1" * 100})
L2 = layer_tar({"two": b"2" * 200})
L3 = layer_tar({"three": b"3" * 300})
L4 = layer_tar({"four": b"4" * 400})


def rmi(catalog: Catalog, *terms: str, force: bool = False, prune: bool = True) -> ImageDeletion:
    """What `catalog rmi` does: delete in one transaction, then the blob files."""
    return remove_images(catalog, terms, force=force, prune=prune)


def rmi_ok(catalog: Catalog, *terms: str, force: bool = False, prune: bool = True) -> list[str]:
    deletion = rmi(catalog, *terms, force=force, prune=prune)
    assert not deletion.failures, deletion.failures
    return [f"{kind}: {value}" for record in deletion.records for kind, value in record.items()]


def rmi_error(catalog: Catalog, term: str, *, force: bool = False) -> tuple[type[Exception], str]:
    deletion = rmi(catalog, term, force=force)
    assert deletion.records == []
    assert len(deletion.failures) == 1
    error = deletion.failures[0].error
    return type(error), error.message


def image_ids(catalog: Catalog) -> set[str]:
    with catalog.database.read() as session:
        return set(session.scalars(select(Image.id)))


def names(catalog: Catalog) -> set[str]:
    with catalog.database.read() as session:
        rows = session.execute(
            select(ImageReference.repository, ImageReference.tag, ImageReference.digest)
        ).all()
    return {f"{r.repository}:{r.tag}" if r.tag else f"{r.repository}@{r.digest}" for r in rows}


def add_reference(catalog: Catalog, reference: str, image_id: str) -> None:
    with catalog.database.write() as session:
        set_reference(
            session=session, reference=parse_normalized_named(reference), image_id=image_id
        )


def container(catalog: Catalog, image: str, state: str) -> str:
    with catalog.database.write() as session:
        return create_container(session=session, image=image, state=state).id


def chain(*layers: bytes) -> str:
    return chain_ids([diff_id(layer) for layer in layers])[-1]


def deleted(image_id: str, *layer_stacks: Sequence[bytes]) -> list[str]:
    """`Deleted:` lines for an image and, top first, the chains of the stacks given."""
    return [f"Deleted: {image_id}"] + [f"Deleted: {chain(*stack)}" for stack in layer_stacks]


# --- pure helpers ---


@pytest.mark.parametrize(
    ("refs", "single"),
    [
        ([], False),
        (["a:1"], True),
        ([f"a@{DIGEST_A}"], True),
        (["a:1", "a:2"], False),
        (["a:1", "b:1"], False),
        (["a:1", f"a@{DIGEST_A}"], True),
        (["a:1", f"a@{DIGEST_A}", f"a@{DIGEST_B}"], True),
        ([f"a@{DIGEST_A}", f"a@{DIGEST_B}"], True),
        (["a:1", f"b@{DIGEST_A}"], False),
        ([f"a@{DIGEST_A}", f"b@{DIGEST_B}"], False),
        (["a:1", f"a@{DIGEST_A}", f"b@{DIGEST_B}"], False),
    ],
)
def test_is_single_reference(refs: list[str], single: bool) -> None:
    parsed = sorted((parse_normalized_named(r) for r in refs), key=str)
    assert is_single_reference(parsed) is single


def test_is_image_id_prefix() -> None:
    image_id = "sha256:" + "abc123" + "0" * 58
    assert is_image_id_prefix(image_id, "abc")
    assert is_image_id_prefix(image_id, "sha256:abc1")
    assert is_image_id_prefix(image_id, "sha")  # a name that starts the ID counts, as in moby
    assert not is_image_id_prefix(image_id, "abd")
    assert not is_image_id_prefix(image_id, "busybox")


# --- untag vs delete ---


def test_untag_one_of_two_tags(catalog: Catalog, images: ImageBuilder) -> None:
    image_id = images.add([L1], tags=["app:1", "app:2"])
    assert rmi_ok(catalog, "app:1") == ["Untagged: app:1"]
    assert image_ids(catalog) == {image_id}
    assert names(catalog) == {"docker.io/library/app:2"}


def test_removing_the_last_tag_deletes_image_layers_and_blobs(
    catalog: Catalog, images: ImageBuilder
) -> None:
    image_id = images.add([L1, L2], tags=["app"])
    assert rmi_ok(catalog, "app") == [
        "Untagged: app:latest",
        *deleted(image_id, [L1, L2], [L1]),
    ]
    assert image_ids(catalog) == layer_rows(catalog) == blob_rows(catalog) == set()
    assert not catalog.store.exists(diff_id(L1))
    assert not catalog.store.exists(diff_id(L2))


def test_delete_by_id_and_id_prefix(catalog: Catalog, images: ImageBuilder) -> None:
    first = images.add([L1], tags=["one:1"])
    second = images.add([L2])
    assert rmi_ok(catalog, first[7:19]) == ["Untagged: one:1", *deleted(first, [L1])]
    assert rmi_ok(catalog, second) == deleted(second, [L2])
    assert image_ids(catalog) == set()


def test_an_id_with_tags_in_several_repositories(catalog: Catalog, images: ImageBuilder) -> None:
    image_id = images.add([L1], tags=["b:1", "a:1"])
    assert rmi_error(catalog, image_id) == (
        Conflict,
        f"conflict: unable to delete {short_id(image_id)} (must be forced)"
        " - image is referenced in multiple repositories",
    )
    assert names(catalog) == {"docker.io/library/a:1", "docker.io/library/b:1"}
    # Forced: every name goes (in refstore order), then the image.
    assert rmi_ok(catalog, image_id, force=True) == [
        "Untagged: a:1",
        "Untagged: b:1",
        *deleted(image_id, [L1]),
    ]


def test_two_tags_of_one_repository_also_need_force(catalog: Catalog, images: ImageBuilder) -> None:
    # isSingleReference allows one tag only; Docker's message still says "repositories".
    image_id = images.add([L1], tags=["app:1", "app:2"])
    assert rmi_error(catalog, image_id[7:]) == (
        Conflict,
        f"conflict: unable to delete {short_id(image_id)} (must be forced)"
        " - image is referenced in multiple repositories",
    )
    assert rmi_ok(catalog, image_id[7:], force=True)[:2] == ["Untagged: app:1", "Untagged: app:2"]


def test_an_id_with_one_tag_and_digests_of_its_repository(
    catalog: Catalog, images: ImageBuilder
) -> None:
    image_id = images.add([L1], tags=["app:1"])
    add_reference(catalog, f"app@{DIGEST_B}", image_id)
    add_reference(catalog, f"app@{DIGEST_A}", image_id)
    assert rmi_ok(catalog, image_id) == [
        "Untagged: app:1",
        f"Untagged: app@{DIGEST_A}",
        f"Untagged: app@{DIGEST_B}",
        *deleted(image_id, [L1]),
    ]
    assert names(catalog) == set()


def test_last_tag_of_a_repository_takes_its_digests(catalog: Catalog, images: ImageBuilder) -> None:
    image_id = images.add([L1], tags=["app:1", "other:1"])
    add_reference(catalog, f"app@{DIGEST_A}", image_id)
    add_reference(catalog, f"other@{DIGEST_B}", image_id)
    # app's last tag: its digest goes too; other's names keep the image.
    assert rmi_ok(catalog, "app:1") == ["Untagged: app:1", f"Untagged: app@{DIGEST_A}"]
    assert names(catalog) == {"docker.io/library/other:1", f"docker.io/library/other@{DIGEST_B}"}
    # Then other's last tag: the digest, then the image.
    assert rmi_ok(catalog, "other:1") == [
        "Untagged: other:1",
        f"Untagged: other@{DIGEST_B}",
        *deleted(image_id, [L1]),
    ]


def test_untag_a_digest_reference_only(catalog: Catalog, images: ImageBuilder) -> None:
    image_id = images.add([L1], tags=["app:1"])
    add_reference(catalog, f"app@{DIGEST_A}", image_id)
    assert rmi_ok(catalog, f"app@{DIGEST_A}") == [f"Untagged: app@{DIGEST_A}"]
    assert names(catalog) == {"docker.io/library/app:1"}
    # name:tag@digest removes the digest reference and reports what was typed.
    add_reference(catalog, f"app@{DIGEST_A}", image_id)
    assert rmi_ok(catalog, f"app:1@{DIGEST_A}") == [f"Untagged: app:1@{DIGEST_A}"]
    assert names(catalog) == {"docker.io/library/app:1"}


def test_a_name_that_starts_the_id_is_taken_as_an_id(
    catalog: Catalog, images: ImageBuilder
) -> None:
    # moby isImageIDPrefix compares the text typed with the ID, so a tag spelled like the
    # ID's start takes the ID path: with another name in another repository, a conflict.
    image_id = images.add([L1], tags=["keep:1"])
    prefix = image_id[7:19]
    add_reference(catalog, prefix + ":latest", image_id)
    assert rmi_error(catalog, prefix)[1].endswith("image is referenced in multiple repositories")
    assert rmi_ok(catalog, "keep:1") == ["Untagged: keep:1"]
    assert rmi_ok(catalog, prefix) == [f"Untagged: {prefix}:latest", *deleted(image_id, [L1])]


# --- hard conflicts ---


def test_child_images_block_delete_even_forced(catalog: Catalog, images: ImageBuilder) -> None:
    parent = images.add([L1], tags=["base:1"])
    child = images.add([L1, L2], parent=parent, tags=["app:1"])
    message = (
        f"conflict: unable to delete {short_id(parent)} (cannot be forced)"
        " - image has dependent child images"
    )
    assert rmi_error(catalog, parent) == (Conflict, message)
    assert rmi_error(catalog, parent, force=True) == (Conflict, message)
    assert names(catalog) == {"docker.io/library/base:1", "docker.io/library/app:1"}
    # By name: untagged, and the image stays for its child (the conflict is quiet).
    assert rmi_ok(catalog, "base:1") == ["Untagged: base:1"]
    assert image_ids(catalog) == {parent, child}


def test_running_container_blocks_delete_even_forced(
    catalog: Catalog, images: ImageBuilder
) -> None:
    image_id = images.add([L1])
    running = container(catalog, image_id, "running")
    message = (
        f"conflict: unable to delete {short_id(image_id)} (cannot be forced)"
        f" - image is being used by running container {running[:12]}"
    )
    assert rmi_error(catalog, image_id) == (Conflict, message)
    assert rmi_error(catalog, image_id, force=True) == (Conflict, message)
    assert image_ids(catalog) == {image_id}


@pytest.mark.parametrize("state", ["running", "exited", "created"])
def test_container_keeps_the_only_name_unless_forced(
    catalog: Catalog, images: ImageBuilder, state: str
) -> None:
    image_id = images.add([L1], tags=["app:1"])
    user = container(catalog, "app:1", state)
    assert rmi_error(catalog, "app:1") == (
        Conflict,
        'conflict: unable to remove repository reference "app:1" (must force)'
        f" - container {user[:12]} is using its referenced image {short_id(image_id)}",
    )
    assert names(catalog) == {"docker.io/library/app:1"}
    # Forced: the name goes. A running container keeps the image, quietly; a stopped one
    # does not (Docker deletes the image and the container keeps its ID).
    if state == "running":
        assert rmi_ok(catalog, "app:1", force=True) == ["Untagged: app:1"]
        assert image_ids(catalog) == {image_id}
    else:
        assert rmi_ok(catalog, "app:1", force=True) == ["Untagged: app:1", *deleted(image_id, [L1])]
        assert image_ids(catalog) == set()
    assert names(catalog) == set()


def test_a_container_does_not_keep_one_of_several_names(
    catalog: Catalog, images: ImageBuilder
) -> None:
    images.add([L1], tags=["app:1", "app:2"])
    container(catalog, "app:1", "running")
    assert rmi_ok(catalog, "app:1") == ["Untagged: app:1"]


# --- soft conflicts ---


def test_stopped_container_needs_force(catalog: Catalog, images: ImageBuilder) -> None:
    image_id = images.add([L1], tags=["app:1"])
    stopped = container(catalog, image_id, "exited")
    assert rmi_error(catalog, image_id) == (
        Conflict,
        f"conflict: unable to delete {short_id(image_id)} (must be forced)"
        f" - image is being used by stopped container {stopped[:12]}",
    )
    # As Docker: forced, the image goes and the container keeps its (now missing) image ID.
    assert rmi_ok(catalog, image_id, force=True) == [
        "Untagged: app:1",
        *deleted(image_id, [L1]),
    ]
    assert names(catalog) == set()
    assert image_ids(catalog) == set()
    with catalog.database.read() as session:
        assert session.get(Container, stopped).image_id == image_id  # type: ignore[union-attr]


def test_untagged_image_with_a_stopped_container(catalog: Catalog, images: ImageBuilder) -> None:
    image_id = images.add([L1])
    stopped = container(catalog, image_id, "created")
    assert rmi_error(catalog, image_id[7:14])[1] == (
        f"conflict: unable to delete {short_id(image_id)} (must be forced)"
        f" - image is being used by stopped container {stopped[:12]}"
    )


# --- parents ---


def build_chain(images: ImageBuilder) -> tuple[str, str, str]:
    base = images.add([L1])
    middle = images.add([L1, L2], parent=base)
    top = images.add([L1, L2, L3], parent=middle, tags=["top:1"])
    return base, middle, top


def test_untagged_parents_are_pruned(catalog: Catalog, images: ImageBuilder) -> None:
    base, middle, top = build_chain(images)
    assert rmi_ok(catalog, "top:1") == [
        "Untagged: top:1",
        *deleted(top, [L1, L2, L3]),
        *deleted(middle, [L1, L2]),
        *deleted(base, [L1]),
    ]
    assert image_ids(catalog) == layer_rows(catalog) == blob_rows(catalog) == set()
    assert list(catalog.store.iter_blobs()) == []


def test_no_prune_keeps_the_parents(catalog: Catalog, images: ImageBuilder) -> None:
    base, middle, top = build_chain(images)
    assert rmi_ok(catalog, "top:1", prune=False) == ["Untagged: top:1", *deleted(top, [L1, L2, L3])]
    assert image_ids(catalog) == {base, middle}
    assert layer_rows(catalog) == {chain(L1), chain(L1, L2)}
    assert not catalog.store.exists(diff_id(L3))
    assert catalog.store.exists(diff_id(L2))


def test_pruning_stops_at_a_tagged_parent(catalog: Catalog, images: ImageBuilder) -> None:
    base, middle, top = build_chain(images)
    add_reference(catalog, "base:1", base)
    assert rmi_ok(catalog, "top:1") == [
        "Untagged: top:1",
        *deleted(top, [L1, L2, L3]),
        *deleted(middle, [L1, L2]),
    ]
    assert image_ids(catalog) == {base}


def test_pruning_stops_at_a_parent_with_other_children(
    catalog: Catalog, images: ImageBuilder
) -> None:
    base, middle, top = build_chain(images)
    sibling = images.add([L1, L2, L4], parent=middle, tags=["sibling:1"])
    assert rmi_ok(catalog, "top:1") == ["Untagged: top:1", *deleted(top, [L1, L2, L3])]
    assert image_ids(catalog) == {base, middle, sibling}


def test_pruning_stops_at_a_parent_a_container_uses(catalog: Catalog, images: ImageBuilder) -> None:
    base, middle, top = build_chain(images)
    container(catalog, middle, "exited")
    assert rmi_ok(catalog, "top:1") == ["Untagged: top:1", *deleted(top, [L1, L2, L3])]
    assert image_ids(catalog) == {base, middle}


def test_deleting_an_intermediate_image_by_id(catalog: Catalog, images: ImageBuilder) -> None:
    base, middle, _ = build_chain(images)
    assert rmi_error(catalog, middle)[1].endswith("image has dependent child images")
    assert rmi_ok(catalog, "top:1", prune=False)[0] == "Untagged: top:1"
    # Now middle is dangling: deleting it prunes base too.
    assert rmi_ok(catalog, middle) == [*deleted(middle, [L1, L2]), *deleted(base, [L1])]


# --- layers and blobs ---


def test_only_unshared_layers_and_blobs_go(catalog: Catalog, images: ImageBuilder) -> None:
    small = images.add([L1], tags=["small"])
    big = images.add([L1, L2], tags=["big"])
    assert rmi_ok(catalog, "big") == ["Untagged: big:latest", *deleted(big, [L1, L2])]
    assert layer_rows(catalog) == {chain(L1)}
    assert blob_rows(catalog) == {diff_id(L1)}
    assert catalog.store.exists(diff_id(L1))
    assert not catalog.store.exists(diff_id(L2))
    assert rmi_ok(catalog, "small") == ["Untagged: small:latest", *deleted(small, [L1])]
    assert not catalog.store.exists(diff_id(L1))


def test_a_blob_shared_by_two_chains_stays(catalog: Catalog, images: ImageBuilder) -> None:
    # The same diff at two depths: two layer rows (chains), one blob.
    alone = images.add([L1], tags=["alone"])
    stacked = images.add([L2, L1], tags=["stacked"])
    assert rmi_ok(catalog, "alone") == ["Untagged: alone:latest", *deleted(alone, [L1])]
    assert layer_rows(catalog) == {chain(L2), chain(L2, L1)}
    assert blob_rows(catalog) == {diff_id(L1), diff_id(L2)}
    assert catalog.store.exists(diff_id(L1))
    assert rmi_ok(catalog, "stacked") == [
        "Untagged: stacked:latest",
        *deleted(stacked, [L2, L1], [L2]),
    ]
    assert blob_rows(catalog) == set()
    assert list(catalog.store.iter_blobs()) == []


def test_an_image_without_layers(catalog: Catalog, images: ImageBuilder) -> None:
    empty = images.add([], config=image_config([]), tags=["empty"])
    assert rmi_ok(catalog, "empty") == ["Untagged: empty:latest", f"Deleted: {empty}"]


def test_a_blob_brought_back_before_cleanup_is_kept(catalog: Catalog, images: ImageBuilder) -> None:
    images.add([L1], tags=["app"])
    with catalog.database.write() as session:
        deletion = delete_images(session=session, terms=["app"])
    assert deletion.blob_digests == [diff_id(L1)]
    assert catalog.store.exists(diff_id(L1))  # rows gone, file not yet
    images.add([L1], tags=["again"])  # a load brings the blob back meanwhile
    freed = remove_blob_files(catalog, deletion.blob_digests)
    assert freed == 0
    assert catalog.store.exists(diff_id(L1))


def test_a_failed_transaction_leaves_files_and_rows(catalog: Catalog, images: ImageBuilder) -> None:
    images.add([L1], tags=["app"])
    with pytest.raises(RuntimeError), catalog.database.write() as session:
        delete_images(session=session, terms=["app"])
        raise RuntimeError("the commit never happens")
    assert names(catalog) == {"docker.io/library/app:latest"}
    assert blob_rows(catalog) == {diff_id(L1)}
    assert catalog.store.exists(diff_id(L1))


# --- several terms, errors ---


def test_several_terms_go_on_after_an_error(catalog: Catalog, images: ImageBuilder) -> None:
    first = images.add([L1], tags=["first"])
    blocked = images.add([L2], tags=["blocked:1", "other:1"])
    kept = images.add([L3], tags=["kept"])
    deletion = rmi(catalog, "first", "missing", blocked, "kept")
    assert [f"{k}: {v}" for r in deletion.records for k, v in r.items()] == [
        "Untagged: first:latest",
        *deleted(first, [L1]),
        "Untagged: kept:latest",
        *deleted(kept, [L3]),
    ]
    assert [(f.term, type(f.error)) for f in deletion.failures] == [
        ("missing", NotFound),
        (blocked, Conflict),
    ]
    assert image_ids(catalog) == {blocked}
    assert names(catalog) == {"docker.io/library/blocked:1", "docker.io/library/other:1"}


def test_the_same_image_twice(catalog: Catalog, images: ImageBuilder) -> None:
    image_id = images.add([L1])
    deletion = rmi(catalog, image_id, image_id)
    assert deletion.records[0] == {"Deleted": image_id}
    assert [str(f.error) for f in deletion.failures] == [f"No such image: {image_id}"]


def test_blank_and_invalid_terms(catalog: Catalog) -> None:
    assert rmi_error(catalog, " ") == (InvalidReference, "image name cannot be blank")
    assert rmi_error(catalog, "Bad") == (
        InvalidReference,
        "invalid reference format: repository name (library/Bad) must be lowercase",
    )


# --- the command ---


def test_rmi_cli_output_and_exit_codes(
    cli: Callable[..., Result], catalog: Catalog, images: ImageBuilder
) -> None:
    image_id = images.add([L1], tags=["app:1"])
    result = cli("rmi", "app:1", "nope", exit_code=1)
    assert result.stdout == f"Untagged: app:1\nDeleted: {image_id}\nDeleted: {chain(L1)}\n"
    assert result.stderr == "Error: No such image: nope:latest\n"
    assert image_ids(catalog) == set()
    # With -f a missing image is only reported, as docker rmi -f does.
    result = cli("image", "rm", "-f", "nope", "gone:1", exit_code=0)
    assert result.stdout == ""
    assert result.stderr == ("Error: No such image: nope:latest\nError: No such image: gone:1\n")
    # Other errors still fail a forced rmi.
    result = cli("rmi", "-f", "nope", "Bad", exit_code=1)
    assert result.stderr.splitlines()[-1] == (
        "Error: invalid reference format: repository name (library/Bad) must be lowercase"
    )


def test_rmi_cli_prints_docker_lines(
    cli: Callable[..., Result], catalog: Catalog, images: ImageBuilder
) -> None:
    image_id = images.add([L1, L2], tags=["app:1", "app:2"])
    other = images.add([L3])
    running = container(catalog, other, "running")
    result = cli("rmi", "app:2", other, "--no-prune", exit_code=1)
    assert result.stdout == "Untagged: app:2\n"
    assert result.stderr == (
        f"Error: conflict: unable to delete {short_id(other)} (cannot be forced)"
        f" - image is being used by running container {running[:12]}\n"
    )
    result = cli("image", "rm", "-f", "app:1", other, exit_code=1)
    lines = ["Untagged: app:1", *deleted(image_id, [L1, L2], [L1])]
    assert result.stdout == "\n".join(lines) + "\n"
    assert not catalog.store.exists(diff_id(L1))
    assert catalog.store.exists(diff_id(L3))


def test_rmi_console_script(root: Path, db_url: str, tmp_path: Path, images: ImageBuilder) -> None:
    image_id = images.add([L1], tags=["app:1"])
    argv = [console_script()]
    done = subprocess.run(
        [*argv, "--root", str(root), "--db", db_url, "rmi", "app:1"],
        cwd=tmp_path,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"Untagged: app:1\nDeleted: {image_id}\nDeleted: {chain(L1)}\n"
    assert not (root / "blobs" / "sha256" / diff_id(L1)[7:]).exists()


def test_layers_counted_in_sql(catalog: Catalog, images: ImageBuilder) -> None:
    images.add([L1, L2], tags=["a"])
    images.add([L1, L3], tags=["b"])
    rmi_ok(catalog, "a")
    with catalog.database.read() as session:
        assert session.scalar(select(func.count()).select_from(Layer)) == 2
