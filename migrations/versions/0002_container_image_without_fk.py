"""Containers keep their image ID without a foreign key, as Docker's do.

`docker rmi -f` deletes the image a stopped container was created from; the container
keeps pointing at the deleted ID. A foreign key would forbid that.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 15:06:36.115290
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("containers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_containers_image_id_images"), type_="foreignkey")


def downgrade() -> None:
    # Fails while a container points at a deleted image: remove such containers first.
    with op.batch_alter_table("containers", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_containers_image_id_images"),
            "images",
            ["image_id"],
            ["id"],
            ondelete="RESTRICT",
        )
