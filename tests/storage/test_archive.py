"""catalog.storage.archive: reading archives' members safely, and understanding their formats.
No database here; see operations/test_load.py for loading into a catalog."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
import zstandard
from support.archive_builders import (
    OCI_MANIFEST,
    Image,
    Layout,
    docker_archive,
    docker_members,
    named,
    pax_member,
    platform,
    sha256,
    tar_of,
    tar_with_raw,
)
from support.builders import diff_id, directory, hardlink, image_config, layer_tar, symlink
from support.files import fixture

from catalog.domain.platform import Platform, parse_platform
from catalog.domain.reference import familiar_string
from catalog.errors import CatalogError, InvalidArchive, NotFound
from catalog.storage.archive.formats import read_archive
from catalog.storage.archive.source import (
    MAX_JSON_BYTES_CEILING,
    ArchiveLimits,
    DirectoryArchive,
    TarArchive,
    normalize_archive_path,
    open_archive,
)
from catalog.storage.compression import DecompressionLimits

LAYER = layer_tar({"etc/hostname": b"catalog\n", "bin/sh": b"#!" + b"x" * 100})
OTHER_LAYER = layer_tar({"app/run": b"run"})


def fifo() -> tarfile.TarInfo:
    info = tarfile.TarInfo()
    info.type = tarfile.FIFOTYPE
    return info


def tar_archive(data: bytes, limits: ArchiveLimits | None = None) -> TarArchive:
    return TarArchive(io.BytesIO(data), description="test", limits=limits or ArchiveLimits())


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- Paths ---


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        ("manifest.json", "manifest.json"),
        ("./manifest.json", "manifest.json"),
        ("blobs//sha256/./abc", "blobs/sha256/abc"),
        ("a/b/../c", "a/c"),
        ("sha256:abc", "sha256:abc"),
        ("./", ""),
    ],
)
def test_normalize_archive_path(name: str, normalized: str) -> None:
    assert normalize_archive_path(name) == normalized


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../evil", "outside the archive"),
        ("a/../../b", "outside the archive"),
        ("..", "outside the archive"),
        ("/etc/passwd", "is absolute"),
        ("C:\\windows", "is absolute"),
        ("a\x00b", "contains NUL"),
    ],
)
def test_hostile_paths(name: str, message: str) -> None:
    with pytest.raises(InvalidArchive, match=message):
        normalize_archive_path(name)


# --- Tar archives ---


def test_members_are_read_in_place_through_links() -> None:
    data = tar_of(
        [
            ("./real/layer.tar", LAYER),
            ("one/layer.tar", symlink("../real/layer.tar")),
            ("two", symlink("one")),  # a directory component that is a link
            ("hard.tar", hardlink("real/layer.tar")),
            ("chain.tar", symlink("two/layer.tar")),
        ]
    )
    with tar_archive(data) as archive:
        for name in ("real/layer.tar", "one/layer.tar", "two/layer.tar", "hard.tar", "chain.tar"):
            assert archive.resolve(name) == "real/layer.tar"
            assert archive.size(name) == len(LAYER)
            with archive.open(name) as stream:
                assert stream.read() == LAYER
        assert not archive.exists("missing.json")
        assert not archive.exists("real/layer.tar/x")


def test_test_link_fixture_shares_a_layer_through_a_relative_symlink() -> None:
    # The fixture from Docker 24 (docs/archives.md §1.2); see test_load for the load.
    path = fixture("google-go-containerregistry/tarball/test_link.tar")
    layer = "b159278ac0c8813245b6c3b22cbbe7abefe3b2ec3fac6c7e87138811e1ef2a88/layer.tar"
    with open_archive(path, temporary_dir=path.parent) as archive:
        assert archive.resolve(layer) == (
            "6e77476643c3155b1e9ae07dd5a4c8288bdb6590c131c222b7a3f277dec1e266/layer.tar"
        )


@pytest.mark.parametrize(
    ("members", "name", "message"),
    [
        ([("layer.tar", symlink("../../etc/passwd"))], "layer.tar", "points outside"),
        ([("a/layer.tar", symlink("/etc/passwd"))], "a/layer.tar", "points outside"),
        ([("layer.tar", hardlink("../../etc/shadow"))], "layer.tar", "points outside"),
        ([("layer.tar", hardlink("/etc/shadow"))], "layer.tar", "points outside"),
        (
            [
                ("a/layer.tar", symlink("../b/layer.tar")),
                ("b/layer.tar", symlink("../a/layer.tar")),
            ],
            "a/layer.tar",
            "link loop",
        ),
        ([("layer.tar", symlink("layer.tar"))], "layer.tar", "link loop"),
        (
            [(f"l{i}", symlink(f"l{i + 1}")) for i in range(12)] + [("l12", LAYER)],
            "l0",
            "more than 8 links",
        ),
        ([("dir", directory())], "dir", "is a directory, not a regular file"),
        ([("dir", directory())], "dir/x", "not found"),
        ([("fifo", fifo())], "fifo", "is a special file, not a regular file"),
        ([("file", b"x")], "file/x", "not found"),
    ],
)
def test_hostile_links(members, name, message) -> None:  # type: ignore[no-untyped-def]
    with tar_archive(tar_of(members)) as archive, pytest.raises(InvalidArchive, match=message):
        archive.open(name)


@pytest.mark.parametrize(
    ("info", "message"),
    [
        (tarfile.TarInfo("../evil"), "outside the archive"),
        (tarfile.TarInfo("a/../../b"), "outside the archive"),
        (tarfile.TarInfo("/manifest.json"), "is absolute"),
        (pax_member("x", b"", {"path": "a\x00b"}), "contains NUL"),
    ],
)
def test_hostile_member_names_refuse_the_archive(info: tarfile.TarInfo, message: str) -> None:
    data = tar_with_raw([(info, b"")])
    with pytest.raises(InvalidArchive, match=message):
        tar_archive(data)


def test_limits() -> None:
    many = tar_of([(f"f{i}", b"") for i in range(20)])
    with pytest.raises(InvalidArchive, match="more than 10 entries"):
        tar_archive(many, ArchiveLimits(max_entries=10))
    pax = tar_with_raw([(pax_member("x", b"", {"comment": "c" * 100_000}), b"")])
    with pytest.raises(InvalidArchive, match=r"extended header of .* exceeds 65536"):
        tar_archive(pax, ArchiveLimits(max_header_bytes=65536))
    long = tar_of([("d/" * 100 + "f", b"")])
    with pytest.raises(InvalidArchive, match="longer than 64"):
        tar_archive(long, ArchiveLimits(max_name_length=64))
    with (
        tar_archive(
            tar_of({"manifest.json": b"[" + b" " * 2000 + b"]"}), ArchiveLimits(max_json_bytes=1024)
        ) as archive,
        pytest.raises(InvalidArchive, match="more than the 1024 allowed"),
    ):
        archive.read_bytes("manifest.json")
    with pytest.raises(ValueError, match="max_json_bytes"):
        ArchiveLimits(max_json_bytes=MAX_JSON_BYTES_CEILING + 1)


def test_truncated_and_garbage_archives(tmp_path: Path) -> None:
    data = tar_of({"manifest.json": b"[]", "big/layer.tar": LAYER})
    with pytest.raises(InvalidArchive, match="truncated or corrupt"):
        tar_archive(data[: 1536 + 2048])
    with pytest.raises(InvalidArchive, match="not a tar archive"):
        tar_archive(b"this is not a tar archive at all" * 40)
    with pytest.raises(InvalidArchive, match="not a tar archive"):
        tar_archive(b"")


def test_spooled_inputs_leave_nothing_behind(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    data = docker_archive([Image([LAYER], tags=["app:1"])])
    inputs: list[Path | io.BytesIO] = [
        write(tmp_path / "a.tar.gz", gzip.compress(data)),
        write(tmp_path / "a.tar.zst", zstandard.ZstdCompressor().compress(data)),
        io.BytesIO(data),
        io.BytesIO(gzip.compress(data)),
    ]
    for source in inputs:
        with open_archive(source, temporary_dir=spool) as archive:
            assert isinstance(archive, TarArchive)
            assert archive.read_bytes("manifest.json").startswith(b"[")
            # The spool is an anonymous file: nothing to find in the directory.
            assert list(spool.iterdir()) == []
        assert list(spool.iterdir()) == []


def big_member(size: int) -> bytes:
    """A tar header announcing one file of `size` bytes, then that many zeros."""
    info = tarfile.TarInfo("zeros")
    info.size = size
    return info.tobuf(tarfile.PAX_FORMAT) + bytes(size) + bytes(1024)


def test_outer_decompression_bomb_is_refused(tmp_path: Path) -> None:
    bomb = io.BytesIO(gzip.compress(big_member(8 << 20)))
    limits = ArchiveLimits(decompression=DecompressionLimits(max_ratio=10, allowance=1 << 20))
    with pytest.raises(InvalidArchive, match="decompression ratio exceeds 10:1"):
        open_archive(bomb, temporary_dir=tmp_path / "spool", limits=limits)
    assert list((tmp_path / "spool").iterdir()) == []


def test_a_spooled_stream_stops_at_the_end_of_its_tar(tmp_path: Path) -> None:
    """An endless stream of zeros (`load -i /dev/zero`, `cat /dev/zero | load`) is an
    empty tar followed by what is not the archive's: nothing past its end is read."""
    with (
        Path("/dev/zero").open("rb") as zeros,
        open_archive(zeros, temporary_dir=tmp_path / "spool") as archive,
    ):
        assert not archive.exists("manifest.json")
    data = docker_archive([Image([LAYER], tags=["app:1"])])

    class Endless(io.RawIOBase):
        """The archive, then garbage for ever."""

        def __init__(self) -> None:
            self.position = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            chunk = data[self.position : self.position + len(buffer)]
            chunk += b"x" * (len(buffer) - len(chunk))
            buffer[: len(chunk)] = chunk
            self.position += len(chunk)
            return len(chunk)

    with open_archive(io.BufferedReader(Endless()), temporary_dir=tmp_path / "spool") as archive:
        assert archive.read_bytes("manifest.json").startswith(b"[")


def test_a_spooled_stream_is_bounded(tmp_path: Path) -> None:
    limits = ArchiveLimits(max_archive_bytes=1 << 20)
    with pytest.raises(InvalidArchive, match=r"^invalid archive: larger than 1048576 bytes$"):
        open_archive(io.BytesIO(big_member(2 << 20)), temporary_dir=tmp_path, limits=limits)
    assert list(tmp_path.iterdir()) == []


def test_open_errors(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"^open .*missing\.tar: no such file or directory$"):
        open_archive(tmp_path / "missing.tar", temporary_dir=tmp_path)


# --- Directories ---


def test_directory_archive_is_confined(tmp_path: Path) -> None:
    outside = write(tmp_path / "secret", b"secret")
    layout = tmp_path / "layout"
    (layout / "blobs").mkdir(parents=True)
    write(layout / "index.json", b"{}")
    (layout / "inside").symlink_to("index.json")
    (layout / "escape").symlink_to(outside)
    (layout / "relative-escape").symlink_to("../secret")
    (layout / "loop").symlink_to("loop")
    with DirectoryArchive(layout) as archive:
        assert archive.read_bytes("inside") == b"{}"
        assert archive.resolve("./blobs/../inside") == "index.json"
        assert not archive.exists("nothing")
        for name in ("escape", "relative-escape"):
            with pytest.raises(InvalidArchive, match="points outside the archive"):
                archive.open(name)
        with pytest.raises(InvalidArchive, match="outside the archive"):
            archive.open("../secret")
        with pytest.raises(InvalidArchive, match="not a regular file"):
            archive.open("blobs")
        with pytest.raises(InvalidArchive, match="loop"):
            archive.open("loop")


# --- Formats ---


def read(data: bytes, platform: Platform | None = None):  # type: ignore[no-untyped-def]
    with tar_archive(data) as archive:
        return read_archive(archive, platform=platform)


def test_docker_archive() -> None:
    base = Image([LAYER], tags=["base:1"])
    child_config = image_config(
        [diff_id(LAYER), diff_id(OTHER_LAYER)],
        history=[
            {"created": "2024-01-01T00:00:00Z", "created_by": "layer 0"},
            {"created": "2024-01-01T00:00:00Z", "created_by": "layer 1"},
        ],
    )
    base.config = image_config(
        [diff_id(LAYER)], history=[{"created": "2024-01-01T00:00:00Z", "created_by": "layer 0"}]
    )
    child = Image([LAYER, OTHER_LAYER], tags=["child", "registry.example:5000/x/child:2"])
    child.config, child.parent = child_config, base.id
    contents = read(docker_archive([child, base]))
    assert contents.format == "docker-archive"
    # Parents come first; IDs are the digests of the config bytes.
    assert [image.id for image in contents.images] == [base.id, child.id]
    assert contents.images[1].parent_id == base.id
    assert [familiar_string(r) for r in contents.images[1].references] == [
        "child:latest",
        "registry.example:5000/x/child:2",
    ]
    assert all(layer.path.endswith("/layer.tar") for layer in contents.images[1].layers)


def test_many_entries_naming_one_image_merge_in_linear_time() -> None:
    """Issue 12: 30,000 entries naming one config took 195 s (their references were
    merged again for every entry). Entries naming one config file read it once too."""
    config = image_config([diff_id(LAYER)])
    count = 20_000
    entries = [{"Config": "c", "RepoTags": [f"x:{i}"], "Layers": ["l"]} for i in range(count)]
    entries.append({"Config": "./c", "RepoTags": ["x:0", "y:1"], "Layers": ["l"]})
    data = tar_of([("c", config), ("l", LAYER), ("manifest.json", json.dumps(entries).encode())])
    (image,) = read(data).images
    names = [familiar_string(r) for r in image.references]
    assert names == [f"x:{i}" for i in range(count)] + ["y:1"]


def test_parent_outside_the_archive_is_dropped_and_invalid_parent_refused() -> None:
    image = Image([LAYER], parent="sha256:" + "a" * 64)
    assert read(docker_archive([image])).images[0].parent_id is None
    base = Image([LAYER])
    child = Image([LAYER, OTHER_LAYER], parent=base.id)  # two history entries on top of one
    child.config = image_config(
        [diff_id(LAYER), diff_id(OTHER_LAYER)],
        history=[
            {"created_by": "a"},
            {"created_by": "b", "empty_layer": True},
            {"created_by": "c"},
        ],
    )
    with pytest.raises(InvalidArchive, match=f"image {base.id} is not a valid parent for"):
        read(docker_archive([base, child]))


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (tar_of({"manifest.json": b"null"}), InvalidArchive, "manifest cannot be null"),
        (tar_of({"manifest.json": b"{}"}), InvalidArchive, "expected a JSON array"),
        (tar_of({"manifest.json": b"[{"}), InvalidArchive, "invalid manifest.json"),
        # Falsy values of the wrong type were taken for "none" (Go refuses them).
        (
            docker_archive([Image([LAYER])], manifest=[{"Config": "x", "Parent": {}}]),
            InvalidArchive,
            "Parent must be a string",
        ),
        (
            docker_archive([Image([LAYER])], manifest=[{"Config": "x", "Layers": ""}]),
            InvalidArchive,
            "Layers: expected a list of strings",
        ),
        (
            tar_of({"repositories": b'{"a": {"b": "c"}}', "c/json": b"{}", "c/layer.tar": LAYER}),
            InvalidArchive,
            "^invalid archive: does not contain a manifest.json$",
        ),
        (
            docker_archive([Image([LAYER])], manifest=[{"Config": "x.json", "Layers": []}]),
            InvalidArchive,
            'config "x.json"',
        ),
        (
            tar_of(
                [
                    *docker_members([Image([LAYER])])[:-1],
                    (
                        "manifest.json",
                        json.dumps(
                            [{"Config": docker_members([Image([LAYER])])[0][0], "Layers": []}]
                        ).encode(),
                    ),
                ]
            ),
            InvalidArchive,
            "layers length mismatch: expected 0, got 1",
        ),
        (
            docker_archive(
                [Image([LAYER])],
                manifest=[
                    {"Config": docker_members([Image([LAYER])])[0][0], "Layers": ["../../x"]}
                ],
            ),
            InvalidArchive,
            'path "../../x" is outside the archive',
        ),
        (
            docker_archive([Image([LAYER])], manifest=[{"Config": "/etc/passwd", "Layers": []}]),
            InvalidArchive,
            "is absolute",
        ),
        (
            docker_archive([Image([LAYER], config=image_config([diff_id(LAYER)], os="windows"))]),
            InvalidArchive,
            "^cannot load windows image on linux$",
        ),
        (
            docker_archive([Image([LAYER], tags=["Upper:case"])]),
            Exception,
            "must be lowercase",
        ),
    ],
)
def test_docker_archive_errors(data: bytes, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        read(data)


def test_empty_manifest_is_an_archive_of_nothing() -> None:
    assert read(tar_of({"manifest.json": b"[]"})).images == ()


def test_platform_filter_on_manifest_json() -> None:
    arm = Image([LAYER], config=image_config([diff_id(LAYER)], architecture="arm64"))
    amd = Image([OTHER_LAYER], tags=["x:amd"])
    data = docker_archive([arm, amd])
    assert len(read(data).images) == 2  # without --platform every image loads
    assert [i.id for i in read(data, parse_platform("linux/arm64")).images] == [arm.id]
    with pytest.raises(NotFound, match="no images providing the requested platform linux/s390x"):
        read(data, parse_platform("linux/s390x"))


def multi_platform_layout() -> tuple[Layout, dict[str, str]]:
    layout = Layout()
    amd = layout.image([LAYER], architecture="amd64")
    arm64 = layout.image([LAYER], architecture="arm64")
    armv7 = layout.image([OTHER_LAYER], architecture="arm", variant="v7")
    attestation = named(
        layout.blob(b'{"schemaVersion":2}', "application/vnd.oci.image.manifest.v1+json"),
        **{"vnd.docker.reference.type": "attestation-manifest"},
    )
    attestation["platform"] = platform("unknown", "unknown")
    index = layout.index(
        [
            {**arm64, "platform": platform("linux", "arm64", "v8")},
            {**armv7, "platform": platform("linux", "arm", "v7")},
            {**amd, "platform": platform("linux", "amd64")},
            attestation,
        ]
    )
    layout.manifests.append(named(index, image_name="docker.io/library/multi:1", ref_name="1"))
    configs = {}
    for key, descriptor in (("amd64", amd), ("arm64", arm64), ("arm/v7", armv7)):
        manifest = json.loads(layout.blobs[descriptor["digest"]])
        configs[key] = manifest["config"]["digest"]
    return layout, configs


def test_oci_platform_choice() -> None:
    layout, configs = multi_platform_layout()
    data = layout.tar()
    default = read(data)
    assert default.format == "oci-layout"
    assert [(i.id, [str(r) for r in i.references]) for i in default.images] == [
        (configs["amd64"], ["docker.io/library/multi:1"])
    ]
    assert default.images[0].layers[0].digest == diff_id(LAYER)
    assert read(data, parse_platform("linux/arm64")).images[0].id == configs["arm64"]
    assert read(data, parse_platform("linux/arm64/v8")).images[0].id == configs["arm64"]
    assert read(data, parse_platform("linux/arm")).images[0].id == configs["arm/v7"]
    with pytest.raises(NotFound, match="requested platform linux/ppc64le"):
        read(data, parse_platform("linux/ppc64le"))


def test_oci_without_the_default_platform_must_be_told() -> None:
    layout = Layout()
    index = layout.index(
        [
            {**layout.image([LAYER], architecture="arm64"), "platform": platform("linux", "arm64")},
            {
                **layout.image([LAYER], architecture="riscv64"),
                "platform": platform("linux", "riscv64"),
            },
        ]
    )
    layout.manifests.append(named(index, ref_name="two"))
    with pytest.raises(NotFound, match=r"no image for platform linux/amd64 \(it has linux/arm64"):
        read(layout.tar())


def test_oci_only_image_loads_whatever_its_platform() -> None:
    layout = Layout()
    layout.manifests.append(layout.image([LAYER], architecture="arm64"))
    contents = read(layout.tar())
    assert len(contents.images) == 1
    assert contents.images[0].references == ()
    with pytest.raises(NotFound):
        read(layout.tar(), parse_platform("linux/amd64"))


def test_oci_names() -> None:
    layout = Layout()
    image = layout.image([LAYER])
    layout.manifests += [
        named(image, image_name="docker.io/library/busybox:latest", ref_name="latest"),
        named(image, image_name="example.com/app", ref_name="v2"),  # the tag completes it
        named(image, ref_name="ghcr.io/owner/tool:3"),  # a full reference alone
        named(image, ref_name="solo"),  # containerd takes it as a name: solo:latest
        named(image, ref_name="Not A Reference"),  # ignored
        image,
    ]
    (loaded,) = read(layout.tar()).images
    assert [familiar_string(r) for r in loaded.references] == [
        "busybox:latest",
        "example.com/app:v2",
        "ghcr.io/owner/tool:3",
        "solo:latest",
    ]


def test_oci_skips_artifacts_unknown_types_and_attestations() -> None:
    layout = Layout()
    image = layout.image([LAYER])
    empty = layout.blob(b"{}", "application/vnd.oci.empty.v1+json")
    sbom = layout.blob(b"spdx", "application/spdx+json")
    artifact = layout.blob(
        json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": empty, "layers": [sbom]}
        ).encode(),
        OCI_MANIFEST,
    )
    layout.manifests += [
        named(artifact, ref_name="sbom"),
        {**image, "mediaType": "application/vnd.oci.descriptor.v1+json"},
        named(image, ref_name="real"),
    ]
    (loaded,) = read(layout.tar()).images
    assert [familiar_string(r) for r in loaded.references] == ["real:latest"]
    only_artifacts = Layout(blobs=layout.blobs, manifests=[artifact])
    with pytest.raises(InvalidArchive, match="no image manifests"):
        read(only_artifacts.tar())


def test_oci_descriptors_are_verified() -> None:
    layout = Layout()
    image = layout.image([LAYER])
    manifest = json.loads(layout.blobs[image["digest"]])
    for descriptor, message in (
        ({**image, "size": image["size"] + 1}, "descriptor says"),
        ({**image, "digest": sha256(b"other")}, "is missing"),
    ):
        bad = Layout(blobs=dict(layout.blobs), manifests=[descriptor])
        with pytest.raises(InvalidArchive, match=message):
            read(bad.tar())
    tampered = Layout(blobs=dict(layout.blobs), manifests=[image])
    tampered.blobs[image["digest"]] = layout.blobs[image["digest"]].replace(b"2", b"3", 1)
    with pytest.raises(InvalidArchive, match="does not match its digest"):
        read(tampered.tar())
    # A config blob that is not what its descriptor says.
    config_digest = manifest["config"]["digest"]
    swapped = Layout(blobs=dict(layout.blobs), manifests=[image])
    swapped.blobs[config_digest] = image_config([diff_id(OTHER_LAYER)])
    with pytest.raises(InvalidArchive, match=f"blob {config_digest}"):
        read(swapped.tar())


def test_oci_layout_errors(tmp_path: Path) -> None:
    layout = Layout(layout_version="2.0.0")
    layout.manifests.append(layout.image([LAYER]))
    with pytest.raises(InvalidArchive, match=r"unsupported OCI version 2\.0\.0"):
        read(layout.tar())
    # An index that contains itself cannot be built with real digests; a deep chain can.
    deep = Layout()
    descriptor = deep.image([LAYER])
    for _ in range(10):
        descriptor = deep.index([descriptor])
    deep.manifests.append(descriptor)
    with pytest.raises(InvalidArchive, match="nested deeper than 8"):
        read(deep.tar())


def test_oci_layout_directory(tmp_path: Path) -> None:
    layout, configs = multi_platform_layout()
    with open_archive(layout.directory(tmp_path / "oci"), temporary_dir=tmp_path) as archive:
        assert isinstance(archive, DirectoryArchive)
        assert read_archive(archive).images[0].id == configs["amd64"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", "linux/amd64"),
        ("linux/x86_64", "linux/amd64"),
        ("Linux/AMD64", "linux/amd64"),
        ("linux/aarch64", "linux/arm64"),
        ("linux/arm64/v8", "linux/arm64"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/arm/6", "linux/arm/v6"),
    ],
)
def test_parse_platform(text: str, expected: str) -> None:
    assert str(parse_platform(text)) == expected


@pytest.mark.parametrize("text", ["linux", "", "linux/", "a/b/c/d"])
def test_parse_platform_errors(text: str) -> None:
    with pytest.raises(InvalidArchive, match="expected os/arch"):
        parse_platform(text)


def test_member_reader_never_reads_whole(tmp_path: Path) -> None:
    big = tmp_path / "big.tar"
    with tarfile.open(big, "w") as tar:
        info = tarfile.TarInfo("layer.tar")
        info.size = 8 << 20
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    with open_archive(big, temporary_dir=tmp_path) as archive, archive.open("layer.tar") as s:
        assert len(s.read(1 << 20)) == 1 << 20
        total = 1 << 20
        while chunk := s.read(1 << 20):
            total += len(chunk)
        assert total == 8 << 20
    assert [p.name for p in tmp_path.iterdir()] == ["big.tar"]


def test_docker_25_archive_with_more_platforms_in_its_index() -> None:
    """Docker's containerd store writes manifest.json for one platform, the index for all:
    `--platform` finds the others there."""
    layout = Layout()
    amd = layout.image([LAYER], architecture="amd64")
    arm = layout.image([OTHER_LAYER], architecture="arm64")
    index = layout.index(
        [
            {**amd, "platform": platform("linux", "amd64")},
            {**arm, "platform": platform("linux", "arm64")},
        ]
    )
    layout.manifests.append(named(index, image_name="docker.io/library/multi:1", ref_name="1"))
    files = layout.files()
    amd_manifest = json.loads(layout.blobs[amd["digest"]])
    files["manifest.json"] = json.dumps(
        [
            {
                "Config": "blobs/sha256/" + amd_manifest["config"]["digest"][7:],
                "RepoTags": ["multi:1"],
                "Layers": ["blobs/sha256/" + d["digest"][7:] for d in amd_manifest["layers"]],
            }
        ]
    ).encode()
    data = tar_of(files)
    default = read(data)
    assert default.format == "docker-archive"
    assert default.images[0].id == amd_manifest["config"]["digest"]
    arm64 = read(data, parse_platform("linux/arm64"))
    assert arm64.format == "oci-layout"
    assert arm64.images[0].id == json.loads(layout.blobs[arm["digest"]])["config"]["digest"]
    assert [familiar_string(r) for r in arm64.images[0].references] == ["multi:1"]
    with pytest.raises(NotFound, match="linux/s390x"):
        read(data, parse_platform("linux/s390x"))
