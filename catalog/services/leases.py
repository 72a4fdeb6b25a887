"""Blob leases as rows: which blobs a writer holds before its rows name them.

Services: they take a session and never commit. `catalog.operations.leases` owns the
transactions, the files and the judgement of whether a lease's owner is still alive.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from catalog.db.models import BlobLease
from catalog.db.sql import insert_ignoring_duplicates

__all__ = ["LeaseRow", "drop_leases", "hold_blobs", "lease_rows", "release_lease"]


@dataclass(frozen=True)
class LeaseRow:
    lease_id: str
    digest: str
    owner: str
    expires_at: datetime


def hold_blobs(
    *,
    session: Session,
    lease_id: str,
    owner: str,
    digests: Iterable[str],
    expires_at: datetime,
) -> None:
    """Add `digests` to the lease `lease_id` and move the whole lease's expiry to
    `expires_at` (a writer still at work renews what it holds)."""
    rows = [
        {"lease_id": lease_id, "digest": digest, "owner": owner, "expires_at": expires_at}
        for digest in sorted(set(digests))
    ]
    insert_ignoring_duplicates(session, BlobLease, rows, key=["lease_id", "digest"])
    session.execute(
        update(BlobLease).where(BlobLease.lease_id == lease_id).values(expires_at=expires_at)
    )


def release_lease(*, session: Session, lease_id: str) -> None:
    """Forget the lease: its writer's rows now name the blobs, or it gave up."""
    session.execute(delete(BlobLease).where(BlobLease.lease_id == lease_id))


def lease_rows(*, session: Session, digests: Collection[str] | None = None) -> list[LeaseRow]:
    """Every lease row, or those of `digests`; in a fixed order."""
    query = select(BlobLease.lease_id, BlobLease.digest, BlobLease.owner, BlobLease.expires_at)
    if digests is not None:
        if not digests:
            return []
        query = query.where(BlobLease.digest.in_(sorted(digests)))
    rows = session.execute(query.order_by(BlobLease.lease_id, BlobLease.digest))
    return [LeaseRow(*row) for row in rows]


def drop_leases(*, session: Session, lease_ids: Collection[str]) -> None:
    """Delete whole leases (their owners are gone, or they expired)."""
    if lease_ids:
        session.execute(delete(BlobLease).where(BlobLease.lease_id.in_(sorted(lease_ids))))
