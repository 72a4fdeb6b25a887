"""The catalog's tables, as SQLAlchemy 2 typed models.

Images, layers and their order, labels, history, references, containers and blobs are
rows, so that listing filters, shared sizes and reports are SQL. Constraints keep the data
true on both backends: every digest is checked for shape, every foreign key is declared,
and one repository:tag (or repository@digest) names at most one image.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from catalog.db.kept_values import DANGLING, ROW_COLUMNS, UNDATED

# Every constraint gets a predictable name, so SQLite batch migrations can alter it.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

CONTAINER_STATES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")

# What a listing reads of an image (order first; then what a summary shows; then what its
# conditions test): the columns of SQLite's covering listing indexes.
LISTING_COLUMNS = (*ROW_COLUMNS, "tag_count", "digest_count", "child_count")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both backends.

    PostgreSQL stores `timestamptz`. SQLite has no time zones, so we store naive UTC in
    SQLAlchemy's fixed-width text form, which sorts and compares correctly as text.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("catalog stores only timezone-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Column policies, reused by name (warehouse/utils/db/types.py does the same).
Sha256 = Annotated[str, mapped_column(String(71))]
Timestamp = Annotated[datetime, mapped_column(UTCDateTime())]
ByteCount = Annotated[int, mapped_column(BigInteger)]


def sha256_shape(column: str) -> str:
    """SQL true when `column` is `sha256:` and 64 lower-case hex digits.

    `ltrim(s, chars)` strips every leading character found in `chars`; it exists with the
    same meaning in SQLite and PostgreSQL, so one expression serves both backends.
    """
    return (
        f"length({column}) = 71 AND substr({column}, 1, 7) = 'sha256:'"
        f" AND ltrim(substr({column}, 8), '0123456789abcdef') = ''"
    )


def digest_shape(column: str) -> str:
    """SQL true for a `sha256`, `sha384` or `sha512` digest of the right length in lower hex."""
    hex_part = f"ltrim(substr({column}, 8), '0123456789abcdef') = ''"
    return (
        f"((substr({column}, 1, 7) = 'sha256:' AND length({column}) = 71)"
        f" OR (substr({column}, 1, 7) = 'sha384:' AND length({column}) = 103)"
        f" OR (substr({column}, 1, 7) = 'sha512:' AND length({column}) = 135))"
        f" AND {hex_part}"
    )


def only_on(dialect: str, index: Index) -> Index:
    """An index made on one backend only: `ddl_if` for CREATE, `info["dialects"]` for
    Alembic's comparison (catalog.db.schema.include_object_for)."""
    index.info["dialects"] = (dialect,)
    return index.ddl_if(dialect=dialect)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Blob(Base):
    """A file in the content store, by the digest of its bytes."""

    __tablename__ = "blobs"
    __table_args__ = (
        CheckConstraint(sha256_shape("digest"), name="digest_shape"),
        CheckConstraint("size >= 0", name="size_not_negative"),
    )

    digest: Mapped[Sha256] = mapped_column(primary_key=True)
    size: Mapped[ByteCount]
    created_at: Mapped[Timestamp] = mapped_column(default=utcnow)


class Layer(Base):
    """One layer in one position of a stack, keyed by its chain ID.

    The same diff at another depth is another chain, so a chain ID fixes the whole stack
    beneath it; its parent is the chain of the layers below.
    """

    __tablename__ = "layers"
    __table_args__ = (
        CheckConstraint(sha256_shape("chain_id"), name="chain_id_shape"),
        CheckConstraint(sha256_shape("diff_id"), name="diff_id_shape"),
        CheckConstraint("diff_size >= 0", name="diff_size_not_negative"),
        # The bottom layer's chain ID is its diff ID (image spec, ChainID).
        CheckConstraint(
            "parent_chain_id IS NOT NULL OR chain_id = diff_id", name="base_chain_is_diff_id"
        ),
    )

    chain_id: Mapped[Sha256] = mapped_column(primary_key=True)
    diff_id: Mapped[Sha256]
    parent_chain_id: Mapped[Sha256 | None] = mapped_column(
        ForeignKey("layers.chain_id", ondelete="RESTRICT"), index=True
    )
    # Bytes of the layer's own regular files (docs/layers-and-squash.md §1.5).
    diff_size: Mapped[ByteCount]
    # The uncompressed layer tar in the content store.
    blob_digest: Mapped[Sha256] = mapped_column(
        ForeignKey("blobs.digest", ondelete="RESTRICT"), index=True
    )
    # Kept fact (services.kept_facts): how many images use this chain (image_layers rows).
    ref_count: Mapped[int] = mapped_column(Integer, server_default="0")

    parent: Mapped[Layer | None] = relationship(remote_side=[chain_id])


class Image(Base):
    """An image, identified by the digest of its config JSON."""

    __tablename__ = "images"
    __table_args__ = (
        CheckConstraint(sha256_shape("id"), name="id_shape"),
        CheckConstraint("size >= 0", name="size_not_negative"),
        CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),
        # The listing's order (newest first, ties by ID) and its keyset pages; dangling
        # images (dangling=true) in that order. On SQLite, covering: the listing reads
        # the index alone, in order, never the table out of order.
        only_on("postgresql", Index("ix_images_sort_key_id", "sort_key", "id")),
        only_on(
            "postgresql",
            Index("ix_images_dangling", "sort_key", "id", postgresql_where=text(DANGLING)),
        ),
        only_on("sqlite", Index("ix_images_listing", *LISTING_COLUMNS)),
        only_on(
            "sqlite",
            Index("ix_images_listing_dangling", *LISTING_COLUMNS, sqlite_where=text(DANGLING)),
        ),
        # The web view's pages sorted by size, largest first (catalog.services.imagepages).
        Index("ix_images_size_id", "size", "id"),
    )

    id: Mapped[Sha256] = mapped_column(primary_key=True)
    # The build parent (as `docker build` records it), not a layer relation.
    parent_id: Mapped[Sha256 | None] = mapped_column(
        ForeignKey("images.id", ondelete="RESTRICT"), index=True
    )
    # Docker allows a config without `created`.
    created: Mapped[Timestamp | None] = mapped_column(index=True)
    os: Mapped[str] = mapped_column(String(64), default="")
    architecture: Mapped[str] = mapped_column(String(64), default="")
    variant: Mapped[str | None] = mapped_column(String(64))
    author: Mapped[str | None] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    # The chain ID of the top layer; None for an image with no layers.
    top_chain_id: Mapped[Sha256 | None] = mapped_column(
        ForeignKey("layers.chain_id", ondelete="RESTRICT"), index=True
    )
    # Sum of the layers' diff sizes, stored once: an image's layers never change.
    size: Mapped[ByteCount] = mapped_column(default=0)
    last_tag_time: Mapped[Timestamp | None]

    # Facts kept for the listing (services.kept_facts keeps them in the writers'
    # transactions; fsck recomputes them; docs/listing.md §12). The listing reads these
    # columns alone, in the order of `ix_images_sort_key_id`.
    # Newest first: minus `created` in microseconds since the epoch; UNDATED (the largest
    # BIGINT) without a creation time, so those come last.
    sort_key: Mapped[int] = mapped_column(BigInteger, server_default=str(UNDATED))
    # Bytes of the layers no other image uses: SharedSize = size - unique_size.
    unique_size: Mapped[ByteCount] = mapped_column(server_default="0")
    # Images whose parent_id is this one.
    child_count: Mapped[int] = mapped_column(Integer, server_default="0")
    # Tag and digest references naming this image.
    tag_count: Mapped[int] = mapped_column(Integer, server_default="0")
    digest_count: Mapped[int] = mapped_column(Integer, server_default="0")
    # Containers recorded with this image ID.
    container_count: Mapped[int] = mapped_column(Integer, server_default="0")
    # Labels, RepoTags and RepoDigests as the Engine API writes them (Go's JSON).
    labels_json: Mapped[str | None] = mapped_column(Text)
    repo_tags: Mapped[str] = mapped_column(Text, server_default="[]")
    repo_digests: Mapped[str] = mapped_column(Text, server_default="[]")

    config: Mapped[ImageConfigJSON] = relationship(
        back_populates="image", cascade="all, delete-orphan", passive_deletes=True
    )
    layers: Mapped[list[ImageLayer]] = relationship(
        order_by="ImageLayer.position", cascade="all, delete-orphan", passive_deletes=True
    )
    labels: Mapped[list[ImageLabel]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )
    history: Mapped[list[ImageHistory]] = relationship(
        order_by="ImageHistory.position", cascade="all, delete-orphan", passive_deletes=True
    )
    references: Mapped[list[ImageReference]] = relationship(back_populates="image")


class ImageConfigJSON(Base):
    """The config JSON, byte for byte: apart from `images` so listings scan narrow rows."""

    __tablename__ = "image_configs"

    image_id: Mapped[Sha256] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    config: Mapped[bytes] = mapped_column(LargeBinary)

    image: Mapped[Image] = relationship(back_populates="config")


class ImageLayer(Base):
    """The layer at one position (0 = bottom) of an image's stack."""

    __tablename__ = "image_layers"
    __table_args__ = (
        CheckConstraint("position >= 0", name="position_not_negative"),
        # Reference counts of chains per image, answered from the index alone.
        Index("ix_image_layers_chain_id_image_id", "chain_id", "image_id"),
        {"sqlite_with_rowid": False},
    )

    image_id: Mapped[Sha256] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain_id: Mapped[Sha256] = mapped_column(ForeignKey("layers.chain_id", ondelete="RESTRICT"))

    layer: Mapped[Layer] = relationship()


class ImageLabel(Base):
    """One `config.Labels` entry, so label filters are SQL."""

    __tablename__ = "image_labels"
    __table_args__ = (
        Index("ix_image_labels_key_value", "key", "value"),
        {"sqlite_with_rowid": False},
    )

    image_id: Mapped[Sha256] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ImageHistory(Base):
    """One entry of the config's `history`, in order."""

    __tablename__ = "image_history"
    __table_args__ = (
        CheckConstraint("position >= 0", name="position_not_negative"),
        {"sqlite_with_rowid": False},
    )

    image_id: Mapped[Sha256] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    created: Mapped[Timestamp | None]
    created_by: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    empty_layer: Mapped[bool] = mapped_column(default=False)


class ImageReference(Base):
    """A name for an image: repository plus tag, or repository plus digest.

    `repository` is the normalized name (`docker.io/library/busybox`); the familiar form is
    computed when shown.
    """

    __tablename__ = "image_references"
    __table_args__ = (
        CheckConstraint(
            "(tag IS NULL AND digest IS NOT NULL) OR (tag IS NOT NULL AND digest IS NULL)",
            name="tag_or_digest",
        ),
        CheckConstraint(f"digest IS NULL OR ({digest_shape('digest')})", name="digest_shape"),
        CheckConstraint("length(repository) > 0", name="repository_not_empty"),
        UniqueConstraint("repository", "tag"),
        UniqueConstraint("repository", "digest"),
        # Names by prefix (the reference filter's prefilter, db.sql.starts_with): SQLite's
        # byte order lets the constraints' indexes answer it; PostgreSQL needs this one.
        only_on(
            "postgresql",
            Index(
                "ix_image_references_repository_pattern",
                "repository",
                postgresql_ops={"repository": "text_pattern_ops"},
            ),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    repository: Mapped[str] = mapped_column(String(512))
    tag: Mapped[str | None] = mapped_column(String(128))
    digest: Mapped[str | None] = mapped_column(String(135))
    # RESTRICT: an image loses its names explicitly (rmi untags first), never by cascade.
    image_id: Mapped[Sha256] = mapped_column(
        ForeignKey("images.id", ondelete="RESTRICT"), index=True
    )
    created_at: Mapped[Timestamp] = mapped_column(default=utcnow)

    image: Mapped[Image] = relationship(back_populates="references")


class Container(Base):
    """A container recorded against an image: what `docker ps` and `docker inspect` show
    of it (catalog records containers but never runs them).

    `image_id` is deliberately not a foreign key: as in Docker, `rmi -f` may delete the
    image a stopped container was created from, and the container keeps its image ID
    (`catalog fsck` reports such containers). `image` is the image as the user named it
    (docker's Config.Image): `docker ps` shows it while it still names `image_id`.
    The state follows docker's rules: a container never started is `created`; one that
    ran (running, paused, restarting, exited) has a start time.
    """

    __tablename__ = "containers"
    __table_args__ = (
        CheckConstraint("length(id) = 64 AND ltrim(id, '0123456789abcdef') = ''", name="id_shape"),
        CheckConstraint(
            "state IN (" + ", ".join(f"'{s}'" for s in CONTAINER_STATES) + ")",
            name="state_known",
        ),
        CheckConstraint("state <> 'created' OR started_at IS NULL", name="created_not_started"),
        CheckConstraint(
            "state NOT IN ('running', 'paused', 'restarting', 'exited') OR started_at IS NOT NULL",
            name="ran_has_started",
        ),
        CheckConstraint("length(image) > 0", name="image_not_empty"),
        # Counts by image and by state come from the index alone.
        Index("ix_containers_image_id_state", "image_id", "state"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    image_id: Mapped[Sha256]
    state: Mapped[str] = mapped_column(String(16))
    created: Mapped[Timestamp] = mapped_column(default=utcnow)
    image: Mapped[str] = mapped_column(Text)
    # Config.Entrypoint and Config.Cmd (null when unset); the process docker would run
    # is the one followed by the other (Path and Args).
    entrypoint: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    cmd: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    started_at: Mapped[Timestamp | None]
    finished_at: Mapped[Timestamp | None]
    exit_code: Mapped[int] = mapped_column(default=0)

    labels: Mapped[list[ContainerLabel]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="ContainerLabel.key"
    )


class ContainerLabel(Base):
    """One entry of a container's Config.Labels: the image's labels with the user's over
    them, as `docker create` merges them; rows so `docker ps --filter label=` is SQL."""

    __tablename__ = "container_labels"
    __table_args__ = ({"sqlite_with_rowid": False},)

    container_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("containers.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


# --- Registries (issue 16): what pull and push learned, kept so they can skip work ---


class LayerDistribution(Base):
    """A compressed form a layer was seen as in a registry: the blob `digest` (of
    `media_type`, `size` bytes) in `repository` holds the layer whose uncompressed tar is
    the blob `diff_id` (Docker's v2 metadata). Recorded only once verified: a pull hashed
    and decompressed it, or a push made it. Push asks the registry for these before it
    compresses anything, and mounts them from another repository of the same registry."""

    __tablename__ = "layer_distributions"
    __table_args__ = (
        CheckConstraint(digest_shape("digest"), name="digest_shape"),
        CheckConstraint("size >= 0", name="size_not_negative"),
        CheckConstraint("length(repository) > 0", name="repository_not_empty"),
    )

    digest: Mapped[str] = mapped_column(String(135), primary_key=True)
    # The normalized name (`docker.io/library/busybox`), as in image_references.
    repository: Mapped[str] = mapped_column(String(512), primary_key=True)
    # CASCADE: the fact goes with the layer's blob (rmi, gc).
    diff_id: Mapped[Sha256] = mapped_column(
        ForeignKey("blobs.digest", ondelete="CASCADE"), index=True
    )
    media_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[ByteCount]
    seen_at: Mapped[Timestamp] = mapped_column(default=utcnow)


class ImageManifest(Base):
    """A manifest (or index) an image was pulled or pushed as, byte for byte, so that a
    push of an unchanged image puts the same bytes and the digest stays the same."""

    __tablename__ = "image_manifests"
    __table_args__ = (
        CheckConstraint(digest_shape("digest"), name="digest_shape"),
        Index("ix_image_manifests_image_id_seen_at", "image_id", "seen_at"),
    )

    digest: Mapped[str] = mapped_column(String(135), primary_key=True)
    # CASCADE: an image's manifests go with it.
    image_id: Mapped[Sha256] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    media_type: Mapped[str] = mapped_column(String(255))
    manifest: Mapped[bytes] = mapped_column(LargeBinary)
    seen_at: Mapped[Timestamp] = mapped_column(default=utcnow)


# --- Blob ownership (issue 12): who holds a blob file before any row names it ---


class BlobLease(Base):
    """A writer's claim on a blob file it is about to rely on (containerd's leases).

    A load, squash, append or pull registers the digests of the blobs it will reference
    in a transaction of its own, before it looks at the store; it deletes them in the
    transaction that commits its rows. Files are removed (rmi, prune, gc) only under the
    writer lock and only when neither a blob row nor a live lease names them, so a writer
    that found a file present finds it still there when its rows commit. A lease lives
    until `expires_at`, or until its `owner` (boot ID, PID namespace, PID and start time of
    the process) is known to be gone: then `gc` drops it (catalog.operations.leases).
    """

    __tablename__ = "blob_leases"
    __table_args__ = (
        CheckConstraint(sha256_shape("digest"), name="digest_shape"),
        CheckConstraint("length(lease_id) > 0", name="lease_id_not_empty"),
    )

    lease_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    digest: Mapped[Sha256] = mapped_column(primary_key=True, index=True)
    owner: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[Timestamp]
