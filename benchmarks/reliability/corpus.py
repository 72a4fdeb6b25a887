"""The hostile input corpus, generated in code (no binaries in the repository): image
archives, layers, command lines and HTTP requests that an attacker, a broken tool or a
careless user could hand to catalog.

Every archive case is built from one valid image, made hostile one way: path traversal
and absolute names, symlink and hardlink escapes, decompression bombs of each kind,
huge PAX headers and names, too many entries, duplicates, invalid UTF-8, truncation at
every member, digests that do not match, malformed JSON in every member, oversized and
deeply nested documents. Each says whether catalog must refuse it (one line, catalog
unchanged) or accept it (a few are valid, if odd, and Docker loads them too), and which
limits to run it with: the bounded form lowers limits so that bombs and floods stay
small; the full form meets the default limits with real sizes.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import zstandard

from catalog.storage.archive.source import ArchiveLimits
from catalog.storage.compression import DecompressionLimits
from catalog.storage.layers import LayerLimits

REFUSE, ACCEPT = "refuse", "accept"

# --- tar members ------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One tar member. `pax` adds PAX records (a `path` record overrides the name);
    `kind` is a tarfile type; links name their target in `link`."""

    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    link: str = ""
    pax: dict[str, str] = field(default_factory=dict)


def tar(members: Sequence[Member]) -> bytes:
    """A PAX tar of `members`, in order, names exactly as given."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.type = member.kind
            info.mode = 0o755 if member.kind == tarfile.DIRTYPE else 0o644
            info.linkname = member.link
            info.pax_headers = dict(member.pax)
            if member.kind == tarfile.REGTYPE:
                info.size = len(member.data)
                archive.addfile(info, io.BytesIO(member.data))
            else:
                archive.addfile(info)
    return buffer.getvalue()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def compress(kind: str, data: bytes) -> bytes:
    if kind == "gzip":
        return gzip.compress(data, compresslevel=9, mtime=0)
    if kind == "zstd":
        return zstandard.ZstdCompressor(level=19).compress(data)
    if kind == "bzip2":
        return bz2.compress(data, compresslevel=9)
    return lzma.compress(data)


def zeros_tar(size: int) -> bytes:
    """A tar of one file of `size` zero bytes (what a bomb unpacks to)."""
    info = tarfile.TarInfo("zeros")
    info.size = size
    return info.tobuf(tarfile.PAX_FORMAT) + bytes(size + (-size % 512)) + bytes(1024)


def bomb(kind: str, size: int) -> bytes:
    """A compressed tar of one file of `size` zero bytes, compressed as a stream so that
    the uncompressed bytes never exist in memory at once."""
    info = tarfile.TarInfo("zeros")
    info.size = size
    chunk = bytes(1 << 20)
    parts: list[bytes] = []
    if kind == "gzip":
        import zlib

        gz = zlib.compressobj(9, zlib.DEFLATED, 31)
        parts.append(gz.compress(info.tobuf(tarfile.PAX_FORMAT)))
        parts += [gz.compress(chunk) for _ in range(size >> 20)]
        parts.append(gz.compress(bytes(1024)) + gz.flush())
        return b"".join(parts)
    stream: Any
    if kind == "zstd":
        stream = zstandard.ZstdCompressor(level=3).compressobj()
    elif kind == "bzip2":
        stream = bz2.BZ2Compressor(9)
    else:
        stream = lzma.LZMACompressor()
    parts.append(stream.compress(info.tobuf(tarfile.PAX_FORMAT)))
    parts += [stream.compress(chunk) for _ in range(size >> 20)]
    parts.append(stream.compress(bytes(1024)))
    parts.append(stream.flush())
    return b"".join(parts)


# --- a valid image, in both formats -----------------------------------------------------

LAYER = tar(
    [
        Member("etc/", kind=tarfile.DIRTYPE),
        Member("etc/hostname", b"hostile\n"),
        Member("bin/sh", b"#!" + b"x" * 200),
    ]
)
SECOND_LAYER = tar([Member("app/run", b"run" * 50)])


def config(diff_ids: Sequence[str], **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Labels": {"corpus": "hostile"}},
        "history": [
            {"created": "2024-01-01T00:00:00Z", "created_by": f"layer {i}"}
            for i in range(len(diff_ids))
        ],
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
    }
    document.update(fields)
    return document


def encode(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


CONFIG = encode(config([digest(LAYER)]))


def docker_archive(**options: Any) -> bytes:
    """The bytes of `docker_members(**options)` as a tar."""
    return tar(docker_members(**options))


def _cut(data: bytes, length: int) -> bytes:
    return data[:length]


def _layer_bomb(kind: str, size: int) -> bytes:
    return _one_layer(bomb(kind, size))()


def docker_members(
    *,
    config_bytes: bytes = CONFIG,
    layers: Sequence[bytes] = (LAYER,),
    manifest: Any = None,
    tags: Sequence[str] = ("hostile:1",),
) -> list[Member]:
    """A `docker save` v1.2 archive of one image (`manifest` replaces manifest.json's
    document when given; bytes are used as they are)."""
    members = [Member("c.json", config_bytes)]
    names = []
    for position, layer in enumerate(layers):
        names.append(f"l{position}/layer.tar")
        members.append(Member(names[-1], layer))
    if manifest is None:
        manifest = [{"Config": "c.json", "RepoTags": list(tags), "Layers": names}]
    raw = manifest if isinstance(manifest, bytes) else encode(manifest)
    members.append(Member("manifest.json", raw))
    return members


@dataclass
class Layout:
    """An OCI image layout of one image, whose parts a case may replace before `members`."""

    layers: list[bytes] = field(default_factory=lambda: [LAYER])
    config_bytes: bytes = CONFIG
    layer_descriptors: list[dict[str, Any]] | None = None
    config_descriptor: dict[str, Any] | None = None
    manifest_bytes: bytes | None = None
    manifest_descriptor: dict[str, Any] | None = None
    index_bytes: bytes | None = None
    layout_bytes: bytes = b'{"imageLayoutVersion":"1.0.0"}'
    extra_blobs: dict[str, bytes] = field(default_factory=dict)
    omit: set[str] = field(default_factory=set)

    def build(self) -> dict[str, bytes]:
        blobs = {digest(layer): layer for layer in self.layers}
        blobs[digest(self.config_bytes)] = self.config_bytes
        layer_descriptors = self.layer_descriptors or [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": digest(layer),
                "size": len(layer),
            }
            for layer in self.layers
        ]
        config_descriptor = self.config_descriptor or {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest(self.config_bytes),
            "size": len(self.config_bytes),
        }
        manifest = (
            self.manifest_bytes
            if self.manifest_bytes is not None
            else encode(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": config_descriptor,
                    "layers": layer_descriptors,
                }
            )
        )
        blobs[digest(manifest)] = manifest
        descriptor = self.manifest_descriptor or {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest(manifest),
            "size": len(manifest),
            "annotations": {"io.containerd.image.name": "docker.io/library/hostile:oci"},
        }
        index = (
            self.index_bytes
            if self.index_bytes is not None
            else encode(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": [descriptor],
                }
            )
        )
        blobs.update(self.extra_blobs)
        files = {"oci-layout": self.layout_bytes, "index.json": index}
        for name, data in blobs.items():
            files["blobs/sha256/" + name.removeprefix("sha256:")] = data
        return {name: data for name, data in files.items() if name not in self.omit}

    def members(self) -> list[Member]:
        return [Member(name, data) for name, data in self.build().items()]


def descriptor_of(data: bytes, media_type: str) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest(data), "size": len(data)}


# --- the cases --------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveCase:
    """One hostile input to `catalog load -i FILE` (or, with `append`, to `catalog image
    append scratch FILE`). `limits` run it in process with lowered bounds instead of
    through the CLI; `full_only` cases are too big for the bounded form."""

    name: str
    group: str
    build: Callable[[], bytes]
    expect: str = REFUSE
    append: bool = False
    limits: ArchiveLimits | None = None
    layer_limits: LayerLimits | None = None
    full_only: bool = False
    bounded_only: bool = False


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# What each JSON document is replaced with, in the malformed-JSON cases.
MALFORMED_JSON: dict[str, bytes] = {
    "syntax error": b'{"a": [1, 2,',
    "empty": b"",
    "null": b"null",
    "wrong type": b'"a string"',
    "deep nesting": _deep(5000),
    "NaN": b"[NaN]",
    "1e400": b'{"size": 1e400}',
    "5000-digit number": b"[" + b"9" * 5000 + b"]",
    "invalid UTF-8": b'{"a": "\xff\xfe"}',
    "UTF-16": '{"a": 1}'.encode("utf-16"),
}


def _malformed_json_cases() -> list[ArchiveCase]:
    cases = []
    for label, bad in MALFORMED_JSON.items():

        def docker_manifest(bad: bytes = bad) -> bytes:
            return tar(docker_members(manifest=bad))

        def docker_config(bad: bytes = bad) -> bytes:
            return tar(docker_members(config_bytes=bad))

        def oci_layout(bad: bytes = bad) -> bytes:
            return tar(Layout(layout_bytes=bad).members())

        def oci_index(bad: bytes = bad) -> bytes:
            return tar(Layout(index_bytes=bad).members())

        def oci_manifest(bad: bytes = bad) -> bytes:
            return tar(Layout(manifest_bytes=bad).members())

        def oci_config(bad: bytes = bad) -> bytes:
            return tar(Layout(config_bytes=bad).members())

        for member, build in (
            ("manifest.json", docker_manifest),
            ("docker config", docker_config),
            ("oci-layout", oci_layout),
            ("index.json", oci_index),
            ("OCI manifest", oci_manifest),
            ("OCI config", oci_config),
        ):
            cases.append(ArchiveCase(f"{member}: {label}", "malformed JSON", build))
    return cases


def _field_type_cases() -> list[ArchiveCase]:
    wrong_manifests: dict[str, Any] = {
        "Config a number": [{"Config": 1, "Layers": ["l0/layer.tar"]}],
        "Layers a string": [{"Config": "c.json", "Layers": "l0/layer.tar"}],
        "RepoTags numbers": [{"Config": "c.json", "RepoTags": [1], "Layers": ["l0/layer.tar"]}],
        "RepoTags invalid": [
            {"Config": "c.json", "RepoTags": ["UPPER:case"], "Layers": ["l0/layer.tar"]}
        ],
        "Parent an object": [{"Config": "c.json", "Parent": {}, "Layers": ["l0/layer.tar"]}],
        "an object": {"Config": "c.json"},
        "missing layer": [{"Config": "c.json", "Layers": ["l0/layer.tar", "l9/layer.tar"]}],
        "too few layers": [{"Config": "c.json", "Layers": []}],
    }
    cases = [
        ArchiveCase(f"manifest.json {label}", "field types", partial(docker_archive, manifest=m))
        for label, m in wrong_manifests.items()
    ]
    wrong_configs: dict[str, dict[str, Any]] = {
        "rootfs a string": {"rootfs": "layers"},
        "diff_ids not digests": {"rootfs": {"type": "layers", "diff_ids": ["x"]}},
        "labels not strings": {"config": {"Labels": {"a": 1}}},
        "history an object": {"history": {}},
        "created a number": {"created": 5},
        "created not RFC 3339": {"created": "yesterday"},
        "a windows image": {"os": "windows"},
        "126 layers": {
            "rootfs": {"type": "layers", "diff_ids": [digest(LAYER)] * 126},
            "history": [],
        },
    }
    for label, fields in wrong_configs.items():
        raw = encode(config([digest(LAYER)], **fields))
        layers = [LAYER] * 126 if label == "126 layers" else [LAYER]
        cases.append(
            ArchiveCase(
                f"config {label}",
                "field types",
                partial(docker_archive, config_bytes=raw, layers=layers),
            )
        )
    return cases


def _path_cases() -> list[ArchiveCase]:
    valid = docker_members()

    def with_member(member: Member) -> Callable[[], bytes]:
        return lambda: tar([member, *valid])

    cases = [
        ArchiveCase("member ../evil", "paths", with_member(Member("../evil", b"x"))),
        ArchiveCase("member /etc/evil", "paths", with_member(Member("/etc/evil", b"x"))),
        ArchiveCase("member a/../../b", "paths", with_member(Member("a/../../b", b"x"))),
        ArchiveCase("member C:\\evil", "paths", with_member(Member("C:\\evil", b"x"))),
        ArchiveCase("member \\\\host\\share", "paths", with_member(Member("\\\\host\\s", b"x"))),
        ArchiveCase(
            "NUL in a member name",
            "paths",
            with_member(Member("x", pax={"path": "manifest\x00.json"})),
        ),
        ArchiveCase(
            "member name of 5000 characters",
            "paths",
            with_member(Member("a/" * 2500 + "x", b"x")),
        ),
        ArchiveCase(
            "PAX header of 2 MiB",
            "paths",
            with_member(Member("x", pax={"comment": "c" * (2 << 20)})),
        ),
        ArchiveCase(
            "invalid UTF-8 in a member name",
            "invalid UTF-8",
            with_member(Member("odd-\udcff-name", b"x")),
            expect=ACCEPT,
        ),
    ]
    for label, path in (
        ("Config ../../etc/passwd", "../../etc/passwd"),
        ("Config /etc/passwd", "/etc/passwd"),
        ("Config C:/Windows/win.ini", "C:/Windows/win.ini"),
    ):
        manifest = [{"Config": path, "Layers": ["l0/layer.tar"]}]
        cases.append(
            ArchiveCase(f"manifest {label}", "paths", partial(docker_archive, manifest=manifest))
        )
    for label, path in (("../x", "../x"), ("/l0/layer.tar", "/l0/layer.tar")):
        manifest = [{"Config": "c.json", "Layers": [path]}]
        cases.append(
            ArchiveCase(
                f"manifest Layers {label}",
                "paths",
                partial(docker_archive, manifest=manifest),
            )
        )
    return cases


def _link_cases() -> list[ArchiveCase]:
    def layer_as(*members: Member) -> Callable[[], bytes]:
        base = [m for m in docker_members() if m.name != "l0/layer.tar"]
        return lambda: tar([*members, *base])

    symlink, hardlink = tarfile.SYMTYPE, tarfile.LNKTYPE
    chain = [Member(f"h{i}", kind=symlink, link=f"h{i + 1}") for i in range(10)]
    return [
        ArchiveCase(
            "layer.tar symlink to ../../../etc/passwd",
            "links",
            layer_as(Member("l0/layer.tar", kind=symlink, link="../../../etc/passwd")),
        ),
        ArchiveCase(
            "layer.tar symlink to /etc/passwd",
            "links",
            layer_as(Member("l0/layer.tar", kind=symlink, link="/etc/passwd")),
        ),
        ArchiveCase(
            "layer.tar hardlink to ../../etc/shadow",
            "links",
            layer_as(Member("l0/layer.tar", kind=hardlink, link="../../etc/shadow")),
        ),
        ArchiveCase(
            "layer.tar hardlink to /etc/shadow",
            "links",
            layer_as(Member("l0/layer.tar", kind=hardlink, link="/etc/shadow")),
        ),
        ArchiveCase(
            "symlink loop",
            "links",
            layer_as(
                Member("l0/layer.tar", kind=symlink, link="../m/layer.tar"),
                Member("m/layer.tar", kind=symlink, link="../l0/layer.tar"),
            ),
        ),
        ArchiveCase(
            "symlink chain of 10",
            "links",
            layer_as(Member("l0/layer.tar", kind=symlink, link="../h0"), *chain),
        ),
        ArchiveCase(
            "directory symlink leaving the archive",
            "links",
            layer_as(Member("l0", kind=symlink, link="../../..")),
        ),
        ArchiveCase(
            "layer.tar a FIFO",
            "links",
            layer_as(Member("l0/layer.tar", kind=tarfile.FIFOTYPE)),
        ),
        ArchiveCase(
            "layer.tar a directory",
            "links",
            layer_as(Member("l0/layer.tar", kind=tarfile.DIRTYPE)),
        ),
    ]


def _one_layer(layer: bytes) -> Callable[[], bytes]:
    raw = encode(config([digest(layer)]))
    return lambda: tar(docker_members(config_bytes=raw, layers=[layer]))


def _layer_cases() -> list[ArchiveCase]:
    hardlink = tarfile.LNKTYPE
    cases = [
        ArchiveCase(
            "layer entry ../../evil", "layer content", _one_layer(tar([Member("../../evil", b"x")]))
        ),
        ArchiveCase(
            "layer hardlink to ../../etc/shadow",
            "layer content",
            _one_layer(tar([Member("x", kind=hardlink, link="../../etc/shadow")])),
        ),
        ArchiveCase(
            # Nothing is extracted; squash refuses it (docs/layers-and-squash.md §2).
            "layer hardlink to a missing path",
            "layer content",
            _one_layer(tar([Member("x", kind=hardlink, link="nowhere")])),
            expect=ACCEPT,
        ),
        ArchiveCase("layer lone .wh.", "layer content", _one_layer(tar([Member("etc/.wh.", b"")]))),
        ArchiveCase(
            "layer NUL in an entry name",
            "layer content",
            _one_layer(tar([Member("x", b"x", pax={"path": "a\x00b"})])),
        ),
        ArchiveCase(
            "layer PAX header of 2 MiB",
            "layer content",
            _one_layer(tar([Member("x", b"x", pax={"comment": "c" * (2 << 20)})])),
        ),
        ArchiveCase(
            "layer path of 5000 characters",
            "layer content",
            _one_layer(tar([Member("d/" * 2500 + "x", b"x")])),
        ),
        ArchiveCase(
            "layer not a tar", "layer content", _one_layer(b"this is not a tar archive" * 40)
        ),
        ArchiveCase(
            "layer cut inside an entry",
            "truncation",
            _one_layer(tar([Member("big", b"b" * 4096)])[:1536]),
        ),
        ArchiveCase(
            "layer followed by 2 MiB",
            "layer content",
            _one_layer(tar([Member("a", b"a")]) + bytes(2 << 20)),
        ),
        ArchiveCase(
            "duplicate entries in a layer",
            "duplicates",
            _one_layer(tar([Member("a", b"first"), Member("a", b"second")])),
            expect=ACCEPT,
        ),
        ArchiveCase(
            "invalid UTF-8 in a layer entry name",
            "invalid UTF-8",
            _one_layer(tar([Member("odd-\udcff-name", b"x")])),
            expect=ACCEPT,
        ),
    ]
    many = tar([Member(f"f{i}") for i in range(1001)])
    cases.append(
        ArchiveCase(
            "layer of 1001 entries, 1000 allowed",
            "entries",
            _one_layer(many),
            layer_limits=LayerLimits(max_entries=1000),
            bounded_only=True,
        )
    )
    cases.append(
        ArchiveCase(
            "layer of 100,000 entries",
            "entries",
            lambda: _one_layer(tar([Member(f"d{i // 1000}/f{i}") for i in range(100_000)]))(),
            expect=ACCEPT,
            full_only=True,
        )
    )
    return cases


def _entry_cases() -> list[ArchiveCase]:
    return [
        ArchiveCase(
            "archive of 1001 members, 1000 allowed",
            "entries",
            lambda: tar([*(Member(f"x{i}") for i in range(1001)), *docker_members()]),
            limits=ArchiveLimits(max_entries=1000),
            bounded_only=True,
        ),
        ArchiveCase(
            "archive of 100,001 members",
            "entries",
            lambda: tar([*(Member(f"x{i}") for i in range(100_001)), *docker_members()]),
            full_only=True,
        ),
    ]


def _duplicate_cases() -> list[ArchiveCase]:
    valid = docker_members()
    good_manifest = valid[-1]
    return [
        ArchiveCase(
            "manifest.json twice, the last invalid",
            "duplicates",
            lambda: tar([*valid, Member("manifest.json", b"not json")]),
        ),
        ArchiveCase(
            "manifest.json twice, the last valid",
            "duplicates",
            lambda: tar([Member("manifest.json", b"not json"), *valid[:-1], good_manifest]),
            expect=ACCEPT,
        ),
        ArchiveCase(
            "one image listed twice",
            "duplicates",
            lambda: tar(
                docker_members(
                    manifest=[
                        {"Config": "c.json", "RepoTags": ["a:1"], "Layers": ["l0/layer.tar"]},
                        {"Config": "./c.json", "RepoTags": ["b:1"], "Layers": ["l0/layer.tar"]},
                    ]
                )
            ),
            expect=ACCEPT,
        ),
    ]


BOMB_KINDS = ("gzip", "zstd", "bzip2", "xz")
# In the bounded form bombs meet lowered limits: 8 MiB against 10:1 plus 1 MiB.
SMALL_BOMB = 8 << 20
LOW_RATIO = DecompressionLimits(max_ratio=10, allowance=1 << 20)
# In the full form they meet the defaults (256:1 plus 64 MiB): 320 MiB unpacked.
BIG_BOMB = 320 << 20


def _bomb_cases() -> list[ArchiveCase]:
    cases = []
    for kind in BOMB_KINDS:
        cases += [
            ArchiveCase(
                f"{kind} archive bomb (ratio, lowered)",
                "bombs",
                partial(bomb, kind, SMALL_BOMB),
                limits=ArchiveLimits(decompression=LOW_RATIO),
                bounded_only=True,
            ),
            ArchiveCase(
                f"{kind} layer bomb (ratio, lowered)",
                "bombs",
                partial(_layer_bomb, kind, SMALL_BOMB),
                layer_limits=LayerLimits(decompression=LOW_RATIO),
                bounded_only=True,
            ),
            ArchiveCase(
                f"{kind} archive bomb",
                "bombs",
                partial(bomb, kind, BIG_BOMB),
                full_only=True,
            ),
            ArchiveCase(
                f"{kind} layer bomb",
                "bombs",
                partial(_layer_bomb, kind, BIG_BOMB),
                full_only=True,
            ),
        ]
    absolute = DecompressionLimits(max_ratio=1 << 20, allowance=0, max_bytes=2 << 20)
    cases += [
        ArchiveCase(
            "gzip archive over the absolute bound (lowered)",
            "bombs",
            lambda: bomb("gzip", 4 << 20),
            limits=ArchiveLimits(decompression=absolute),
        ),
        ArchiveCase(
            "xz layer over the absolute bound (lowered)",
            "bombs",
            lambda: _one_layer(bomb("xz", 4 << 20))(),
            layer_limits=LayerLimits(decompression=absolute),
        ),
        ArchiveCase(
            "zstd frame asking for a 2 GiB window",
            "bombs",
            lambda: _one_layer(_zstd_with_window(31))(),
        ),
    ]
    return cases


def _zstd_with_window(window_log: int) -> bytes:
    """A zstd frame whose header asks for a 2**window_log byte window."""
    frame = zstandard.ZstdCompressor(
        compression_params=zstandard.ZstdCompressionParameters(
            window_log=window_log, enable_ldm=True
        )
    ).compress(LAYER)
    return frame


def _truncation_cases() -> list[ArchiveCase]:
    cases = []
    for form, members in (("docker", docker_members()), ("OCI", Layout().members())):
        data = tar(members)
        # Member offsets, as tarfile reads them back.
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            infos = archive.getmembers()
        for info in infos:
            cases.append(
                ArchiveCase(
                    f"{form} archive cut in the header of {info.name}",
                    "truncation",
                    partial(_cut, data, info.offset + 100),
                )
            )
            if info.size > 1:
                cases.append(
                    ArchiveCase(
                        f"{form} archive cut in the data of {info.name}",
                        "truncation",
                        partial(_cut, data, info.offset_data + info.size // 2),
                    )
                )
    whole = tar(docker_members())
    for kind in BOMB_KINDS:
        packed = compress(kind, whole)
        cases.append(
            ArchiveCase(
                f"{kind} archive cut in half",
                "truncation",
                partial(_cut, packed, len(packed) // 2),
            )
        )
    return cases


def _digest_cases() -> list[ArchiveCase]:
    other = digest(b"something else")
    layer_type = "application/vnd.oci.image.layer.v1.tar"
    config_type = "application/vnd.oci.image.config.v1+json"
    manifest_type = "application/vnd.oci.image.manifest.v1+json"
    return [
        ArchiveCase(
            "docker config with a wrong diff ID",
            "digests",
            lambda: tar(docker_members(config_bytes=encode(config([other])))),
        ),
        ArchiveCase(
            "OCI layer digest wrong",
            "digests",
            lambda: tar(
                Layout(
                    layer_descriptors=[
                        {"mediaType": layer_type, "digest": other, "size": len(LAYER)}
                    ],
                    extra_blobs={other: LAYER},
                ).members()
            ),
        ),
        ArchiveCase(
            "OCI layer size wrong",
            "digests",
            lambda: tar(
                Layout(
                    layer_descriptors=[
                        {"mediaType": layer_type, "digest": digest(LAYER), "size": len(LAYER) + 1}
                    ]
                ).members()
            ),
        ),
        ArchiveCase(
            "OCI config digest wrong",
            "digests",
            lambda: tar(
                Layout(
                    config_descriptor={
                        "mediaType": config_type,
                        "digest": other,
                        "size": len(CONFIG),
                    },
                    extra_blobs={other: CONFIG},
                ).members()
            ),
        ),
        ArchiveCase(
            "OCI manifest digest wrong",
            "digests",
            lambda: tar(
                Layout(
                    manifest_descriptor={"mediaType": manifest_type, "digest": other, "size": 10},
                    extra_blobs={other: b"x" * 10},
                ).members()
            ),
        ),
        ArchiveCase(
            "OCI sha512 digests",
            "digests",
            lambda: tar(
                Layout(
                    manifest_descriptor={
                        "mediaType": manifest_type,
                        "digest": "sha512:" + hashlib.sha512(b"x").hexdigest(),
                        "size": 1,
                    }
                ).members()
            ),
        ),
        ArchiveCase(
            "OCI malformed digest",
            "digests",
            lambda: tar(
                Layout(
                    manifest_descriptor={
                        "mediaType": manifest_type,
                        "digest": "sha256:xyz",
                        "size": 1,
                    }
                ).members()
            ),
        ),
        ArchiveCase(
            "OCI manifest blob missing",
            "digests",
            lambda: tar(
                [m for m in Layout().members() if m.name != _blob_name(_default_manifest())]
            ),
        ),
        ArchiveCase(
            "OCI layer blob missing",
            "digests",
            lambda: tar(Layout(omit={"blobs/sha256/" + digest(LAYER)[7:]}).members()),
        ),
    ]


def _default_manifest() -> bytes:
    layout = Layout()
    files = layout.build()
    index = json.loads(files["index.json"])
    name = "blobs/sha256/" + index["manifests"][0]["digest"][7:]
    return files[name]


def _blob_name(data: bytes) -> str:
    return "blobs/sha256/" + digest(data)[7:]


def _size_cases() -> list[ArchiveCase]:
    padded = b"[" + b" " * (5 << 20) + b"]"
    big_object = b"{" + b" " * (5 << 20) + b'"schemaVersion":2}'
    return [
        ArchiveCase(
            "manifest.json of 5 MiB", "sizes", lambda: tar(docker_members(manifest=padded))
        ),
        ArchiveCase(
            "config of 5 MiB",
            "sizes",
            lambda: tar(docker_members(config_bytes=CONFIG[:-1] + b" " * (5 << 20) + b"}")),
        ),
        ArchiveCase(
            "index.json of 5 MiB", "sizes", lambda: tar(Layout(index_bytes=big_object).members())
        ),
        ArchiveCase(
            "OCI manifest of 5 MiB",
            "sizes",
            lambda: tar(Layout(manifest_bytes=big_object).members()),
        ),
        ArchiveCase(
            "indexes nested 9 deep",
            "sizes",
            lambda: tar(_nested_indexes(9)),
        ),
        ArchiveCase(
            "index of 10,001 descriptors",
            "sizes",
            lambda: tar(
                Layout(
                    index_bytes=encode(
                        {
                            "schemaVersion": 2,
                            "manifests": [
                                {"mediaType": "x/unknown", "digest": digest(b"%d" % i), "size": 1}
                                for i in range(10_001)
                            ],
                        }
                    )
                ).members()
            ),
        ),
    ]


def _nested_indexes(depth: int) -> list[Member]:
    layout = Layout()
    files = layout.build()
    index_type = "application/vnd.oci.image.index.v1+json"
    child = json.loads(files["index.json"])["manifests"][0]
    blobs = {}
    for _ in range(depth):
        document = encode({"schemaVersion": 2, "mediaType": index_type, "manifests": [child]})
        blobs[_blob_name(document)] = document
        child = descriptor_of(document, index_type)
    files.update(blobs)
    files["index.json"] = encode({"schemaVersion": 2, "manifests": [child]})
    return [Member(name, data) for name, data in files.items()]


def _garbage_cases() -> list[ArchiveCase]:
    return [
        ArchiveCase("an empty file", "not an archive", lambda: b""),
        ArchiveCase("1 KiB of zeros", "not an archive", lambda: bytes(1024)),
        ArchiveCase("text", "not an archive", lambda: b"hello, this is not a tar\n" * 100),
        ArchiveCase("a PNG header", "not an archive", lambda: b"\x89PNG\r\n\x1a\n" + bytes(600)),
        ArchiveCase("gzip of garbage", "not an archive", lambda: gzip.compress(b"garbage" * 300)),
        ArchiveCase(
            "gzip magic, then garbage", "not an archive", lambda: b"\x1f\x8b\x08" + bytes(600)
        ),
        ArchiveCase(
            "zstd magic, then garbage", "not an archive", lambda: b"(\xb5/\xfd" + bytes(600)
        ),
        ArchiveCase(
            "an archive without manifest.json", "not an archive", lambda: tar([Member("x", b"x")])
        ),
        ArchiveCase(
            "an OCI layout of another version",
            "not an archive",
            lambda: tar(Layout(layout_bytes=b'{"imageLayoutVersion":"2.0.0"}').members()),
        ),
    ]


def _append_cases() -> list[ArchiveCase]:
    return [
        ArchiveCase(
            "append ../../evil", "append", lambda: tar([Member("../../evil", b"x")]), append=True
        ),
        ArchiveCase("append not a tar", "append", lambda: b"not a tar" * 100, append=True),
        ArchiveCase(
            "append a tar cut inside an entry",
            "append",
            lambda: tar([Member("big", b"b" * 4096)])[:1536],
            append=True,
        ),
        ArchiveCase(
            "append 2 MiB after the tar",
            "append",
            lambda: tar([Member("a", b"a")]) + bytes(2 << 20),
            append=True,
        ),
        ArchiveCase(
            "append a gzip bomb (lowered)",
            "append",
            lambda: bomb("gzip", SMALL_BOMB),
            append=True,
            layer_limits=LayerLimits(decompression=LOW_RATIO),
            bounded_only=True,
        ),
    ]


def archive_cases(*, full: bool) -> list[ArchiveCase]:
    """The archive and layer cases of the bounded (or the full) form."""
    cases = [
        *_path_cases(),
        *_link_cases(),
        *_layer_cases(),
        *_entry_cases(),
        *_duplicate_cases(),
        *_bomb_cases(),
        *_truncation_cases(),
        *_digest_cases(),
        *_malformed_json_cases(),
        *_field_type_cases(),
        *_size_cases(),
        *_garbage_cases(),
        *_append_cases(),
    ]
    return [c for c in cases if (c.full_only <= full) and not (c.bounded_only and full)]


# --- command lines ----------------------------------------------------------------------

# References Docker's grammar refuses (checked below), and valid ones that name nothing.
INVALID_REFERENCES = (
    "UPPER:tag",
    "a:b:c",
    "",
    " ",
    "x@sha256:123",
    "a" * 300,
    "x:" + "t" * 200,
    "a//b",
    "é:1",
    "a\x00b",
    "x" * 5000 + ":1",
    "[",
)
MISSING_REFERENCES = ("nosuch:1", "sha256:" + "0" * 64, "0" * 12, "sha256:xyz")
# `until` values: refused ones, and extreme ones Go accepts.
BAD_TIMES = (
    "99999999999999999999",
    "-99999999999",
    "",
    "1e400",
    "NaN",
    "9" * 5000,
    "0000-02-30",
    "2024-13-01",
    "9999999999999999999h",
    "1.5.5",
    "\x00",
)
EXTREME_TIMES = ("99999999999", "9999-12-31T23:00:00-05:00", "0000-01-01", "-2562047h")


@dataclass(frozen=True)
class CommandCase:
    """`catalog ARGS...`: the exit code it must end with (1: one line `Error: ...`;
    2: a usage error; 0: accepted) and whether it may change the catalog."""

    args: tuple[str, ...]
    exit_code: int = 1
    changes: bool = False


def command_cases() -> list[CommandCase]:
    cases: list[CommandCase] = []
    for ref in (*INVALID_REFERENCES, *MISSING_REFERENCES):
        # As the image a command works on: refused, or no such image.
        cases += [
            CommandCase(("tag", ref, "ok:1")),
            CommandCase(("rmi", ref)),
            CommandCase(("image", "inspect", ref)),
            CommandCase(("history", ref)),
            CommandCase(("image", "squash", ref)),
            CommandCase(("image", "squash", "--parent", ref, "hostile:1")),
            CommandCase(("save", "-o", "{tmp}/out.tar", ref)),
            CommandCase(("image", "append", ref, "{layer}")),
            CommandCase(("container", "create", "--image", ref)),
        ]
    for ref in (*INVALID_REFERENCES, "sha256:xyz"):
        # As a new name: refused (`sha256:...` is ambiguous), and never sent to a registry.
        cases += [
            CommandCase(("tag", "hostile:1", ref)),
            CommandCase(("image", "append", "-t", ref, "scratch", "{layer}")),
        ]
    for ref in INVALID_REFERENCES:
        cases += [CommandCase(("pull", ref)), CommandCase(("push", ref))]
    for value in BAD_TIMES:
        cases += [
            CommandCase(("images", "-f", f"until={value}")),
            CommandCase(("image", "prune", "-f", "--filter", f"until={value}")),
            CommandCase(("report", "stale-tags", "--older-than", value)),
            CommandCase(("image", "append", "--created", value, "scratch", "{layer}")),
        ]
    for value in EXTREME_TIMES:
        cases += [
            CommandCase(("images", "-f", f"until={value}"), exit_code=0),
            CommandCase(("report", "reclaimable", "--older-than", value), exit_code=0),
        ]
    cases += [CommandCase(("image", "prune", "-f", "--filter", "until=0000-01-01"), exit_code=0)]
    for flag in (
        "before=nosuch",
        "since=UPPER",
        "label=" + "k" * 5000,
        "reference=[",
        "reference=[-x]",
        "dangling=maybe",
        "foo=bar",
        "noequals",
        "label!",
    ):
        cases.append(CommandCase(("images", "-f", flag)))
    for flag in ("dangling=maybe", "until=1x", "foo=bar"):
        cases.append(CommandCase(("image", "prune", "-f", "--filter", flag)))
    for option, value in (
        ("--max-tags", "99999999999999999999"),
        ("--max-tags", "0"),
        ("--limit", "-1"),
    ):
        report = "stale-tags" if option == "--max-tags" else "layer-sharing"
        cases.append(CommandCase(("report", report, option, value)))
    cases += [
        CommandCase(("report", "growth", "--period", "year"), exit_code=2),
        CommandCase(("report", "nosuch")),
        CommandCase(("image", "append", "--label", "=x", "scratch", "{layer}")),
        CommandCase(("image", "append", "--label", "a b=c", "scratch", "{layer}")),
        CommandCase(("image", "append", "scratch", "/dev/zero")),
        CommandCase(("image", "append", "scratch", "{tmp}/missing.tar")),
        CommandCase(("image", "squash", "--layers", "99999999999999999999", "hostile:1")),
        CommandCase(("image", "squash", "--layers", "-5", "hostile:1")),
        CommandCase(("load", "--platform", "linux", "-i", "{layer}")),
        CommandCase(("load", "--platform", "a/b/c/d", "-i", "{layer}")),
        CommandCase(("load", "-i", "/dev/zero")),
        CommandCase(("load", "-i", "{tmp}/missing.tar")),
        CommandCase(("container", "create", "--image", "hostile:1", "--state", "odd"), exit_code=2),
        CommandCase(("gc", "--grace", "-1"), exit_code=2),
        CommandCase(("gc", "--grace", "nan"), exit_code=2),
        CommandCase(("history", "-H=maybe", "hostile:1"), exit_code=2),
        CommandCase(("serve", "--host", "0.0.0.0")),  # noqa: S104 - refused, never bound
        CommandCase(("serve", "--port", "70000"), exit_code=2),
        CommandCase(("save", "-o", "/nonexistent/dir/x.tar", "hostile:1")),
    ]
    return cases


# --- HTTP requests ----------------------------------------------------------------------


@dataclass(frozen=True)
class RequestCase:
    """One request to `catalog serve`: never a 5xx; 4xx with Docker's JSON error, one
    line (or, for `POST /images/load`, 200 with one error message in the stream)."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    load: bool = False


def _filters(key: str, value: str) -> str:
    return json.dumps({key: [value]})


def request_cases(archives: Sequence[ArchiveCase]) -> list[RequestCase]:
    cases: list[RequestCase] = []
    for ref in (*INVALID_REFERENCES, *MISSING_REFERENCES):
        if not ref.strip() or "\x00" in ref:
            continue  # not a path a client can send
        quoted = ref.replace("/", "%2F").replace("[", "%5B")
        cases += [
            RequestCase("GET", f"/images/{quoted}/json"),
            RequestCase("GET", f"/images/{quoted}/history"),
            RequestCase("DELETE", f"/images/{quoted}"),
            RequestCase("POST", f"/images/{quoted}/tag", (("repo", "ok"), ("tag", "1"))),
            RequestCase("GET", "/images/get", (("names", ref),)),
            RequestCase("GET", f"/images/{quoted}/get"),
            RequestCase("POST", f"/catalog/images/{quoted}/squash", body=b"{}"),
        ]
    for ref in (*INVALID_REFERENCES, "sha256:xyz"):
        if "\x00" in ref or not ref:
            continue  # an empty repo is a bare 200 that does nothing, as in moby
        cases.append(RequestCase("POST", "/images/hostile:1/tag", (("repo", ref),)))
    for ref in INVALID_REFERENCES:
        if not ref.strip() or "\x00" in ref:
            continue
        # Refused before any registry is asked.
        quoted = ref.replace("/", "%2F").replace("[", "%5B")
        cases += [
            RequestCase("POST", "/images/create", (("fromImage", ref),)),
            RequestCase("POST", f"/images/{quoted}/push"),
        ]
    for value in BAD_TIMES:
        cases += [
            RequestCase("GET", "/images/json", (("filters", _filters("until", value)),)),
            RequestCase("POST", "/images/prune", (("filters", _filters("until", value)),)),
            RequestCase("GET", "/catalog/reports/stale-tags", (("older_than", value),)),
        ]
    for filters in (
        "notjson",
        '{"label": "x"}',
        '{"foo": ["bar"]}',
        '{"dangling": ["maybe"]}',
        '{"reference": ["["]}',
        '{"before": ["nosuch"]}',
        '{"label":' + "[" * 3000 + "]" * 3000 + "}",
        '{"until": [1e400]}',
        "[NaN]",
    ):
        cases += [
            RequestCase("GET", "/images/json", (("filters", filters),)),
            RequestCase("POST", "/images/prune", (("filters", filters),)),
        ]
    for platform in ('{"os":"linux"}', "not json", "[" * 3000 + "]" * 3000, "1e400", "null"):
        cases += [
            RequestCase("GET", "/v1.49/images/hostile:1/json", (("platform", platform),)),
            RequestCase("GET", "/v1.48/images/hostile:1/history", (("platform", platform),)),
            RequestCase(
                "GET", "/v1.48/images/get", (("names", "hostile:1"), ("platform", platform))
            ),
        ]
    for version in ("/v1.23", "/v9.99", "/v1.24x"):
        cases.append(RequestCase("GET", f"{version}/images/json"))
    cases += [
        RequestCase("GET", "/v1.52/system/df", (("verbose", "maybe"),)),
        RequestCase("GET", "/system/df", (("type", "bogus"),)),
        RequestCase("GET", "/catalog/reports/nosuch"),
        RequestCase("GET", "/catalog/reports/stale-tags", (("max_tags", "9" * 30),)),
        RequestCase("GET", "/catalog/reports/stale-tags", (("max_tags", "1_000"),)),
        RequestCase("GET", "/catalog/reports/layer-sharing", (("limit", "-1"),)),
        RequestCase("GET", "/catalog/reports/growth", (("period", "year"),)),
        RequestCase("GET", "/catalog/reports/growth", (("bogus", "1"),)),
    ]
    for body in (
        b"not json",
        b"[]",
        b'{"layers": "x"}',
        b'{"tags": [1]}',
        b'{"bogus": 1}',
        b'{"layers": 99999999999999999999}',
        b'{"layers": 1e400}',
        _deep(50_000),
        b'{"tags": ["UPPER:x"]}',
    ):
        cases.append(RequestCase("POST", "/catalog/images/hostile:1/squash", body=body))
    for body in (b"not json", _deep(50_000), b"[NaN]"):
        cases.append(RequestCase("POST", "/auth", body=body))
    cases += [
        RequestCase(
            "POST",
            "/images/create",
            (("fromImage", "127.0.0.1:9/x:1"),),
            headers=(("X-Registry-Auth", "%%%"),),
        ),
        RequestCase(
            "POST", "/v1.48/images/load", (("platform", "[" * 3000 + "]" * 3000),), body=b""
        ),
    ]
    for case in archives:
        plain = case.limits is None and case.layer_limits is None and not case.append
        if plain and case.expect == REFUSE and not case.full_only:
            cases.append(RequestCase("POST", "/images/load", body=case.build(), load=True))
    return cases
