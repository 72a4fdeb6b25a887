"""Adding images and their names to the catalog: the rows every way in (load, append,
squash) writes. Blobs must already be in the content store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from catalog.db.models import (
    Blob,
    Image,
    ImageConfigJSON,
    ImageHistory,
    ImageLabel,
    ImageLayer,
    ImageReference,
    Layer,
    utcnow,
)
from catalog.db.sql import insert_ignoring_duplicates
from catalog.domain.digest import chain_ids
from catalog.domain.imageconfig import ImageConfig
from catalog.domain.reference import Named
from catalog.errors import InvalidArchive, NotFound
from catalog.services import kept_facts


@dataclass(frozen=True)
class StoredLayer:
    """A layer whose uncompressed tar is in the content store under its diff ID."""

    diff_id: str
    diff_size: int
    blob_size: int


def register_image(
    *,
    session: Session,
    config: ImageConfig,
    layers: Sequence[StoredLayer],
    parent_id: str | None = None,
) -> bool:
    """Insert an image with its layers, labels and history; False if it was there already.

    Layer and blob rows shared with other images are left as they are.
    """
    if [layer.diff_id for layer in layers] != config.diff_ids:
        raise InvalidArchive(
            f"image {config.id}: its layers do not match the config's rootfs.diff_ids"
        )
    if session.get(Image, config.id) is not None:
        return False
    if parent_id is not None and session.get(Image, parent_id) is None:
        raise NotFound(f"parent image {parent_id} of {config.id} is not in the catalog")

    chains = chain_ids(config.diff_ids)
    insert_ignoring_duplicates(
        session,
        Blob,
        [
            {"digest": layer.diff_id, "size": layer.blob_size, "created_at": utcnow()}
            for layer in layers
        ],
        key=["digest"],
    )
    insert_ignoring_duplicates(
        session,
        Layer,
        [
            {
                "chain_id": chain,
                "diff_id": layer.diff_id,
                "parent_chain_id": chains[i - 1] if i else None,
                "diff_size": layer.diff_size,
                "blob_digest": layer.diff_id,
            }
            for i, (chain, layer) in enumerate(zip(chains, layers, strict=True))
        ],
        key=["chain_id"],
    )
    session.execute(
        insert(Image).values(
            id=config.id,
            parent_id=parent_id,
            created=config.created,
            os=config.os,
            architecture=config.architecture,
            variant=config.variant,
            author=config.author,
            comment=config.comment,
            top_chain_id=chains[-1] if chains else None,
            size=sum(layer.diff_size for layer in layers),
            **kept_facts.new_image_columns(config.created, config.labels),
        )
    )
    session.execute(insert(ImageConfigJSON).values(image_id=config.id, config=config.raw))
    if chains:
        session.execute(
            insert(ImageLayer),
            [
                {"image_id": config.id, "position": i, "chain_id": chain}
                for i, chain in enumerate(chains)
            ],
        )
    if config.labels:
        session.execute(
            insert(ImageLabel),
            [{"image_id": config.id, "key": k, "value": v} for k, v in config.labels.items()],
        )
    if config.history:
        session.execute(
            insert(ImageHistory),
            [
                {
                    "image_id": config.id,
                    "position": i,
                    "created": entry.created,
                    "created_by": entry.created_by,
                    "author": entry.author,
                    "comment": entry.comment,
                    "empty_layer": entry.empty_layer,
                }
                for i, entry in enumerate(config.history)
            ],
        )
    kept_facts.image_added(session=session, image_id=config.id, chains=chains, parent_id=parent_id)
    return True


def set_reference(*, session: Session, reference: Named, image_id: str) -> str | None:
    """Point a tag or digest reference at `image_id`, moving it if it named another image.

    Returns the image it named before (None if new). Naming the same image again changes
    nothing, so loading an archive twice writes nothing.
    """
    repository, tag, digest = reference.name, reference.tag, reference.digest
    if (tag is None) == (digest is None):
        raise ValueError("a reference to store has a tag or a digest, not both")
    existing = session.execute(
        select(ImageReference).where(
            ImageReference.repository == repository,
            ImageReference.tag == tag if tag is not None else ImageReference.digest == digest,
        )
    ).scalar_one_or_none()
    if existing is not None and existing.image_id == image_id:
        return image_id
    now = utcnow()
    if existing is None:
        session.add(
            ImageReference(repository=repository, tag=tag, digest=digest, image_id=image_id)
        )
        previous = None
    else:
        previous = existing.image_id
        existing.image_id = image_id
        existing.created_at = now
    session.flush()
    if tag is not None:
        # The image's names facts ride on the row's own UPDATE (kept_facts.names_columns).
        names = kept_facts.names_columns(session=session, image_id=image_id)
        session.execute(
            update(Image).where(Image.id == image_id).values(last_tag_time=now, **names)
        )
        changed = [previous]
    else:
        changed = [image_id, previous]
    kept_facts.names_changed(session=session, image_ids=changed)
    return previous
