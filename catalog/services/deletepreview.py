"""What `catalog rmi [-f] IMAGE-ID` would do, worked out without deleting anything
(docs/web.md §3.2).

The web view shows it on an image's page. It is `catalog.services.delete`'s own Deleter
asked the same questions in the same order (its conflict checks and messages, its
parent pruning, its release of layers top first), except that the deletions it would
make are kept in memory instead of being written: a child it would delete no longer
counts as a child, names it would remove no longer count as names, layer rows it would
remove no longer hold their parents. So the preview needs only a read transaction, and
a test compares it with real deletions rolled back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from catalog.db.models import Image, ImageLayer, Layer
from catalog.domain.reference import familiar_string
from catalog.services.delete import ConflictType, Deleter, Record, is_single_reference
from catalog.services.refstore import references_of


@dataclass
class DeletePreview:
    """`rmi`'s records (Untagged, Deleted image, Deleted layer) and the bytes of the
    layers it would release, or the conflict that would stop it."""

    image_id: str
    force: bool
    records: list[Record] = field(default_factory=list)
    freed_bytes: int = 0
    conflict: str | None = None
    # A conflict that `rmi -f` would get past (a soft one).
    forcible: bool = False
    # The image and the untagged parents pruned with it, in the order they would go.
    deleted_images: list[str] = field(default_factory=list)


class _Preview(Deleter):
    """A Deleter whose deletions are imagined: it reads the rows as they are and
    subtracts what it would have deleted so far."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.deleted: list[str] = []
        self.untagged_images: set[str] = set()
        self.released: set[str] = set()

    def has_children(self, image_id: str) -> bool:
        child = select(Image.id).where(Image.parent_id == image_id)
        if self.deleted:
            child = child.where(Image.id.not_in(self.deleted))
        return bool(self.session.scalar(select(exists(child))))

    def has_references(self, image_id: str) -> bool:
        return image_id not in self.untagged_images and super().has_references(image_id)

    def untag_all(self, image_id: str) -> None:
        if image_id in self.untagged_images:
            return
        for reference in references_of(self.session, image_id):
            self.records.append({"Untagged": familiar_string(reference)})
        self.untagged_images.add(image_id)

    def imagine_delete(self, image_id: str) -> None:
        chains = self.session.scalars(
            select(ImageLayer.chain_id)
            .where(ImageLayer.image_id == image_id)
            .order_by(ImageLayer.position.desc())
        ).all()
        self.deleted.append(image_id)
        self.records.append({"Deleted": image_id})
        for chain in self.imagine_release(chains):
            self.records.append({"Deleted": chain})

    def imagine_release(self, chains: Sequence[str]) -> list[str]:
        """Deleter.release_layers over the rows as they would be: chains of images not
        deleted are used; a layer row not released, stacked on one of these, holds it."""
        if not chains:
            return []
        used = set(
            self.session.scalars(
                select(ImageLayer.chain_id)
                .where(ImageLayer.chain_id.in_(chains), ImageLayer.image_id.not_in(self.deleted))
                .distinct()
            )
        )
        holders = select(Layer.parent_chain_id).where(
            Layer.parent_chain_id.in_(chains), Layer.chain_id.not_in(chains)
        )
        if self.released:
            holders = holders.where(Layer.chain_id.not_in(self.released))
        held = set(self.session.scalars(holders))
        removed: list[str] = []
        for chain in chains:
            if chain in used or chain in held:
                break
            removed.append(chain)
        if removed:
            self.released.update(removed)
            self.reclaimed += int(
                self.session.scalar(
                    select(func.coalesce(func.sum(Layer.diff_size), 0)).where(
                        Layer.chain_id.in_(removed)
                    )
                )
                or 0
            )
        return removed


def preview_delete(*, session: Session, image_id: str, force: bool = False) -> DeletePreview:
    """What `rmi [-f] IMAGE-ID` (prune on, as by default) would print and release. The
    image is named by its full ID, as the web view links it."""
    preview = DeletePreview(image_id=image_id, force=force)
    imagined = _Preview(session)
    references = references_of(session, image_id)
    if is_single_reference(references):
        # Deleter.delete for an ID whose names are all in one repository.
        mask = ConflictType.HARD
        if not force:
            mask |= ConflictType.SOFT & ~ConflictType.ACTIVE_REFERENCE
        conflict = imagined.check_conflict(image_id, mask)
        if conflict is not None:
            preview.conflict, preview.forcible = conflict.error().message, not conflict.hard
            return preview
        imagined.untag_all(image_id)
    # Deleter.delete_helper: the image, then its untagged parents, quietly.
    current: str | None = image_id
    quiet = False
    while current is not None:
        mask = ConflictType.HARD if force else ConflictType.HARD | ConflictType.SOFT
        conflict = imagined.check_conflict(current, mask)
        if conflict is not None:
            if quiet and (not imagined.is_dangling(current) or conflict.used):
                break
            preview.conflict, preview.forcible = conflict.error().message, not conflict.hard
            preview.records = []
            return preview
        parent = session.scalar(select(Image.parent_id).where(Image.id == current))
        imagined.untag_all(current)
        imagined.imagine_delete(current)
        current, force, quiet = parent, False, True
    preview.records = imagined.records
    preview.freed_bytes = imagined.reclaimed
    preview.deleted_images = list(imagined.deleted)
    return preview
