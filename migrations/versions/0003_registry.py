"""Registries: the compressed forms layers were seen as, and the manifests images came as.

`layer_distributions` lets a second pull skip what it has and a push HEAD or mount blobs
instead of compressing and uploading them; `image_manifests` keeps manifests byte for byte,
so pushing an unchanged image reproduces its digest.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 20:38:19.468490
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DIGEST_SHAPE = (
    "((substr(digest, 1, 7) = 'sha256:' AND length(digest) = 71)"
    " OR (substr(digest, 1, 7) = 'sha384:' AND length(digest) = 103)"
    " OR (substr(digest, 1, 7) = 'sha512:' AND length(digest) = 135))"
    " AND ltrim(substr(digest, 8), '0123456789abcdef') = ''"
)


def upgrade() -> None:
    op.create_table(
        "layer_distributions",
        sa.Column("digest", sa.String(length=135), nullable=False),
        sa.Column("repository", sa.String(length=512), nullable=False),
        sa.Column("diff_id", sa.String(length=71), nullable=False),
        sa.Column("media_type", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(DIGEST_SHAPE, name=op.f("ck_layer_distributions_digest_shape")),
        sa.CheckConstraint(
            "length(repository) > 0", name=op.f("ck_layer_distributions_repository_not_empty")
        ),
        sa.CheckConstraint("size >= 0", name=op.f("ck_layer_distributions_size_not_negative")),
        sa.ForeignKeyConstraint(
            ["diff_id"],
            ["blobs.digest"],
            name=op.f("fk_layer_distributions_diff_id_blobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("digest", "repository", name=op.f("pk_layer_distributions")),
    )
    with op.batch_alter_table("layer_distributions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_layer_distributions_diff_id"), ["diff_id"], unique=False
        )

    op.create_table(
        "image_manifests",
        sa.Column("digest", sa.String(length=135), nullable=False),
        sa.Column("image_id", sa.String(length=71), nullable=False),
        sa.Column("media_type", sa.String(length=255), nullable=False),
        sa.Column("manifest", sa.LargeBinary(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(DIGEST_SHAPE, name=op.f("ck_image_manifests_digest_shape")),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_image_manifests_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_image_manifests")),
    )
    with op.batch_alter_table("image_manifests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_image_manifests_image_id_seen_at", ["image_id", "seen_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("image_manifests", schema=None) as batch_op:
        batch_op.drop_index("ix_image_manifests_image_id_seen_at")
    op.drop_table("image_manifests")
    with op.batch_alter_table("layer_distributions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_layer_distributions_diff_id"))
    op.drop_table("layer_distributions")
