"""Loading image archives, as `docker load` does: all of an archive, or none of it.

Phase 1, outside any transaction: `catalog.storage.archive` reads the archive and describes its
images (each config's ID computed from its bytes, every OCI descriptor checked), then
every layer streams through `ingest_layer` into the content store, which checks the
descriptor's digest and size and the config's `rootfs.diff_ids` entry, and stores the
uncompressed tar under its diff ID. Nothing is held in memory whole but small JSON.

Phase 2: one write transaction registers every image (`register_image`), its parent and
its references (`set_reference`, which moves a tag that named another image, as Docker
does). A failure in phase 1 writes no row; one in phase 2 rolls everything back. Layer
blobs written before a failure stay in the store, unreferenced, until garbage collection
removes them: they are never deleted here, as another image may share them.

Blob ownership: every diff ID of the archive is held in a lease (catalog.operations.leases)
before phase 1 looks at the store, and the lease goes in phase 2's transaction, so an rmi,
prune or gc running meanwhile never removes a file this load found there.

Fault points (catalog.faults): `load:leased` (the lease is committed, nothing stored),
`load:layer-stored` (after each layer that was read into the store), `load:layers-stored`
(every layer stored, no row written) and `load:rows-written` (every row written, inside
the transaction, before its commit).

Loading the same archive twice changes nothing: the images exist, and their references
already point at them.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from sqlalchemy import update
from sqlalchemy.orm import Session

from catalog.context import Catalog
from catalog.db.models import Image
from catalog.domain.platform import Platform
from catalog.domain.reference import Named, familiar_string
from catalog.errors import InvalidArchive
from catalog.faults import fault_point
from catalog.operations.leases import Lease
from catalog.services import kept_facts
from catalog.services.images import StoredLayer, register_image, set_reference
from catalog.storage.archive.formats import ArchiveContents, ArchiveImage, read_archive
from catalog.storage.archive.source import Archive, ArchiveLimits, open_archive
from catalog.storage.content import ContentStore
from catalog.storage.layers import DEFAULT_LIMITS as DEFAULT_LAYER_LIMITS
from catalog.storage.layers import IngestedLayer, LayerLimits, ingest_layer

__all__ = [
    "TEMPORARY_DIRNAME",
    "LoadProgress",
    "LoadResult",
    "LoadedImage",
    "RenamedReference",
    "load_archive",
    "register_loaded_images",
]

# Under the catalog's root: where stdin and compressed archives are spooled.
TEMPORARY_DIRNAME = "tmp"


class LoadProgress(Protocol):
    """Told how layers stream in (the CLI draws a progress bar from it): each layer is
    started (short diff ID, bytes to read), advanced, and finished once it is stored."""

    def layer_started(self, description: str, total: int) -> None: ...

    def layer_advanced(self, count: int) -> None: ...

    def layer_finished(self) -> None: ...


@dataclass(frozen=True)
class LoadedImage:
    id: str
    references: tuple[Named, ...]
    layers: int
    created: bool  # False when the catalog already had it
    parent_id: str | None = None


@dataclass(frozen=True)
class RenamedReference:
    """A reference that named another image before this load moved it."""

    reference: Named
    previous_id: str


@dataclass(frozen=True)
class LoadResult:
    format: str
    images: tuple[LoadedImage, ...]
    renamed: tuple[RenamedReference, ...] = ()

    def lines(self) -> list[str]:
        """What `docker load` prints: `Loaded image: NAME` per reference (after moby's
        note when the name moved from another image), `Loaded image ID: ID` for an image
        loaded without one."""
        renamed = {item.reference: item.previous_id for item in self.renamed}
        lines = []
        for image in self.images:
            if not image.references:
                lines.append(f"Loaded image ID: {image.id}")
            for reference in image.references:
                shown = familiar_string(reference)
                if reference in renamed:
                    lines.append(
                        f"The image {shown} already exists, renaming the old one with ID "
                        f"{renamed[reference]} to empty string"
                    )
                lines.append(f"Loaded image: {shown}")
        return lines


class _Counting(io.RawIOBase):
    """Passes reads through, telling `progress` how many bytes went by."""

    def __init__(self, stream: BinaryIO, progress: LoadProgress) -> None:
        super().__init__()
        self._stream = stream
        self._progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        if n:
            self._progress.layer_advanced(n)
        return n


def _ingest(
    store: ContentStore,
    archive: Archive,
    image: ArchiveImage,
    position: int,
    *,
    progress: LoadProgress | None,
    limits: LayerLimits,
) -> IngestedLayer:
    source = image.layers[position]
    description = f"layer {position}"
    raw = archive.open(source.path)
    stream: BinaryIO = raw
    try:
        if progress is not None:
            total = source.size if source.size is not None else archive.size(source.path)
            progress.layer_started(image.config.diff_ids[position][7:19], total)
            stream = io.BufferedReader(_Counting(raw, progress))
        ingested = ingest_layer(
            store,
            stream,
            expected_diff_id=image.config.diff_ids[position],
            expected_digest=source.digest,
            expected_size=source.size,
            limits=limits,
            description=description,
            storing=f"layer {image.config.diff_ids[position]}",
        )
    finally:
        raw.close()
    if progress is not None:
        progress.layer_finished()
    return ingested


def _store_layers(
    store: ContentStore,
    archive: Archive,
    contents: ArchiveContents,
    *,
    progress: LoadProgress | None,
    limits: LayerLimits,
    lease: Lease,
) -> dict[str, list[StoredLayer]]:
    """Phase 1: every layer of every image verified and in the store, each archive member
    read once however many images share it; held in `lease` before the store is looked
    at."""
    lease.hold(_diff_ids(contents))
    fault_point("load:leased")
    done: dict[tuple[str, str | None], IngestedLayer] = {}
    stored: dict[str, list[StoredLayer]] = {}
    for image in contents.images:
        layers = []
        for position, (source, diff_id) in enumerate(
            zip(image.layers, image.config.diff_ids, strict=True)
        ):
            key = (archive.resolve(source.path), source.digest)
            ingested = done.get(key)
            if ingested is None:
                ingested = _ingest(
                    store, archive, image, position, progress=progress, limits=limits
                )
                done[key] = ingested
                fault_point("load:layer-stored")
            elif ingested.diff_id != diff_id:
                raise InvalidArchive(
                    f'invalid diffID for layer {position}: expected "{diff_id}", '
                    f'got "{ingested.diff_id}"'
                )
            layers.append(StoredLayer(ingested.diff_id, ingested.diff_size, ingested.size))
        stored[image.id] = layers
    return stored


def register_loaded_images(
    *,
    session: Session,
    images: Sequence[ArchiveImage],
    layers: Mapping[str, Sequence[StoredLayer]],
) -> tuple[list[LoadedImage], list[RenamedReference]]:
    """Phase 2: rows for verified images whose layers are in the store, parents first.

    An image the catalog already has is left as it is, except that a parent the archive
    records is set if it had none (moby's setParentID).
    """
    loaded: list[LoadedImage] = []
    renamed: list[RenamedReference] = []
    for image in images:
        created = register_image(
            session=session,
            config=image.config,
            layers=layers[image.id],
            parent_id=image.parent_id,
        )
        if not created and image.parent_id is not None:
            result = session.execute(
                update(Image)
                .where(Image.id == image.id, Image.parent_id.is_(None))
                .values(parent_id=image.parent_id)
            )
            if result.rowcount:  # type: ignore[attr-defined]
                kept_facts.parent_set(session=session, parent_id=image.parent_id)
        for reference in image.references:
            previous = set_reference(session=session, reference=reference, image_id=image.id)
            if previous is not None and previous != image.id:
                renamed.append(RenamedReference(reference, previous))
        loaded.append(
            LoadedImage(
                id=image.id,
                references=image.references,
                layers=len(image.layers),
                created=created,
                parent_id=image.parent_id,
            )
        )
    return loaded, renamed


def load_archive(
    catalog: Catalog,
    source: Archive | Path | str | BinaryIO,
    *,
    platform: Platform | None = None,
    progress: LoadProgress | None = None,
    limits: ArchiveLimits | None = None,
    layer_limits: LayerLimits | None = None,
) -> LoadResult:
    """Load every image of an archive (a path to a tar, compressed tar or OCI layout
    directory; a binary stream; or an open Archive) into the catalog, or none of them.

    Raises InvalidArchive (or NotFound for a platform the archive does not have) with a
    one-line reason; the catalog's rows are then unchanged.
    """
    layer_limits = layer_limits or DEFAULT_LAYER_LIMITS
    # The layers' blobs are held from before the store is looked at until the rows that
    # name them commit (catalog.operations.leases).
    with Lease(catalog, purpose="loading") as lease:
        return _load(catalog, source, lease, platform, progress, limits, layer_limits)


def _load(
    catalog: Catalog,
    source: Archive | Path | str | BinaryIO,
    lease: Lease,
    platform: Platform | None,
    progress: LoadProgress | None,
    limits: ArchiveLimits | None,
    layer_limits: LayerLimits,
) -> LoadResult:
    """`load_archive`, holding the layers' blobs in `lease`."""
    if isinstance(source, Archive):
        contents = read_archive(source, platform=platform)
        layers = _store_layers(
            catalog.store, source, contents, progress=progress, limits=layer_limits, lease=lease
        )
    else:
        temporary_dir = catalog.location.root / TEMPORARY_DIRNAME
        with open_archive(source, temporary_dir=temporary_dir, limits=limits) as archive:
            contents = read_archive(archive, platform=platform)
            layers = _store_layers(
                catalog.store,
                archive,
                contents,
                progress=progress,
                limits=layer_limits,
                lease=lease,
            )
    fault_point("load:layers-stored")
    with catalog.database.write() as session:
        lease.commit(session)
        loaded, renamed = register_loaded_images(
            session=session, images=contents.images, layers=layers
        )
        session.flush()
        fault_point("load:rows-written")
    return LoadResult(format=contents.format, images=tuple(loaded), renamed=tuple(renamed))


def _diff_ids(contents: ArchiveContents) -> set[str]:
    return {diff_id for image in contents.images for diff_id in image.config.diff_ids}
