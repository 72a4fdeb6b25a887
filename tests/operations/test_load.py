"""`catalog load`: real archives in, rows and blobs out; hostile archives refused with the
catalog unchanged. Expected values are computed here from the archives themselves (or
taken from the test vectors of docs/layers-and-squash.md §1), never from catalog's own code."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zstandard
from rich.console import Console
from rich.progress import Progress, TextColumn
from sqlalchemy import select
from support.archive_builders import (
    Image,
    Layout,
    docker_archive,
    docker_members,
    named,
    pax_member,
    tar_of,
    tar_with_raw,
)
from support.builders import Entry, diff_id, hardlink, image_config, layer_tar, symlink
from support.environment import console_script
from support.files import FIXTURES, fixture
from support.surgery import row_counts, table_rows
from typer.testing import Result

import catalog.storage.archive.source as archive_source
from catalog.cli.load import RichLoadProgress, progress_bar
from catalog.context import Catalog
from catalog.db.models import Image as ImageRow
from catalog.db.models import ImageLayer, ImageReference, Layer
from catalog.errors import InvalidArchive
from catalog.operations import load as load_service
from catalog.operations.load import load_archive
from catalog.storage.archive.source import ArchiveLimits
from catalog.storage.compression import DecompressionLimits
from catalog.storage.layers import LayerLimits

Cli = Callable[..., Result]

LAYER = layer_tar({"etc/hostname": b"catalog\n", "bin/tool": b"#!/bin/sh\n" + b"x" * 90})
OTHER = layer_tar({"app/run": b"run", "app/data": b"d" * 1000})


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def chain_ids(diff_ids: list[str]) -> list[str]:
    """docs/layers-and-squash.md §1.2, written out again here."""
    chains: list[str] = []
    for d in diff_ids:
        chains.append(d if not chains else sha256(f"{chains[-1]} {d}".encode()))
    return chains


# --- What the catalog holds ---


@dataclass
class Stored:
    id: str
    diff_ids: list[str]
    chain_ids: list[str]
    diff_sizes: list[int]
    size: int
    references: list[str]
    parent_id: str | None


def stored_images(catalog: Catalog) -> dict[str, Stored]:
    with catalog.database.read() as session:
        images = session.execute(select(ImageRow.id, ImageRow.size, ImageRow.parent_id)).all()
        layers = session.execute(
            select(ImageLayer.image_id, Layer.diff_id, Layer.chain_id, Layer.diff_size)
            .join(Layer, Layer.chain_id == ImageLayer.chain_id)
            .order_by(ImageLayer.image_id, ImageLayer.position)
        ).all()
        references = session.execute(
            select(ImageReference.image_id, ImageReference.repository, ImageReference.tag)
        ).all()
    result = {
        image_id: Stored(image_id, [], [], [], size, [], parent_id)
        for image_id, size, parent_id in images
    }
    for image_id, layer_diff_id, chain_id, diff_size in layers:
        result[image_id].diff_ids.append(layer_diff_id)
        result[image_id].chain_ids.append(chain_id)
        result[image_id].diff_sizes.append(diff_size)
    for image_id, repository, tag in references:
        result[image_id].references.append(f"{repository}:{tag}")
    for stored in result.values():
        stored.references.sort()
    return result


def outside_files(tmp_path: Path, root: Path) -> set[Path]:
    """Every file under tmp_path outside the catalog root, but for SQLite databases."""
    return {
        p
        for p in tmp_path.rglob("*")
        if root not in (p, *p.parents) and not p.name.startswith("catalog_test_")
    }


# --- Independent expectations for the fixtures ---


@dataclass
class Expected:
    id: str
    diff_ids: list[str]
    diff_sizes: list[int]
    references: list[str]


def layer_diff_size(data: bytes) -> int:
    """Sum of regular-file sizes in a layer blob, whatever its compression."""
    if data[:4] == b"\x28\xb5\x2f\xfd":
        data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    elif data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if not data:
        return 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as layer:
        return sum(member.size for member in layer if member.isreg())


def full_name(familiar: str) -> str:
    """docker.io/library/ and :latest, for the simple names in the fixtures."""
    name, _, tag = (
        familiar.rpartition(":")
        if ":" in familiar.split("/")[-1]
        else (
            familiar,
            "",
            "latest",
        )
    )
    first = name.split("/")[0]
    if "." not in first and ":" not in first and first != "localhost":
        name = "docker.io/" + (name if "/" in name else "library/" + name)
    return f"{name}:{tag}"


def expected_docker(path: Path) -> list[Expected]:
    expected = []
    with tarfile.open(path) as tar:

        def member(name: str) -> bytes:
            stream = tar.extractfile(name)  # follows the archive's symlinks
            assert stream is not None
            return stream.read()

        for item in json.loads(member("manifest.json")):
            config = member(item["Config"])
            expected.append(
                Expected(
                    id=sha256(config),
                    diff_ids=json.loads(config)["rootfs"]["diff_ids"],
                    diff_sizes=[layer_diff_size(member(name)) for name in item["Layers"]],
                    references=sorted(full_name(t) for t in item.get("RepoTags") or []),
                )
            )
    return expected


def expected_oci(path: Path) -> list[Expected]:
    with tarfile.open(path) as tar:

        def blob(digest: str) -> bytes:
            stream = tar.extractfile("blobs/sha256/" + digest.split(":")[1])
            assert stream is not None
            return stream.read()

        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        (descriptor,) = index["manifests"]
        manifest = json.loads(blob(descriptor["digest"]))
        config = blob(manifest["config"]["digest"])
        ref = descriptor.get("annotations", {}).get("org.opencontainers.image.ref.name")
        return [
            Expected(
                id=sha256(config),
                diff_ids=json.loads(config)["rootfs"]["diff_ids"],
                diff_sizes=[layer_diff_size(blob(layer["digest"])) for layer in manifest["layers"]],
                references=[full_name(ref)] if ref else [],
            )
        ]


DOCKER_FIXTURES = [
    "containers-image/almostempty.tar",
    "google-go-containerregistry/mutate/overwritten_file.tar",
    "google-go-containerregistry/mutate/source_image.tar",
    "google-go-containerregistry/mutate/source_image_with_empty_layer_history.tar",
    "google-go-containerregistry/mutate/whiteout_dir.tar",
    "google-go-containerregistry/mutate/whiteout_image.tar",
    "google-go-containerregistry/tarball/hello-world-v25.tar",
    "google-go-containerregistry/tarball/test_bundle.tar",
    "google-go-containerregistry/tarball/test_image_1.tar",
    "google-go-containerregistry/tarball/test_image_2.tar",
    "google-go-containerregistry/tarball/test_link.tar",
    "wagoodman-dive/test-docker-image.tar",
    "wagoodman-dive/test-kaniko-image.tar",
]
OCI_FIXTURES = [
    "anchore-stereoscope/valid-oci.tar",
    "wagoodman-dive/test-oci-estargz-image.tar",
    "wagoodman-dive/test-oci-gzip-image.tar",
    "wagoodman-dive/test-oci-uncompressed-image.tar",
    "wagoodman-dive/test-oci-zstd-image.tar",
]
NO_MANIFEST = "invalid archive: does not contain a manifest.json"
REFUSED_FIXTURES = {
    # Pre-1.10 archives (repositories + <v1 id>/json): Docker ≥ 28 refuses them so.
    "google-go-containerregistry/tarball/no_manifest.tar": NO_MANIFEST,
    "moby-moby/emptyLayer.tar": NO_MANIFEST,
    "google-go-containerregistry/tarball/null_manifest.tar": (
        "invalid manifest, manifest cannot be null (but can be [])"
    ),
    # Bare layers are not image archives.
    "regclient-regclient/layer.tar": NO_MANIFEST,
    "regclient-regclient/layer-wh.tar": NO_MANIFEST,
    "moby-moby/tarsum/xattr/layer.tar": NO_MANIFEST,
    "moby-moby/tarsum/46af0962ab5afeb5ce6740d4d91652e69206fc991fd5328c1a94d364ad00e457/layer.tar": (
        NO_MANIFEST
    ),
    "moby-moby/tarsum/511136ea3c5a64f264b78b5433614aec563103b4d4702f3ba7d4d2698e22c158/layer.tar": (
        NO_MANIFEST
    ),
    "moby-moby/tarsum/collision/collision-0.tar": NO_MANIFEST,
    "google-go-containerregistry/crane/content.tar.zst": NO_MANIFEST,  # a zstd layer
    "moby-moby/tarsum/xattr": NO_MANIFEST,  # a v1 layer directory
}


def test_every_fixture_is_listed() -> None:
    """New fixtures must be added to one of the lists above."""
    listed = {*DOCKER_FIXTURES, *OCI_FIXTURES, *REFUSED_FIXTURES}
    archives = {
        str(p.relative_to(FIXTURES))
        for p in FIXTURES.rglob("*")
        if p.is_file() and p.suffix in (".tar", ".zst")
    }
    skipped = {
        f"moby-moby/tarsum/collision/collision-{i}.tar" for i in (1, 2, 3)
    }  # same kind as collision-0
    assert archives - listed - skipped == set()


def check_loaded(catalog: Catalog, expected: list[Expected]) -> None:
    stored = stored_images(catalog)
    assert set(stored) == {e.id for e in expected}
    for e in expected:
        image = stored[e.id]
        assert image.diff_ids == e.diff_ids
        assert image.chain_ids == chain_ids(e.diff_ids)
        assert image.diff_sizes == e.diff_sizes
        assert image.size == sum(e.diff_sizes)
        assert set(e.references) <= set(image.references)
        for layer_diff_id in e.diff_ids:
            assert catalog.store.exists(layer_diff_id)


@pytest.mark.parametrize("relative", DOCKER_FIXTURES + OCI_FIXTURES)
def test_fixture_loads(relative: str, cli: Cli, catalog: Catalog) -> None:
    path = fixture(relative)
    expected = expected_docker(path) if relative in DOCKER_FIXTURES else expected_oci(path)
    result = cli("load", "-i", str(path))
    check_loaded(catalog, expected)
    lines = []
    for e in expected:
        familiar = [r.removeprefix("docker.io/").removeprefix("library/") for r in e.references]
        if not familiar:
            lines.append(f"Loaded image ID: {e.id}")
        lines += [f"Loaded image: {name}" for name in familiar]
    assert sorted(result.stdout.splitlines()) == sorted(lines)
    assert result.stderr == ""


@pytest.mark.parametrize(("relative", "message"), REFUSED_FIXTURES.items())
def test_fixture_refused(relative: str, message: str, cli: Cli, catalog: Catalog) -> None:
    result = cli("load", "-i", str(fixture(relative)), exit_code=1)
    assert result.stderr == f"Error: {message}\n"
    assert result.stdout == ""
    assert set(row_counts(catalog).values()) == {0}


def test_chain_id_vectors(cli: Cli, catalog: Catalog) -> None:
    """docs/layers-and-squash.md §1.2's test vectors, from the catalog's rows."""
    cli("load", "-i", str(fixture("wagoodman-dive/test-docker-image.tar")))
    cli("load", "-i", str(fixture("google-go-containerregistry/tarball/test_link.tar")))
    stored = stored_images(catalog)
    dive = stored["sha256:75ae28b8ebf89b203319069ddcbecdf5c3838503bbebc0d0d85e4b8589c5de3a"]
    assert dive.diff_ids[:3] == [
        "sha256:23bc2b70b2014dec0ac22f27bb93e9babd08cdd6f1115d0c955b9ff22b382f5a",
        "sha256:a65b7d7ac139a0e4337bc3c73ce511f937d6140ef61a0108f7d4b8aab8d67274",
        "sha256:93e208d471756ffbac88cf9c25feb442007f221d3bd73231e27b747a0a68927c",
    ]
    assert dive.chain_ids[1] == (
        "sha256:feff741eb35964a11ee9328c739beb64f43d0fd1590f0c7e44f69283bd1888ce"
    )
    assert dive.chain_ids[2] == (
        "sha256:8bbb2ee30155dbf5985e176553f4edc04c52c3c6f109635395614848d864ab25"
    )
    assert len(dive.chain_ids) == 14
    assert dive.chain_ids[13] == (
        "sha256:a1c47b1903e5c10581a02d31a80056a7534202ba4d4a352f5c737747d0db4ca7"
    )
    image_1 = "sha256:6e0b05049ed9c17d02e1a55e80d6599dbfcce7f4f4b022e3c673e685789c470e"
    image_3 = stored["sha256:d4c9adacde69c3d92446e0484cea29493e9fd573cf0c8febfc700d80c46697a4"]
    assert image_3.chain_ids == [
        "sha256:8897395fd26dc44ad0e2a834335b33198cb41ac4d98dfddf58eced3853fa7b17",
        "sha256:e10430d6eeebc50796f4c7435259699ea3bde509b50ca259d82abe9d6fbd99bd",
    ]
    # test_link's second image names the first as its Parent, a valid one.
    assert image_3.parent_id == image_1
    assert stored[image_1].parent_id is None


def test_wrong_config_name_loads_under_its_computed_id(cli: Cli, catalog: Catalog) -> None:
    # The config member is named 6e0b0504….json; its bytes hash to 05b5ec12… (§1.3).
    path = fixture("google-go-containerregistry/mutate/source_image_with_empty_layer_history.tar")
    cli("load", "-i", str(path))
    (stored,) = stored_images(catalog).values()
    assert stored.id == "sha256:05b5ec1290589606ce19fabb1fb331f004acd9f618b9b4e813721be1a03a0712"
    assert stored.references == ["docker.io/bazel/pkg/v1/mutate:source_image"]


# OCI layout directories: the expected images were read off their descriptors.
TESTREPO_AMD64 = {
    "b1": "sha256:92e1351053a20d03653de6d9ff2064abfe3adc2105b1cf492b201813a3f12dae",
    "b2": "sha256:79f0b6d4f769ba152915c536b1108023487f946761673f20b46e38b256312632",
    "b3": "sha256:bb4828702beda05e2dee1a86d002928c0e3c1a7ac23ee338e54d425dac06843b",
    "v1": "sha256:03d7b3c657a4af5b4ff7967bf843d04a93008f28d658a7df3f679b2c7e519639",
    "v2": "sha256:265cf623914b139bb063c377e702759275910c1013005615cb400323d00608c1",
    "v3": "sha256:2097cbe98aab004aa60148c1b49515a86cd1ff514310dcf8654313259aad0b12",
}


def test_regclient_layout_directory(cli: Cli, catalog: Catalog) -> None:
    """Nested indexes, platforms, attestations, artifacts, referrers: one amd64 image per
    tagged index, artifacts skipped."""
    path = fixture("regclient-regclient/testrepo")
    result = cli("load", "-i", str(path))
    stored = stored_images(catalog)
    for tag, image_id in TESTREPO_AMD64.items():
        assert f"docker.io/library/{tag}:latest" in stored[image_id].references
    assert set(stored) == set(TESTREPO_AMD64.values())
    assert [len(stored[TESTREPO_AMD64[t]].diff_ids) for t in ("v1", "v2", "v3")] == [2, 3, 5]
    assert "Loaded image: b1:latest" in result.stdout.splitlines()
    for image in stored.values():
        with catalog.database.read() as session:
            row = session.get(ImageRow, image.id)
            assert row is not None and (row.os, row.architecture) == ("linux", "amd64")


def test_platform_option(cli: Cli, catalog: Catalog) -> None:
    path = str(fixture("regclient-regclient/testrepo"))
    cli("image", "load", "-q", "--platform", "linux/arm/v7", "-i", path)
    with catalog.database.read() as session:
        platforms = set(session.execute(select(ImageRow.architecture, ImageRow.variant)).all())
    assert platforms == {("arm", "v7")}
    assert len(stored_images(catalog)) == 5  # v1 has no arm/v7 image
    result = cli("load", "--platform", "linux/s390x", "-i", path, exit_code=1)
    assert result.stderr == "Error: no images providing the requested platform linux/s390x found\n"
    result = cli("load", "--platform", "s390x", "-i", path, exit_code=1)
    assert result.stderr == 'Error: invalid platform "s390x": expected os/arch[/variant]\n'


def test_ggcr_test_index_directory(cli: Cli, catalog: Catalog) -> None:
    # Entry "2" has the media type of a plain descriptor: ignored (the OCI image-index
    # specification, docs/archives.md §1.3).
    result = cli("load", "-i", str(fixture("google-go-containerregistry/layout/test_index")))
    assert result.stdout.splitlines() == [
        "Loaded image: 1:latest",
        "Loaded image: 3:latest",
        "Loaded image: 4:latest",
    ]
    (stored,) = stored_images(catalog).values()
    assert stored.id == "sha256:6e0b05049ed9c17d02e1a55e80d6599dbfcce7f4f4b022e3c673e685789c470e"


# --- Loading twice, moving tags, stdin ---


def test_loading_twice_changes_nothing(cli: Cli, catalog: Catalog) -> None:
    for relative in (
        "google-go-containerregistry/tarball/test_link.tar",
        "wagoodman-dive/test-oci-gzip-image.tar",
    ):
        path = str(fixture(relative))
        first = cli("load", "-i", path)
        before = table_rows(catalog)
        blobs = sorted(catalog.store.iter_blobs(), key=lambda b: b.digest)
        second = cli("load", "-i", path)
        assert second.stdout == first.stdout
        assert table_rows(catalog) == before
        assert sorted(catalog.store.iter_blobs(), key=lambda b: b.digest) == blobs


def test_a_tag_moves_to_the_new_image(cli: Cli, catalog: Catalog, tmp_path: Path) -> None:
    old = Image([LAYER], tags=["app:1", "app:keep"])
    new = Image([LAYER, OTHER], tags=["app:1"])
    (tmp_path / "old.tar").write_bytes(docker_archive([old]))
    (tmp_path / "new.tar").write_bytes(docker_archive([new]))
    cli("load", "-i", str(tmp_path / "old.tar"))
    result = cli("load", "-i", str(tmp_path / "new.tar"))
    assert result.stdout.splitlines() == [
        f"The image app:1 already exists, renaming the old one with ID {old.id} to empty string",
        "Loaded image: app:1",
    ]
    stored = stored_images(catalog)
    assert stored[new.id].references == ["docker.io/library/app:1"]
    assert stored[old.id].references == ["docker.io/library/app:keep"]


def test_stdin(cli: Cli, catalog: Catalog) -> None:
    data = docker_archive([Image([LAYER], tags=["piped:1"])])
    assert cli("load", input=data).stdout == "Loaded image: piped:1\n"
    layout = Layout()
    layout.manifests.append(layout.image([OTHER], gzip_layers=True))
    compressed = gzip.compress(layout.tar())
    result = cli("image", "load", "-q", input=compressed)
    assert result.stdout.startswith("Loaded image ID: sha256:")
    assert len(stored_images(catalog)) == 2
    assert list((catalog.location.root / "tmp").iterdir()) == []


def test_stdin_terminal_is_refused(
    cli: Cli, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.BytesIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("catalog.cli.load.typer.get_binary_stream", lambda name: Terminal())
    result = cli("load", exit_code=1)
    assert result.stderr == "Error: requested load from stdin, but stdin is empty\n"


def test_an_endless_input_stops_at_the_end_of_its_tar(cli: Cli, catalog: Catalog) -> None:
    """`load -i /dev/zero` wrote until the disk was full: a stream is copied only up to
    its tar's end (docs/archives.md §4.2)."""
    result = cli("load", "-i", "/dev/zero", exit_code=1)
    assert result.stderr == "Error: invalid archive: does not contain a manifest.json\n"
    assert set(row_counts(catalog).values()) == {0}
    spool = catalog.location.root / "tmp"
    assert not spool.exists() or list(spool.iterdir()) == []


def test_missing_input_file(cli: Cli, tmp_path: Path) -> None:
    result = cli("load", "-i", str(tmp_path / "nope.tar"), exit_code=1)
    assert result.stderr == f"Error: open {tmp_path / 'nope.tar'}: no such file or directory\n"


def test_console_script(root: Path, db_url: str, tmp_path: Path) -> None:
    """The installed `catalog` script, reading a file and then a pipe."""
    command = console_script()
    env = {**os.environ, "CATALOG_ROOT": str(root), "CATALOG_DATABASE_URL": db_url}
    path = fixture("google-go-containerregistry/tarball/test_bundle.tar")
    done = subprocess.run(
        [command, "load", "-i", str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Loaded image: test_image_2:latest\nLoaded image: test_image_1:latest\n"
    assert done.stderr == ""  # no progress bar: stderr is not a terminal
    piped = subprocess.run(
        [command, "load"],
        cwd=tmp_path,
        env=env,
        input=zlib.compress(b"not a gzip stream"),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert piped.returncode == 1
    assert piped.stderr.decode().startswith("Error: invalid archive: not a tar archive")
    assert piped.stderr.count(b"\n") == 1


# --- All or nothing ---


def test_failure_in_a_later_image_leaves_no_rows(
    catalog: Catalog, cli: Cli, tmp_path: Path
) -> None:
    good = Image([LAYER], tags=["good:1"])
    bad = Image([OTHER], tags=["bad:1"])
    bad.config = image_config([sha256(b"not the layer")])
    path = tmp_path / "two.tar"
    path.write_bytes(docker_archive([good, bad]))
    result = cli("load", "-i", str(path), exit_code=1)
    assert result.stderr.startswith('Error: invalid diffID for layer 0: expected "sha256:')
    assert set(row_counts(catalog).values()) == {0}
    # The first image's layer reached the store, unreferenced: gc's to remove.
    assert catalog.store.exists(diff_id(LAYER))
    assert catalog.store.temporary_files() == []


def test_failure_in_the_transaction_rolls_everything_back(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = Image([LAYER], tags=["a:1"]), Image([OTHER], tags=["b:1"])
    calls = []
    real = load_service.set_reference

    def failing(**kwargs: Any) -> str | None:
        calls.append(kwargs["reference"])
        if len(calls) == 2:
            raise InvalidArchive("simulated failure after the first image's rows")
        return real(**kwargs)

    monkeypatch.setattr(load_service, "set_reference", failing)
    with pytest.raises(InvalidArchive, match="simulated"):
        load_archive(catalog, io.BytesIO(docker_archive([first, second])))
    assert len(calls) == 2
    assert set(row_counts(catalog).values()) == {0}


# --- Hostile archives ---


def layer_bomb(size: int) -> bytes:
    """A gzip layer holding one file of `size` zero bytes."""
    info = tarfile.TarInfo("zeros")
    info.size = size
    header = info.tobuf(tarfile.PAX_FORMAT)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(header)]
    chunk = bytes(1 << 20)
    for _ in range(size >> 20):
        parts.append(compressor.compress(chunk))
    parts.append(compressor.compress(bytes(1024)) + compressor.flush())
    return b"".join(parts)


def with_layer_member(layer_data: bytes, config: bytes) -> bytes:
    """A docker archive whose only layer member holds `layer_data` as given."""
    return tar_of(
        [
            ("config.json", config),
            ("l/layer.tar", layer_data),
            ("manifest.json", b'[{"Config":"config.json","Layers":["l/layer.tar"]}]'),
        ]
    )


def layer_archive(entries: dict[str, Entry]) -> bytes:
    """A docker archive of one image whose one layer holds `entries` (diff ID correct)."""
    layer = layer_tar(entries)
    return with_layer_member(layer, image_config([diff_id(layer)]))


def manifest_with(config: bytes, layers: list[str], extra: list[tuple[str, Any]]) -> bytes:
    document = [{"Config": "config.json", "RepoTags": ["evil:1"], "Layers": layers}]
    return tar_of(
        [("config.json", config), *extra, ("manifest.json", json.dumps(document).encode())]
    )


def truncated() -> bytes:
    data = docker_archive([Image([LAYER + bytes(4096)], tags=["cut:1"])])
    return data[: len(data) // 2]


def wrong_layer_digest() -> bytes:
    layout = Layout()
    descriptor = layout.image([LAYER])
    manifest = json.loads(layout.blobs[descriptor["digest"]])
    manifest["layers"][0]["digest"] = sha256(b"something else")
    layout.blobs[manifest["layers"][0]["digest"]] = LAYER  # stored under the wrong name
    layout.manifests.append(
        named(layout.blob(json.dumps(manifest).encode(), descriptor["mediaType"]), ref_name="x")
    )
    return layout.tar()


def wrong_layer_size() -> bytes:
    layout = Layout()
    descriptor = layout.image([LAYER])
    manifest = json.loads(layout.blobs[descriptor["digest"]])
    manifest["layers"][0]["size"] += 1
    layout.manifests.append(layout.blob(json.dumps(manifest).encode(), descriptor["mediaType"]))
    return layout.tar()


CONFIG = image_config([diff_id(LAYER)])

HOSTILE: dict[str, tuple[Callable[[], bytes], str]] = {
    "dotdot member": (
        lambda: tar_with_raw(
            [(tarfile.TarInfo("../evil"), b""), *raw(docker_members([Image([LAYER])]))]
        ),
        'Error: invalid archive: path "../evil" is outside the archive',
    ),
    "absolute member": (
        lambda: tar_with_raw([(tarfile.TarInfo("/etc/evil"), b"")]),
        'Error: invalid archive: path "/etc/evil" is absolute',
    ),
    "a/../../b member": (
        lambda: tar_with_raw([(tarfile.TarInfo("a/../../b"), b"")]),
        'Error: invalid archive: path "a/../../b" is outside the archive',
    ),
    "NUL in a member name": (
        lambda: tar_with_raw([(pax_member("x", b"", {"path": "manifest\x00.json"}), b"")]),
        "Error: invalid archive: path 'manifest\\x00.json' contains NUL",
    ),
    "manifest layer ../../x": (
        lambda: manifest_with(CONFIG, ["../../x"], []),
        'Error: invalid archive: path "../../x" is outside the archive',
    ),
    "manifest config absolute": (
        lambda: tar_of({"manifest.json": b'[{"Config":"/etc/passwd","Layers":[]}]'}),
        'Error: invalid archive: path "/etc/passwd" is absolute',
    ),
    "symlink layer leaving the archive": (
        lambda: manifest_with(
            CONFIG, ["l/layer.tar"], [("l/layer.tar", symlink("../../../etc/passwd"))]
        ),
        'Error: invalid archive: symlink "l/layer.tar" points outside the archive',
    ),
    "absolute symlink layer": (
        lambda: manifest_with(CONFIG, ["l/layer.tar"], [("l/layer.tar", symlink("/etc/passwd"))]),
        'Error: invalid archive: symlink "l/layer.tar" points outside the archive',
    ),
    "hardlink layer leaving the archive": (
        lambda: manifest_with(
            CONFIG, ["l/layer.tar"], [("l/layer.tar", hardlink("../../etc/shadow"))]
        ),
        'Error: invalid archive: hardlink "l/layer.tar" points outside the archive',
    ),
    "symlink loop for layer.tar": (
        lambda: manifest_with(
            CONFIG,
            ["a/layer.tar"],
            [
                ("a/layer.tar", symlink("../b/layer.tar")),
                ("b/layer.tar", symlink("../a/layer.tar")),
            ],
        ),
        'Error: invalid archive: "a/layer.tar" leads to a link loop',
    ),
    "hardlink escape inside a layer": (
        lambda: layer_archive({"x": hardlink("../../etc/shadow")}),
        "Error: invalid layer: hardlink 'x' points outside the layer root",
    ),
    "dotdot inside a layer": (
        lambda: layer_archive({"../../evil": b"x"}),
        "Error: invalid layer: entry name '../../evil' is outside the layer root",
    ),
    "lone .wh. inside a layer": (
        lambda: layer_archive({"etc/.wh.": b""}),
        "Error: invalid layer: invalid whiteout entry 'etc/.wh.'",
    ),
    "wrong diff ID": (
        lambda: with_layer_member(LAYER, image_config([sha256(b"other")])),
        f'Error: invalid diffID for layer 0: expected "{sha256(b"other")}", got "{diff_id(LAYER)}"',
    ),
    "bad layer digest": (
        wrong_layer_digest,
        f"Error: invalid layer 0: digest {diff_id(LAYER)} does not match the expected "
        f"{sha256(b'something else')}",
    ),
    "bad layer size": (
        wrong_layer_size,
        f"Error: invalid layer 0: size {len(LAYER)} does not match the expected {len(LAYER) + 1}",
    ),
    "truncated archive": (truncated, "Error: invalid archive: truncated or corrupt tar"),
    "oversized PAX header": (
        lambda: tar_with_raw([(pax_member("x", b"", {"comment": "c" * (2 << 20)}), b"")]),
        "Error: tar extended header of",
    ),
    "oversized manifest.json": (
        lambda: tar_of({"manifest.json": b"[" + b" " * (5 << 20) + b"]"}),
        "Error: invalid archive: manifest.json is 5242882 bytes, more than the 4194304 allowed",
    ),
}


def raw(members: list[tuple[str, Any]]) -> list[tuple[tarfile.TarInfo, bytes]]:
    result = []
    for name, data in members:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        result.append((info, data))
    return result


def assert_refused(
    cli: Cli, catalog: Catalog, tmp_path: Path, archive: Path, message: str, *args: str
) -> None:
    before = outside_files(tmp_path, catalog.location.root)
    result = cli("load", *args, "-i", str(archive), exit_code=1)
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.output
    assert set(row_counts(catalog).values()) == {0}
    assert outside_files(tmp_path, catalog.location.root) == before
    spool = catalog.location.root / "tmp"
    assert not spool.exists() or list(spool.iterdir()) == []
    assert catalog.store.temporary_files() == []


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_archive(case: str, cli: Cli, catalog: Catalog, tmp_path: Path) -> None:
    build, message = HOSTILE[case]
    path = tmp_path / "hostile.tar"
    path.write_bytes(build())
    assert_refused(cli, catalog, tmp_path, path, message)


@pytest.fixture(scope="module")
def outer_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "bomb.tar.gz"
    path.write_bytes(layer_bomb(300 << 20))
    return path


def test_gzip_bomb_archive(outer_bomb: Path, cli: Cli, catalog: Catalog, tmp_path: Path) -> None:
    """300 MiB of zeros in about 300 KiB: refused at the default 256:1 ratio bound."""
    assert outer_bomb.stat().st_size < 400 << 10
    assert_refused(
        cli,
        catalog,
        tmp_path,
        outer_bomb,
        "Error: decompression ratio exceeds 256:1 (a decompression bomb?)",
    )


def test_gzip_bomb_layer(catalog: Catalog, tmp_path: Path) -> None:
    layer = layer_bomb(32 << 20)
    archive = with_layer_member(layer, image_config([sha256(b"whatever")]))
    limits = LayerLimits(decompression=DecompressionLimits(max_ratio=50, allowance=1 << 20))
    with pytest.raises(InvalidArchive, match="decompression ratio exceeds 50:1"):
        load_archive(catalog, io.BytesIO(archive), layer_limits=limits)
    assert set(row_counts(catalog).values()) == {0}
    assert catalog.store.temporary_files() == []


def test_many_entries_beyond_a_lowered_limit(
    cli: Cli, catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive_source, "DEFAULT_LIMITS", ArchiveLimits(max_entries=50))
    path = tmp_path / "many.tar"
    path.write_bytes(tar_of([(f"f{i}", b"") for i in range(200)]))
    assert_refused(cli, catalog, tmp_path, path, "Error: invalid archive: more than 50 entries")


# --- Streaming ---


def test_memory_does_not_grow_with_layer_size(catalog: Catalog, tmp_path: Path) -> None:
    """A 64 MiB layer loads with a few MiB of Python allocations at most."""
    size = 64 << 20
    layer = tmp_path / "layer.tar"
    with tarfile.open(layer, "w") as tar:
        info = tarfile.TarInfo("big")
        info.size = size
        with (tmp_path / "zeros").open("wb") as zeros:
            zeros.truncate(size)
        with (tmp_path / "zeros").open("rb") as zeros:
            tar.addfile(info, zeros)
    hasher = hashlib.sha256()
    with layer.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            hasher.update(chunk)
    layer_diff_id = "sha256:" + hasher.hexdigest()
    config = image_config([layer_diff_id])
    archive = tmp_path / "big.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in (("config.json", config),):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        tar.add(layer, "l/layer.tar")
        manifest = b'[{"Config":"config.json","RepoTags":["big:1"],"Layers":["l/layer.tar"]}]'
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    (tmp_path / "zeros").unlink()
    layer.unlink()
    tracemalloc.start()
    try:
        result = load_archive(catalog, archive)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [image.id for image in result.images] == [sha256(config)]
    assert peak < 16 << 20, f"peak Python allocations {peak} bytes"
    (stored,) = stored_images(catalog).values()
    assert stored.diff_sizes == [size]


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def layer_started(self, description: str, total: int) -> None:
        self.events.append(("start", (description, total)))

    def layer_advanced(self, count: int) -> None:
        self.events.append(("advance", count))

    def layer_finished(self) -> None:
        self.events.append(("finish", None))


def test_progress_is_reported_per_layer(catalog: Catalog) -> None:
    archive = docker_archive([Image([LAYER, OTHER], tags=["p:1"])])
    recorder = Recorder()
    load_archive(catalog, io.BytesIO(archive), progress=recorder)
    starts = [value for kind, value in recorder.events if kind == "start"]
    assert starts == [(diff_id(LAYER)[7:19], len(LAYER)), (diff_id(OTHER)[7:19], len(OTHER))]
    advanced = sum(value for kind, value in recorder.events if kind == "advance")
    assert advanced == len(LAYER) + len(OTHER)
    assert [kind for kind, _ in recorder.events].count("finish") == 2


def test_parent_set_on_an_image_loaded_before_without_it(
    cli: Cli, catalog: Catalog, tmp_path: Path
) -> None:
    history = [{"created": "2024-01-01T00:00:00Z", "created_by": "layer 0"}]
    base = Image([LAYER], config=image_config([diff_id(LAYER)], history=history))
    child = Image(
        [LAYER, OTHER],
        config=image_config(
            [diff_id(LAYER), diff_id(OTHER)],
            history=[*history, {"created": "2024-01-01T00:00:00Z", "created_by": "layer 1"}],
        ),
        tags=["child:1"],
        parent=base.id,
    )
    (tmp_path / "alone.tar").write_bytes(docker_archive([child]))
    (tmp_path / "both.tar").write_bytes(docker_archive([child, base]))
    cli("load", "-i", str(tmp_path / "alone.tar"))
    assert stored_images(catalog)[child.id].parent_id is None
    cli("load", "-i", str(tmp_path / "both.tar"))
    assert stored_images(catalog)[child.id].parent_id == base.id


def test_help(cli: Cli) -> None:
    for command in (("load",), ("image", "load")):
        text = cli(*command, "--help").stdout
        assert "--input" in text and "--platform" in text and "os/arch[/variant]" in text


def test_rich_progress_bar(catalog: Catalog) -> None:
    """What a terminal sees on stderr (the CLI draws it only when stderr is a terminal and
    not with -q)."""
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with Progress(TextColumn("{task.description}"), console=console) as progress:
        load_archive(
            catalog,
            io.BytesIO(docker_archive([Image([LAYER, OTHER])])),
            progress=RichLoadProgress(progress),
        )
    assert f"Loading layer {diff_id(LAYER)[7:19]}" in out.getvalue()
    assert f"Loading layer {diff_id(OTHER)[7:19]}" in out.getvalue()
    with progress_bar(enabled=False) as nothing:
        assert nothing is None


def test_links_inside_a_layer_are_data(cli: Cli, catalog: Catalog, tmp_path: Path) -> None:
    """Nothing is extracted, so a layer's `link -> /etc` followed by `link/passwd` is two
    tar entries in a blob, not a write through a link (moby, which extracts, confines the
    same layer to its root rather than refusing it)."""
    layer = layer_tar([("link", symlink("/etc")), ("link/passwd", b"root::0:0::/:/bin/sh\n")])
    path = tmp_path / "links.tar"
    path.write_bytes(docker_archive([Image([layer], tags=["links:1"])]))
    host_passwd = Path("/etc/passwd").read_bytes()
    before = outside_files(tmp_path, catalog.location.root)
    cli("load", "-i", str(path))
    assert Path("/etc/passwd").read_bytes() == host_passwd
    assert outside_files(tmp_path, catalog.location.root) == before
    with catalog.store.open(diff_id(layer)) as blob, tarfile.open(fileobj=blob, mode="r|") as tar:
        assert [(m.name, m.linkname) for m in tar] == [("link", "/etc"), ("link/passwd", "")]
