"""Layer ingestion: streamed into the store uncompressed, every entry checked."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest
import zstandard
from support.builders import diff_id, directory, hardlink, layer_tar, symlink

from catalog.domain.layertar import normalize_entry_name
from catalog.errors import InvalidArchive
from catalog.storage.compression import DecompressionLimits, sniff
from catalog.storage.content import ContentStore
from catalog.storage.layers import LayerLimits, ingest_layer


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "blobs")


def stored_blobs(store: ContentStore) -> set[str]:
    return {blob.digest for blob in store.iter_blobs()}


TAR = layer_tar(
    [
        ("etc", directory()),
        ("./etc/passwd", b"root:x:0:0\n"),
        ("/etc/hosts", b"127.0.0.1 localhost\n" * 10),
        ("etc/link", symlink("/etc/passwd")),
        ("etc/hard", hardlink("/etc/passwd")),
        ("etc/.wh.gone", b""),
    ]
)


@pytest.mark.parametrize(
    ("compress", "kind"),
    [
        (lambda b: b, "none"),
        (gzip.compress, "gzip"),
        (lambda b: zstandard.ZstdCompressor().compress(b), "zstd"),
    ],
)
def test_stored_uncompressed_under_its_diff_id(store: ContentStore, compress, kind) -> None:  # type: ignore[no-untyped-def]
    blob = compress(TAR)
    layer = ingest_layer(store, io.BytesIO(blob), expected_diff_id=diff_id(TAR))
    assert layer.diff_id == diff_id(TAR)
    assert layer.compression == kind
    assert layer.diff_size == len(b"root:x:0:0\n") + len(b"127.0.0.1 localhost\n" * 10)
    assert layer.size == len(TAR)
    assert layer.compressed_size == len(blob)
    assert layer.entries == 6
    assert store.read_bytes(layer.diff_id) == TAR


def test_wrong_diff_id_installs_nothing(store: ContentStore) -> None:
    wrong = "sha256:" + "0" * 64
    with pytest.raises(InvalidArchive, match="invalid diffID"):
        ingest_layer(store, io.BytesIO(TAR), expected_diff_id=wrong)
    assert stored_blobs(store) == set()
    assert store.temporary_files() == []


def test_wrong_compressed_digest_and_size(store: ContentStore) -> None:
    blob = gzip.compress(TAR)
    with pytest.raises(InvalidArchive, match="digest"):
        ingest_layer(store, io.BytesIO(blob), expected_digest="sha256:" + "1" * 64)
    with pytest.raises(InvalidArchive, match="size"):
        ingest_layer(store, io.BytesIO(blob), expected_size=len(blob) + 1)
    assert stored_blobs(store) == set()


def test_empty_layers(store: ContentStore) -> None:
    moby_empty = ingest_layer(store, io.BytesIO(b"\0" * 1024))
    assert moby_empty.diff_id == (
        "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
    )
    assert (moby_empty.diff_size, moby_empty.entries) == (0, 0)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([("../evil", b"x")], "outside the layer root"),
        ([("a/../../b", b"x")], "outside the layer root"),
        ([("a\\..\\x", b"x"), ("C:\\windows", b"x")], "Windows path"),
        ([("etc/.wh.", b"")], "invalid whiteout"),
        ([("etc/.wh..", b"")], "invalid whiteout"),
        ([("x", hardlink("../../etc/shadow"))], "points outside"),
    ],
)
def test_hostile_entries_are_refused(store: ContentStore, entries, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArchive, match=message):
        ingest_layer(store, io.BytesIO(layer_tar(entries)))
    assert stored_blobs(store) == set()


def test_absolute_symlink_targets_are_data(store: ContentStore) -> None:
    layer = ingest_layer(store, io.BytesIO(layer_tar([("lib", symlink("/usr/lib"))])))
    assert layer.entries == 1


def zeros_member(size: int) -> bytes:
    """A tar of one file of `size` zero bytes."""
    info = tarfile.TarInfo("zeros")
    info.size = size
    return info.tobuf(tarfile.PAX_FORMAT) + bytes(size) + bytes(1024)


def test_decompression_bomb(store: ContentStore) -> None:
    bomb = gzip.compress(zeros_member(96 << 20), compresslevel=9)
    limits = LayerLimits(decompression=DecompressionLimits(max_ratio=100, allowance=1 << 20))
    with pytest.raises(InvalidArchive, match="decompression ratio"):
        ingest_layer(store, io.BytesIO(bomb), limits=limits)
    assert stored_blobs(store) == set()
    assert store.temporary_files() == []


def test_a_layer_of_endless_zeros_stops(store: ContentStore) -> None:
    """`image append BASE /dev/zero`: an empty tar, then zeros for ever. What follows a
    tar's end counts towards its diff ID (as in Docker), but only up to 1 MiB."""
    with (
        Path("/dev/zero").open("rb") as zeros,
        pytest.raises(
            InvalidArchive,
            match=r"^invalid layer: more than 1048576 bytes after the end of the tar$",
        ),
    ):
        ingest_layer(store, zeros)
    assert stored_blobs(store) == set()
    assert store.temporary_files() == []
    # Padding within the bound is fine, and part of the diff ID.
    padded = layer_tar({"a": b"x"}) + bytes(1 << 19)
    assert ingest_layer(store, io.BytesIO(padded)).diff_id == diff_id(padded)


def test_a_layer_is_bounded(store: ContentStore) -> None:
    with pytest.raises(InvalidArchive, match=r"^invalid layer: larger than 1048576 bytes$"):
        ingest_layer(
            store, io.BytesIO(zeros_member(2 << 20)), limits=LayerLimits(max_tar_bytes=1 << 20)
        )
    assert stored_blobs(store) == set()


def test_entry_count_and_header_size_limits(store: ContentStore) -> None:
    many = layer_tar([(f"f{i}", b"") for i in range(50)])
    with pytest.raises(InvalidArchive, match="more than 10 entries"):
        ingest_layer(store, io.BytesIO(many), limits=LayerLimits(max_entries=10))
    info = tarfile.TarInfo("big")
    info.pax_headers = {"comment": "x" * 200_000}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(InvalidArchive, match="extended header"):
        ingest_layer(
            store, io.BytesIO(buffer.getvalue()), limits=LayerLimits(max_header_bytes=65536)
        )


def test_truncated_and_garbage(store: ContentStore) -> None:
    with pytest.raises(InvalidArchive):
        ingest_layer(store, io.BytesIO(gzip.compress(TAR)[:-30]))
    with pytest.raises(InvalidArchive, match="truncated"):
        ingest_layer(store, io.BytesIO(TAR[:700]))
    with pytest.raises(InvalidArchive, match=r"truncated|unexpected end of data"):
        ingest_layer(store, io.BytesIO(layer_tar({"big": b"x" * 5000})[:2048]))
    with pytest.raises(InvalidArchive):
        ingest_layer(store, io.BytesIO(b"this is not a tar archive at all" * 40))
    assert stored_blobs(store) == set()


def test_sniff() -> None:
    assert sniff(gzip.compress(b"x")) == "gzip"
    assert sniff(zstandard.ZstdCompressor().compress(b"x")) == "zstd"
    assert sniff(b"\x50\x2a\x4d\x18") == "zstd"  # skippable frame
    assert sniff(TAR) == "none"


@pytest.mark.parametrize(
    ("name", "normalized"),
    [("./a/b/", "a/b"), ("/a//b", "a/b"), ("a/./b/../c", "a/c"), ("./", ""), ("/", "")],
)
def test_normalize_entry_name(name: str, normalized: str) -> None:
    assert normalize_entry_name(name) == normalized
