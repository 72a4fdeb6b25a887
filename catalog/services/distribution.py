"""The rows pull and push keep about registries, and what they read back.

Services: they take a session and never commit; the operation that calls them owns the
transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from catalog.db.models import (
    Blob,
    Image,
    ImageConfigJSON,
    ImageLayer,
    ImageManifest,
    Layer,
    LayerDistribution,
    utcnow,
)
from catalog.db.sql import insert_ignoring_duplicates


@dataclass(frozen=True)
class Distribution:
    """A compressed form of the layer `diff_id`: `digest` in `repository`."""

    diff_id: str
    digest: str
    media_type: str
    size: int
    repository: str


@dataclass(frozen=True)
class KnownLayer:
    """A layer the catalog already has rows for: its diff size and its blob's size."""

    diff_id: str
    diff_size: int
    blob_size: int


def known_layers(*, session: Session, diff_ids: Iterable[str]) -> dict[str, KnownLayer]:
    """The layers among `diff_ids` with a layer row and a blob row (one query)."""
    wanted = set(diff_ids)
    if not wanted:
        return {}
    rows = session.execute(
        select(Layer.diff_id, Layer.diff_size, Blob.size)
        .join(Blob, Blob.digest == Layer.blob_digest)
        .where(Layer.diff_id.in_(wanted))
    )
    return {d: KnownLayer(d, diff_size, size) for d, diff_size, size in rows}


def record_distributions(*, session: Session, distributions: Sequence[Distribution]) -> None:
    """Remember (or refresh) compressed forms; the blob rows of their layers must exist."""
    if not distributions:
        return
    unique = {(d.digest, d.repository): d for d in distributions}
    session.execute(
        delete(LayerDistribution).where(
            LayerDistribution.digest.in_({digest for digest, _ in unique}),
            LayerDistribution.repository.in_({repository for _, repository in unique}),
        )
    )
    now = utcnow()
    session.execute(
        insert(LayerDistribution),
        [
            {
                "digest": d.digest,
                "repository": d.repository,
                "diff_id": d.diff_id,
                "media_type": d.media_type,
                "size": d.size,
                "seen_at": now,
            }
            for d in unique.values()
        ],
    )


def distributions_of(*, session: Session, diff_ids: Iterable[str]) -> dict[str, list[Distribution]]:
    """Every compressed form known for each of `diff_ids`, the newest first."""
    wanted = set(diff_ids)
    result: dict[str, list[Distribution]] = {d: [] for d in wanted}
    if not wanted:
        return result
    rows = session.scalars(
        select(LayerDistribution)
        .where(LayerDistribution.diff_id.in_(wanted))
        .order_by(LayerDistribution.seen_at.desc(), LayerDistribution.digest)
    )
    for row in rows:
        result[row.diff_id].append(
            Distribution(row.diff_id, row.digest, row.media_type, row.size, row.repository)
        )
    return result


def record_manifest(
    *, session: Session, digest: str, image_id: str, media_type: str, manifest: bytes
) -> None:
    """Keep a manifest (or index) an image came as or was pushed as, byte for byte."""
    existing = session.get(ImageManifest, digest)
    if existing is not None:
        existing.seen_at = utcnow()
        return
    insert_ignoring_duplicates(
        session,
        ImageManifest,
        [
            {
                "digest": digest,
                "image_id": image_id,
                "media_type": media_type,
                "manifest": manifest,
                "seen_at": utcnow(),
            }
        ],
        key=["digest"],
    )


@dataclass(frozen=True)
class StoredManifest:
    digest: str
    media_type: str
    manifest: bytes


@dataclass(frozen=True)
class PushableImage:
    """What a push needs from the catalog: the config, the layers' diff IDs and blob
    sizes (bottom first), their known compressed forms, and the image manifests kept."""

    id: str
    config: bytes
    diff_ids: tuple[str, ...]
    blob_sizes: dict[str, int]
    distributions: dict[str, list[Distribution]]
    manifests: tuple[StoredManifest, ...]


def pushable_image(
    *, session: Session, image_id: str, manifest_types: Iterable[str]
) -> PushableImage:
    """Read everything a push of `image_id` needs, in a fixed number of queries."""
    config = session.scalar(
        select(ImageConfigJSON.config).where(ImageConfigJSON.image_id == image_id)
    )
    assert config is not None, "every image has its config row"
    layers = session.execute(
        select(Layer.diff_id, Blob.size)
        .join(ImageLayer, ImageLayer.chain_id == Layer.chain_id)
        .join(Blob, Blob.digest == Layer.blob_digest)
        .where(ImageLayer.image_id == image_id)
        .order_by(ImageLayer.position)
    ).all()
    manifests = session.execute(
        select(ImageManifest.digest, ImageManifest.media_type, ImageManifest.manifest)
        .where(
            ImageManifest.image_id == image_id,
            ImageManifest.media_type.in_(list(manifest_types)),
        )
        .order_by(ImageManifest.seen_at.desc(), ImageManifest.digest)
    ).all()
    diff_ids = tuple(diff_id for diff_id, _ in layers)
    return PushableImage(
        id=image_id,
        config=bytes(config),
        diff_ids=diff_ids,
        blob_sizes={diff_id: int(size) for diff_id, size in layers},
        distributions=distributions_of(session=session, diff_ids=diff_ids),
        manifests=tuple(StoredManifest(d, m, bytes(raw)) for d, m, raw in manifests),
    )


def image_exists(*, session: Session, image_id: str) -> bool:
    return session.get(Image, image_id) is not None
