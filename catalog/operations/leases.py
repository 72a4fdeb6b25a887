"""Who holds a blob file, and when it may go: leases, as containerd's content store has them.

The race they close. A load finds a layer's file already in the store and skips writing
it; an rmi of another image that used the same layer deletes the blob's row, commits, and
unlinks the file; the load then commits rows naming a file that is gone. Neither side did
anything wrong alone: who owned the file between the load's look and its commit was in no
transaction.

The rule now:

1. A writer (load, squash, append, pull) registers the digests it is about to rely on in a
   lease (`Lease.hold`, a write transaction of its own) *before* it looks at the store.
   A digest it learns only by writing (the layer a squash or an append makes) is held
   after the bytes are verified and before the file is put in place or found there
   (`BlobWriter.commit(before_install=...)`). Readers that stream blobs for long (push,
   save) hold theirs too, so a file does not vanish half-way through an upload.
2. Files are removed (rmi, prune, gc, fsck --repair) only inside a write transaction, so
   under the writer lock every lease registration also takes, and only when neither a
   blob row nor a live lease names them (`remove_unheld_blob_files`). So a file a writer
   saw after its lease committed is there until the writer lets go.
3. The writer's rows commit in one transaction that first checks, under the same lock,
   that every held file exists (a lease that was judged dead cannot make it commit rows
   without their files) and deletes the lease (`Lease.commit`). A writer that fails
   releases its lease; one that is killed leaves it behind.
4. A lease is live until `expires_at` (renewed at each hold; `LEASE_SECONDS` later), and
   not after its owner is known to be gone: the owner is the boot ID, PID namespace, PID
   and start time of the process that took it (catalog.storage.owners), so `gc` drops
   the leases of a killed process at once, and those of another host or namespace when
   they expire.

A writer's temporary file has no digest yet, so no lease names it: its name carries its
writer (catalog.storage.owners), and gc keeps it while that process runs. The grace
period (`catalog gc --grace`) is for what has no known owner: files written by an older
catalog or on another host.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from catalog.context import Catalog
from catalog.db.models import Blob, utcnow
from catalog.errors import Conflict
from catalog.services.leases import LeaseRow, drop_leases, hold_blobs, lease_rows, release_lease
from catalog.storage.owners import owner_alive, process_owner

__all__ = [
    "LEASE_SECONDS",
    "BlobRemoval",
    "Lease",
    "LeftFile",
    "drop_dead_leases",
    "live_leased",
    "owner_alive",
    "process_owner",
    "remove_unheld_blob_files",
]

# containerd's `ctr` gives its leases 24 hours; a writer renews its lease at each hold.
LEASE_SECONDS = 24 * 3600.0


def _live(row: LeaseRow, now: datetime) -> bool:
    return row.expires_at > now and owner_alive(row.owner) is not False


def live_leased(*, session: Session, digests: Collection[str] | None = None) -> set[str]:
    """The digests (of `digests`, or all) that a live lease holds."""
    now = utcnow()
    return {row.digest for row in lease_rows(session=session, digests=digests) if _live(row, now)}


@dataclass(frozen=True)
class DroppedLease:
    lease_id: str
    blobs: int
    reason: str  # "expired" or "owner gone"


def drop_dead_leases(*, session: Session, dry_run: bool = False) -> list[DroppedLease]:
    """Delete the leases that expired or whose owner is gone (in the caller's write
    transaction); what was dropped (with `dry_run`, what would be)."""
    now = utcnow()
    dead: dict[str, DroppedLease] = {}
    for row in lease_rows(session=session):
        if _live(row, now):
            continue
        reason = "expired" if row.expires_at <= now else "owner gone"
        known = dead.get(row.lease_id)
        dead[row.lease_id] = DroppedLease(row.lease_id, (known.blobs if known else 0) + 1, reason)
    if not dry_run:
        drop_leases(session=session, lease_ids=list(dead))
    return [dead[key] for key in sorted(dead)]


class Lease:
    """The blobs one operation relies on before its rows name them (module doc).

    Use it in `with`: leaving the block without `commit`, or with an exception (the rows'
    transaction rolled back), releases the lease in a transaction of its own; if even
    that fails, the lease dies with the process.
    """

    def __init__(self, catalog: Catalog, *, purpose: str) -> None:
        self.catalog = catalog
        self.purpose = purpose  # "loading", "squashing", ...: for the error a commit raises
        self.id = uuid.uuid4().hex
        self.digests: set[str] = set()
        # commit(): deleted in the rows' transaction, if that commits; release(): deleted.
        self._committed = False
        self._released = False

    def hold(self, digests: Iterable[str], *, require_rows: bool = False) -> set[str]:
        """Hold `digests` (committed before this returns). With `require_rows`, return
        the digests that have no blob row at that moment (a reader's image was deleted)."""
        wanted = set(digests)
        if not wanted:
            return set()
        missing: set[str] = set()
        expires = utcnow() + timedelta(seconds=LEASE_SECONDS)
        with self.catalog.database.write() as session:
            if require_rows:
                present = set(session.scalars(select(Blob.digest).where(Blob.digest.in_(wanted))))
                missing = wanted - present
            hold_blobs(
                session=session,
                lease_id=self.id,
                owner=process_owner(),
                digests=wanted - missing,
                expires_at=expires,
            )
        self.digests |= wanted - missing
        return missing

    def hold_one(self, digest: str) -> None:
        """`hold([digest])`: what a blob writer calls before it installs a file."""
        self.hold([digest])

    def hold_for_reading(self, digests: Iterable[str]) -> set[str]:
        """`hold(require_rows=True)` for a reader, which can do without: on a database
        that cannot be written (read-only, full), read unheld; a file removed meanwhile
        then fails the read with one line, and nothing is written wrong."""
        try:
            return self.hold(digests, require_rows=True)
        except SQLAlchemyError:
            return set()

    def commit(self, session: Session) -> None:
        """In the transaction that writes the rows naming the held blobs: check that each
        file is there (this runs under the writer lock, as every removal does), then let
        go of the lease as the rows commit."""
        store = self.catalog.store
        for digest in sorted(self.digests):
            if not store.exists(digest):
                raise Conflict(
                    f"blob {digest} was removed from the store while {self.purpose}; "
                    "nothing was written, try again"
                )
        release_lease(session=session, lease_id=self.id)
        self._committed = True

    def release(self) -> None:
        """Give up the lease now (nothing of ours will name the blobs)."""
        if self._released or not self.digests:
            return
        self._released = True
        # Failing to release is not an error of the operation: the lease expires, or gc
        # drops it once this process has gone.
        with contextlib.suppress(SQLAlchemyError), self.catalog.database.write() as session:
            release_lease(session=session, lease_id=self.id)

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None and self._committed:
            return  # gone with the rows' transaction
        self.release()


@dataclass(frozen=True)
class LeftFile:
    """A blob file that should have gone but could not be removed."""

    digest: str
    reason: str


@dataclass
class BlobRemoval:
    """What `remove_unheld_blob_files` did: bytes freed, files kept because something
    holds them, and files it failed to remove (left for `catalog gc`)."""

    freed: int = 0
    removed: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    left: list[LeftFile] = field(default_factory=list)


def remove_unheld_blob_files(catalog: Catalog, digests: Iterable[str]) -> BlobRemoval:
    """After the delete that freed them has committed: remove the files of `digests` that
    neither a blob row (a load brought one back) nor a live lease names, under the writer
    lock. A file that cannot be removed is reported, not raised: the rows are gone for
    good, and `catalog gc` removes the file later."""
    wanted = sorted(set(digests))
    result = BlobRemoval()
    if not wanted:
        return result
    with catalog.database.write() as session:
        rows = set(session.scalars(select(Blob.digest).where(Blob.digest.in_(wanted))))
        leased = live_leased(session=session, digests=wanted)
        for digest in wanted:
            if digest in rows:
                continue
            if digest in leased:
                result.held.append(digest)
                continue
            try:
                freed = catalog.store.delete(digest)
            except OSError as exc:
                result.left.append(LeftFile(digest, exc.strerror or str(exc)))
                continue
            result.freed += freed
            result.removed.append(digest)
    return result
