"""`catalog save`: Docker 25+ archives, checked member by member and read by skopeo/umoci."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pty
import shutil
import subprocess
import tarfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from support.builders import ImageBuilder, diff_id, directory, hardlink, layer_tar, symlink
from support.environment import console_script, need
from typer.testing import CliRunner, Result

from catalog.cli.main import app as app_cli
from catalog.context import Catalog, open_catalog
from catalog.db.models import Image, ImageConfigJSON, ImageLayer, ImageReference, Layer
from catalog.domain.reference import parse_normalized_named
from catalog.operations.save import save_images
from catalog.services.images import set_reference
from catalog.settings import Location, normalize_database_url

BASE = layer_tar([("etc", directory()), ("etc/os-release", b"ID=test\n")])
APP = layer_tar(
    [
        ("app", directory()),
        ("app/run", b"#!/bin/sh\necho hi\n"),
        ("app/run-again", hardlink("app/run")),
        ("app/config", symlink("/etc/os-release")),
    ]
)
OTHER = layer_tar({"other.txt": b"other\n"})


def hex_of(digest: str) -> str:
    return digest.removeprefix("sha256:")


def blob_path(digest: str) -> str:
    return "blobs/sha256/" + hex_of(digest)


def read_archive(data: bytes) -> tuple[list[tarfile.TarInfo], dict[str, bytes]]:
    """Every member in order, and the content of the regular files."""
    members: list[tarfile.TarInfo] = []
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            members.append(member)
            if member.isfile():
                extracted = tar.extractfile(member)
                assert extracted is not None
                files[member.name] = extracted.read()
    return members, files


def stored_config(catalog: Catalog, image_id: str) -> bytes:
    with catalog.database.read() as session:
        row = session.get(ImageConfigJSON, image_id)
        assert row is not None
        return bytes(row.config)


def save(cli: Callable[..., Result], tmp_path: Path, *terms: str, name: str = "out.tar") -> bytes:
    output = tmp_path / name
    result = cli("save", "-o", str(output), *terms)
    assert result.stdout == ""
    return output.read_bytes()


def index_of(files: dict[str, bytes]) -> list[dict[str, Any]]:
    index = json.loads(files["index.json"])
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    manifests: list[dict[str, Any]] = index["manifests"]
    return manifests


def test_layout_of_a_tagged_image(
    cli: Callable[..., Result], images: ImageBuilder, catalog: Catalog, tmp_path: Path
) -> None:
    image_id = images.add([BASE, APP], tags=["busybox:latest", "busybox:1.36"])
    members, files = read_archive(save(cli, tmp_path, "busybox:latest"))
    config = stored_config(catalog, image_id)

    names = [m.name for m in members]
    blobs = sorted([blob_path(image_id), blob_path(diff_id(BASE)), blob_path(diff_id(APP))])
    manifest_entry = index_of(files)[0]
    blobs = sorted([*blobs, blob_path(manifest_entry["digest"])])
    assert names == [
        "blobs",
        "blobs/sha256",
        *blobs,
        "index.json",
        "manifest.json",
        "oci-layout",
        "repositories",
    ]
    for member in members:
        assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (
            0,
            0,
            0,
            "",
            "",
        )
        assert member.mode == (0o755 if member.isdir() else 0o644)

    assert files["oci-layout"] == b'{"imageLayoutVersion": "1.0.0"}'
    assert files[blob_path(image_id)] == config
    assert files[blob_path(diff_id(BASE))] == BASE
    assert files[blob_path(diff_id(APP))] == APP

    # index.json: the one tag named, with both annotations.
    assert index_of(files) == [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_entry["digest"],
            "size": manifest_entry["size"],
            "annotations": {
                "io.containerd.image.name": "docker.io/library/busybox:latest",
                "org.opencontainers.image.ref.name": "latest",
            },
        }
    ]
    manifest_bytes = files[blob_path(manifest_entry["digest"])]
    assert "sha256:" + hashlib.sha256(manifest_bytes).hexdigest() == manifest_entry["digest"]
    assert len(manifest_bytes) == manifest_entry["size"]
    assert json.loads(manifest_bytes) == {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": image_id,
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": diff_id(layer),
                "size": len(layer),
            }
            for layer in (BASE, APP)
        ],
    }

    assert json.loads(files["manifest.json"]) == [
        {
            "Config": blob_path(image_id),
            "RepoTags": ["busybox:latest"],
            "Layers": [blob_path(diff_id(BASE)), blob_path(diff_id(APP))],
        }
    ]
    assert json.loads(files["repositories"]) == {"busybox": {"latest": hex_of(diff_id(APP))}}


def test_shared_layers_are_written_once(
    cli: Callable[..., Result], images: ImageBuilder, tmp_path: Path
) -> None:
    first = images.add([BASE, APP], tags=["app:1"])
    second = images.add([BASE, OTHER], tags=["other:1"])
    members, files = read_archive(save(cli, tmp_path, "app:1", "other:1"))
    names = [m.name for m in members]
    assert len(names) == len(set(names))
    assert names.count(blob_path(diff_id(BASE))) == 1
    legacy = json.loads(files["manifest.json"])
    assert [item["Config"] for item in legacy] == [blob_path(first), blob_path(second)]
    assert [item["Layers"][0] for item in legacy] == [blob_path(diff_id(BASE))] * 2
    assert {m["annotations"]["io.containerd.image.name"] for m in index_of(files)} == {
        "docker.io/library/app:1",
        "docker.io/library/other:1",
    }


def test_a_name_without_tag_saves_every_tag_of_the_repository(
    cli: Callable[..., Result], images: ImageBuilder, catalog: Catalog, tmp_path: Path
) -> None:
    by_digest = images.add([OTHER])
    with catalog.database.write() as session:
        set_reference(
            session=session,
            reference=parse_normalized_named("repo@sha256:" + "d" * 64),
            image_id=by_digest,
        )
    one = images.add([BASE], tags=["repo:b", "elsewhere:1"])
    two = images.add([BASE, APP], tags=["repo:a", "repo:c"])
    _, files = read_archive(save(cli, tmp_path, "repo"))
    legacy = json.loads(files["manifest.json"])
    # Images in moby's refstore order (tags sorted, then digests); a digest saves untagged.
    assert [(item["Config"], item["RepoTags"]) for item in legacy] == [
        (blob_path(two), ["repo:a", "repo:c"]),
        (blob_path(one), ["repo:b"]),
        (blob_path(by_digest), None),
    ]
    assert [
        m.get("annotations", {}).get("org.opencontainers.image.ref.name") for m in index_of(files)
    ] == [
        "a",
        "c",
        "b",
        None,
    ]
    assert json.loads(files["repositories"]) == {
        "repo": {"a": hex_of(diff_id(APP)), "b": hex_of(diff_id(BASE)), "c": hex_of(diff_id(APP))}
    }


@pytest.mark.parametrize("form", ["full", "hex", "prefix", "short"])
def test_an_id_saves_the_image_untagged(
    cli: Callable[..., Result], images: ImageBuilder, tmp_path: Path, form: str
) -> None:
    image_id = images.add([BASE], tags=["tagged:1"])
    term = {
        "full": image_id,
        "hex": hex_of(image_id),
        "prefix": image_id[:19],
        "short": hex_of(image_id)[:12],
    }[form]
    members, files = read_archive(save(cli, tmp_path, term))
    assert json.loads(files["manifest.json"]) == [
        {"Config": blob_path(image_id), "RepoTags": None, "Layers": [blob_path(diff_id(BASE))]}
    ]
    [descriptor] = index_of(files)
    assert "annotations" not in descriptor
    assert "repositories" not in {m.name for m in members}


def test_an_image_named_twice_is_saved_once(
    cli: Callable[..., Result], images: ImageBuilder, tmp_path: Path
) -> None:
    image_id = images.add([BASE], tags=["x:1", "x:2"])
    _, files = read_archive(save(cli, tmp_path, "x:1", image_id, "x:1", "x:2"))
    [item] = json.loads(files["manifest.json"])
    assert item["RepoTags"] == ["x:1", "x:2"]
    assert len(index_of(files)) == 2


def test_an_untagged_image_beside_a_tagged_one_keeps_its_index_entry(
    cli: Callable[..., Result], images: ImageBuilder, tmp_path: Path
) -> None:
    tagged = images.add([BASE], tags=["x:1"])
    untagged = images.add([OTHER])
    _, files = read_archive(save(cli, tmp_path, "x:1", untagged))
    index = index_of(files)
    assert len(index) == 2
    assert "annotations" in index[0] and "annotations" not in index[1]
    configs = [json.loads(files[blob_path(d["digest"])])["config"]["digest"] for d in index]
    assert configs == [tagged, untagged]


def test_a_parent_saved_alongside_is_recorded(
    cli: Callable[..., Result], images: ImageBuilder, tmp_path: Path
) -> None:
    parent = images.add([BASE], tags=["base:1"])
    child = images.add([BASE, APP], tags=["child:1"], parent=parent)
    _, files = read_archive(save(cli, tmp_path, "base:1", "child:1"))
    legacy = json.loads(files["manifest.json"])
    assert "Parent" not in legacy[0]
    assert legacy[1]["Parent"] == parent
    # Alone, the child names no parent: the archive does not hold it.
    _, files = read_archive(save(cli, tmp_path, "child:1", name="child.tar"))
    assert "Parent" not in json.loads(files["manifest.json"])[0]
    assert json.loads(files["manifest.json"])[0]["Config"] == blob_path(child)


def test_an_image_without_layers(
    cli: Callable[..., Result], images: ImageBuilder, tmp_path: Path
) -> None:
    image_id = images.add([], tags=["empty:1"])
    members, files = read_archive(save(cli, tmp_path, "empty:1"))
    [item] = json.loads(files["manifest.json"])
    assert item == {"Config": blob_path(image_id), "RepoTags": ["empty:1"], "Layers": []}
    [descriptor] = index_of(files)
    assert json.loads(files[blob_path(descriptor["digest"])])["layers"] == []
    # `repositories` maps tags to a top layer; there is none.
    assert "repositories" not in {m.name for m in members}


def test_saving_is_deterministic(
    cli: Callable[..., Result], images: ImageBuilder, tmp_path: Path
) -> None:
    images.add([BASE, APP], tags=["app:1", "app:2"])
    images.add([BASE, OTHER], tags=["other:1"])
    first = save(cli, tmp_path, "app", "other:1", name="first.tar")
    second = save(cli, tmp_path, "app", "other:1", name="second.tar")
    assert first == second
    assert cli("save", "app", "other:1").stdout_bytes == first
    assert cli("image", "save", "app", "other:1").stdout_bytes == first


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        (["nope"], "No such image: nope:latest"),
        (["nope:1.0"], "No such image: nope:1.0"),
        (["x:1", "x:2"], "No such image: x:2"),
        (["sha256:" + "0" * 64], "No such image: sha256:" + "0" * 64),
        (["sha256:0000"], "No such image: sha256:0000"),
        (["x@sha256:" + "1" * 64], "No such image: x@sha256:" + "1" * 64),
        (["Upper"], "invalid reference format: repository name (library/Upper) must be lowercase"),
    ],
)
def test_bad_names_are_one_line_errors_and_write_nothing(
    cli: Callable[..., Result],
    images: ImageBuilder,
    tmp_path: Path,
    terms: list[str],
    message: str,
) -> None:
    images.add([BASE], tags=["x:1"])
    out = tmp_path / "out"
    out.mkdir()
    result = cli("save", "-o", str(out / "a.tar"), *terms, exit_code=1)
    assert result.stderr == f"Error: {message}\n"
    assert list(out.iterdir()) == []


def test_output_path_checks(
    cli: Callable[..., Result], images: ImageBuilder, tmp_path: Path
) -> None:
    images.add([BASE], tags=["x:1"])
    missing = tmp_path / "missing" / "a.tar"
    result = cli("save", "-o", str(missing), "x:1", exit_code=1)
    assert result.stderr == (
        f'Error: failed to save image: invalid output path: directory "{missing.parent}" '
        "does not exist\n"
    )
    result = cli("save", "-o", str(tmp_path), "x:1", exit_code=1)
    assert result.stderr == (
        f'Error: failed to save image: invalid output path: "{tmp_path}" is a directory\n'
    )


def test_a_corrupt_layer_fails_and_leaves_the_old_file(
    cli: Callable[..., Result], images: ImageBuilder, catalog: Catalog, tmp_path: Path
) -> None:
    images.add([BASE, APP], tags=["x:1"])
    blob = catalog.store.path(diff_id(APP))
    corrupted = bytearray(blob.read_bytes())
    corrupted[600] ^= 0xFF
    blob.chmod(0o644)
    blob.write_bytes(bytes(corrupted))
    out = tmp_path / "out"
    out.mkdir()
    target = out / "a.tar"
    target.write_bytes(b"previous")
    result = cli("save", "-o", str(target), "x:1", exit_code=1)
    assert result.stderr.startswith(f"Error: blob {diff_id(APP)} is corrupt")
    assert result.stderr.count("\n") == 1
    assert target.read_bytes() == b"previous"
    assert list(out.iterdir()) == [target]


def test_a_missing_layer_blob_is_one_line(
    cli: Callable[..., Result], images: ImageBuilder, catalog: Catalog, tmp_path: Path
) -> None:
    images.add([BASE, APP], tags=["x:1"])
    catalog.store.delete(diff_id(BASE))
    result = cli("save", "-o", str(tmp_path / "a.tar"), "x:1", exit_code=1)
    assert result.stderr == f"Error: blob {diff_id(BASE)} not found in the content store\n"
    assert not (tmp_path / "a.tar").exists()


def catalog_command() -> list[str]:
    return [console_script()]


def test_console_script_streams_to_stdout_and_refuses_a_terminal(
    cli: Callable[..., Result], images: ImageBuilder, root: Path, db_url: str, tmp_path: Path
) -> None:
    images.add([BASE, APP], tags=["x:1"])
    expected = save(cli, tmp_path, "x:1")
    env = {**os.environ, "CATALOG_ROOT": str(root), "CATALOG_DATABASE_URL": db_url}
    redirected = tmp_path / "redirected.tar"
    with redirected.open("wb") as stdout:
        done = subprocess.run(
            [*catalog_command(), "save", "x:1"],
            cwd=tmp_path,
            env=env,
            stdout=stdout,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert redirected.read_bytes() == expected

    controller, terminal = pty.openpty()
    try:
        refused = subprocess.run(
            [*catalog_command(), "save", "x:1"],
            cwd=tmp_path,
            env=env,
            stdout=terminal,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert refused.returncode == 1
    assert refused.stderr == (
        b"Error: cowardly refusing to save to a terminal. Use the -o flag or redirect\n"
    )


# --- Read by third-party tools ---


def run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, (argv, done.stderr)
    return done.stdout


@pytest.fixture
def skopeo() -> str:
    path = shutil.which("skopeo")
    need(path, "skopeo is not on PATH (install Debian's skopeo)")
    assert path is not None
    return path


@pytest.fixture
def umoci() -> str:
    path = shutil.which("umoci")
    need(path, "umoci is not on PATH (install Debian's umoci)")
    assert path is not None
    return path


@pytest.fixture
def saved_pair(
    cli: Callable[..., Result], images: ImageBuilder, tmp_path: Path
) -> tuple[Path, str, str]:
    """An archive of two images sharing a layer: base:1, and app:latest on top of it."""
    base = images.add([BASE], tags=["base:1"])
    app = images.add([BASE, APP], tags=["app:latest"], parent=base)
    save(cli, tmp_path, "base:1", "app:latest", name="pair.tar")
    return tmp_path / "pair.tar", base, app


def test_skopeo_reads_the_docker_archive(
    skopeo: str, saved_pair: tuple[Path, str, str], catalog: Catalog
) -> None:
    archive, base, app = saved_pair
    for name, image_id, layers in (("base:1", base, [BASE]), ("app:latest", app, [BASE, APP])):
        source = f"docker-archive:{archive}:{name}"
        facts = json.loads(run(skopeo, "inspect", source))
        assert facts["Layers"] == [diff_id(layer) for layer in layers]
        raw_config = subprocess.run(
            [skopeo, "inspect", "--config", "--raw", source],
            capture_output=True,
            timeout=120,
            check=True,
        ).stdout
        assert raw_config == stored_config(catalog, image_id)


def test_skopeo_reads_the_oci_archive(
    skopeo: str, saved_pair: tuple[Path, str, str], catalog: Catalog
) -> None:
    archive, _, app = saved_pair
    _, files = read_archive(archive.read_bytes())
    [descriptor] = [
        d
        for d in index_of(files)
        if d["annotations"]["io.containerd.image.name"] == "docker.io/library/app:latest"
    ]
    source = f"oci-archive:{archive}:latest"
    facts = json.loads(run(skopeo, "inspect", source))
    assert facts["Digest"] == descriptor["digest"]
    assert facts["Layers"] == [diff_id(BASE), diff_id(APP)]
    raw = subprocess.run(
        [skopeo, "inspect", "--raw", source], capture_output=True, timeout=120, check=True
    ).stdout
    assert raw == files[blob_path(descriptor["digest"])]
    assert json.loads(raw)["config"]["digest"] == app


def check_rootfs(rootfs: Path) -> None:
    assert (rootfs / "etc/os-release").read_bytes() == b"ID=test\n"
    assert (rootfs / "app/run").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert (rootfs / "app/run").stat().st_ino == (rootfs / "app/run-again").stat().st_ino
    assert (rootfs / "app/config").is_symlink()
    assert str((rootfs / "app/config").readlink()) == "/etc/os-release"


def test_skopeo_copies_to_an_oci_layout_that_umoci_unpacks(
    skopeo: str, umoci: str, saved_pair: tuple[Path, str, str], tmp_path: Path
) -> None:
    archive, _, _ = saved_pair
    layout = tmp_path / "layout"
    run(skopeo, "copy", f"docker-archive:{archive}:app:latest", f"oci:{layout}:app")
    bundle = tmp_path / "bundle"
    run(umoci, "unpack", "--rootless", "--image", f"{layout}:app", str(bundle))
    check_rootfs(bundle / "rootfs")


def test_umoci_unpacks_the_extracted_archive_as_a_layout(
    umoci: str, saved_pair: tuple[Path, str, str], tmp_path: Path
) -> None:
    archive, _, _ = saved_pair
    layout = tmp_path / "extracted"
    with tarfile.open(archive) as tar:
        tar.extractall(layout, filter="data")
    bundle = tmp_path / "bundle"
    # umoci finds images by their org.opencontainers.image.ref.name annotation (the tag).
    run(umoci, "unpack", "--rootless", "--image", f"{layout}:latest", str(bundle))
    check_rootfs(bundle / "rootfs")
    base_bundle = tmp_path / "base-bundle"
    run(umoci, "unpack", "--rootless", "--image", f"{layout}:1", str(base_bundle))
    assert (base_bundle / "rootfs/etc/os-release").exists()
    assert not (base_bundle / "rootfs/app").exists()


# --- Round trip through catalog's loader ---


def snapshot(catalog: Catalog) -> dict[str, tuple[str | None, list[str], list[str]]]:
    """Every image: its parent, its diff IDs in order and its references."""
    with catalog.database.read() as session:
        parents = dict(session.execute(select(Image.id, Image.parent_id)).all())
        diff_ids: dict[str, list[str]] = {image: [] for image in parents}
        for image, diff in session.execute(
            select(ImageLayer.image_id, Layer.diff_id)
            .join(Layer, Layer.chain_id == ImageLayer.chain_id)
            .order_by(ImageLayer.image_id, ImageLayer.position)
        ):
            diff_ids[image].append(diff)
        references: dict[str, list[str]] = {image: [] for image in parents}
        for image, repository, tag in session.execute(
            select(ImageReference.image_id, ImageReference.repository, ImageReference.tag)
        ):
            references[image].append(f"{repository}:{tag}")
    return {
        image: (parent, diff_ids[image], sorted(references[image]))
        for image, parent in parents.items()
    }


def test_save_then_load_gives_the_same_images(
    cli: Callable[..., Result],
    images: ImageBuilder,
    catalog: Catalog,
    runner: CliRunner,
    new_db_url: Callable[[], str],
    tmp_path: Path,
) -> None:
    base = images.add([BASE], tags=["base:1"])
    app_layer = tmp_path / "app.tar"
    app_layer.write_bytes(APP)
    app = cli("image", "append", "base:1", str(app_layer), "-t", "app:1", "-t", "app:2").stdout
    untagged = images.add([OTHER])
    archive = tmp_path / "all.tar"
    cli("save", "-o", str(archive), "base:1", "app", untagged)
    expected = snapshot(catalog)
    assert expected[app.strip()][0] == base  # append recorded the parent

    other_root, other_db = tmp_path / "other", new_db_url()
    loaded = runner.invoke(
        app_cli, ["--root", str(other_root), "--db", other_db, "load", "-i", str(archive)]
    )
    assert loaded.exit_code == 0, loaded.output
    assert sorted(loaded.stdout.splitlines()) == [
        "Loaded image ID: " + untagged,
        "Loaded image: app:1",
        "Loaded image: app:2",
        "Loaded image: base:1",
    ]
    location = Location(root=other_root, database_url=normalize_database_url(other_db))
    with open_catalog(location) as other:
        assert snapshot(other) == expected
        for diff in (diff_id(BASE), diff_id(APP), diff_id(OTHER)):
            assert other.store.read_bytes(diff) == catalog.store.read_bytes(diff)
    # Saving what was loaded gives the same archive, byte for byte.
    resaved = tmp_path / "resaved.tar"
    again = runner.invoke(
        app_cli,
        [
            "--root",
            str(other_root),
            "--db",
            other_db,
            "save",
            "-o",
            str(resaved),
            "base:1",
            "app",
            untagged,
        ],
    )
    assert again.exit_code == 0, again.output
    assert resaved.read_bytes() == archive.read_bytes()


def test_what_skopeo_copies_from_our_archive_loads_as_the_same_image(
    skopeo: str,
    saved_pair: tuple[Path, str, str],
    runner: CliRunner,
    new_db_url: Callable[[], str],
    tmp_path: Path,
) -> None:
    archive, _, app = saved_pair
    copies = {
        "docker-archive": (
            f"docker-archive:{archive}:app:latest",
            f"docker-archive:{tmp_path / 'copy.tar'}:app:latest",
            tmp_path / "copy.tar",
        ),
        # OCI to OCI: skopeo keeps the config bytes, so the image ID. Its ref.name
        # annotation is then `app:latest`, which the loader reads as the name.
        "oci": (
            f"oci-archive:{archive}:latest",
            f"oci:{tmp_path / 'layout'}:app:latest",
            tmp_path / "layout",
        ),
    }
    for source, destination, copied in copies.values():
        run(skopeo, "copy", source, destination)
        other_root, other_db = tmp_path / f"root-{copied.name}", new_db_url()
        loaded = runner.invoke(
            app_cli, ["--root", str(other_root), "--db", other_db, "load", "-i", str(copied)]
        )
        assert loaded.exit_code == 0, loaded.output
        location = Location(root=other_root, database_url=normalize_database_url(other_db))
        with open_catalog(location) as other:
            facts = snapshot(other)
        assert list(facts) == [app]
        assert facts[app][1] == [diff_id(BASE), diff_id(APP)]
        assert facts[app][2] == ["docker.io/library/app:latest"]


def test_layers_stream_through_without_being_held_in_memory(
    images: ImageBuilder, catalog: Catalog, tmp_path: Path
) -> None:
    size = 48 << 20
    images.add([layer_tar({"big": bytes(size)})], tags=["big:1"])
    archive = tmp_path / "big.tar"
    tracemalloc.start()
    try:
        with archive.open("wb") as out:
            save_images(catalog, ["big:1"], out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert archive.stat().st_size > size
    assert peak < 4 << 20, peak
