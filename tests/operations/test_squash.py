"""`catalog image squash` and catalog.operations.squash: the image side of squashing.

The layer merge itself is tested scenario by scenario in domain/test_changeset.py; here:
which layers are squashed (docs/layers-and-squash.md §3.1, #35), the config and history
(§3.5, #37), the rows, tags and the original image, real fixture images end to end, a
second opinion from umoci, and a squash killed at several points leaving the catalog as it
was.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from support.builders import (
    ImageBuilder,
    diff_id,
    directory,
    hardlink,
    image_config,
    layer_tar,
    symlink,
)
from support.environment import need
from support.files import fixture
from support.layer_trees import TreeView, view
from support.surgery import table_rows
from typer.testing import Result

from catalog.context import Catalog, open_catalog
from catalog.db.models import Image, ImageConfigJSON, ImageLayer, ImageReference, Layer
from catalog.domain.changeset import apply_layers
from catalog.domain.digest import chain_ids, image_id, sha256_digest
from catalog.errors import CatalogError, Conflict, CorruptBlob, InvalidArchive
from catalog.faults import set_fault_hook
from catalog.operations.fsck.check import check_catalog
from catalog.operations.load import load_archive
from catalog.operations.save import save_images
from catalog.operations.squash import squash_image
from catalog.services.delete import delete_images
from catalog.settings import Location, normalize_database_url

Cli = Callable[..., Result]
MOBY_EMPTY_LAYER = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
NOW = datetime(2025, 6, 1, 12, 30, 15, 250000, tzinfo=UTC)


# --- A small build: base, mid (base + 1 layer), child (mid + 2 layers) ---

BASE_LAYERS = [
    layer_tar(
        [
            ("etc", directory()),
            ("etc/os-release", b"ID=test\n"),
            ("bin", directory()),
            ("bin/sh", b"#!sh"),
            ("bin/ash", hardlink("bin/sh")),
        ]
    ),
    layer_tar([("var", directory()), ("var/lib", directory()), ("var/lib/x", b"x")]),
]
MID_LAYER = layer_tar([("app", directory()), ("app/a", b"a"), ("etc/.wh.os-release", b"")])
CHILD_LAYERS = [
    layer_tar(
        [
            ("app/b", b"b"),
            ("var/lib", directory(0o700)),
            ("var/lib/.wh..wh..opq", b""),
            ("var/lib/y", b"y"),
        ]
    ),
    layer_tar([("app/.wh.a", b""), ("bin/ash", b"replaced"), ("lib", symlink("/usr/lib"))]),
]


def history(*steps: str) -> list[dict[str, Any]]:
    """History entries; a step starting with `ENV`/`CMD` is an empty layer."""
    entries = []
    for step in steps:
        entry: dict[str, Any] = {"created": "2024-01-01T00:00:00Z", "created_by": step}
        if step.startswith(("ENV", "CMD")):
            entry["empty_layer"] = True
        entries.append(entry)
    return entries


BASE_HISTORY = history("ADD base", "ADD var", "CMD sh")
MID_HISTORY = [*BASE_HISTORY, *history("RUN app")]
CHILD_HISTORY = [*MID_HISTORY, *history("RUN b", "ENV X=1", "RUN c")]
EXTRA = {"moby.unknown": {"kept": [1, 2]}, "author": "me", "config": {}}


def config(layers: list[bytes], steps: list[dict[str, Any]]) -> bytes:
    document = json.loads(image_config([diff_id(t) for t in layers], history=steps))
    document["config"] = {
        "Env": ["PATH=/usr/bin:/bin", "X=1"],
        "Cmd": ["sh"],
        "Labels": {"org.example": "yes"},
    }
    document["moby.unknown"] = {"kept": [1, 2]}
    document["author"] = "me"
    return json.dumps(document, separators=(",", ":")).encode()


def build(images: ImageBuilder) -> tuple[str, str, str]:
    base = images.add(BASE_LAYERS, tags=["base:1"], config=config(BASE_LAYERS, BASE_HISTORY))
    mid_layers = [*BASE_LAYERS, MID_LAYER]
    mid = images.add(mid_layers, parent=base, config=config(mid_layers, MID_HISTORY))
    child_layers = [*mid_layers, *CHILD_LAYERS]
    child = images.add(
        child_layers, tags=["child:1"], parent=mid, config=config(child_layers, CHILD_HISTORY)
    )
    return base, mid, child


def config_of(catalog: Catalog, image: str) -> tuple[bytes, dict[str, Any]]:
    with catalog.database.read() as session:
        row = session.get(ImageConfigJSON, image)
        assert row is not None
        raw = bytes(row.config)
    document: dict[str, Any] = json.loads(raw)
    return raw, document


def diff_ids_of(catalog: Catalog, image: str) -> list[str]:
    ids: list[str] = config_of(catalog, image)[1]["rootfs"]["diff_ids"]
    return ids


def tree_of(catalog: Catalog, diff_ids: list[str]) -> TreeView:
    return view(apply_layers(diff_ids, catalog.store.open), catalog.store.open)


def assert_same_tree(catalog: Catalog, original: str, squashed: str) -> TreeView:
    """The invariant: the squashed image's layers give the original's tree."""
    expected = tree_of(catalog, diff_ids_of(catalog, original))
    assert tree_of(catalog, diff_ids_of(catalog, squashed)) == expected
    return expected


def blobs(catalog: Catalog) -> set[str]:
    return {blob.digest for blob in catalog.store.iter_blobs()}


# --- Which layers (docs/layers-and-squash.md §3.1, scenario #35) ---


def test_default_squashes_onto_the_recorded_parent(catalog: Catalog, images: ImageBuilder) -> None:
    _, mid, child = build(images)
    result = squash_image(catalog, "child:1", now=NOW)
    assert result.parent_id == mid
    assert result.squashed_layers == 2
    ids = diff_ids_of(catalog, result.image_id)
    assert ids == [*diff_ids_of(catalog, mid), result.diff_id]
    _, document = config_of(catalog, result.image_id)
    assert document["history"][-1] == {
        "created": "2025-06-01T12:30:15.25Z",
        "comment": f"merge {child} to {mid}",
    }
    assert_same_tree(catalog, child, result.image_id)
    with catalog.database.read() as session:
        new = session.get(Image, result.image_id)
        assert new is not None and new.parent_id == mid


def test_parent_option(catalog: Catalog, images: ImageBuilder) -> None:
    base, _, child = build(images)
    result = squash_image(catalog, child, parent="base:1", now=NOW)
    assert result.parent_id == base
    assert result.squashed_layers == 3
    assert diff_ids_of(catalog, result.image_id)[:2] == diff_ids_of(catalog, base)
    _, document = config_of(catalog, result.image_id)
    assert document["history"][-1]["comment"] == f"merge {child} to {base}"
    assert_same_tree(catalog, child, result.image_id)


def test_without_parent_everything_becomes_one_layer(
    catalog: Catalog, images: ImageBuilder
) -> None:
    tar = layer_tar([("a", b"1")])
    lone = images.add([tar, layer_tar([(".wh.a", b""), ("b", b"2")])], tags=["lone:1"])
    result = squash_image(catalog, "lone:1", now=NOW)
    assert result.parent_id is None
    (new_layer,) = diff_ids_of(catalog, result.image_id)
    with catalog.store.open(new_layer) as stream, tarfile.open(fileobj=stream) as layer:
        assert layer.getnames() == ["b"]  # no whiteouts in a full flatten
    _, document = config_of(catalog, result.image_id)
    assert document["history"][-1]["comment"] == f"create new from {lone}"
    assert [entry.get("empty_layer") for entry in document["history"]] == [True, True, None]


def test_layers_option_finds_the_parent_among_ancestors(
    catalog: Catalog, images: ImageBuilder
) -> None:
    base, _, child = build(images)
    result = squash_image(catalog, child, layers=3, now=NOW)
    assert result.parent_id == base  # the ancestor whose layers are the two kept
    assert diff_ids_of(catalog, result.image_id)[:2] == diff_ids_of(catalog, base)
    assert_same_tree(catalog, child, result.image_id)


def test_layers_option_without_an_ancestor_of_those_layers(
    catalog: Catalog, images: ImageBuilder
) -> None:
    _, mid, child = build(images)
    result = squash_image(catalog, child, layers=2, now=NOW)
    assert result.parent_id == mid
    # The same layers, but no recorded parent: no parent; the comment names the chain ID
    # of the layers kept.
    lone = images.add([*BASE_LAYERS, MID_LAYER, *CHILD_LAYERS], tags=["lone:1"])
    result = squash_image(catalog, lone, layers=2, now=NOW)
    assert result.parent_id is None
    kept = diff_ids_of(catalog, lone)[:3]
    _, document = config_of(catalog, result.image_id)
    assert document["history"][-1]["comment"] == f"merge {lone} to {chain_ids(kept)[-1]}"
    all_of_them = squash_image(catalog, lone, layers=5, now=NOW)
    assert all_of_them.parent_id is None
    assert len(diff_ids_of(catalog, all_of_them.image_id)) == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"layers": 0}, "Number of layers to squash cannot be less or equal 0"),
        ({"layers": -2}, "Number of layers to squash cannot be less or equal 0"),
        ({"layers": 6}, "Cannot squash 6 layers, the child:1 image contains only 5 layers"),
        ({"layers": 1}, "Single layer marked to squash, no squashing is required"),
        ({"parent": "nope:1"}, "No such image: nope:1"),
        ({"parent": "other:1"}, "other:1 is not a parent of child:1: its layers are not the"),
        ({"parent": "child:1"}, "nothing to squash: child:1 has no layers above child:1"),
        ({"parent": "base:1", "layers": 2}, "--parent and --layers cannot be used together"),
    ],
)
def test_scenario_35_range_validation(
    options: dict[str, Any], message: str, catalog: Catalog, images: ImageBuilder
) -> None:
    build(images)
    images.add([layer_tar([("other", b"o")])], tags=["other:1"])
    before, stored = table_rows(catalog), blobs(catalog)
    with pytest.raises(CatalogError, match=message):
        squash_image(catalog, "child:1", **options)
    assert table_rows(catalog) == before
    assert blobs(catalog) == stored
    assert catalog.store.temporary_files() == []


def test_scenario_35_through_the_cli(cli: Cli, images: ImageBuilder) -> None:
    build(images)
    result = cli("image", "squash", "child:1", "--layers", "0", exit_code=1)
    assert result.stderr == "Error: Number of layers to squash cannot be less or equal 0\n"
    result = cli("image", "squash", "nope", exit_code=1)
    assert result.stderr == "Error: No such image: nope:latest\n"
    result = cli("image", "squash", "child:1", "-t", "Bad:Tag", exit_code=1)
    assert result.stderr.startswith('Error: Error parsing reference: "Bad:Tag"')
    empty = images.add([], tags=["empty:1"])
    assert empty
    result = cli("image", "squash", "empty:1", exit_code=1)
    assert result.stderr == "Error: nothing to squash: empty:1 has no layers\n"


# --- The config and history (§4.1, #37) ---


def test_scenario_37_history_and_config(catalog: Catalog, images: ImageBuilder) -> None:
    base, _, child = build(images)
    original_raw, original = config_of(catalog, child)
    result = squash_image(catalog, child, parent=base, now=NOW)
    raw, document = config_of(catalog, result.image_id)

    assert result.image_id == image_id(raw) == sha256_digest(raw)
    # The original's keys, unknown ones included, in their order; only three changed.
    assert list(document) == list(original)
    for key in original:
        if key not in ("rootfs", "history", "created"):
            assert document[key] == original[key], key
    assert document["config"]["Labels"] == {"org.example": "yes"}
    assert document["config"]["Env"] == ["PATH=/usr/bin:/bin", "X=1"]
    assert document["moby.unknown"] == {"kept": [1, 2]}
    assert document["created"] == "2025-06-01T12:30:15.25Z"
    # diff_ids = diff_ids[:i] + [DiffID(S)]
    base_ids = diff_ids_of(catalog, base)
    assert document["rootfs"] == {"type": "layers", "diff_ids": [*base_ids, result.diff_id]}
    # moby: every entry from len(parent history) on is empty_layer, plus one entry.
    assert len(document["history"]) == len(CHILD_HISTORY) + 1
    assert document["history"][:3] == original["history"][:3]
    for position in range(3, len(CHILD_HISTORY)):
        assert document["history"][position] == {**CHILD_HISTORY[position], "empty_layer": True}
    assert document["history"][-1] == {
        "created": "2025-06-01T12:30:15.25Z",
        "comment": f"merge {child} to {base}",
    }
    non_empty = [h for h in document["history"] if not h.get("empty_layer")]
    assert len(non_empty) == len(document["rootfs"]["diff_ids"])
    # Compact JSON, as the append service writes it.
    assert raw == json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    # Chain IDs recomputed in the rows.
    with catalog.database.read() as session:
        chains = session.scalars(
            select(ImageLayer.chain_id)
            .where(ImageLayer.image_id == result.image_id)
            .order_by(ImageLayer.position)
        ).all()
        assert chains == chain_ids(document["rootfs"]["diff_ids"])
        top = session.get(Layer, chains[-1])
        assert top is not None
        assert (top.parent_chain_id, top.diff_id) == (chains[-2], result.diff_id)
        assert top.diff_size == result.diff_size
        image = session.get(Image, result.image_id)
        assert image is not None
        assert image.top_chain_id == chains[-1]
        assert image.created == NOW
        assert image.size == sum(
            session.scalars(select(Layer.diff_size).where(Layer.chain_id.in_(chains)))
        )
    assert original_raw == config_of(catalog, child)[0]
    assert check_catalog(catalog).problems == []


def test_message_replaces_the_comment(cli: Cli, catalog: Catalog, images: ImageBuilder) -> None:
    build(images)
    new = cli("image", "squash", "child:1", "-m", "squashed by hand").stdout.strip()
    _, document = config_of(catalog, new)
    assert document["history"][-1]["comment"] == "squashed by hand"
    shown = cli("image", "history", "--format", "json", new).stdout.splitlines()
    assert json.loads(shown[0])["Comment"] == "squashed by hand"


def test_original_untouched_and_tags(cli: Cli, catalog: Catalog, images: ImageBuilder) -> None:
    base, _, child = build(images)
    images.add([layer_tar([("other", b"o")])], tags=["moved:1"])
    before = table_rows(catalog, with_kept_facts=False)
    stored = blobs(catalog)
    output = cli("image", "squash", "child:1", "-t", "flat:1", "-t", "flat:2", "-t", "moved:1")
    new = output.stdout.strip()
    assert output.stdout == new + "\n" and new.startswith("sha256:")
    after = table_rows(catalog, with_kept_facts=False)
    # Every row the build had is still there, unchanged, except the moved tag (the kept
    # facts move: the new image shares the original's lower layers).
    for table, rows in before.items():
        if table != "image_references":
            assert set(rows) <= set(after[table]), table
    with catalog.database.read() as session:
        names = {
            (ref.repository, ref.tag): ref.image_id
            for ref in session.scalars(select(ImageReference))
        }
    assert names == {
        ("docker.io/library/base", "1"): base,
        ("docker.io/library/child", "1"): child,
        ("docker.io/library/flat", "1"): new,
        ("docker.io/library/flat", "2"): new,
        ("docker.io/library/moved", "1"): new,
    }
    assert blobs(catalog) == stored | {diff_ids_of(catalog, new)[-1]}
    listing = cli("images", "--format", "json").stdout
    assert {image["Id"] for image in json.loads(listing)} >= {child, new}


def test_squashing_again_gives_the_same_layer(catalog: Catalog, images: ImageBuilder) -> None:
    _, _, child = build(images)
    first = squash_image(catalog, child, now=NOW)
    second = squash_image(catalog, child, now=NOW.replace(second=16))
    assert first.diff_id == second.diff_id  # reproducible: no clock in the layer
    assert first.image_id != second.image_id  # `created` differs
    same = squash_image(catalog, child, now=NOW, tags=["again:1"])
    assert same.image_id == first.image_id  # the same config: the same image, tagged


def test_scenario_34_empty_merge_registers_moby_s_empty_layer(
    catalog: Catalog, images: ImageBuilder
) -> None:
    base = images.add([layer_tar([("a", b"a")])], tags=["b:1"])
    churn = [layer_tar([("tmp", b"t")]), layer_tar([(".wh.tmp", b"")])]
    child = images.add([layer_tar([("a", b"a")]), *churn], parent=base)
    result = squash_image(catalog, child)
    assert result.diff_id == MOBY_EMPTY_LAYER
    assert result.diff_size == 0
    assert catalog.store.read_bytes(MOBY_EMPTY_LAYER) == bytes(1024)
    assert diff_ids_of(catalog, result.image_id) == [*diff_ids_of(catalog, base), MOBY_EMPTY_LAYER]
    assert_same_tree(catalog, child, result.image_id)


# --- Failures ---


def test_a_corrupt_layer_blob_is_refused(catalog: Catalog, images: ImageBuilder) -> None:
    _, _, child = build(images)
    victim = catalog.store.path(diff_ids_of(catalog, child)[3])
    data = bytearray(victim.read_bytes())
    data[600] ^= 0xFF  # inside the first file's content
    victim.write_bytes(bytes(data))
    before, stored = table_rows(catalog), blobs(catalog)
    with pytest.raises(CorruptBlob, match="is corrupt"):
        squash_image(catalog, child)
    assert table_rows(catalog) == before
    assert blobs(catalog) == stored
    assert catalog.store.temporary_files() == []


def test_a_config_docker_would_refuse_is_refused_before_writing(
    catalog: Catalog, images: ImageBuilder
) -> None:
    """moby marks history entries past len(PARENT's history): a parent with a longer
    history than the image leaves too many non-empty entries for the layers."""
    one = [layer_tar([("a", b"a")])]
    three = [*one, layer_tar([("b", b"b")]), layer_tar([("c", b"c")])]
    parent = images.add(
        one,
        config=image_config([diff_id(t) for t in one], history=history("ADD a", "CMD x", "CMD y")),
    )
    child = images.add(
        three,
        parent=parent,
        config=image_config([diff_id(t) for t in three], history=history("ADD a", "RUN b")),
    )
    before, stored = table_rows(catalog), blobs(catalog)
    with pytest.raises(InvalidArchive, match="too many non-empty layers in History section"):
        squash_image(catalog, child)
    assert (table_rows(catalog), blobs(catalog)) == (before, stored)
    assert catalog.store.temporary_files() == []


def test_an_ambiguous_layer_is_refused(catalog: Catalog, images: ImageBuilder) -> None:
    ambiguous = layer_tar([("f", b"new"), (".wh.f", b"")])
    image = images.add([layer_tar([("f", b"old")]), ambiguous], tags=["amb:1"])
    before = table_rows(catalog)
    with pytest.raises(InvalidArchive, match=r"whiteout '\.wh\.f' follows an entry"):
        squash_image(catalog, image)
    assert table_rows(catalog) == before
    assert catalog.store.temporary_files() == []


def test_original_deleted_while_squashing(catalog: Catalog, images: ImageBuilder) -> None:
    lone = images.add([layer_tar([("a", b"1")]), layer_tar([("b", b"2")])], tags=["lone:1"])

    def delete_when_stored(point: str) -> None:
        if point == "squash:layer-stored":  # the layer is in the store, no row written yet
            with catalog.database.write() as session:
                deletion = delete_images(session=session, terms=["lone:1"])
                assert not deletion.failures

    previous = set_fault_hook(delete_when_stored)
    try:
        with pytest.raises(Conflict, match=f"image {lone} was deleted while squashing"):
            squash_image(catalog, lone)
    finally:
        set_fault_hook(previous)
    with catalog.database.read() as session:
        assert session.scalars(select(Image.id)).all() == []


def test_memory_does_not_grow_with_file_sizes(catalog: Catalog, images: ImageBuilder) -> None:
    size = 48 << 20
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("big")
        info.size = size
        tar.addfile(info, io.BytesIO(bytes(size)))
    big = buffer.getvalue()
    del buffer
    base = images.add([layer_tar([("a", b"a")])], tags=["b:1"])
    layers = [layer_tar([("a", b"a")]), big, layer_tar([("c", b"c")])]
    image = images.add(layers, parent=base)
    del big, layers
    tracemalloc.start()
    try:
        result = squash_image(catalog, image)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.diff_size == size + 1
    assert peak < 16 << 20, f"peak Python allocations {peak} bytes"


# --- Real images end to end ---


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("whiteout_dir.tar", {"a": "dir", "a/baz": "file", "b": "dir", "b/bar": "file"}),
        ("whiteout_image.tar", {"bar.txt": "file"}),
        ("overwritten_file.tar", {"bar.txt": "file", "foo.txt": "symlink"}),
    ],
)
def test_ggcr_fixtures_flattened(relative: str, expected: dict[str, str], catalog: Catalog) -> None:
    """§6's expected flattened trees."""
    loaded = load_archive(catalog, fixture(f"google-go-containerregistry/mutate/{relative}"))
    (image,) = loaded.images
    result = squash_image(catalog, image.id)
    tree = assert_same_tree(catalog, image.id, result.image_id)
    assert {path: tree.kind(path) for path in tree.entries} == expected
    if "foo.txt" in expected:
        assert tree.target("foo.txt") == "bar.txt"
    assert len(diff_ids_of(catalog, result.image_id)) == 1


def test_test_link_fixture(catalog: Catalog) -> None:
    """§6: two images sharing a layer (through a symlink in the archive)."""
    loaded = load_archive(catalog, fixture("google-go-containerregistry/tarball/test_link.tar"))
    trees = {}
    for image in loaded.images:
        result = squash_image(catalog, image.id)
        trees[image.layers] = sorted(assert_same_tree(catalog, image.id, result.image_id).entries)
    assert trees == {1: ["bar", "foo"], 2: ["bar", "foo", "test"]}


@pytest.mark.parametrize("count", [2, 5, 11, 14])
def test_dive_image_top_layers(count: int, catalog: Catalog) -> None:
    loaded = load_archive(catalog, fixture("wagoodman-dive/test-docker-image.tar"))
    (image,) = loaded.images
    result = squash_image(catalog, "dive-test", layers=count, now=NOW)
    tree = assert_same_tree(catalog, image.id, result.image_id)
    ids = diff_ids_of(catalog, result.image_id)
    assert ids[:-1] == diff_ids_of(catalog, image.id)[: 14 - count]
    assert len([p for p in tree.entries if p.startswith("bin/")]) == 394
    with catalog.store.open(ids[-1]) as stream, tarfile.open(fileobj=stream) as layer:
        whiteouts = [m.name for m in layer if m.name.rsplit("/", 1)[-1].startswith(".wh.")]
    assert whiteouts == (["root/.wh.example"] if 5 <= count <= 11 else [])
    assert check_catalog(catalog).problems == []


def test_scenario_40_compressed_variants_give_one_layer(
    new_db_url: Callable[[], str], tmp_path: Path
) -> None:
    """gzip, zstd and estargz layers squash to the same layer as the uncompressed one."""
    layers = {}
    for name in ("uncompressed", "gzip", "zstd", "estargz"):
        location = Location(root=tmp_path / name, database_url=normalize_database_url(new_db_url()))
        with open_catalog(location) as catalog:
            loaded = load_archive(catalog, fixture(f"wagoodman-dive/test-oci-{name}-image.tar"))
            (image,) = loaded.images
            result = squash_image(catalog, image.id, now=NOW)
            assert_same_tree(catalog, image.id, result.image_id)
            layers[name] = result.diff_id
    assert len(set(layers.values())) == 1, layers


# --- A second opinion: umoci unpacks both images ---


def _walk(rootfs: Path) -> tuple[dict[str, tuple[Any, ...]], set[frozenset[str]]]:
    """Every path under `rootfs`: type, permission bits, content hash or link target,
    and umoci's record of the owner (rootless: `user.rootlesscontainers`); hardlink
    groups by inode."""
    entries: dict[str, tuple[Any, ...]] = {}
    inodes: dict[int, set[str]] = {}
    for directory_path, names, files in os.walk(rootfs):
        for name in [*names, *files]:
            path = Path(directory_path) / name
            relative = str(path.relative_to(rootfs))
            st = path.lstat()
            try:
                owner = os.getxattr(path, "user.rootlesscontainers", follow_symlinks=False)
            except OSError:
                owner = b""
            if path.is_symlink():
                entries[relative] = ("symlink", str(path.readlink()), owner)
            elif path.is_dir():
                entries[relative] = ("dir", st.st_mode & 0o7777, owner)
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                entries[relative] = ("file", st.st_mode & 0o7777, digest, owner)
                inodes.setdefault(st.st_ino, set()).add(relative)
    groups = {frozenset(paths) for paths in inodes.values() if len(paths) > 1}
    return entries, groups


def _umoci_tree(catalog: Catalog, image: str, work: Path) -> tuple[dict[str, Any], set[Any]]:
    work.mkdir(parents=True)
    archive = work / "image.tar"
    with archive.open("wb") as out:
        save_images(catalog, [image], out)
    layout = work / "oci"
    subprocess.run(
        ["skopeo", "--insecure-policy", "copy", f"docker-archive:{archive}", f"oci:{layout}:x"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    bundle = work / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{layout}:x", str(bundle)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return _walk(bundle / "rootfs")


@pytest.fixture
def umoci() -> None:
    need(shutil.which("umoci"), "umoci is not installed (Debian package umoci)")
    need(shutil.which("skopeo"), "skopeo is not installed (Debian package skopeo)")


def _compare_with_umoci(catalog: Catalog, original: str, squashed: str, work: Path) -> Any:
    expected = _umoci_tree(catalog, original, work / "original")
    actual = _umoci_tree(catalog, squashed, work / "squashed")
    assert actual[0] == expected[0]
    assert actual[1] == expected[1]
    return expected


@pytest.mark.usefixtures("umoci")
@pytest.mark.parametrize("layers", [None, 5])
def test_umoci_agrees_on_the_dive_image(
    layers: int | None, catalog: Catalog, tmp_path: Path
) -> None:
    load_archive(catalog, fixture("wagoodman-dive/test-docker-image.tar"))
    result = squash_image(catalog, "dive-test", layers=layers, tags=["flat:1"])
    entries, groups = _compare_with_umoci(catalog, "dive-test", "flat:1", tmp_path)
    assert "root/example" not in entries
    assert max(len(group) for group in groups) == 393  # bin/[ and its 392 links
    assert result.squashed_layers == (layers or 14)


@pytest.mark.usefixtures("umoci")
def test_umoci_agrees_on_whiteouts_opaque_dirs_links_and_owners(
    catalog: Catalog, images: ImageBuilder, tmp_path: Path
) -> None:
    owned = tarfile.TarInfo()
    owned.mode, owned.uid, owned.gid = 0o4755, 1000, 1000
    xattr = tarfile.TarInfo()
    xattr.mode, xattr.pax_headers = 0o644, {"SCHILY.xattr.user.note": "kept"}
    layers = [
        *BASE_LAYERS,
        MID_LAYER,
        *CHILD_LAYERS,
        layer_tar(
            [
                ("srv", directory(0o750)),
                ("srv/owned", (owned, b"setuid")),
                ("srv/noted", (xattr, b"n")),
                ("srv/link", hardlink("srv/owned")),
                ("var/lib", symlink("/srv")),
            ]
        ),
    ]
    image = images.add(layers, tags=["mixed:1"])
    squash_image(catalog, image, layers=4, tags=["part:1"])
    squash_image(catalog, image, tags=["flat:1"])
    entries, groups = _compare_with_umoci(catalog, "mixed:1", "flat:1", tmp_path / "flat")
    _compare_with_umoci(catalog, "mixed:1", "part:1", tmp_path / "part")
    assert entries["var/lib"][:2] == ("symlink", "/srv")
    assert "app/a" not in entries and "etc/os-release" not in entries
    assert entries["bin/ash"][2] == hashlib.sha256(b"replaced").hexdigest()
    assert frozenset({"srv/owned", "srv/link"}) in groups
    assert entries["srv/owned"][3] != b""  # umoci recorded uid 1000 (rootless)


# --- The console script, and squashes killed half-way ---


Run = Callable[..., subprocess.CompletedProcess[str]]


def test_console_script(run_catalog: Run, catalog: Catalog, images: ImageBuilder) -> None:
    _, _, child = build(images)
    done = run_catalog("image", "squash", "child:1", "-t", "flat:1")
    assert done.returncode == 0, done.stderr
    new = done.stdout.strip()
    assert done.stdout == new + "\n" and done.stderr == ""
    assert_same_tree(catalog, child, new)
    refused = run_catalog("image", "squash", "child:1", "--layers", "9")
    assert refused.returncode == 1
    assert refused.stderr == (
        "Error: Cannot squash 9 layers, the child:1 image contains only 5 layers\n"
    )


@pytest.mark.parametrize("point", ["layer-partial", "layer-stored", "rows-written"])
def test_killed_squash_leaves_the_catalog_as_it_was(
    point: str, run_catalog: Run, catalog: Catalog, images: ImageBuilder
) -> None:
    _, _, child = build(images)
    before_rows, before_blobs = table_rows(catalog), blobs(catalog)

    killed = run_catalog("image", "squash", "child:1", "-t", "flat:1", killed_at=f"squash:{point}")
    assert killed.returncode == 137, (killed.stdout, killed.stderr)
    assert killed.stdout == ""

    after_rows = table_rows(catalog)
    # The killed process's lease (the layers it was reading) is left behind, dead: fsck
    # warns of it and gc releases it.
    (lease,) = {row[0] for row in after_rows.pop("blob_leases")}
    before_rows.pop("blob_leases")
    assert after_rows == before_rows
    new_blobs = blobs(catalog) - before_blobs
    assert blobs(catalog) >= before_blobs
    assert len(new_blobs) == (0 if point == "layer-partial" else 1)
    if point == "layer-partial":
        (partial,) = catalog.store.temporary_files()  # allowed until gc
        assert partial.stat().st_size > 0

    checked = run_catalog("fsck")
    assert checked.returncode == 0, (checked.stdout, checked.stderr)
    # Warnings of what the killed writer left, which gc removes: its lease, and at
    # layer-partial its temporary file; nothing else.
    lines = checked.stdout.splitlines()
    assert lines[-1].startswith(f"lease-dead: {lease}: holds ")
    assert lines[-1].endswith(" for a writer that is gone (owner gone; catalog gc releases it)")
    if point == "layer-partial":
        assert lines[0].startswith(f"temporary-file: {partial}: left by a writer that is gone")
    assert len(lines) == (2 if point == "layer-partial" else 1)

    done = run_catalog("image", "squash", "child:1", "-t", "flat:1")
    assert done.returncode == 0, done.stderr
    new = done.stdout.strip()
    assert_same_tree(catalog, child, new)
    assert blobs(catalog) - before_blobs == {diff_ids_of(catalog, new)[-1]}
    with catalog.database.read() as session:
        tag = session.scalar(
            select(ImageReference).where(ImageReference.repository.endswith("/flat"))
        )
        assert tag is not None and tag.image_id == new

    collected = run_catalog("gc", "--grace", "0")
    assert collected.returncode == 0, collected.stderr
    assert catalog.store.temporary_files() == []
    checked = run_catalog("fsck")
    assert (checked.returncode, checked.stdout) == (0, ""), checked.stderr


def test_a_terminated_squash_leaves_no_temporary_file(
    run_catalog: Run, catalog: Catalog, images: ImageBuilder
) -> None:
    """SIGTERM (not a kill) half-way through the new layer: the CLI unwinds, its temporary
    file and its lease go, and it exits with a signal's status (the issue's leftover)."""
    build(images)
    before = table_rows(catalog)
    terminated = run_catalog(
        "image", "squash", "child:1", "-t", "flat:1", killed_at="term:squash:layer-partial"
    )
    assert terminated.returncode == 128 + 15, (terminated.stdout, terminated.stderr)
    assert "Traceback" not in terminated.stderr
    assert catalog.store.temporary_files() == []
    assert table_rows(catalog) == before
