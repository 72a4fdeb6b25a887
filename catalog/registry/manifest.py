"""Manifests and indexes as registries serve them: media types, parsing, the platform a
pull chooses from an index, and the manifest a push builds.

Pure: no SQLAlchemy, no HTTP, no Typer.
"""

from __future__ import annotations

import json
import platform as host
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from catalog.docker.jsontext import JSONTextError, decode_json
from catalog.domain.digest import sha256_digest, validate_digest
from catalog.domain.platform import Platform
from catalog.errors import InvalidDigest, NotFound
from catalog.registry.errors import RegistryError
from catalog.storage.archive.formats import (
    ANNOTATION_REFERENCE_TYPE,
    CONFIG_TYPES,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
)
from catalog.storage.compression import GZIP, NONE, ZSTD

__all__ = [
    "ACCEPT",
    "DOCKER_CONFIG",
    "DOCKER_LAYER_GZIP",
    "OCI_CONFIG",
    "OCI_LAYER_GZIP",
    "Descriptor",
    "ImageIndex",
    "ImageManifest",
    "build_manifest",
    "choose_manifest",
    "host_platform",
    "layer_compression",
    "parse_manifest",
]

DOCKER_SCHEMA1 = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
# Every layer media type a pull takes, and the compression it announces (the bytes are
# sniffed all the same, as moby does).
LAYER_TYPES: Mapping[str, str] = {
    "application/vnd.oci.image.layer.v1.tar": NONE,
    OCI_LAYER_GZIP: GZIP,
    "application/vnd.oci.image.layer.v1.tar+zstd": ZSTD,
    "application/vnd.oci.image.layer.nondistributable.v1.tar": NONE,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": GZIP,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": ZSTD,
    "application/vnd.docker.image.rootfs.diff.tar": NONE,
    DOCKER_LAYER_GZIP: GZIP,
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": GZIP,
}
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
# What a pull accepts, as docker sends it: indexes first, then image manifests.
ACCEPT = ", ".join([OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST])
# containers/image and containerd bound manifests at 4 MiB.
MAX_MANIFEST_BYTES = 4 << 20


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    urls: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        # Go's ocispec.Descriptor field order.
        document: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.urls:
            document["urls"] = list(self.urls)
        if self.annotations:
            document["annotations"] = dict(self.annotations)
        return document


@dataclass(frozen=True)
class ImageManifest:
    """An image manifest (OCI or Docker schema 2), its bytes and their digest."""

    raw: bytes
    digest: str
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class ImageIndex:
    """An OCI index or Docker manifest list."""

    raw: bytes
    digest: str
    media_type: str
    manifests: tuple[Descriptor, ...]


def host_platform() -> Platform:
    """The platform a pull picks by default, as the daemon picks its own."""
    machine = host.machine() or "amd64"
    return Platform("linux", machine)


def layer_compression(media_type: str) -> str | None:
    """The compression a layer media type announces; None for a type that is no layer."""
    return LAYER_TYPES.get(media_type)


def _descriptor(value: object, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise RegistryError(f"invalid {where}: a descriptor is not a JSON object")
    media_type = value.get("mediaType") or ""
    digest = value.get("digest")
    size = value.get("size")
    if not isinstance(media_type, str) or not isinstance(digest, str):
        raise RegistryError(f"invalid {where}: a descriptor lacks its mediaType or digest")
    try:
        validate_digest(digest)
    except InvalidDigest as exc:
        raise RegistryError(f"invalid {where}: descriptor digest {digest!r}: {exc}") from None
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise RegistryError(f"invalid {where}: descriptor size must be a non-negative integer")
    platform = None
    raw_platform = value.get("platform")
    if isinstance(raw_platform, dict):
        os_, arch = raw_platform.get("os"), raw_platform.get("architecture")
        variant = raw_platform.get("variant")
        if isinstance(os_, str) and isinstance(arch, str):
            platform = Platform(os_, arch, variant if isinstance(variant, str) else None)
    annotations = value.get("annotations") or {}
    if not isinstance(annotations, dict):
        annotations = {}
    urls = value.get("urls") or []
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        platform=platform,
        annotations={str(k): str(v) for k, v in annotations.items()},
        urls=tuple(str(u) for u in urls) if isinstance(urls, list) else (),
    )


def parse_manifest(raw: bytes, content_type: str, where: str) -> ImageManifest | ImageIndex:
    """Parse what a registry served for a manifest; RegistryError for what a pull cannot
    use (schema 1, an unknown media type, an artifact)."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise RegistryError(f"{where}: manifest larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        document = decode_json(raw)
    except JSONTextError as exc:
        raise RegistryError(f"{where}: invalid manifest JSON: {exc}") from None
    if not isinstance(document, dict):
        raise RegistryError(f"{where}: invalid manifest: not a JSON object")
    declared = document.get("mediaType")
    media_type = declared if isinstance(declared, str) and declared else content_type
    media_type = media_type.split(";")[0].strip()
    if document.get("schemaVersion") == 1 or media_type in DOCKER_SCHEMA1:
        raise RegistryError(
            f"{where}: Docker image manifest schema 1 is not supported; push the image again "
            "with a current client"
        )
    if not media_type and "manifests" in document:
        media_type = OCI_INDEX
    elif not media_type and "config" in document:
        media_type = OCI_MANIFEST
    digest = sha256_digest(raw)
    if media_type in INDEX_TYPES:
        entries = document.get("manifests") or []
        if not isinstance(entries, list):
            raise RegistryError(f"{where}: invalid index: manifests must be a list")
        manifests = tuple(_descriptor(entry, f"{where} index") for entry in entries)
        return ImageIndex(raw=raw, digest=digest, media_type=media_type, manifests=manifests)
    if media_type not in MANIFEST_TYPES:
        raise RegistryError(f"{where}: unsupported manifest media type {media_type!r}")
    if document.get("schemaVersion") != 2:
        raise RegistryError(f"{where}: invalid manifest: schemaVersion must be 2")
    config = _descriptor(document.get("config"), f"{where} manifest")
    if config.media_type not in CONFIG_TYPES:
        raise RegistryError(
            f"{where}: not an image: unsupported config media type {config.media_type!r}"
        )
    layers = document.get("layers") or []
    if not isinstance(layers, list):
        raise RegistryError(f"{where}: invalid manifest: layers must be a list")
    descriptors = tuple(_descriptor(layer, f"{where} manifest") for layer in layers)
    for layer in descriptors:
        if layer_compression(layer.media_type) is None:
            raise RegistryError(f"{where}: unsupported layer media type {layer.media_type!r}")
    return ImageManifest(
        raw=raw, digest=digest, media_type=media_type, config=config, layers=descriptors
    )


def choose_manifest(index: ImageIndex, wanted: Platform, where: str) -> Descriptor:
    """The image manifest of `index` for `wanted`, as docker picks it: attestations and
    `unknown/unknown` entries skipped, an exact variant before a compatible one, the
    first of equals."""
    candidates = []
    for descriptor in index.manifests:
        if ANNOTATION_REFERENCE_TYPE in descriptor.annotations:
            continue
        if descriptor.media_type not in MANIFEST_TYPES | INDEX_TYPES:
            continue
        offered = descriptor.platform
        if offered is None or "unknown" in (offered.os, offered.architecture):
            continue
        if wanted.matches(offered):
            candidates.append(descriptor)
    if not candidates:
        raise NotFound(f"{where}: no matching manifest for {wanted} in the manifest list entries")
    candidates.sort(key=lambda d: d.platform is None or d.platform.variant != wanted.variant)
    return candidates[0]


def go_json(document: Any) -> bytes:
    """Compact JSON as Go's json.Marshal writes it (minus its HTML escaping)."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def build_manifest(config: bytes, layers: Sequence[Descriptor], *, oci: bool) -> tuple[bytes, str]:
    """A new image manifest for `config` and `layers` (bottom first): Docker schema 2,
    as docker push writes it, unless a layer needs OCI (zstd, plain tar). Returns its
    bytes and media type."""
    media_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": Descriptor(
            OCI_CONFIG if oci else DOCKER_CONFIG, sha256_digest(config), len(config)
        ).to_json(),
        "layers": [layer.to_json() for layer in layers],
    }
    return go_json(document), media_type


def docker_layer_type(media_type: str) -> str | None:
    """The Docker schema 2 type of an OCI layer type; None where Docker has none (zstd)."""
    if media_type in (DOCKER_LAYER_GZIP, OCI_LAYER_GZIP):
        return DOCKER_LAYER_GZIP
    if media_type == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
        return media_type
    return None


def oci_layer_type(media_type: str) -> str:
    """The OCI type of a layer type (Docker's gzip types are OCI's gzip)."""
    if media_type in (DOCKER_LAYER_GZIP, OCI_LAYER_GZIP):
        return OCI_LAYER_GZIP
    if media_type == "application/vnd.docker.image.rootfs.diff.tar":
        return "application/vnd.oci.image.layer.v1.tar"
    if media_type == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
        return "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    return media_type
