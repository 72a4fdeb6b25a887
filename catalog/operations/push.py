"""`catalog push`: an image from the catalog to a registry, as `docker push` sends it.

For each layer, what the registry lacks is uploaded and nothing else: every compressed
form the catalog has seen the layer as (`layer_distributions`) is asked for first (HEAD),
then mounted from another repository of the same registry where it was seen, and only
then is the uncompressed tar from the content store gzipped and uploaded as it is read
(the digest is computed on the way and given with the final PUT). The config follows, then
the manifest: the bytes kept from a pull when the registry now has exactly the blobs they
name, so an unchanged image keeps its digest; else a new Docker schema 2 manifest (OCI when
a layer is zstd). Uploads run five at a time, docker's default.

The catalog is read in one short transaction first, and what was learned (the manifest,
the RepoDigest `repo@digest` docker sets after a push, the compressed forms now in the
repository) is written in one transaction at the end.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from catalog.context import Catalog
from catalog.domain.digest import CHUNK_SIZE, Hasher, sha256_digest, short_id
from catalog.domain.reference import (
    Named,
    familiar_name,
    familiar_string,
    parse_normalized_named,
    with_digest,
    with_tag,
)
from catalog.errors import CatalogError, InvalidReference, NotFound
from catalog.operations.leases import Lease
from catalog.operations.pull import CredentialsLookup
from catalog.registry.client import RegistryClient, push_scope
from catalog.registry.errors import RegistryError
from catalog.registry.manifest import (
    DOCKER_LAYER_GZIP,
    Descriptor,
    ImageManifest,
    build_manifest,
    docker_layer_type,
    oci_layer_type,
    parse_manifest,
)
from catalog.registry.progress import SilentProgress, TransferProgress
from catalog.registry.settings import RegistrySettings
from catalog.services.distribution import (
    Distribution,
    PushableImage,
    StoredManifest,
    pushable_image,
    record_distributions,
    record_manifest,
)
from catalog.services.images import set_reference
from catalog.services.lookup import find_by_reference
from catalog.storage.archive.formats import DOCKER_MANIFEST, OCI_MANIFEST

__all__ = ["PushResult", "push"]

MAX_CONCURRENT_UPLOADS = 5
# docker compresses layers with gzip's default level.
GZIP_LEVEL = 6


@dataclass(frozen=True)
class PushResult:
    reference: Named
    digest: str
    size: int

    def line(self) -> str:
        """docker's last line: `TAG: digest: sha256:... size: N`."""
        return f"{self.reference.tag}: digest: {self.digest} size: {self.size}"


def _gzip_chunks(source: Iterator[bytes], hasher: Hasher) -> Iterator[bytes]:
    """Gzip (no file name, mtime 0: the same bytes every time) and hash as it goes."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    for chunk in source:
        out = compressor.compress(chunk)
        if out:
            hasher.update(out)
            yield out
    out = compressor.flush()
    hasher.update(out)
    yield out


class Pusher:
    def __init__(
        self,
        catalog: Catalog,
        client: RegistryClient,
        named: Named,
        image: PushableImage,
        progress: TransferProgress,
    ) -> None:
        self.catalog = catalog
        self.client = client
        self.named = named
        self.path = named.path
        self.image = image
        self.progress = progress
        self.learned: list[Distribution] = []
        self._lock = threading.Lock()
        self.stored = self._stored_manifest()

    def _stored_manifest(self) -> ImageManifest | None:
        for kept in self.image.manifests:
            manifest = _parse_kept(kept)
            if (
                manifest is not None
                and manifest.config.digest == self.image.id
                and len(manifest.layers) == len(self.image.diff_ids)
            ):
                return manifest
        return None

    def candidates(self, position: int) -> list[Distribution]:
        """Compressed forms to ask for, best first: the kept manifest's, this
        repository's, this registry's, then any other."""
        diff_id = self.image.diff_ids[position]
        known = list(self.image.distributions.get(diff_id, []))
        preferred = self.stored.layers[position].digest if self.stored is not None else None
        domain = self.named.domain + "/"

        def rank(d: Distribution) -> tuple[bool, bool, bool]:
            return (
                d.digest != preferred,
                d.repository != self.named.name,
                not d.repository.startswith(domain),
            )

        known.sort(key=rank)
        if self.stored is not None and not any(d.digest == preferred for d in known):
            layer = self.stored.layers[position]
            known.insert(
                0,
                Distribution(diff_id, layer.digest, layer.media_type, layer.size, self.named.name),
            )
        return known

    def push_layer(self, position: int) -> Descriptor:
        diff_id = self.image.diff_ids[position]
        layer_id = short_id(diff_id)
        scopes = [push_scope(self.path)]
        candidates = self.candidates(position)
        asked: set[str] = set()
        for candidate in candidates:
            if candidate.digest in asked:
                continue
            asked.add(candidate.digest)
            if self.client.blob_exists(self.path, candidate.digest, scopes=scopes) is not None:
                self.progress.status("Layer already exists", layer_id)
                return self._learn(candidate)
        domain = self.named.domain + "/"
        location = None
        for candidate in candidates:
            source = candidate.repository
            if source == self.named.name or not source.startswith(domain):
                continue
            source_path = source[len(domain) :]
            mounted, location = self.client.start_upload(
                self.path, mount=candidate.digest, source=source_path
            )
            if mounted:
                self.progress.status(f"Mounted from {source_path}", layer_id)
                return self._learn(candidate)
            break  # the registry started an upload instead: use it
        return self.upload_layer(diff_id, location)

    def upload_layer(self, diff_id: str, location: str | None) -> Descriptor:
        layer_id = short_id(diff_id)
        total = self.image.blob_sizes[diff_id]
        if location is None:
            _, location = self.client.start_upload(self.path)
            assert location is not None
        hasher = Hasher()
        sent = 0

        def tar_chunks() -> Iterator[bytes]:
            nonlocal sent
            with self.catalog.store.open(diff_id, verify=True) as stream:
                while chunk := stream.read(CHUNK_SIZE):
                    sent += len(chunk)
                    self.progress.advance(layer_id, "Pushing", sent, total)
                    yield chunk

        self.client.upload(
            self.path, location, _gzip_chunks(tar_chunks(), hasher), lambda: hasher.digest
        )
        self.progress.status("Pushed", layer_id)
        return self._learn(
            Distribution(diff_id, hasher.digest, DOCKER_LAYER_GZIP, hasher.size, self.named.name)
        )

    def _learn(self, seen: Distribution) -> Descriptor:
        with self._lock:
            self.learned.append(
                Distribution(seen.diff_id, seen.digest, seen.media_type, seen.size, self.named.name)
            )
        return Descriptor(seen.media_type, seen.digest, seen.size)

    def manifest(self, layers: list[Descriptor]) -> tuple[bytes, str]:
        stored = self.stored
        if stored is not None and [d.digest for d in stored.layers] == [d.digest for d in layers]:
            return stored.raw, stored.media_type
        oci = any(docker_layer_type(d.media_type) is None for d in layers)
        typed = [
            Descriptor(
                oci_layer_type(d.media_type) if oci else docker_layer_type(d.media_type) or "",
                d.digest,
                d.size,
            )
            for d in layers
        ]
        return build_manifest(self.image.config, typed, oci=oci)

    def run(self) -> PushResult:
        assert self.named.tag is not None
        self.progress.status(f"The push refers to repository [{self.named.name}]")
        count = len(self.image.diff_ids)
        for position in reversed(range(count)):
            self.progress.status("Preparing", short_id(self.image.diff_ids[position]))
        first_of: dict[str, int] = {}
        for position, diff_id in enumerate(self.image.diff_ids):
            first_of.setdefault(diff_id, position)
        with ThreadPoolExecutor(max_workers=MAX_CONCURRENT_UPLOADS) as pool:
            futures = {
                diff_id: pool.submit(self.push_layer, position)
                for diff_id, position in first_of.items()
            }
            pushed = {diff_id: future.result() for diff_id, future in futures.items()}
        layers = [pushed[diff_id] for diff_id in self.image.diff_ids]
        scopes = [push_scope(self.path)]
        if self.client.blob_exists(self.path, self.image.id, scopes=scopes) is None:
            self.client.upload_bytes(self.path, self.image.config, self.image.id)
        raw, media_type = self.manifest(layers)
        digest = sha256_digest(raw)
        answered = self.client.put_manifest(self.path, self.named.tag, raw, media_type)
        if answered and answered != digest:
            raise RegistryError(
                f"pushing {familiar_string(self.named)}: the registry says the manifest is "
                f"{answered}, its content hashes to {digest}"
            )
        with self.catalog.database.write() as session:
            record_manifest(
                session=session,
                digest=digest,
                image_id=self.image.id,
                media_type=media_type,
                manifest=raw,
            )
            record_distributions(session=session, distributions=self.learned)
            set_reference(
                session=session,
                reference=with_digest(Named(self.named.domain, self.named.path), digest),
                image_id=self.image.id,
            )
        result = PushResult(self.named, digest, len(raw))
        self.progress.status(result.line())
        return result


def _parse_kept(kept: StoredManifest) -> ImageManifest | None:
    try:
        parsed = parse_manifest(kept.manifest, kept.media_type, kept.digest)
    except CatalogError:
        return None
    return parsed if isinstance(parsed, ImageManifest) else None


def parse_push_reference(text: str) -> tuple[Named, bool]:
    """The reference to push and whether `latest` was added; digests cannot be pushed."""
    named = parse_normalized_named(text)
    if named.digest is not None:
        raise InvalidReference("cannot push a digest reference")
    if named.tag is None:
        return with_tag(named, "latest"), True
    return named, False


def push(
    catalog: Catalog,
    reference: str,
    *,
    settings: RegistrySettings,
    credentials: CredentialsLookup,
    progress: TransferProgress | None = None,
) -> PushResult:
    """Push the image `reference` names to its registry under that tag."""
    progress = progress or SilentProgress()
    named, _ = parse_push_reference(reference)
    shown = familiar_string(named)
    with catalog.database.read() as session:
        image_id = find_by_reference(session, named)
        if image_id is None:
            raise NotFound(f"An image does not exist locally with the tag: {familiar_name(named)}")
        image = pushable_image(
            session=session, image_id=image_id, manifest_types=(DOCKER_MANIFEST, OCI_MANIFEST)
        )
    try:
        # Its layers are held while they are read (catalog.operations.leases).
        with (
            Lease(catalog, purpose="pushing") as lease,
            RegistryClient(named.domain, settings, credentials(named.domain), pull=False) as client,
        ):
            if lease.hold_for_reading(image.diff_ids):
                raise NotFound(f"image {image_id} was deleted while pushing")
            return Pusher(catalog, client, named, image, progress).run()
    except CatalogError as exc:
        if shown in exc.message or familiar_name(named) in exc.message:
            raise
        raise type(exc)(f"pushing {shown}: {exc.message}") from None
