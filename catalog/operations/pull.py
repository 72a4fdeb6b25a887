"""`catalog pull`: an image from a registry into the catalog, as `docker pull` fills
Docker's.

Phase 1, outside any transaction: resolve the reference to a manifest (choosing the
platform from an index), fetch the config, and stream every layer the catalog lacks from
the registry through `ingest_layer` into the content store, in parallel (three at a time,
docker's default). Every digest and size is checked: the manifest against the digest the
reference or the registry names, the config and each compressed layer against their
descriptors, each uncompressed layer against the config's diff ID.

Phase 2: one write transaction registers the image (`register_image`), its tag and its
RepoDigest (`repo@<the digest the reference resolved to>`, as docker sets it), the
manifest bytes, and the compressed forms each downloaded layer was seen as.

Nothing is registered before every blob is in the store, so an interrupted pull leaves
no rows; the blobs it stored stay, and a retry finds them ("Already exists") instead of
downloading them again. Blob ownership: every diff ID is held in a lease
(catalog.operations.leases) before the store is looked at, and the lease goes with phase
2's transaction, so a layer found in the store is still there when the rows commit.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import httpx

from catalog.context import Catalog
from catalog.db.models import ImageConfigJSON
from catalog.domain.digest import is_sha256_digest, sha256_digest, short_id
from catalog.domain.imageconfig import MAX_CONFIG_BYTES, ImageConfig, parse_config
from catalog.domain.platform import Platform, config_platform
from catalog.domain.reference import (
    Named,
    familiar_string,
    parse_normalized_named,
    with_digest,
    with_tag,
)
from catalog.errors import CatalogError, InvalidReference, NotFound
from catalog.operations.leases import Lease
from catalog.registry.client import (
    DOWNLOAD_CHUNK,
    RegistryClient,
    check,
    pull_scope,
    transport_reason,
)
from catalog.registry.credentials import Credentials
from catalog.registry.errors import RegistryError
from catalog.registry.manifest import (
    ImageIndex,
    ImageManifest,
    choose_manifest,
    host_platform,
    parse_manifest,
)
from catalog.registry.progress import SilentProgress, TransferProgress
from catalog.registry.settings import RegistrySettings
from catalog.services.distribution import (
    Distribution,
    KnownLayer,
    known_layers,
    record_distributions,
    record_manifest,
)
from catalog.services.images import StoredLayer, register_image, set_reference
from catalog.storage.layers import ingest_layer

__all__ = ["CredentialsLookup", "PullResult", "parse_pull_reference", "pull"]

MAX_CONCURRENT_DOWNLOADS = 3
DEFAULT_TAG = "latest"

CredentialsLookup = Callable[[str], Credentials | None]


@dataclass(frozen=True)
class PullResult:
    reference: Named  # as pulled: tagged or digested
    image_id: str
    digest: str  # what the reference resolved to (an index's digest for an index)
    downloaded: bool  # docker's "Downloaded newer image" rather than "Image is up to date"

    def status(self) -> str:
        shown = familiar_string(self.reference)
        if self.downloaded:
            return f"Status: Downloaded newer image for {shown}"
        return f"Status: Image is up to date for {shown}"


def parse_pull_reference(text: str, *, all_tags: bool = False) -> tuple[Named, bool]:
    """The reference to pull, and whether the `latest` tag was added (docker's "Using
    default tag: latest"). A tag with a digest pulls the digest, as docker does."""
    named = parse_normalized_named(text)
    if all_tags:
        if named.tag is not None or named.digest is not None:
            raise InvalidReference("tag can't be used with --all-tags/-a")
        return named, False
    if named.digest is not None:
        return Named(named.domain, named.path, None, named.digest), False
    if named.tag is None:
        return with_tag(named, DEFAULT_TAG), True
    return named, False


class _Cancelled(Exception):
    pass


class _ResponseReader(io.RawIOBase):
    """A streamed response body as a binary stream, telling progress as bytes arrive."""

    def __init__(
        self,
        chunks: Iterator[bytes],
        on_bytes: Callable[[int], None],
        cancelled: threading.Event,
    ) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = b""
        self._on_bytes = on_bytes
        self._cancelled = cancelled

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._cancelled.is_set():
            raise _Cancelled
        if not self._pending:
            try:
                self._pending = next(self._chunks, b"")
            except httpx.HTTPError as exc:
                raise RegistryError(transport_reason(exc)) from None
            if self._pending:
                self._on_bytes(len(self._pending))
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


@dataclass
class _Image:
    """What phase 1 resolved for one reference."""

    resolved_digest: str
    manifest: ImageManifest
    index: ImageIndex | None
    config: ImageConfig


class Puller:
    def __init__(
        self,
        catalog: Catalog,
        client: RegistryClient,
        named: Named,
        *,
        platform: Platform | None,
        progress: TransferProgress,
    ) -> None:
        self.catalog = catalog
        self.client = client
        self.named = named
        self.path = named.path
        self.platform = platform
        self.progress = progress
        self.shown = familiar_string(named)

    # --- resolving ---

    def fetch_manifest(self, reference: str, expected: str | None) -> ImageManifest | ImageIndex:
        fetched = self.client.get_manifest(self.path, reference, what=self.shown)
        actual = sha256_digest(fetched.raw)
        if expected is not None and actual != expected:
            raise RegistryError(
                f"manifest verification failed for digest {expected} ({self.shown}): "
                f"the content hashes to {actual}"
            )
        if fetched.digest and is_sha256_digest(fetched.digest) and fetched.digest != actual:
            raise RegistryError(
                f"manifest of {self.shown}: the registry names digest {fetched.digest}, "
                f"the content hashes to {actual}"
            )
        return parse_manifest(fetched.raw, fetched.content_type, self.shown)

    def resolve(self) -> _Image:
        reference = self.named.digest or self.named.tag
        assert reference is not None
        document = self.fetch_manifest(reference, self.named.digest)
        resolved = document.digest
        index = None
        wanted = self.platform or host_platform()
        if isinstance(document, ImageIndex):
            index = document
            chosen = choose_manifest(document, wanted, self.shown)
            child = self.fetch_manifest(chosen.digest, chosen.digest)
            if not isinstance(child, ImageManifest):
                raise RegistryError(f"{self.shown}: nested indexes are not supported")
            manifest = child
        else:
            manifest = document
        config = self.fetch_config(manifest)
        if len(manifest.layers) != len(config.diff_ids):
            raise RegistryError(
                f"{self.shown}: the manifest has {len(manifest.layers)} layers, "
                f"the config {len(config.diff_ids)} diff IDs"
            )
        if config.os and config.os.lower() != "linux":
            raise RegistryError(f"{self.shown}: cannot pull a {config.os} image")
        actual = config_platform(config)
        if self.platform is not None and not self.platform.matches(actual):
            raise NotFound(
                f"image with reference {self.shown} was found but does not match the "
                f"specified platform: wanted {self.platform}, actual: {actual}"
            )
        return _Image(resolved, manifest, index, config)

    def fetch_config(self, manifest: ImageManifest) -> ImageConfig:
        descriptor = manifest.config
        with self.catalog.database.read() as session:
            stored = session.get(ImageConfigJSON, descriptor.digest)
            raw = bytes(stored.config) if stored is not None else None
        if raw is None:
            if descriptor.size > MAX_CONFIG_BYTES:
                raise RegistryError(f"{self.shown}: config larger than {MAX_CONFIG_BYTES} bytes")
            raw = self.client.get_small_blob(
                self.path, descriptor.digest, limit=MAX_CONFIG_BYTES, what=f"config of {self.shown}"
            )
        if len(raw) != descriptor.size or sha256_digest(raw) != descriptor.digest:
            raise RegistryError(
                f"config of {self.shown}: expected {descriptor.digest} ({descriptor.size} "
                f"bytes), got {sha256_digest(raw)} ({len(raw)} bytes)"
            )
        return parse_config(raw)

    # --- layers ---

    def store_layers(self, image: _Image) -> tuple[list[StoredLayer], list[Distribution], bool]:
        """Phase 1's layers: found in the store, or downloaded and verified."""
        diff_ids = image.config.diff_ids
        with self.catalog.database.read() as session:
            known = known_layers(session=session, diff_ids=diff_ids)
        store = self.catalog.store
        results: dict[int, StoredLayer] = {}
        distributions: list[Distribution] = []
        downloads: dict[str, list[int]] = {}
        for position, (descriptor, diff_id) in enumerate(
            zip(image.manifest.layers, diff_ids, strict=True)
        ):
            layer_id = short_id(descriptor.digest)
            found = known.get(diff_id)
            if found is not None and store.exists(diff_id):
                results[position] = StoredLayer(diff_id, found.diff_size, found.blob_size)
                self.progress.status("Already exists", layer_id)
                continue
            downloads.setdefault(descriptor.digest, []).append(position)
        if not downloads:
            return [results[i] for i in range(len(diff_ids))], distributions, False
        for digest in downloads:
            self.progress.status("Pulling fs layer", short_id(digest))
        cancelled = threading.Event()

        def download(digest: str) -> tuple[str, StoredLayer, Distribution | None]:
            position = downloads[digest][0]
            descriptor = image.manifest.layers[position]
            diff_id = diff_ids[position]
            stored, seen = self.download_layer(
                descriptor.digest,
                descriptor.size,
                diff_id,
                descriptor.media_type,
                known.get(diff_id),
                cancelled,
            )
            return digest, stored, seen

        with ThreadPoolExecutor(max_workers=MAX_CONCURRENT_DOWNLOADS) as pool:
            futures = [pool.submit(download, digest) for digest in downloads]
            try:
                for future in futures:
                    digest, stored, seen = future.result()
                    for position in downloads[digest]:
                        if stored.diff_id != diff_ids[position]:
                            raise RegistryError(
                                f"{self.shown}: layer {position} is {stored.diff_id}, "
                                f"the config says {diff_ids[position]}"
                            )
                        results[position] = stored
                    if seen is not None:
                        distributions.append(seen)
            except BaseException:
                cancelled.set()
                raise
        return [results[i] for i in range(len(diff_ids))], distributions, True

    def download_layer(
        self,
        digest: str,
        size: int,
        diff_id: str,
        media_type: str,
        known: KnownLayer | None,
        cancelled: threading.Event,
    ) -> tuple[StoredLayer, Distribution | None]:
        layer_id = short_id(digest)
        if not is_sha256_digest(digest):
            raise RegistryError(f"{self.shown}: layer {digest}: unsupported digest algorithm")
        store = self.catalog.store
        if store.exists(diff_id):
            # Stored by an earlier, interrupted pull (or a load) but not registered: read
            # back from the store, verified, instead of downloading again.
            self.progress.status("Already exists", layer_id)
            with store.open(diff_id) as stream:
                ingested = ingest_layer(
                    store, stream, expected_diff_id=diff_id, description=f"layer {diff_id}"
                )
            return StoredLayer(diff_id, ingested.diff_size, ingested.size), None
        received = 0

        def on_bytes(count: int) -> None:
            nonlocal received
            received += count
            self.progress.advance(layer_id, "Downloading", received, size)

        url = self.client.blob_url(self.path, digest)
        with self.client.stream("GET", url, scopes=[pull_scope(self.path)]) as response:
            check(response, f"layer {digest} of {self.shown}", pull=True)
            reader: BinaryIO = io.BufferedReader(
                _ResponseReader(response.iter_raw(DOWNLOAD_CHUNK), on_bytes, cancelled),
                buffer_size=DOWNLOAD_CHUNK,
            )
            try:
                ingested = ingest_layer(
                    store,
                    reader,
                    expected_diff_id=diff_id,
                    expected_digest=digest,
                    expected_size=size,
                    description=f"layer {digest}",
                )
            except CatalogError as exc:
                if digest in exc.message:
                    raise
                raise type(exc)(f"layer {digest}: {exc.message}") from None
        self.progress.status("Download complete", layer_id)
        self.progress.status("Pull complete", layer_id)
        seen = Distribution(
            diff_id=diff_id,
            digest=digest,
            media_type=media_type,
            size=size,
            repository=self.named.name,
        )
        return StoredLayer(diff_id, ingested.diff_size, ingested.size), seen

    # --- the whole ---

    def run(self) -> PullResult:
        image = self.resolve()
        # After the manifest, in moby's words (the repository's path): a pull that fails
        # before has no output.
        shown_as = self.named.tag or short_id(self.named.digest or "")
        self.progress.status(f"Pulling from {self.path}", shown_as)
        config = image.config
        # The layers are held from before the store is looked at until the rows commit
        # (catalog.operations.leases): no rmi, prune or gc removes them meanwhile.
        with Lease(self.catalog, purpose="pulling") as lease:
            lease.hold(config.diff_ids)
            layers, distributions, downloaded = self.store_layers(image)
            created, moved = self.register(image, layers, distributions, lease)
        self.progress.status(f"Digest: {image.resolved_digest}")
        result = PullResult(
            reference=self.named,
            image_id=config.id,
            digest=image.resolved_digest,
            downloaded=downloaded or created or moved,
        )
        self.progress.status(result.status())
        return result

    def register(
        self,
        image: _Image,
        layers: list[StoredLayer],
        distributions: list[Distribution],
        lease: Lease,
    ) -> tuple[bool, bool]:
        """Phase 2: the image, its tag and RepoDigest, what was learned; one transaction.
        Whether the image is new, and whether the tag moved."""
        config = image.config
        repo_digest = with_digest(Named(self.named.domain, self.named.path), image.resolved_digest)
        with self.catalog.database.write() as session:
            lease.commit(session)
            created = register_image(session=session, config=config, layers=layers)
            moved = False
            if self.named.tag is not None:
                previous = set_reference(session=session, reference=self.named, image_id=config.id)
                moved = previous != config.id
            set_reference(session=session, reference=repo_digest, image_id=config.id)
            record_manifest(
                session=session,
                digest=image.manifest.digest,
                image_id=config.id,
                media_type=image.manifest.media_type,
                manifest=image.manifest.raw,
            )
            if image.index is not None:
                record_manifest(
                    session=session,
                    digest=image.index.digest,
                    image_id=config.id,
                    media_type=image.index.media_type,
                    manifest=image.index.raw,
                )
            record_distributions(session=session, distributions=distributions)
        return created, moved


def pull(
    catalog: Catalog,
    reference: str,
    *,
    settings: RegistrySettings,
    credentials: CredentialsLookup,
    platform: Platform | None = None,
    all_tags: bool = False,
    progress: TransferProgress | None = None,
) -> list[PullResult]:
    """Pull `reference` (every tag of its repository with `all_tags`) into the catalog.

    Raises a CatalogError whose one line names the reference; nothing is registered for a
    reference that failed.
    """
    progress = progress or SilentProgress()
    named, _ = parse_pull_reference(reference, all_tags=all_tags)
    shown = familiar_string(named)
    try:
        with RegistryClient(named.domain, settings, credentials(named.domain)) as client:
            if all_tags:
                tags = client.list_tags(named.path, what=shown)
                if not tags:
                    raise NotFound(f"repository {shown} has no tags")
                targets = [with_tag(named, tag) for tag in sorted(tags)]
            else:
                targets = [named]
            results = []
            for target in targets:
                puller = Puller(catalog, client, target, platform=platform, progress=progress)
                results.append(puller.run())
            return results
    except _Cancelled:  # pragma: no cover - only raised after another error
        raise RegistryError(f"pull of {shown} was cancelled") from None
    except CatalogError as exc:
        if shown in exc.message:
            raise
        raise type(exc)(f"pulling {shown}: {exc.message}") from None
