"""What an image archive says: the images in it, their configs, layers and names.

Two ways in, as Docker's two image stores have (docs/archives.md §1):

- `manifest.json` (moby's graphdriver loader): `docker save` v1.2 (Docker 1.10-24),
  Docker 25+ (which adds an OCI layout beside it), and go-containerregistry tarballs
  (`Config: "sha256:<hex>"`, layers `<hex>.tar.gz`). It wins when present: Docker 25.0.0-2
  wrote `"manifests": null` in index.json for untagged images.
- An OCI image layout (`oci-layout` plus `index.json`, containerd's importer): nested
  indexes and Docker manifest lists are walked, one platform is chosen per index entry,
  attestation manifests and artifacts (whose config is not an image config or whose
  layers are not layers) are skipped, and descriptors of unknown media types are ignored,
  as the OCI image-index specification requires (docs/archives.md §1.3).

Neither: the archive is refused with moby's error, as Docker ≥ 28 refuses pre-1.10
archives with only `repositories` and `<v1 id>/json`.

Image IDs are always computed from the config bytes, never taken from a file name; every
blob an OCI descriptor names is checked against its digest and size. Layers are described
here (`LayerSource`), not read: the loader streams them.

Pure: no SQLAlchemy, no Typer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from catalog.docker.jsontext import JSONTextError, decode_json, or_empty
from catalog.domain.digest import Hasher, validate_digest
from catalog.domain.imageconfig import ImageConfig, parse_config
from catalog.domain.platform import DEFAULT_PLATFORM, Platform, config_platform
from catalog.domain.reference import (
    AnchoredTagRegexp,
    Named,
    is_name_only,
    parse_docker_ref,
    parse_normalized_named,
    with_tag,
)
from catalog.errors import InvalidArchive, InvalidDigest, InvalidReference, NotFound
from catalog.storage.archive.source import Archive, MemberNotFound, normalize_archive_path

__all__ = [
    "ArchiveContents",
    "ArchiveImage",
    "LayerSource",
    "read_archive",
]

MANIFEST_JSON = "manifest.json"
INDEX_JSON = "index.json"
OCI_LAYOUT = "oci-layout"
OCI_LAYOUT_VERSION = "1.0.0"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
CONFIG_TYPES = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)
# OCI layers (plain, +gzip, +zstd, non-distributable) and Docker's (incl. foreign ones).
LAYER_TYPE_PREFIXES = ("application/vnd.oci.image.layer.", "application/vnd.docker.image.rootfs.")

ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
# BuildKit marks attestation manifests (and its other non-image manifests) with this.
ANNOTATION_REFERENCE_TYPE = "vnd.docker.reference.type"

MAX_INDEX_DEPTH = 8
MAX_DESCRIPTORS = 10_000


def _check_os(config: ImageConfig) -> None:
    # moby image.CheckOS: a Linux daemon loads only Linux images ("" means the host's).
    if config.os and config.os.lower() != "linux":
        raise InvalidArchive(f"cannot load {config.os} image on linux")


# --- What read_archive returns ---


@dataclass(frozen=True)
class LayerSource:
    """Where one layer's bytes are in the archive, and what its descriptor promises."""

    path: str
    digest: str | None = None
    size: int | None = None
    media_type: str | None = None


@dataclass(frozen=True)
class ArchiveImage:
    """One image to load: its config (the ID is the digest of its bytes), its layers bottom
    first, aligned with `config.diff_ids`, the references to point at it, and its parent
    image when the archive records a valid one."""

    config: ImageConfig
    layers: tuple[LayerSource, ...]
    references: tuple[Named, ...] = ()
    parent_id: str | None = None
    origin: str = ""

    @property
    def id(self) -> str:
        return self.config.id


@dataclass(frozen=True)
class ArchiveContents:
    """The images of an archive, parents before children. `format` is `docker-archive`
    (manifest.json) or `oci-layout`."""

    format: str
    images: tuple[ArchiveImage, ...] = field(default_factory=tuple)


def read_archive(archive: Archive, *, platform: Platform | None = None) -> ArchiveContents:
    """Detect the archive's format and describe the images to load from it.

    `platform`, when given, is also a filter: images of other platforms are skipped (and
    if none is left, NotFound says so). Without it, linux/amd64 is chosen from an index of
    several platforms, and an archive's only image loads whatever its platform.
    """
    if archive.exists(MANIFEST_JSON):
        try:
            images = _read_docker_manifest(archive, platform)
        except NotFound:
            # Docker's containerd store writes manifest.json for one platform only; the
            # others are in its OCI index.
            if not archive.exists(OCI_LAYOUT):
                raise
            return ArchiveContents("oci-layout", _ordered(_read_oci_layout(archive, platform)))
        contents = ArchiveContents("docker-archive", _ordered(images))
    elif archive.exists(OCI_LAYOUT):
        contents = ArchiveContents("oci-layout", _ordered(_read_oci_layout(archive, platform)))
    else:
        # moby (daemon/internal/image/tarexport/load.go) since v0/v1 loading was removed.
        raise InvalidArchive("invalid archive: does not contain a manifest.json")
    return contents


# --- Shared helpers ---


def _json(data: bytes, what: str) -> Any:
    try:
        return decode_json(data)
    except JSONTextError as exc:
        raise InvalidArchive(f"invalid {what}: {exc}") from None


def _string_list(value: object, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArchive(f"invalid {what}: expected a list of strings")
    return list(value)


def _checked_path(path: str, archive: Archive, what: str) -> str:
    """`path` if it is a safe path to a regular file in the archive."""
    normalize_archive_path(path)
    if not archive.exists(path):
        raise InvalidArchive(f'invalid archive: {what} "{path}" not found in the archive')
    return path


def _read_config(archive: Archive, path: str, where: str) -> ImageConfig:
    try:
        raw = archive.read_bytes(path)
    except MemberNotFound:
        raise InvalidArchive(f'invalid archive: config "{path}" ({where}) not found') from None
    return parse_config(raw)


def _references_from_repo_tags(repo_tags: Iterable[str]) -> list[Named]:
    # containerd's importer (Docker's default image store) reads RepoTags with
    # ParseDockerRef: a bare name means `:latest`, as `docker load` then prints it. (The
    # graphdriver loader refused it: `invalid tag "name"`.)
    return [parse_docker_ref(repo_tag) for repo_tag in repo_tags]


def _valid_parent(image: ImageConfig, parent: ImageConfig) -> bool:
    """moby checkValidParent: the child's history is the parent's plus one entry."""
    if not image.history and not parent.history:
        return True  # history is not mandatory
    if len(image.history) - len(parent.history) != 1:
        return False
    # HistoryEntry compares created (an instant), author, created_by, comment, empty_layer.
    return all(p == c for p, c in zip(parent.history, image.history, strict=False))


def _merge(images: Iterable[ArchiveImage]) -> list[ArchiveImage]:
    """One entry per image ID, its references merged in order (an archive may name the
    same image several times, as index.json does once per tag). Linear in the entries,
    however many name one image."""
    first: dict[str, ArchiveImage] = {}
    references: dict[str, dict[Named, None]] = {}
    parents: dict[str, str | None] = {}
    for image in images:
        if image.id not in first:
            first[image.id] = image
            references[image.id] = {}
            parents[image.id] = image.parent_id
        references[image.id].update(dict.fromkeys(image.references))
        parents[image.id] = parents[image.id] or image.parent_id
    merged = []
    for image_id, image in first.items():
        names = tuple(references[image_id])
        if names != image.references or parents[image_id] != image.parent_id:
            image = ArchiveImage(
                config=image.config,
                layers=image.layers,
                references=names,
                parent_id=parents[image_id],
                origin=image.origin,
            )
        merged.append(image)
    return merged


def _ordered(images: list[ArchiveImage]) -> tuple[ArchiveImage, ...]:
    """Parents before their children, otherwise in archive order."""
    by_id = {image.id: image for image in images}
    done: set[str] = set()
    result: list[ArchiveImage] = []
    for image in images:
        chain: list[ArchiveImage] = []
        current: ArchiveImage | None = image
        visiting: set[str] = set()
        while current is not None and current.id not in done:
            if current.id in visiting:
                raise InvalidArchive(f"invalid archive: image {current.id} is its own ancestor")
            visiting.add(current.id)
            chain.append(current)
            current = by_id.get(current.parent_id) if current.parent_id else None
        for link in reversed(chain):
            done.add(link.id)
            result.append(link)
    return tuple(result)


# --- manifest.json ---


def _read_docker_manifest(archive: Archive, platform: Platform | None) -> list[ArchiveImage]:
    document = _json(archive.read_bytes(MANIFEST_JSON), MANIFEST_JSON)
    if document is None:
        # moby's text; `[]` is a valid archive of nothing.
        raise InvalidArchive("invalid manifest, manifest cannot be null (but can be [])")
    if not isinstance(document, list):
        raise InvalidArchive("invalid manifest.json: expected a JSON array")
    images: list[ArchiveImage] = []
    skipped = 0
    # Entries naming one config file read, hash and parse it once.
    configs: dict[str, ImageConfig] = {}
    for position, item in enumerate(document):
        where = f"manifest.json entry {position}"
        if not isinstance(item, dict):
            raise InvalidArchive(f"invalid {where}: expected a JSON object")
        config_path = item.get("Config")
        if not isinstance(config_path, str) or not config_path:
            raise InvalidArchive(f"invalid {where}: no Config")
        layer_paths = _string_list(item.get("Layers"), f"{where} Layers")
        repo_tags = _string_list(item.get("RepoTags"), f"{where} RepoTags")
        parent = item.get("Parent")
        if parent is not None and not isinstance(parent, str):
            raise InvalidArchive(f"invalid {where}: Parent must be a string")
        parent = parent or None
        normalize_archive_path(config_path)
        for path in layer_paths:
            normalize_archive_path(path)
        config_key = archive.resolve(config_path) if archive.exists(config_path) else config_path
        config = configs.get(config_key)
        if config is None:
            config = configs[config_key] = _read_config(archive, config_path, where)
        _check_os(config)
        if platform is not None and not platform.matches(config_platform(config)):
            skipped += 1
            continue
        if len(layer_paths) != len(config.diff_ids):
            raise InvalidArchive(
                f"invalid manifest, layers length mismatch: expected {len(layer_paths)}, "
                f"got {len(config.diff_ids)}"
            )
        layers = tuple(
            LayerSource(_checked_path(path, archive, f"layer {i}"))
            for i, path in enumerate(layer_paths)
        )
        images.append(
            ArchiveImage(
                config=config,
                layers=layers,
                references=tuple(_references_from_repo_tags(repo_tags)),
                parent_id=parent,
                origin=where,
            )
        )
    if platform is not None and skipped and not images:
        raise NotFound(f"no images providing the requested platform {platform} found")
    return _with_valid_parents(_merge(images))


def _with_valid_parents(images: list[ArchiveImage]) -> list[ArchiveImage]:
    """moby validatedParentLinks + setParentID: a Parent counts only when it is another
    image of the same archive, and then it must be a valid parent."""
    by_id = {image.id: image for image in images}
    result = []
    for image in images:
        parent = by_id.get(image.parent_id) if image.parent_id else None
        if parent is None or parent.id == image.id:
            parent_id = None
        else:
            if not _valid_parent(image.config, parent.config):
                raise InvalidArchive(f"image {parent.id} is not a valid parent for {image.id}")
            parent_id = parent.id
        if parent_id != image.parent_id:
            image = ArchiveImage(
                config=image.config,
                layers=image.layers,
                references=image.references,
                parent_id=parent_id,
                origin=image.origin,
            )
        result.append(image)
    return result


# --- OCI image layouts ---


@dataclass(frozen=True)
class _Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str]
    platform: Platform | None
    artifact_type: str | None

    @property
    def path(self) -> str:
        algorithm, _, encoded = self.digest.partition(":")
        return f"blobs/{algorithm}/{encoded}"


def _descriptor(value: object, where: str) -> _Descriptor:
    if not isinstance(value, dict):
        raise InvalidArchive(f"invalid descriptor in {where}: expected a JSON object")
    media_type = value.get("mediaType") or ""
    digest = value.get("digest")
    size = value.get("size")
    if not isinstance(media_type, str):
        raise InvalidArchive(f"invalid descriptor in {where}: mediaType must be a string")
    if not isinstance(digest, str):
        raise InvalidArchive(f"invalid descriptor in {where}: no digest")
    try:
        validate_digest(digest)
    except InvalidDigest as exc:
        raise InvalidArchive(f"invalid descriptor in {where}: {digest!r}: {exc}") from None
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InvalidArchive(f"invalid descriptor in {where}: size must be a non-negative integer")
    annotations = or_empty(value.get("annotations"), {})
    if not isinstance(annotations, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
    ):
        raise InvalidArchive(f"invalid descriptor in {where}: annotations must map strings")
    platform = None
    raw_platform = value.get("platform")
    if isinstance(raw_platform, dict):
        os_, arch = raw_platform.get("os"), raw_platform.get("architecture")
        variant = raw_platform.get("variant")
        if isinstance(os_, str) and isinstance(arch, str):
            platform = Platform(os_, arch, variant if isinstance(variant, str) else None)
    artifact_type = value.get("artifactType")
    return _Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        annotations=annotations,
        platform=platform,
        artifact_type=artifact_type if isinstance(artifact_type, str) else None,
    )


def _read_blob(archive: Archive, descriptor: _Descriptor) -> bytes:
    """A small blob (manifest, index, config), checked against its descriptor."""
    if not descriptor.digest.startswith("sha256:"):
        raise InvalidArchive(
            f"invalid archive: unsupported digest algorithm in {descriptor.digest}"
        )
    try:
        data = archive.read_bytes(descriptor.path)
    except MemberNotFound:
        raise MemberNotFound(f"invalid archive: blob {descriptor.digest} is missing") from None
    hasher = Hasher()
    hasher.update(data)
    if hasher.size != descriptor.size:
        raise InvalidArchive(
            f"invalid archive: blob {descriptor.digest} is {hasher.size} bytes, "
            f"its descriptor says {descriptor.size}"
        )
    if hasher.digest != descriptor.digest:
        raise InvalidArchive(
            f"invalid archive: blob {descriptor.digest} does not match its digest "
            f"(its content hashes to {hasher.digest})"
        )
    return data


def _names(annotations: Mapping[str, str]) -> tuple[Named, ...]:
    """The reference an index.json descriptor gives its image.

    `io.containerd.image.name` is a full reference (Docker 25+, containerd). In Docker's
    archives `org.opencontainers.image.ref.name` is only the tag, which completes a bare
    image name; alone, it is taken as a reference when it parses as one (as containerd
    does, so `latest` alone names `latest:latest`), and otherwise ignored.
    """
    image_name = annotations.get(ANNOTATION_IMAGE_NAME)
    ref_name = annotations.get(ANNOTATION_REF_NAME)
    if image_name:
        try:
            named = parse_normalized_named(image_name)
        except InvalidReference:
            named = None
        if named is not None:
            if is_name_only(named) and ref_name and AnchoredTagRegexp.match(ref_name):
                return (with_tag(named, ref_name),)
            return (parse_docker_ref(image_name),)
    if ref_name:
        try:
            return (parse_docker_ref(ref_name),)
        except InvalidReference:
            return ()
    return ()


@dataclass(frozen=True)
class _Candidate:
    """An image manifest reachable from an index.json entry."""

    descriptor: _Descriptor
    manifest: dict[str, Any] | None = None  # None: its blob is missing
    config_descriptor: _Descriptor | None = None
    layers: tuple[_Descriptor, ...] = ()

    @property
    def is_image(self) -> bool:
        return self.manifest is not None and self.config_descriptor is not None


class _Walk:
    """Flattens one index.json entry into candidate image manifests."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.visited = 0

    def candidates(
        self,
        descriptor: _Descriptor,
        where: str,
        depth: int = 0,
        chain: frozenset[str] = frozenset(),
    ) -> list[_Candidate]:
        self.visited += 1
        if self.visited > MAX_DESCRIPTORS:
            raise InvalidArchive(f"invalid archive: more than {MAX_DESCRIPTORS} descriptors")
        if ANNOTATION_REFERENCE_TYPE in descriptor.annotations:
            return []  # an attestation (or another BuildKit side manifest), not an image
        platform = descriptor.platform
        if platform is not None and "unknown" in (platform.os, platform.architecture):
            return []
        if descriptor.media_type in MANIFEST_TYPES:
            return [self._manifest(descriptor, where)]
        if descriptor.media_type not in INDEX_TYPES:
            return []  # OCI image index: an unknown media type MUST be ignored
        if depth >= MAX_INDEX_DEPTH:
            raise InvalidArchive(f"invalid archive: indexes nested deeper than {MAX_INDEX_DEPTH}")
        if descriptor.digest in chain:
            raise InvalidArchive(f"invalid archive: index {descriptor.digest} contains itself")
        try:
            document = _json(_read_blob(self.archive, descriptor), f"index {descriptor.digest}")
        except MemberNotFound:
            return [_Candidate(descriptor)]
        if not isinstance(document, dict):
            raise InvalidArchive(f"invalid index {descriptor.digest}: expected a JSON object")
        children = or_empty(document.get("manifests"), [])
        if not isinstance(children, list):
            raise InvalidArchive(f"invalid index {descriptor.digest}: manifests must be a list")
        result: list[_Candidate] = []
        for child in children:
            result.extend(
                self.candidates(
                    _descriptor(child, f"index {descriptor.digest}"),
                    where,
                    depth + 1,
                    chain | {descriptor.digest},
                )
            )
        return result

    def _manifest(self, descriptor: _Descriptor, where: str) -> _Candidate:
        try:
            data = _read_blob(self.archive, descriptor)
        except MemberNotFound:
            return _Candidate(descriptor)
        what = f"manifest {descriptor.digest}"
        document = _json(data, what)
        if not isinstance(document, dict):
            raise InvalidArchive(f"invalid {what}: expected a JSON object")
        if document.get("schemaVersion") != 2:
            raise InvalidArchive(f"invalid {what}: schemaVersion must be 2")
        config = _descriptor(document.get("config"), what)
        layers = or_empty(document.get("layers"), [])
        if not isinstance(layers, list):
            raise InvalidArchive(f"invalid {what}: layers must be a list")
        layer_descriptors = tuple(_descriptor(layer, what) for layer in layers)
        artifact = config.media_type not in CONFIG_TYPES or not all(
            d.media_type.startswith(LAYER_TYPE_PREFIXES) for d in layer_descriptors
        )
        if artifact:
            return _Candidate(descriptor, manifest=document)  # not an image: skipped
        return _Candidate(descriptor, document, config, layer_descriptors)


def _config_of(archive: Archive, candidate: _Candidate) -> ImageConfig:
    assert candidate.config_descriptor is not None
    return parse_config(_read_blob(archive, candidate.config_descriptor))


def _platform_of(archive: Archive, candidate: _Candidate) -> Platform | None:
    """The descriptor's platform, else the config's; None when the config is missing."""
    if candidate.descriptor.platform is not None:
        return candidate.descriptor.platform
    try:
        return config_platform(_config_of(archive, candidate))
    except MemberNotFound:
        return None


def _choose(
    archive: Archive,
    candidates: list[_Candidate],
    platform: Platform | None,
    where: str,
) -> _Candidate | None:
    """The one image manifest an index.json entry loads as, or None to skip the entry."""
    images = [c for c in candidates if c.is_image]
    if not images:
        missing = [c for c in candidates if c.manifest is None]
        if missing:
            raise InvalidArchive(
                f"invalid archive: blob {missing[0].descriptor.digest} ({where}) is missing"
            )
        return None
    if platform is None and len(images) == 1:
        return images[0]
    wanted = platform or DEFAULT_PLATFORM
    described = [(c, _platform_of(archive, c)) for c in images]
    matching = [(c, p) for c, p in described if p is not None and wanted.matches(p)]
    if not matching:
        if platform is not None:
            return None
        offered = ", ".join(dict.fromkeys(str(p) for _, p in described if p is not None))
        raise NotFound(
            f"{where}: no image for platform {wanted} (it has {offered}); "
            "choose one with --platform"
        )
    # An exact variant beats a compatible one (a request without variant takes any).
    matching.sort(key=lambda item: item[1].variant != wanted.variant)
    return matching[0][0]


def _read_oci_layout(archive: Archive, platform: Platform | None) -> list[ArchiveImage]:
    layout = _json(archive.read_bytes(OCI_LAYOUT), OCI_LAYOUT)
    version = layout.get("imageLayoutVersion") if isinstance(layout, dict) else None
    if version != OCI_LAYOUT_VERSION:
        # containerd: "unsupported OCI version %s".
        raise InvalidArchive(f"unsupported OCI version {version}")
    if not archive.exists(INDEX_JSON):
        raise InvalidArchive("invalid OCI layout: index.json not found")
    index = _json(archive.read_bytes(INDEX_JSON), INDEX_JSON)
    if not isinstance(index, dict):
        raise InvalidArchive("invalid index.json: expected a JSON object")
    entries = or_empty(index.get("manifests"), [])
    if not isinstance(entries, list):
        raise InvalidArchive("invalid index.json: manifests must be a list")
    walk = _Walk(archive)
    images: list[ArchiveImage] = []
    for position, entry in enumerate(entries):
        descriptor = _descriptor(entry, f"index.json entry {position}")
        names = _names(descriptor.annotations)
        where = f"index.json entry {position}" + (f" ({names[0]})" if names else "")
        candidate = _choose(archive, walk.candidates(descriptor, where), platform, where)
        if candidate is None:
            continue
        images.append(_oci_image(archive, candidate, names, where))
    if entries and not images:
        if platform is not None:
            raise NotFound(f"no images providing the requested platform {platform} found")
        raise InvalidArchive(
            "invalid archive: index.json lists no image manifests (only artifacts or attestations)"
        )
    return _merge(images)


def _oci_image(
    archive: Archive, candidate: _Candidate, names: tuple[Named, ...], where: str
) -> ArchiveImage:
    config = _config_of(archive, candidate)
    _check_os(config)
    if len(candidate.layers) != len(config.diff_ids):
        raise InvalidArchive(
            f"invalid manifest, layers length mismatch: expected {len(candidate.layers)}, "
            f"got {len(config.diff_ids)}"
        )
    layers = []
    for i, layer in enumerate(candidate.layers):
        if not layer.digest.startswith("sha256:"):
            raise InvalidArchive(f"invalid archive: unsupported digest algorithm in {layer.digest}")
        if not archive.exists(layer.path):
            raise InvalidArchive(
                f"invalid archive: layer {i} blob {layer.digest} ({where}) is missing"
            )
        layers.append(LayerSource(layer.path, layer.digest, layer.size, layer.media_type))
    return ArchiveImage(
        config=config, layers=tuple(layers), references=names, parent_id=None, origin=where
    )
