"""Building image archives for load tests, with tarfile and nothing else: `docker save`
archives (manifest.json), OCI image layouts (as tars or directories), and hostile ones."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.builders import diff_id, image_config, layer_tar

# An archive member: a file's bytes, or an entry built by hand (links, directories).
Member = bytes | tarfile.TarInfo

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_of(members: Sequence[tuple[str, Member]] | Mapping[str, Member]) -> bytes:
    """A tar holding `members` in order (bytes become regular files)."""
    return layer_tar(list(members.items()) if isinstance(members, Mapping) else list(members))


@dataclass
class Image:
    """One image of a `docker save` archive: its layers (uncompressed tars) and tags."""

    layers: Sequence[bytes]
    tags: Sequence[str] = ()
    config: bytes | None = None
    parent: str | None = None
    gzip_layers: bool = False
    labels: Mapping[str, str] | None = None

    def config_bytes(self) -> bytes:
        if self.config is not None:
            return self.config
        return image_config([diff_id(layer) for layer in self.layers], labels=self.labels)

    @property
    def id(self) -> str:
        return sha256(self.config_bytes())


def docker_members(images: Sequence[Image], *, manifest: Any = None) -> list[tuple[str, Member]]:
    """The members of a docker save v1.2 archive of `images` (`manifest` replaces the
    manifest.json document when given)."""
    members: list[tuple[str, Member]] = []
    entries = []
    for image in images:
        config = image.config_bytes()
        config_name = hashlib.sha256(config).hexdigest() + ".json"
        members.append((config_name, config))
        layer_names = []
        for layer in image.layers:
            data = gzip.compress(layer, mtime=0) if image.gzip_layers else layer
            name = hashlib.sha256(data).hexdigest()[:32] + "/layer.tar"
            if name not in dict(members):
                members.append((name, data))
            layer_names.append(name)
        entry: dict[str, Any] = {
            "Config": config_name,
            "RepoTags": list(image.tags) or None,
            "Layers": layer_names,
        }
        if image.parent:
            entry["Parent"] = image.parent
        entries.append(entry)
    document = entries if manifest is None else manifest
    members.append(("manifest.json", json.dumps(document).encode()))
    return members


def docker_archive(images: Sequence[Image], *, manifest: Any = None) -> bytes:
    return tar_of(docker_members(images, manifest=manifest))


@dataclass
class Layout:
    """An OCI image layout being built: blobs by digest, and index.json's descriptors."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: list[dict[str, Any]] = field(default_factory=list)
    layout_version: str = "1.0.0"

    def blob(self, data: bytes, media_type: str, **extra: Any) -> dict[str, Any]:
        digest = sha256(data)
        self.blobs[digest] = data
        return {"mediaType": media_type, "digest": digest, "size": len(data), **extra}

    def image(
        self,
        layers: Sequence[bytes],
        *,
        architecture: str = "amd64",
        variant: str | None = None,
        os: str = "linux",
        gzip_layers: bool = False,
        config: bytes | None = None,
    ) -> dict[str, Any]:
        """An image manifest (and its config and layer blobs); its descriptor."""
        extra = {"variant": variant} if variant else None
        config = config or image_config(
            [diff_id(layer) for layer in layers], architecture=architecture, os=os, extra=extra
        )
        layer_descriptors = [
            self.blob(gzip.compress(layer, mtime=0), OCI_LAYER_GZIP)
            if gzip_layers
            else self.blob(layer, OCI_LAYER)
            for layer in layers
        ]
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": self.blob(config, OCI_CONFIG),
            "layers": layer_descriptors,
        }
        return self.blob(json.dumps(manifest).encode(), OCI_MANIFEST)

    def index(self, manifests: Sequence[dict[str, Any]]) -> dict[str, Any]:
        document = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(manifests)}
        return self.blob(json.dumps(document).encode(), OCI_INDEX)

    def files(self) -> dict[str, bytes]:
        files = {
            "oci-layout": json.dumps({"imageLayoutVersion": self.layout_version}).encode(),
            "index.json": json.dumps(
                {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.manifests}
            ).encode(),
        }
        for digest, data in self.blobs.items():
            files["blobs/sha256/" + digest.removeprefix("sha256:")] = data
        return files

    def tar(self) -> bytes:
        return tar_of(self.files())

    def directory(self, path: Path) -> Path:
        for name, data in self.files().items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_bytes(data)
        return path


def platform(os: str, architecture: str, variant: str | None = None) -> dict[str, str]:
    result = {"os": os, "architecture": architecture}
    if variant:
        result["variant"] = variant
    return result


def named(descriptor: Mapping[str, Any], **annotations: str) -> dict[str, Any]:
    """`descriptor` with annotations (`image_name=`, `ref_name=`, or any key)."""
    keys = {
        "image_name": "io.containerd.image.name",
        "ref_name": "org.opencontainers.image.ref.name",
    }
    merged = {keys.get(k, k): v for k, v in annotations.items()}
    return {**descriptor, "annotations": {**descriptor.get("annotations", {}), **merged}}


def pax_member(name: str, data: bytes, pax: Mapping[str, str]) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.pax_headers = dict(pax)
    return info


def tar_with_raw(members: Sequence[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    """A PAX tar of hand-made entries (for names tarfile would otherwise clean up)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()
