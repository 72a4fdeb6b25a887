"""Deleting images, then the files of the blobs they alone used: `catalog rmi`, `catalog
image prune`, and the server's `DELETE /images/{name}` and `POST /images/prune`.

The rows go in one write transaction (`services.delete`, `services.prune`); the files go
after it has committed, under the writer lock, and only those of blobs that neither a blob
row (a concurrent load brought one back) nor a live lease (a writer is about to rely on
it) names then (catalog.operations.leases): a rollback never leaves a row pointing at a
missing file, and no writer ever commits rows naming a file removed under it.

A file that cannot be removed once its rows are gone (permissions, a read-only store) is
not a failure of the removal: the images are gone. It is reported as a warning and left
to `catalog gc`, which removes unreferenced files.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from catalog.context import Catalog
from catalog.docker.filters import FilterArgs
from catalog.operations.leases import remove_unheld_blob_files
from catalog.services.delete import ImageDeletion, delete_images
from catalog.services.prune import PruneReport, delete_unused_images

__all__ = ["Warn", "prune_images", "remove_blob_files", "remove_images"]

logger = logging.getLogger("catalog")

# Told one line per file left behind (the CLI prints it on stderr, the server logs it).
Warn = Callable[[str], None]


def remove_images(
    catalog: Catalog,
    terms: Iterable[str],
    *,
    force: bool = False,
    prune: bool = True,
    warn: Warn | None = None,
) -> ImageDeletion:
    """`docker rmi TERM...`: each term untags or deletes as Docker does (a failed one
    changes nothing and is in `failures`), then the freed blobs' files are removed."""
    with catalog.database.write() as session:
        deletion = delete_images(session=session, terms=terms, force=force, prune=prune)
    remove_blob_files(catalog, deletion.blob_digests, warn=warn)
    return deletion


def prune_images(
    catalog: Catalog,
    filters: FilterArgs | None = None,
    *,
    now: datetime | None = None,
    warn: Warn | None = None,
) -> PruneReport:
    """`docker image prune`: delete the unused images the filters select, then the freed
    blobs' files."""
    with catalog.database.write() as session:
        report = delete_unused_images(session=session, filters=filters, now=now)
    remove_blob_files(catalog, report.blob_digests, warn=warn)
    return report


def remove_blob_files(catalog: Catalog, digests: Iterable[str], *, warn: Warn | None = None) -> int:
    """After a delete has committed: remove the files of the blobs nothing names or holds
    now; the bytes freed. Files that could not be removed are told to `warn`."""
    removal = remove_unheld_blob_files(catalog, digests)
    for left in removal.left:
        (warn or logger.warning)(
            f"blob file {left.digest} could not be removed ({left.reason}); "
            "catalog gc removes it later"
        )
    return removal.freed
