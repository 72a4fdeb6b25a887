"""Blob leases: which blob files a writer relies on before its rows name them.

A load, squash, append or pull registers the blobs it is about to reference here, in a
transaction of its own, before it looks at the content store; rmi, prune and gc remove a
file only when neither a blob row nor a live lease names it (containerd's leases).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 21:41:18.578404
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHA256_SHAPE = (
    "length(digest) = 71 AND substr(digest, 1, 7) = 'sha256:'"
    " AND ltrim(substr(digest, 8), '0123456789abcdef') = ''"
)


def upgrade() -> None:
    op.create_table(
        "blob_leases",
        sa.Column("lease_id", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=71), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(SHA256_SHAPE, name=op.f("ck_blob_leases_digest_shape")),
        sa.CheckConstraint("length(lease_id) > 0", name=op.f("ck_blob_leases_lease_id_not_empty")),
        sa.PrimaryKeyConstraint("lease_id", "digest", name=op.f("pk_blob_leases")),
    )
    with op.batch_alter_table("blob_leases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_blob_leases_digest"), ["digest"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("blob_leases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_blob_leases_digest"))
    op.drop_table("blob_leases")
