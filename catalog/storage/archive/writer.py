"""Writing images as Docker 25+ `docker save` archives (docs/archives.md §6).

The archive is an OCI image layout that also carries Docker's legacy `manifest.json`
and `repositories`, so Docker (either image store), skopeo (`docker-archive:` and
`oci-archive:`), umoci and catalog's own loader all read it:

    blobs/sha256/<hex>   each config (its bytes as stored), each layer as its uncompressed
                         tar (hex = diff ID), each OCI image manifest; every blob once
    index.json           one manifest descriptor per tag, annotated with the full name
                         (`io.containerd.image.name`) and the tag
                         (`org.opencontainers.image.ref.name`); one plain descriptor for
                         an image saved without a tag
    manifest.json        Docker's array of {Config, RepoTags, Layers[, Parent]}
    oci-layout           {"imageLayoutVersion": "1.0.0"}
    repositories         {familiar name: {tag: top layer's diff ID hex}}, when tagged

The tar is written as a stream (`tarfile` mode "w|"): layers are copied from their blobs
in chunks, never held in memory, and each is re-hashed on the way, so a corrupt blob
fails the save instead of being exported. The output is deterministic: entries sorted by
name, every mtime the epoch, owner 0:0 with no user or group names, JSON written in one
fixed form. Saving the same images twice gives byte-identical archives.

Pure: no SQLAlchemy; layer bytes come through the small `LayerBlobs` protocol, which the
content store satisfies.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from catalog.domain.digest import SHA256_PREFIX, image_id, sha256_digest
from catalog.domain.reference import Named, familiar_name, familiar_string
from catalog.errors import CorruptBlob

MEDIA_TYPE_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_LAYER = "application/vnd.oci.image.layer.v1.tar"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"

BLOBS_DIR = "blobs/sha256/"
INDEX_FILE = "index.json"
MANIFEST_FILE = "manifest.json"
LAYOUT_FILE = "oci-layout"
REPOSITORIES_FILE = "repositories"
# Docker writes this exact text (a Go string constant, with its space).
LAYOUT_CONTENT = b'{"imageLayoutVersion": "1.0.0"}'

_FILE_MODE = 0o644
_DIRECTORY_MODE = 0o755


class LayerBlobs(Protocol):
    """Where layer tars come from: `ContentStore` has this shape."""

    def size(self, digest: str) -> int: ...

    def open(self, digest: str, *, verify: bool = False) -> BinaryIO: ...


@dataclass(frozen=True)
class SavedImage:
    """One image to write: its config bytes, its layers' diff IDs (bottom first, as in
    the config) and the tagged references to save it under (none: saved untagged)."""

    config: bytes
    diff_ids: tuple[str, ...]
    tags: tuple[Named, ...] = ()
    # Written as manifest.json's `Parent` when the parent is saved in the same archive.
    parent_id: str | None = None
    id: str = field(init=False)

    def __post_init__(self) -> None:
        for tag in self.tags:
            if tag.tag is None or tag.digest is not None:
                raise ValueError(f"{tag} is not a tag reference")
        object.__setattr__(self, "id", image_id(self.config))


def _hex(digest: str) -> str:
    return digest.removeprefix(SHA256_PREFIX)


def _json(document: Any) -> bytes:
    """Compact JSON, as Go's json.Marshal writes it (minus its HTML escaping)."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _descriptor(media_type: str, digest: str, size: int) -> dict[str, Any]:
    # Go's ocispec.Descriptor field order.
    return {"mediaType": media_type, "digest": digest, "size": size}


def image_manifest(image: SavedImage, layer_sizes: dict[str, int]) -> bytes:
    """The OCI image manifest of `image` (moby's save.go builds the same)."""
    return _json(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_MANIFEST,
            "config": _descriptor(MEDIA_TYPE_CONFIG, image.id, len(image.config)),
            "layers": [
                _descriptor(MEDIA_TYPE_LAYER, diff_id, layer_sizes[diff_id])
                for diff_id in image.diff_ids
            ],
        }
    )


@dataclass(frozen=True)
class ArchivePlan:
    """Everything but the layer bytes: the small files, and which blobs go where."""

    small_files: dict[str, bytes]  # archive path -> content (configs, manifests, JSON)
    layer_files: dict[str, tuple[str, int]]  # archive path -> (diff ID, size)

    def paths(self) -> list[str]:
        return sorted({*self.small_files, *self.layer_files})


def plan_archive(images: Sequence[SavedImage], layer_sizes: dict[str, int]) -> ArchivePlan:
    """Lay out the archive of `images` (in the order given; duplicates are a bug)."""
    ids = [image.id for image in images]
    if len(set(ids)) != len(ids):
        raise ValueError("an image is listed twice")
    saved = set(ids)
    small: dict[str, bytes] = {}
    layers: dict[str, tuple[str, int]] = {}
    index: list[dict[str, Any]] = []
    legacy: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    for image in images:
        small[BLOBS_DIR + _hex(image.id)] = image.config
        for diff_id in image.diff_ids:
            layers[BLOBS_DIR + _hex(diff_id)] = (diff_id, layer_sizes[diff_id])
        manifest = image_manifest(image, layer_sizes)
        manifest_digest = sha256_digest(manifest)
        small[BLOBS_DIR + _hex(manifest_digest)] = manifest
        descriptor = _descriptor(MEDIA_TYPE_MANIFEST, manifest_digest, len(manifest))
        for tag in image.tags:
            assert tag.tag is not None
            annotations = {ANNOTATION_IMAGE_NAME: str(tag), ANNOTATION_REF_NAME: tag.tag}
            index.append({**descriptor, "annotations": annotations})
            if image.diff_ids:  # `repositories` names a top layer; none for an empty image
                top = _hex(image.diff_ids[-1])
                repositories.setdefault(familiar_name(tag), {})[tag.tag] = top
        if not image.tags:
            index.append(descriptor)
        item: dict[str, Any] = {
            "Config": BLOBS_DIR + _hex(image.id),
            "RepoTags": [familiar_string(tag) for tag in image.tags] or None,
            "Layers": [BLOBS_DIR + _hex(diff_id) for diff_id in image.diff_ids],
        }
        if image.parent_id is not None and image.parent_id in saved:
            item["Parent"] = image.parent_id
        legacy.append(item)

    small[INDEX_FILE] = _json(
        {"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": index}
    )
    # Go's json.Encoder ends these two with a newline; its maps have sorted keys.
    small[MANIFEST_FILE] = _json(legacy) + b"\n"
    small[LAYOUT_FILE] = LAYOUT_CONTENT
    if repositories:
        ordered = {name: dict(sorted(tags.items())) for name, tags in sorted(repositories.items())}
        small[REPOSITORIES_FILE] = _json(ordered) + b"\n"
    return ArchivePlan(small_files=small, layer_files=layers)


def _entry(name: str, *, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = _DIRECTORY_MODE if directory else _FILE_MODE
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_archive(out: BinaryIO, images: Sequence[SavedImage], blobs: LayerBlobs) -> None:
    """Write the archive of `images` to `out` as a tar stream.

    Raises NotFound for a layer blob missing from `blobs`, CorruptBlob for one whose
    bytes no longer match its diff ID; `out` then holds a partial archive, so callers
    writing a file write a temporary one and rename it (see services.save).
    """
    sizes = {d: blobs.size(d) for d in sorted({d for image in images for d in image.diff_ids})}
    plan = plan_archive(images, sizes)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_entry("blobs", directory=True))
        tar.addfile(_entry("blobs/sha256", directory=True))
        for path in plan.paths():
            content = plan.small_files.get(path)
            if content is not None:
                tar.addfile(_entry(path, size=len(content)), io.BytesIO(content))
                continue
            diff_id, size = plan.layer_files[path]
            with blobs.open(diff_id, verify=True) as layer:
                tar.addfile(_entry(path, size=size), _SizedReader(layer, size, diff_id))
                # tarfile stops after `size` bytes; reading on reaches the end of the
                # blob, where the verifying reader compares its hash with the diff ID.
                if layer.read(1):
                    raise _changed(diff_id)


def _changed(diff_id: str) -> CorruptBlob:
    return CorruptBlob(f"blob {diff_id} changed size while it was being saved")


class _SizedReader:
    """Reads `source`, which must hold `size` bytes: a short read is a CorruptBlob, not
    tarfile's bare OSError (which an output error would also raise)."""

    def __init__(self, source: BinaryIO, size: int, diff_id: str) -> None:
        self._source = source
        self._remaining = size
        self._diff_id = diff_id

    def read(self, n: int = -1, /) -> bytes:
        data = self._source.read(n)
        self._remaining -= len(data)
        if self._remaining > 0 and (n < 0 or len(data) < n):
            raise _changed(self._diff_id)
        return data
