"""Deleting images, then the files of the blobs they alone used: `catalog rmi`, `catalog
image prune`, and the server's `DELETE /images/{name}` and `POST /images/prune`.

The rows go in one write transaction (`services.delete`, `services.prune`); the files go
after it has committed, and only those of blobs that still have no row then: a rollback
never leaves a row pointing at a missing file, and a blob a concurrent load brought back
keeps its file.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select

from catalog.context import Catalog
from catalog.db.models import Blob
from catalog.docker.filters import FilterArgs
from catalog.services.delete import ImageDeletion, delete_images
from catalog.services.prune import PruneReport, delete_unused_images

__all__ = ["prune_images", "remove_blob_files", "remove_images"]


def remove_images(
    catalog: Catalog, terms: Iterable[str], *, force: bool = False, prune: bool = True
) -> ImageDeletion:
    """`docker rmi TERM...`: each term untags or deletes as Docker does (a failed one
    changes nothing and is in `failures`), then the freed blobs' files are removed."""
    with catalog.database.write() as session:
        deletion = delete_images(session=session, terms=terms, force=force, prune=prune)
    remove_blob_files(catalog, deletion.blob_digests)
    return deletion


def prune_images(
    catalog: Catalog, filters: FilterArgs | None = None, *, now: datetime | None = None
) -> PruneReport:
    """`docker image prune`: delete the unused images the filters select, then the freed
    blobs' files."""
    with catalog.database.write() as session:
        report = delete_unused_images(session=session, filters=filters, now=now)
    remove_blob_files(catalog, report.blob_digests)
    return report


def remove_blob_files(catalog: Catalog, digests: Iterable[str]) -> int:
    """After a delete has committed: remove the files of the blobs that still have no row
    (a load may have brought one back meanwhile); the bytes freed."""
    wanted = sorted(set(digests))
    if not wanted:
        return 0
    with catalog.database.read() as session:
        kept = set(session.scalars(select(Blob.digest).where(Blob.digest.in_(wanted))))
    return sum(catalog.store.delete(digest) for digest in wanted if digest not in kept)
