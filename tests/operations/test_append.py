"""`catalog image append`: a base image plus one layer, from a tar or a directory."""

from __future__ import annotations

import gzip
import io
import json
import os
import socket
import subprocess
import tarfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import zstandard
from sqlalchemy import select
from support.builders import ImageBuilder, diff_id, directory, image_config, layer_tar
from support.surgery import row_counts
from typer.testing import Result

from catalog.context import Catalog
from catalog.db.models import Image, ImageConfigJSON, ImageReference
from catalog.domain.digest import chain_ids, image_id
from catalog.operations.append import child_config, host_platform, pack_directory

BASE = layer_tar([("etc", directory()), ("etc/os-release", b"ID=test\n")])
LAYER = layer_tar([("app", directory()), ("app/run", b"#!/bin/sh\necho hi\n")])
CREATED = "2024-05-01T12:00:00Z"


def config_of(catalog: Catalog, image: str) -> dict[str, Any]:
    with catalog.database.read() as session:
        row = session.get(ImageConfigJSON, image)
        assert row is not None
        raw = bytes(row.config)
    assert image_id(raw) == image
    document: dict[str, Any] = json.loads(raw)
    return document


def append(cli: Callable[..., Result], *args: str) -> str:
    output = cli("image", "append", *args).stdout
    assert output.startswith("sha256:") and output.endswith("\n") and output.count("\n") == 1
    return output.strip()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_append_to_scratch(cli: Callable[..., Result], catalog: Catalog, tmp_path: Path) -> None:
    layer = write(tmp_path / "layer.tar", LAYER)
    new = append(cli, "scratch", str(layer), "--created", CREATED)
    architecture, variant = host_platform()
    expected: dict[str, Any] = {
        "architecture": architecture,
        "config": {},
        "created": CREATED,
        "history": [{"created": CREATED, "created_by": "catalog image append layer.tar"}],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id(LAYER)]},
    }
    if variant:
        expected["variant"] = variant
    assert config_of(catalog, new) == expected
    if os.uname().machine == "x86_64":
        assert architecture == "amd64"
    with catalog.database.read() as session:
        image = session.get(Image, new)
        assert image is not None
        assert image.parent_id is None
        assert image.size == len(b"#!/bin/sh\necho hi\n")
        assert image.created == datetime(2024, 5, 1, 12, tzinfo=UTC)
        assert [row.chain_id for row in image.layers] == [diff_id(LAYER)]
    assert catalog.store.read_bytes(diff_id(LAYER)) == LAYER


def test_append_to_a_base(
    cli: Callable[..., Result], images: ImageBuilder, catalog: Catalog, tmp_path: Path
) -> None:
    base_config = image_config(
        [diff_id(BASE)],
        labels={"keep": "base", "override": "base"},
        extra={
            "id": "legacy-v1-id",
            "parent": "legacy-parent",
            "container": "abc",
            "container_config": {"Cmd": ["/bin/sh"]},
            "docker_version": "24.0.0",
            "comment": "the base's own commit message",
            "author": "Someone <someone@example.com>",
            "x-unknown": {"kept": [1, 2]},
            "os.version": "10.0",
        },
    )
    base = images.add([BASE], tags=["base:1"], config=base_config)
    layer = write(tmp_path / "app.tar", LAYER)
    new = append(
        cli,
        "base:1",
        str(layer),
        "-t",
        "app:1",
        "--tag",
        "registry.example.com/team/app",
        "--label",
        "override=new",
        "--label",
        "added=yes",
        "--label",
        "empty",
        "-m",
        "add the app",
        "--created",
        "2024-06-01T00:00:00.123456+02:00",
    )
    document = config_of(catalog, new)
    base_document = json.loads(base_config)

    assert list(document) == sorted(document)  # top-level keys sorted, as moby writes them
    for key in ("id", "parent", "container", "container_config", "docker_version", "comment"):
        assert key not in document
    assert document["author"] == "Someone <someone@example.com>"
    assert document["x-unknown"] == {"kept": [1, 2]}
    assert document["os.version"] == "10.0"
    assert document["architecture"] == base_document["architecture"]
    assert document["created"] == "2024-05-31T22:00:00.123456Z"
    assert document["config"]["Env"] == base_document["config"]["Env"]
    assert document["config"]["Labels"] == {
        "keep": "base",
        "override": "new",
        "added": "yes",
        "empty": "",
    }
    assert document["rootfs"]["diff_ids"] == [diff_id(BASE), diff_id(LAYER)]
    assert document["history"] == [
        *base_document["history"],
        {
            "created": "2024-05-31T22:00:00.123456Z",
            "created_by": "catalog image append app.tar",
            "comment": "add the app",
        },
    ]
    # The base is untouched and is now the new image's build parent.
    assert config_of(catalog, base) == base_document
    with catalog.database.read() as session:
        image = session.get(Image, new)
        assert image is not None
        assert image.parent_id == base
        assert [row.chain_id for row in image.layers] == chain_ids([diff_id(BASE), diff_id(LAYER)])
        assert image.size == len(b"ID=test\n") + len(b"#!/bin/sh\necho hi\n")
        assert image.author == "Someone <someone@example.com>"
        assert {label.key: label.value for label in image.labels}["override"] == "new"
        assert image.history[-1].comment == "add the app"
        references = {
            (r.repository, r.tag)
            for r in session.scalars(select(ImageReference).where(ImageReference.image_id == new))
        }
    assert references == {
        ("docker.io/library/app", "1"),
        ("registry.example.com/team/app", "latest"),
    }


@pytest.mark.parametrize(
    "compress",
    [gzip.compress, lambda data: zstandard.ZstdCompressor().compress(data)],
    ids=["gzip", "zstd"],
)
def test_compressed_layers_are_stored_uncompressed(
    cli: Callable[..., Result],
    catalog: Catalog,
    tmp_path: Path,
    compress: Callable[[bytes], bytes],
) -> None:
    layer = write(tmp_path / "layer.tar.x", compress(LAYER))
    new = append(cli, "scratch", str(layer))
    assert config_of(catalog, new)["rootfs"]["diff_ids"] == [diff_id(LAYER)]
    assert catalog.store.read_bytes(diff_id(LAYER)) == LAYER


def test_a_chain_of_appends_makes_intermediate_images(
    cli: Callable[..., Result], catalog: Catalog, tmp_path: Path
) -> None:
    first = append(cli, "scratch", str(write(tmp_path / "base.tar", BASE)), "-t", "chain:1")
    second = append(cli, "chain:1", str(write(tmp_path / "app.tar", LAYER)), "-t", "chain:1")
    with catalog.database.read() as session:
        parents = {
            row.id: row.parent_id for row in session.execute(select(Image.id, Image.parent_id))
        }
        tagged = session.scalar(select(ImageReference.image_id).where(ImageReference.tag == "1"))
    assert parents == {first: None, second: first}
    assert tagged == second  # the tag moved; the first image is now an intermediate one


def test_the_same_append_twice_is_the_same_image(
    cli: Callable[..., Result], images: ImageBuilder, catalog: Catalog, tmp_path: Path
) -> None:
    images.add([BASE], tags=["base:1"])
    layer = write(tmp_path / "layer.tar", LAYER)
    args = ("base:1", str(layer), "--created", CREATED, "-t", "same:1")
    first = append(cli, *args)
    before = row_counts(catalog)
    assert append(cli, *args, "-t", "same:2") == first
    after = row_counts(catalog)
    assert after == {**before, "image_references": before["image_references"] + 1}


# --- Directories ---


def make_tree(root: Path) -> Path:
    (root / "usr/bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "a").mkdir()
    (root / "a/x").write_text("x\n")
    (root / "a-b").write_text("sorts before a/x by bytes, after it depth first\n")
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n")
    (root / "usr/bin/tool").write_text("#!/bin/sh\n")
    (root / "usr/bin/tool").chmod(0o755)
    os.link(root / "usr/bin/tool", root / "usr/bin/tool-alias")
    (root / "usr/bin/sh").symlink_to("/bin/busybox")  # absolute: kept as text
    (root / "escape").symlink_to("../../../../etc/passwd")  # never followed
    for path in (root, root / "a", root / "etc", root / "usr", root / "usr/bin"):
        path.chmod(0o755)  # whatever the umask
    for path in (root / "a/x", root / "a-b", root / "etc/hosts"):
        path.chmod(0o644)
    (root / "etc/empty").mkdir()
    (root / "etc/empty").chmod(0o700)
    return root


def tar_entries(data: bytes) -> list[tuple[str, str, str, int, int, int, int]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [
            (m.name, m.type.decode(), m.linkname, m.mode, m.uid, m.gid, int(m.mtime))
            for m in tar.getmembers()
        ]


def test_a_directory_is_packed_deterministically(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    first = io.BytesIO()
    pack_directory(tree, first)
    assert tar_entries(first.getvalue()) == [
        ("a", "5", "", 0o755, 0, 0, 0),
        ("a/x", "0", "", 0o644, 0, 0, 0),
        ("a-b", "0", "", 0o644, 0, 0, 0),
        ("escape", "2", "../../../../etc/passwd", 0o777, 0, 0, 0),
        ("etc", "5", "", 0o755, 0, 0, 0),
        ("etc/empty", "5", "", 0o700, 0, 0, 0),
        ("etc/hosts", "0", "", 0o644, 0, 0, 0),
        ("usr", "5", "", 0o755, 0, 0, 0),
        ("usr/bin", "5", "", 0o755, 0, 0, 0),
        ("usr/bin/sh", "2", "/bin/busybox", 0o777, 0, 0, 0),
        ("usr/bin/tool", "0", "", 0o755, 0, 0, 0),
        ("usr/bin/tool-alias", "1", "usr/bin/tool", 0o755, 0, 0, 0),
    ]
    with tarfile.open(fileobj=io.BytesIO(first.getvalue())) as tar:
        assert all(m.uname == m.gname == "" for m in tar.getmembers())
    again = io.BytesIO()
    pack_directory(tree, again)
    assert again.getvalue() == first.getvalue()
    # Another copy of the tree, other mtimes, another owner: the same bytes.
    other = make_tree(tmp_path / "other")
    for path in [other, *other.rglob("*")]:
        os.utime(path, (1_000_000, 1_000_000), follow_symlinks=False)
        if os.geteuid() == 0:
            os.lchown(path, 1234, 1234)
    copy = io.BytesIO()
    pack_directory(other, copy)
    assert copy.getvalue() == first.getvalue()


def test_append_a_directory(
    cli: Callable[..., Result], images: ImageBuilder, catalog: Catalog, tmp_path: Path
) -> None:
    images.add([BASE], tags=["base:1"])
    tree = make_tree(tmp_path / "rootfs")
    new = append(cli, "base:1", str(tree), "--created", CREATED)
    packed = io.BytesIO()
    pack_directory(tree, packed)
    document = config_of(catalog, new)
    assert document["rootfs"]["diff_ids"][-1] == diff_id(packed.getvalue())
    assert document["history"][-1]["created_by"] == "catalog image append rootfs"
    assert catalog.store.read_bytes(diff_id(packed.getvalue())) == packed.getvalue()
    with catalog.database.read() as session:
        image = session.get(Image, new)
        assert image is not None
        regular = [
            "x\n",
            "sorts before a/x by bytes, after it depth first\n",
            "127.0.0.1 localhost\n",
            "#!/bin/sh\n",
        ]
        assert image.size == len(b"ID=test\n") + sum(len(text) for text in regular)
    # A second append of the same tree at the same time is the same image.
    assert append(cli, "base:1", str(tree), "--created", CREATED) == new


def test_the_directory_is_read_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("secret\n")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "link-to-outside").symlink_to(outside)
    packed = io.BytesIO()
    pack_directory(tree, packed)
    assert tar_entries(packed.getvalue()) == [
        ("link-to-outside", "2", str(outside), 0o777, 0, 0, 0)
    ]
    assert b"secret" not in packed.getvalue()


def test_fifos_are_packed_and_sockets_skipped(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    os.mkfifo(tree / "pipe", 0o600)
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tree / "socket"))
        packed = io.BytesIO()
        pack_directory(tree, packed)
    assert tar_entries(packed.getvalue()) == [("pipe", "6", "", 0o600, 0, 0, 0)]


# --- Errors: one line, exit 1, nothing written ---


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "{layer}"], "No such image: nope:latest"),
        (["base:2", "{layer}"], "No such image: base:2"),
        (["base:1", "{tmp}/missing.tar"], "layer {tmp}/missing.tar: no such file or directory"),
        (["base:1", "{bad}"], "invalid layer bad.tar: not a valid tar"),
        (["base:1", "{layer}", "--label", "=value"], "invalid label '=value': empty name"),
        (["base:1", "{layer}", "--label", "a key=v"], "label 'a key' contains whitespaces"),
        (["base:1", "{layer}", "--created", "yesterday"], "invalid --created time 'yesterday'"),
        (
            ["base:1", "{layer}", "--created", "2024-05-01T12:00:00"],
            "invalid --created time '2024-05-01T12:00:00'",
        ),
        # Was an OverflowError traceback: year 10000 in UTC.
        (
            ["base:1", "{layer}", "--created", "9999-12-31T23:59:59-01:00"],
            "invalid --created time '9999-12-31T23:59:59-01:00': outside years 1 to 9999 in UTC",
        ),
        (["base:1", "{layer}", "-t", "Bad:tag"], "Error parsing reference"),
        (["base:1", "{layer}", "-t", "ok:1", "-t", "sha256:abc"], "refusing to create an"),
    ],
)
def test_bad_input_is_one_line_and_writes_no_rows(
    cli: Callable[..., Result],
    images: ImageBuilder,
    catalog: Catalog,
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    images.add([BASE], tags=["base:1"])
    layer = write(tmp_path / "layer.tar", LAYER)
    bad = write(tmp_path / "bad.tar", b"this is not a tar archive" * 40)
    before = row_counts(catalog)
    blobs_before = {blob.digest for blob in catalog.store.iter_blobs()}
    values = {"layer": str(layer), "bad": str(bad), "tmp": str(tmp_path)}
    result = cli("image", "append", *(arg.format(**values) for arg in args), exit_code=1)
    assert result.stderr.startswith("Error: " + message.format(**values)), result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""
    assert row_counts(catalog) == before
    assert {blob.digest for blob in catalog.store.iter_blobs()} == blobs_before
    assert catalog.store.temporary_files() == []


def test_a_layer_with_an_escaping_entry_is_refused(
    cli: Callable[..., Result], catalog: Catalog, tmp_path: Path
) -> None:
    hostile = write(tmp_path / "hostile.tar", layer_tar({"../../etc/evil": b"x"}))
    before = row_counts(catalog)
    result = cli("image", "append", "scratch", str(hostile), exit_code=1)
    assert result.stderr == (
        "Error: invalid layer: entry name '../../etc/evil' is outside the layer root\n"
    )
    assert row_counts(catalog) == before


def test_a_layer_of_endless_zeros_is_refused(cli: Callable[..., Result], catalog: Catalog) -> None:
    """`image append BASE /dev/zero` wrote until the disk was full (36 GB seen)."""
    before = row_counts(catalog)
    result = cli("image", "append", "scratch", "/dev/zero", exit_code=1)
    assert result.stderr == (
        "Error: invalid layer zero: more than 1048576 bytes after the end of the tar\n"
    )
    assert row_counts(catalog) == before
    assert catalog.store.temporary_files() == []


def test_child_config_from_nothing_has_one_layer() -> None:
    created = datetime(2024, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
    raw = child_config(None, diff_id=diff_id(LAYER), created=created, created_by="x")
    document = json.loads(raw)
    assert document["created"] == "2024-01-02T03:04:05.6Z"
    assert document["rootfs"] == {"type": "layers", "diff_ids": [diff_id(LAYER)]}
    assert b" " not in raw  # compact


def test_console_script(
    run_catalog: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path, catalog: Catalog
) -> None:
    layer = write(tmp_path / "layer.tar", LAYER)
    done = run_catalog("image", "append", "scratch", str(layer), "-t", "script:1")
    assert done.returncode == 0, done.stderr
    new = done.stdout.strip()
    assert config_of(catalog, new)["rootfs"]["diff_ids"] == [diff_id(LAYER)]
    failed = run_catalog("image", "append", "nope", str(layer))
    assert failed.returncode == 1
    assert failed.stderr == "Error: No such image: nope:latest\n"
