"""Kept listing facts: per-image and per-chain facts the writers keep, so that a listing
reads one narrow row per image and no GROUP BY (issue 13, docs/listing.md §12).

`layers.ref_count`; on `images`: `sort_key` (minus `created` in microseconds, the largest
BIGINT when undated), `unique_size`, `child_count`, `tag_count`, `digest_count`,
`container_count`, and `labels_json`, `repo_tags`, `repo_digests` as Go's JSON; two
indexes for the listing's order and for dangling images (covering ones on SQLite), and
one on (size, id) for the web view's pages sorted by size. Every fact is backfilled from
the rows here, with SQL and, for the JSON texts, Python written out in this file (a
migration must not change when the application does; `catalog fsck` compares the result
with the application's own recomputation).

SQLite: columns are added with ALTER TABLE (plain string defaults, so Alembic's batch mode
does not rebuild `images`, whose rebuild would cascade deletes into its child tables under
`foreign_keys = ON`); the downgrade drops them the same way (SQLite >= 3.35).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 21:44:11.463844
"""

import json
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNDATED = 2**63 - 1
DANGLING = "child_count = 0 AND tag_count = 0"
LISTING_COLUMNS = (
    "sort_key",
    "id",
    "parent_id",
    "size",
    "unique_size",
    "container_count",
    "labels_json",
    "repo_tags",
    "repo_digests",
    "tag_count",
    "digest_count",
    "child_count",
)
COUNTS = ("unique_size", "child_count", "tag_count", "digest_count", "container_count")
# Rows read and written at a time by the JSON backfills.
BATCH = 10_000

# Go's encoding/json escapes these even in UTF-8 output (HTML safety, JS line separators).
_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})
_GO_ESCAPES.update({0x2028: "\\u2028", 0x2029: "\\u2029"})


def _go_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).translate(_GO_ESCAPES)


def _familiar(repository: str) -> str:
    """Docker's familiar name of a normalized repository."""
    if repository.startswith("docker.io/library/") and "/" not in repository[18:]:
        return repository[18:]
    return repository.removeprefix("docker.io/")


def upgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sort_key", sa.BigInteger(), server_default=str(UNDATED), nullable=False)
        )
        batch_op.add_column(
            sa.Column("unique_size", sa.BigInteger(), server_default="0", nullable=False)
        )
        for name in COUNTS[1:]:
            batch_op.add_column(sa.Column(name, sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("labels_json", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("repo_tags", sa.Text(), server_default="[]", nullable=False))
        batch_op.add_column(
            sa.Column("repo_digests", sa.Text(), server_default="[]", nullable=False)
        )
    with op.batch_alter_table("layers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("ref_count", sa.Integer(), server_default="0", nullable=False)
        )

    _backfill()

    # The web view's pages sorted by size (docs/web.md): a keyset range on (size, id).
    op.create_index("ix_images_size_id", "images", ["size", "id"])
    # The listing's order and dangling images: on SQLite covering indexes (the listing
    # reads them alone, in order); on PostgreSQL narrow ones.
    if op.get_bind().dialect.name == "sqlite":
        op.create_index("ix_images_listing", "images", list(LISTING_COLUMNS))
        op.create_index(
            "ix_images_listing_dangling",
            "images",
            list(LISTING_COLUMNS),
            sqlite_where=sa.text(DANGLING),
        )
    else:
        op.create_index("ix_images_sort_key_id", "images", ["sort_key", "id"])
        op.create_index(
            "ix_images_dangling", "images", ["sort_key", "id"], postgresql_where=sa.text(DANGLING)
        )
        # Names by prefix (LIKE 'prefix%'), whatever the database's collation.
        op.create_index(
            "ix_image_references_repository_pattern",
            "image_references",
            ["repository"],
            postgresql_ops={"repository": "text_pattern_ops"},
        )


def _backfill() -> None:
    """Set-based, so that each table is rewritten once: reference counts from a GROUP BY;
    the JSON texts computed here into two temporary tables; then one UPDATE of `images`
    joining every aggregate."""
    op.execute(
        "UPDATE layers SET ref_count = per_chain.n"
        " FROM (SELECT chain_id, count(*) AS n FROM image_layers GROUP BY chain_id) AS per_chain"
        " WHERE per_chain.chain_id = layers.chain_id"
    )
    op.execute("CREATE TEMPORARY TABLE kept_labels (id VARCHAR(71) PRIMARY KEY, labels TEXT)")
    op.execute(
        "CREATE TEMPORARY TABLE kept_names"
        " (id VARCHAR(71) PRIMARY KEY, tags TEXT NOT NULL, digests TEXT NOT NULL)"
    )
    # Keys sorted in Python (code point order, which is UTF-8 byte order, as Go sorts map
    # keys), whatever the database's collation.
    labels = _grouped("SELECT image_id, key, value FROM image_labels ORDER BY image_id")
    _insert(
        "INSERT INTO kept_labels (id, labels) VALUES (:id, :labels)",
        ({"id": i, "labels": _go_json(dict(sorted(rows)))} for i, rows in labels),
    )
    names = _grouped(
        "SELECT image_id, repository, tag, digest FROM image_references ORDER BY image_id"
    )
    _insert(
        "INSERT INTO kept_names (id, tags, digests) VALUES (:id, :tags, :digests)",
        (_names(image_id, rows) for image_id, rows in names),
    )
    if op.get_bind().dialect.name == "sqlite":
        # created is naive UTC text 'YYYY-MM-DD HH:MM:SS.ffffff' (models.UTCDateTime).
        microseconds = (
            "CAST(strftime('%s', images.created) AS INTEGER) * 1000000"
            " + CAST(substr(images.created, 21, 6) AS INTEGER)"
        )
    else:
        microseconds = "CAST(EXTRACT(EPOCH FROM images.created) * 1000000 AS BIGINT)"

    def count(table: str, key: str, where: str = "") -> str:
        return f"(SELECT {key} AS id, count(*) AS n FROM {table} {where} GROUP BY {key})"  # noqa: S608

    op.execute(
        "UPDATE images SET"  # noqa: S608 - our own SQL
        f" sort_key = CASE WHEN images.created IS NULL THEN {UNDATED} ELSE -({microseconds}) END,"
        " unique_size = f.unique_size, child_count = f.child_count, tag_count = f.tag_count,"
        " digest_count = f.digest_count, container_count = f.container_count,"
        " labels_json = f.labels, repo_tags = f.tags, repo_digests = f.digests"
        " FROM (SELECT i.id AS id,"
        "   coalesce(u.n, 0) AS unique_size, coalesce(ch.n, 0) AS child_count,"
        "   coalesce(t.n, 0) AS tag_count, coalesce(d.n, 0) AS digest_count,"
        "   coalesce(c.n, 0) AS container_count, kl.labels AS labels,"
        "   coalesce(kn.tags, '[]') AS tags, coalesce(kn.digests, '[]') AS digests"
        "   FROM images AS i"
        "   LEFT JOIN (SELECT il.image_id AS id, sum(l.diff_size) AS n FROM image_layers AS il"
        "     JOIN layers AS l ON l.chain_id = il.chain_id WHERE l.ref_count = 1"
        "     GROUP BY il.image_id) AS u ON u.id = i.id"
        f"   LEFT JOIN {count('images', 'parent_id', 'WHERE parent_id IS NOT NULL')} AS ch"
        "     ON ch.id = i.id"
        f"   LEFT JOIN {count('image_references', 'image_id', 'WHERE tag IS NOT NULL')} AS t"
        "     ON t.id = i.id"
        f"   LEFT JOIN {count('image_references', 'image_id', 'WHERE digest IS NOT NULL')} AS d"
        "     ON d.id = i.id"
        f"   LEFT JOIN {count('containers', 'image_id')} AS c ON c.id = i.id"
        "   LEFT JOIN kept_labels AS kl ON kl.id = i.id"
        "   LEFT JOIN kept_names AS kn ON kn.id = i.id) AS f"
        " WHERE images.id = f.id"
    )
    op.execute("DROP TABLE kept_labels")
    op.execute("DROP TABLE kept_names")


def _grouped(statement: str) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """Rows of `statement` (image ID first, ordered by it) grouped by image, streamed."""
    rows = op.get_bind().exec_driver_sql(
        statement, execution_options={"stream_results": True, "yield_per": BATCH}
    )
    current: str | None = None
    group: list[tuple[Any, ...]] = []
    for image_id, *rest in rows:
        if image_id != current:
            if current is not None:
                yield current, group
            current, group = image_id, []
        group.append(tuple(rest))
    if current is not None:
        yield current, group


def _insert(statement: str, rows: Iterator[dict[str, str]]) -> None:
    """`statement` for each row, in batches."""
    pending: list[dict[str, str]] = []
    for row in rows:
        pending.append(row)
        if len(pending) >= BATCH:
            op.get_bind().execute(sa.text(statement), pending)
            pending = []
    if pending:
        op.get_bind().execute(sa.text(statement), pending)


def _names(image_id: str, rows: list[tuple[Any, ...]]) -> dict[str, str]:
    # Docker's reference store order: by the full normalized string.
    names = sorted(
        (repository + (f":{tag}" if tag is not None else f"@{digest}"), repository, tag)
        for repository, tag, digest in rows
    )
    shown = [(_familiar(r) + full[len(r) :], tag) for full, r, tag in names]
    tags = [text for text, tag in shown if tag is not None]
    digests = [text for text, tag in shown if tag is None]
    return {"id": image_id, "tags": _go_json(tags), "digests": _go_json(digests)}


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite >= 3.35): a batch rebuild of `images` would cascade.
    op.drop_index("ix_images_size_id", table_name="images")
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_images_listing", table_name="images")
        op.drop_index("ix_images_listing_dangling", table_name="images")
    else:
        op.drop_index("ix_images_sort_key_id", table_name="images")
        op.drop_index("ix_images_dangling", table_name="images")
        op.drop_index("ix_image_references_repository_pattern", table_name="image_references")
    op.drop_column("layers", "ref_count")
    for name in (
        "repo_digests",
        "repo_tags",
        "labels_json",
        "container_count",
        "digest_count",
        "tag_count",
        "child_count",
        "unique_size",
        "sort_key",
    ):
        op.drop_column("images", name)
