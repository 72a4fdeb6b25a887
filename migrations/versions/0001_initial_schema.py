"""Initial schema: images, layers, their order, labels, history, references, containers, blobs.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 14:35:36.735107
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("digest", sa.String(length=71), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "length(digest) = 71 AND substr(digest, 1, 7) = 'sha256:' AND ltrim(substr(digest, 8), '0123456789abcdef') = ''",
            name=op.f("ck_blobs_digest_shape"),
        ),
        sa.CheckConstraint("size >= 0", name=op.f("ck_blobs_size_not_negative")),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_blobs")),
    )
    op.create_table(
        "layers",
        sa.Column("chain_id", sa.String(length=71), nullable=False),
        sa.Column("diff_id", sa.String(length=71), nullable=False),
        sa.Column("parent_chain_id", sa.String(length=71), nullable=True),
        sa.Column("diff_size", sa.BigInteger(), nullable=False),
        sa.Column("blob_digest", sa.String(length=71), nullable=False),
        sa.CheckConstraint(
            "length(chain_id) = 71 AND substr(chain_id, 1, 7) = 'sha256:' AND ltrim(substr(chain_id, 8), '0123456789abcdef') = ''",
            name=op.f("ck_layers_chain_id_shape"),
        ),
        sa.CheckConstraint(
            "length(diff_id) = 71 AND substr(diff_id, 1, 7) = 'sha256:' AND ltrim(substr(diff_id, 8), '0123456789abcdef') = ''",
            name=op.f("ck_layers_diff_id_shape"),
        ),
        sa.CheckConstraint("diff_size >= 0", name=op.f("ck_layers_diff_size_not_negative")),
        sa.CheckConstraint(
            "parent_chain_id IS NOT NULL OR chain_id = diff_id",
            name=op.f("ck_layers_base_chain_is_diff_id"),
        ),
        sa.ForeignKeyConstraint(
            ["blob_digest"],
            ["blobs.digest"],
            name=op.f("fk_layers_blob_digest_blobs"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["parent_chain_id"],
            ["layers.chain_id"],
            name=op.f("fk_layers_parent_chain_id_layers"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("chain_id", name=op.f("pk_layers")),
    )
    with op.batch_alter_table("layers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_layers_blob_digest"), ["blob_digest"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_layers_parent_chain_id"), ["parent_chain_id"], unique=False
        )

    op.create_table(
        "images",
        sa.Column("id", sa.String(length=71), nullable=False),
        sa.Column("parent_id", sa.String(length=71), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=True),
        sa.Column("os", sa.String(length=64), nullable=False),
        sa.Column("architecture", sa.String(length=64), nullable=False),
        sa.Column("variant", sa.String(length=64), nullable=True),
        sa.Column("author", sa.Text(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("top_chain_id", sa.String(length=71), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("last_tag_time", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "length(id) = 71 AND substr(id, 1, 7) = 'sha256:' AND ltrim(substr(id, 8), '0123456789abcdef') = ''",
            name=op.f("ck_images_id_shape"),
        ),
        sa.CheckConstraint(
            "parent_id IS NULL OR parent_id <> id", name=op.f("ck_images_not_own_parent")
        ),
        sa.CheckConstraint("size >= 0", name=op.f("ck_images_size_not_negative")),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["images.id"],
            name=op.f("fk_images_parent_id_images"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["top_chain_id"],
            ["layers.chain_id"],
            name=op.f("fk_images_top_chain_id_layers"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_images")),
    )
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_images_created"), ["created"], unique=False)
        batch_op.create_index(batch_op.f("ix_images_parent_id"), ["parent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_images_top_chain_id"), ["top_chain_id"], unique=False)

    op.create_table(
        "containers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("image_id", sa.String(length=71), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "length(id) = 64 AND ltrim(id, '0123456789abcdef') = ''",
            name=op.f("ck_containers_id_shape"),
        ),
        sa.CheckConstraint(
            "state IN ('created', 'running', 'paused', 'restarting', 'removing', 'exited', 'dead')",
            name=op.f("ck_containers_state_known"),
        ),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_containers_image_id_images"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_containers")),
        sa.UniqueConstraint("name", name=op.f("uq_containers_name")),
    )
    with op.batch_alter_table("containers", schema=None) as batch_op:
        batch_op.create_index("ix_containers_image_id_state", ["image_id", "state"], unique=False)

    op.create_table(
        "image_configs",
        sa.Column("image_id", sa.String(length=71), nullable=False),
        sa.Column("config", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_image_configs_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", name=op.f("pk_image_configs")),
    )
    op.create_table(
        "image_history",
        sa.Column("image_id", sa.String(length=71), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("author", sa.Text(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("empty_layer", sa.Boolean(), nullable=False),
        sa.CheckConstraint("position >= 0", name=op.f("ck_image_history_position_not_negative")),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_image_history_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", "position", name=op.f("pk_image_history")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "image_labels",
        sa.Column("image_id", sa.String(length=71), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_image_labels_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", "key", name=op.f("pk_image_labels")),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("image_labels", schema=None) as batch_op:
        batch_op.create_index("ix_image_labels_key_value", ["key", "value"], unique=False)

    op.create_table(
        "image_layers",
        sa.Column("image_id", sa.String(length=71), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.String(length=71), nullable=False),
        sa.CheckConstraint("position >= 0", name=op.f("ck_image_layers_position_not_negative")),
        sa.ForeignKeyConstraint(
            ["chain_id"],
            ["layers.chain_id"],
            name=op.f("fk_image_layers_chain_id_layers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_image_layers_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", "position", name=op.f("pk_image_layers")),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("image_layers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_image_layers_chain_id_image_id", ["chain_id", "image_id"], unique=False
        )

    op.create_table(
        "image_references",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("repository", sa.String(length=512), nullable=False),
        sa.Column("tag", sa.String(length=128), nullable=True),
        sa.Column("digest", sa.String(length=135), nullable=True),
        sa.Column("image_id", sa.String(length=71), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "digest IS NULL OR (((substr(digest, 1, 7) = 'sha256:' AND length(digest) = 71) OR (substr(digest, 1, 7) = 'sha384:' AND length(digest) = 103) OR (substr(digest, 1, 7) = 'sha512:' AND length(digest) = 135)) AND ltrim(substr(digest, 8), '0123456789abcdef') = '')",
            name=op.f("ck_image_references_digest_shape"),
        ),
        sa.CheckConstraint(
            "(tag IS NULL AND digest IS NOT NULL) OR (tag IS NOT NULL AND digest IS NULL)",
            name=op.f("ck_image_references_tag_or_digest"),
        ),
        sa.CheckConstraint(
            "length(repository) > 0", name=op.f("ck_image_references_repository_not_empty")
        ),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_image_references_image_id_images"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_references")),
        sa.UniqueConstraint(
            "repository", "digest", name=op.f("uq_image_references_repository_digest")
        ),
        sa.UniqueConstraint("repository", "tag", name=op.f("uq_image_references_repository_tag")),
    )
    with op.batch_alter_table("image_references", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_image_references_image_id"), ["image_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("image_references", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_image_references_image_id"))

    op.drop_table("image_references")
    with op.batch_alter_table("image_layers", schema=None) as batch_op:
        batch_op.drop_index("ix_image_layers_chain_id_image_id")

    op.drop_table("image_layers")
    with op.batch_alter_table("image_labels", schema=None) as batch_op:
        batch_op.drop_index("ix_image_labels_key_value")

    op.drop_table("image_labels")
    op.drop_table("image_history")
    op.drop_table("image_configs")
    with op.batch_alter_table("containers", schema=None) as batch_op:
        batch_op.drop_index("ix_containers_image_id_state")

    op.drop_table("containers")
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_images_top_chain_id"))
        batch_op.drop_index(batch_op.f("ix_images_parent_id"))
        batch_op.drop_index(batch_op.f("ix_images_created"))

    op.drop_table("images")
    with op.batch_alter_table("layers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_layers_parent_chain_id"))
        batch_op.drop_index(batch_op.f("ix_layers_blob_digest"))

    op.drop_table("layers")
    op.drop_table("blobs")
