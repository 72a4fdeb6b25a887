"""`catalog gc`: remove what nothing uses any more, rows first, then files.

What goes:

1. layer rows no image uses. A layer is used when an image lists it (`image_layers`), has
   it as its top layer (`images.top_chain_id`), or when a used layer stands on it
   (`parent_chain_id`); a recursive CTE computes that set. The others are deleted top
   first, one DELETE per level of the stack (each removes the unused layers nothing stands
   on any more), so no RESTRICT foreign key ever fires, on SQLite or PostgreSQL;
2. blob rows no layer uses any more;
3. blob files in the store that no blob row names (left by a failed or killed load,
   append or squash);
4. temporary files (`.tmp-*`) a killed writer left in the store: its name says which
   process wrote it (catalog.storage.owners), so a live writer's file stays and a
   killed one's goes at once; and named spool files a killed upload left under
   `<root>/tmp` (catalog.storage.spool).

Steps 1 and 2 are one write transaction. Files are removed after it has committed, in a
second write transaction (under the writer lock, as every lease is taken), and only files
that no blob row names and no live lease holds at that moment: a rollback never leaves a
row pointing at a missing file, and a writer that found a file present keeps it. That
transaction first drops the leases of writers that are gone (expired, or their process
has ended: catalog.operations.leases).

The grace period, and why. Every way in (load, append, squash, pull) writes its layer
blobs to the store first, outside any transaction, and commits their rows afterwards.
Between the two, the new blob file has no row, exactly like garbage: its lease is what
keeps it. A temporary file has no digest yet, so no lease names it; and a file written by
something that takes no lease (an older catalog) has only its age to go by. So a blob file
without a row or a lease, or a temporary file, is removed only when it has not been
modified for `grace_seconds`
(default: one hour, the store's `TEMPORARY_FILE_GRACE_SECONDS`; `catalog gc --grace
SECONDS`). A writer updates its temporary file on every write and a new blob file's mtime is
when its last byte was written, so a load whose rows commit less than the grace period
after its blobs were written never loses one. `--grace 0` is safe only when nothing else
is writing to the catalog.

A load that finds a blob file already in the store (an old unreferenced one) keeps that
file, but the store freshens its modification time when it does, so the grace period
covers that case too.

Rows are safe from concurrent writers by the writer lock every write transaction takes
(`Database.write`: BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL).
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from sqlalchemy import CTE, Select, Table, delete, exists, func, literal, select
from sqlalchemy.orm import Session

from catalog.context import Catalog
from catalog.db.models import Blob, Image, ImageLayer, Layer
from catalog.errors import os_failure
from catalog.operations.leases import DroppedLease, drop_dead_leases, live_leased
from catalog.operations.load import TEMPORARY_DIRNAME
from catalog.storage.content import TEMPORARY_FILE_GRACE_SECONDS, BlobInfo, ContentStore
from catalog.storage.spool import leftover_spools

__all__ = [
    "DEFAULT_GRACE_SECONDS",
    "GarbageReport",
    "RemovedFile",
    "RowGarbage",
    "collect_garbage",
    "remove_temporary_files",
    "remove_unreferenced_blob_files",
    "remove_unused_rows",
    "unused_blob_rows",
    "unused_layers",
    "used_layers",
]

DEFAULT_GRACE_SECONDS = TEMPORARY_FILE_GRACE_SECONDS

_LAYERS = cast(Table, Layer.__table__)
_BLOBS = cast(Table, Blob.__table__)


def used_layers() -> CTE:
    """A recursive CTE (`chain_id`, `parent_chain_id`) of every layer something uses: an
    image lists it or has it on top, or a used layer stands on it."""
    anchor = select(Layer.chain_id, Layer.parent_chain_id).where(
        exists().where(ImageLayer.chain_id == Layer.chain_id)
        | exists().where(Image.top_chain_id == Layer.chain_id)
    )
    used = anchor.cte("used_layers", recursive=True)
    below = select(Layer.chain_id, Layer.parent_chain_id).join(
        used, Layer.chain_id == used.c.parent_chain_id
    )
    return used.union(below)


def _layer_depths() -> CTE:
    """A recursive CTE (`chain_id`, `depth`): 0 for a bottom layer, its parent's plus one."""
    bottom = select(Layer.chain_id, literal(0).label("depth")).where(
        Layer.parent_chain_id.is_(None)
    )
    depths = bottom.cte("layer_depths", recursive=True)
    above = select(Layer.chain_id, (depths.c.depth + 1).label("depth")).join(
        depths, Layer.parent_chain_id == depths.c.chain_id
    )
    return depths.union_all(above)


def _unused_layers_query() -> Select[str]:
    used = used_layers()
    depths = _layer_depths()
    return (
        select(Layer.chain_id)
        .outerjoin(depths, depths.c.chain_id == Layer.chain_id)
        .where(Layer.chain_id.not_in(select(used.c.chain_id)))
        .order_by(func.coalesce(depths.c.depth, -1).desc(), Layer.chain_id)
    )


def unused_layers(*, session: Session) -> list[str]:
    """Chain IDs of the layer rows nothing uses, top first (deepest in its stack first)."""
    return list(session.scalars(_unused_layers_query()))


@dataclass(frozen=True)
class BlobRow:
    digest: str
    size: int


def unused_blob_rows(*, session: Session, after_layer_gc: bool = True) -> list[BlobRow]:
    """Blob rows no layer uses, by digest. With `after_layer_gc`, layers that gc would
    delete do not count as users (what `remove_unused_rows` would leave)."""
    users = select(Layer.chain_id).where(Layer.blob_digest == Blob.digest)
    if after_layer_gc:
        used = used_layers()
        users = users.where(Layer.chain_id.in_(select(used.c.chain_id)))
    rows = session.execute(
        select(Blob.digest, Blob.size).where(~users.exists()).order_by(Blob.digest)
    )
    return [BlobRow(digest, size) for digest, size in rows]


@dataclass(frozen=True)
class RowGarbage:
    """The layer rows (chain IDs, top first) and blob rows gc removes (or would)."""

    layers: list[str]
    blobs: list[BlobRow]


def remove_unused_rows(*, session: Session, dry_run: bool = False) -> RowGarbage:
    """Delete the layer rows no image uses, top first, then the blob rows no layer uses.

    With `dry_run`, only say which. The caller commits, then removes the blob files with
    `remove_unreferenced_blob_files`.
    """
    layers = unused_layers(session=session)
    if dry_run:
        return RowGarbage(layers, unused_blob_rows(session=session))
    if layers:
        used = used_layers()
        child = _LAYERS.alias("child")
        top_unused = (
            delete(_LAYERS)
            .where(
                _LAYERS.c.chain_id.not_in(select(used.c.chain_id)),
                ~exists().where(child.c.parent_chain_id == _LAYERS.c.chain_id),
            )
            .returning(_LAYERS.c.chain_id)
        )
        deleted: set[str] = set()
        # Each pass deletes the unused layers nothing stands on: the tops of the stacks.
        while removed := session.scalars(top_unused).all():
            deleted.update(removed)
        layers = [chain for chain in layers if chain in deleted]
    blobs = session.execute(
        delete(_BLOBS)
        .where(~exists().where(_LAYERS.c.blob_digest == _BLOBS.c.digest))
        .returning(_BLOBS.c.digest, _BLOBS.c.size)
    ).all()
    return RowGarbage(layers, sorted((BlobRow(d, s) for d, s in blobs), key=lambda b: b.digest))


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except FileNotFoundError:  # removed meanwhile
        return None


@dataclass(frozen=True)
class BlobFileSweep:
    removed: list[BlobInfo]
    # Blob files without a row, kept because they are younger than the grace period.
    kept_recent: list[str]
    # Blob files without a row, kept because a writer in progress holds them (a lease).
    kept_held: list[str] = field(default_factory=list)


def remove_unreferenced_blob_files(
    *,
    session: Session,
    store: ContentStore,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    dry_run: bool = False,
    also_unreferenced: Collection[str] = (),
    held: Collection[str] = (),
) -> BlobFileSweep:
    """Remove the blob files no blob row names and no lease holds (`held`), unless
    modified in the last `grace_seconds`.

    Call it after the row transaction has committed, in a write transaction (the writer
    lock keeps a lease from being taken between the look and the unlink): the rows are
    read now. With `dry_run`, nothing is removed and `also_unreferenced` counts as
    row-less (the blob rows a dry run would have deleted).
    """
    if grace_seconds < 0:
        raise ValueError(f"grace_seconds must not be negative, not {grace_seconds}")
    cutoff = time.time() - grace_seconds
    with_rows = set(session.scalars(select(Blob.digest))) - set(also_unreferenced)
    removed: list[BlobInfo] = []
    kept: list[str] = []
    kept_held: list[str] = []
    for blob in store.iter_blobs():
        if blob.digest in with_rows:
            continue
        if blob.digest in held:
            kept_held.append(blob.digest)
            continue
        path = store.path(blob.digest)
        st = _lstat(path)
        if st is None:
            continue
        if st.st_mtime > cutoff:
            kept.append(blob.digest)
            continue
        if not dry_run:
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise os_failure(exc, f"removing blob file {blob.digest}") from None
        removed.append(BlobInfo(blob.digest, st.st_size))
    return BlobFileSweep(removed, kept, kept_held)


@dataclass(frozen=True)
class RemovedFile:
    path: Path
    size: int


def remove_temporary_files(
    store: ContentStore,
    *,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    dry_run: bool = False,
) -> list[RemovedFile]:
    """Remove the store's temporary files that no running writer will finish: its writer
    has gone (the file's name says which process writes it), or, when that cannot be
    told, it was not modified in the last `grace_seconds`; each one removed (or, with
    `dry_run`, to remove)."""
    if grace_seconds < 0:
        raise ValueError(f"grace_seconds must not be negative, not {grace_seconds}")
    cutoff = time.time() - grace_seconds
    removed: list[RemovedFile] = []
    for path in store.temporary_files():
        st = _lstat(path)
        if st is None:
            continue
        alive = store.writer_alive(path)
        if alive or (alive is None and st.st_mtime > cutoff):
            continue
        if not dry_run:
            try:
                path.unlink()
            except FileNotFoundError:  # committed or removed meanwhile
                continue
            except OSError as exc:
                raise os_failure(exc, f"removing temporary file {path}") from None
        removed.append(RemovedFile(path, st.st_size))
    return removed


@dataclass
class GarbageReport:
    """What one `catalog gc` removed (or, in a dry run, would remove)."""

    dry_run: bool
    grace_seconds: float
    layers: list[str] = field(default_factory=list)
    blob_rows: list[BlobRow] = field(default_factory=list)
    blob_files: list[BlobInfo] = field(default_factory=list)
    kept_recent: list[str] = field(default_factory=list)
    kept_held: list[str] = field(default_factory=list)
    temporary_files: list[RemovedFile] = field(default_factory=list)
    leases: list[DroppedLease] = field(default_factory=list)

    @property
    def blobs(self) -> list[str]:
        """Digests of the blobs whose row or file (or both) went, sorted."""
        return sorted({b.digest for b in self.blob_rows} | {b.digest for b in self.blob_files})

    @property
    def reclaimed(self) -> int:
        """Bytes of the files removed (blobs and temporary files)."""
        return sum(b.size for b in self.blob_files) + sum(f.size for f in self.temporary_files)

    def lines(self) -> list[str]:
        """What the CLI prints, docker-style, but for the total."""
        would = "Would delete" if self.dry_run else "Deleted"
        lines = [f"{would} layer: {chain}" for chain in self.layers]
        lines += [f"{would} blob: {digest}" for digest in self.blobs]
        remove = "Would remove" if self.dry_run else "Removed"
        lines += [f"{remove} temporary file: {f.path}" for f in self.temporary_files]
        release = "Would release" if self.dry_run else "Released"
        lines += [
            f"{release} lease: {lease.lease_id} ({lease.blobs} blob"
            f"{'s' if lease.blobs != 1 else ''}, {lease.reason})"
            for lease in self.leases
        ]
        if self.kept_held:
            count = len(self.kept_held)
            lines.append(
                f"Kept {count} unreferenced blob file{'s' if count != 1 else ''} that a writer"
                " in progress holds"
            )
        if self.kept_recent:
            count = len(self.kept_recent)
            lines.append(
                f"Kept {count} unreferenced blob file{'s' if count != 1 else ''} modified"
                f" less than {self.grace_seconds:g} seconds ago (see --grace)"
            )
        return lines


def collect_garbage(
    catalog: Catalog,
    *,
    dry_run: bool = False,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
) -> GarbageReport:
    """`catalog gc`: rows in one write transaction, then files after it has committed.

    Like `load_archive`, this owns its transactions: the files can only go once the rows
    that named them are gone for good. A dry run reads only.
    """
    if grace_seconds < 0:
        raise ValueError(f"grace_seconds must not be negative, not {grace_seconds}")
    report = GarbageReport(dry_run=dry_run, grace_seconds=grace_seconds)
    if dry_run:
        with catalog.database.read() as session:
            rows = remove_unused_rows(session=session, dry_run=True)
            report.leases = drop_dead_leases(session=session, dry_run=True)
            files = remove_unreferenced_blob_files(
                session=session,
                store=catalog.store,
                grace_seconds=grace_seconds,
                dry_run=True,
                also_unreferenced=[b.digest for b in rows.blobs],
                held=live_leased(session=session),
            )
    else:
        with catalog.database.write() as session:
            rows = remove_unused_rows(session=session)
        # Files go under the writer lock, after the leases of writers that are gone.
        with catalog.database.write() as session:
            report.leases = drop_dead_leases(session=session)
            files = remove_unreferenced_blob_files(
                session=session,
                store=catalog.store,
                grace_seconds=grace_seconds,
                held=live_leased(session=session),
            )
    report.layers, report.blob_rows = rows.layers, rows.blobs
    report.blob_files, report.kept_recent = files.removed, files.kept_recent
    report.kept_held = files.kept_held
    report.temporary_files = remove_temporary_files(
        catalog.store, grace_seconds=grace_seconds, dry_run=dry_run
    )
    report.temporary_files += remove_leftover_spools(
        catalog, grace_seconds=grace_seconds, dry_run=dry_run
    )
    return report


def remove_leftover_spools(
    catalog: Catalog, *, grace_seconds: float, dry_run: bool = False
) -> list[RemovedFile]:
    """Named spool files under `<root>/tmp` not modified in the last `grace_seconds`: a
    killed upload's copy (catalog.storage.spool)."""
    cutoff = time.time() - grace_seconds
    removed: list[RemovedFile] = []
    for path in leftover_spools(catalog.location.root / TEMPORARY_DIRNAME):
        st = _lstat(path)
        if st is None or st.st_mtime > cutoff:
            continue
        if not dry_run:
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise os_failure(exc, f"removing spool file {path}") from None
        removed.append(RemovedFile(path, st.st_size))
    return removed
