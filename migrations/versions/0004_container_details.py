"""Containers as `docker ps` and `docker inspect` show them.

Each container gains the image as the user named it, its entrypoint and command, when it
started and finished and its exit code, and its labels (`container_labels`). Existing rows
get what can be known: the image's ID as its name (the name used was not kept), the
image's own entrypoint, command and labels (what `docker create` copies when none are
given), and for a container that ran, its creation time as start (and finish) time with
exit code 0.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 21:49:15.707762
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RAN = "('running', 'paused', 'restarting', 'exited')"


def _string_list(value: Any) -> list[str] | None:
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return value
    return None


def _fill_existing_rows() -> None:
    bind = op.get_bind()
    bind.execute(sa.text("UPDATE containers SET image = image_id"))
    bind.execute(sa.text("UPDATE containers SET started_at = created WHERE state <> 'created'"))
    bind.execute(
        sa.text("UPDATE containers SET finished_at = created WHERE state IN ('exited', 'dead')")
    )
    rows = bind.execute(
        sa.text(
            "SELECT c.id, ic.config FROM containers c"
            " JOIN image_configs ic ON ic.image_id = c.image_id"
        )
    ).all()
    containers = sa.table(
        "containers",
        sa.column("id", sa.String),
        sa.column("entrypoint", sa.JSON(none_as_null=True)),
        sa.column("cmd", sa.JSON(none_as_null=True)),
    )
    for container_id, raw in rows:
        try:
            config = json.loads(bytes(raw)).get("config") or {}
        except (ValueError, AttributeError):
            continue
        if not isinstance(config, dict):
            continue
        entrypoint = _string_list(config.get("Entrypoint"))
        cmd = _string_list(config.get("Cmd"))
        if entrypoint is None and cmd is None:
            continue
        bind.execute(
            containers.update()
            .where(containers.c.id == container_id)
            .values(entrypoint=entrypoint, cmd=cmd)
        )


def upgrade() -> None:
    with op.batch_alter_table("containers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("image", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("entrypoint", sa.JSON(none_as_null=True), nullable=True))
        batch_op.add_column(sa.Column("cmd", sa.JSON(none_as_null=True), nullable=True))
        batch_op.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("exit_code", sa.Integer(), nullable=False, server_default="0")
        )
    _fill_existing_rows()
    with op.batch_alter_table("containers", schema=None) as batch_op:
        batch_op.alter_column("image", existing_type=sa.Text(), nullable=False)
        batch_op.alter_column("exit_code", existing_type=sa.Integer(), server_default=None)
        batch_op.create_check_constraint(
            "created_not_started", "state <> 'created' OR started_at IS NULL"
        )
        batch_op.create_check_constraint(
            "ran_has_started", f"state NOT IN {RAN} OR started_at IS NOT NULL"
        )
        batch_op.create_check_constraint("image_not_empty", "length(image) > 0")
    # Made after the containers table is rebuilt: on SQLite a batch rebuild drops the old
    # table, and with foreign keys on that deletes the rows referring to it.
    op.create_table(
        "container_labels",
        sa.Column("container_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["container_id"],
            ["containers.id"],
            name=op.f("fk_container_labels_container_id_containers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("container_id", "key", name=op.f("pk_container_labels")),
        sqlite_with_rowid=False,
    )
    op.get_bind().execute(
        sa.text(
            "INSERT INTO container_labels (container_id, key, value)"
            " SELECT c.id, l.key, l.value FROM containers c"
            " JOIN image_labels l ON l.image_id = c.image_id"
        )
    )


def downgrade() -> None:
    op.drop_table("container_labels")
    with op.batch_alter_table("containers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_containers_image_not_empty"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_containers_ran_has_started"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_containers_created_not_started"), type_="check")
        batch_op.drop_column("exit_code")
        batch_op.drop_column("finished_at")
        batch_op.drop_column("started_at")
        batch_op.drop_column("cmd")
        batch_op.drop_column("entrypoint")
        batch_op.drop_column("image")
