"""`docker rmi`: untag and delete images with Docker's rules, conflicts and output.

A port of moby's `daemon/images/image_delete.go` (graphdriver): a name untags (and deletes
the image when that was its last name), an ID deletes; hard conflicts (child images, a
running container) stop a delete even when forced, soft ones (a stopped container, names in
several repositories) only without force; untagged parents are pruned unless told not to.
The records come out in Docker's order: `Untagged` references, then `Deleted` for the image
and for each layer (chain ID, top first) that no image uses any more.

Layers nothing uses lose their rows here, and so do blobs no layer uses; their files are
removed after the transaction has committed (`catalog.operations.removal`), so a rollback
never leaves rows pointing at missing files.

As in Docker, `-f` deletes an image a stopped container uses; the container keeps the
image's ID (containers.image_id is not a foreign key for that reason).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntFlag
from typing import cast

from sqlalchemy import Table, bindparam, delete, exists, func, select
from sqlalchemy.orm import Session

from catalog.db.models import Blob, Container, Image, ImageLayer, ImageReference, Layer
from catalog.docker.containers import RUNNING_STATES
from catalog.docker.gotime import go_quote
from catalog.domain.digest import short_id
from catalog.domain.reference import Named, familiar_string, parse_normalized_named, tag_name_only
from catalog.errors import CatalogError, Conflict, InvalidReference, NotFound
from catalog.services import kept_facts
from catalog.services.lookup import resolve_image_id
from catalog.services.refstore import references_of

Record = dict[str, str]


class ConflictType(IntFlag):
    """moby's conflictType bits."""

    DEPENDENT_CHILD = 1
    RUNNING_CONTAINER = 2
    ACTIVE_REFERENCE = 4
    STOPPED_CONTAINER = 8
    HARD = DEPENDENT_CHILD | RUNNING_CONTAINER
    SOFT = ACTIVE_REFERENCE | STOPPED_CONTAINER


@dataclass(frozen=True)
class ImageDeleteConflict:
    """moby's imageDeleteConflict: hard or soft, and whether a container uses the image."""

    hard: bool
    used: bool
    image_id: str
    message: str

    def error(self) -> Conflict:
        forced = "cannot be forced" if self.hard else "must be forced"
        return Conflict(
            f"conflict: unable to delete {short_id(self.image_id)} ({forced}) - {self.message}"
        )


@dataclass(frozen=True)
class DeleteFailure:
    term: str
    error: CatalogError


@dataclass
class ImageDeletion:
    """What `delete_images` did: Docker's records, the terms that failed, and the blobs
    whose rows went (their files go after the commit: operations.removal)."""

    records: list[Record] = field(default_factory=list)
    failures: list[DeleteFailure] = field(default_factory=list)
    blob_digests: list[str] = field(default_factory=list)


def is_single_reference(references: Sequence[Named]) -> bool:
    """moby isSingleReference: all in one repository, with at most one tag."""
    if len(references) <= 1:
        return len(references) == 1
    single: Named | None = None
    digest_repositories: set[str] = set()
    for reference in references:
        if reference.digest is not None:
            digest_repositories.add(reference.name)
        elif single is None:
            single = reference
        else:
            return False
    if single is None:
        single = references[0]
    return len(digest_repositories) == 1 and single.name in digest_repositories


def is_image_id_prefix(image_id: str, term: str) -> bool:
    """moby isImageIDPrefix: `term` starts the ID, with or without its `sha256:`.

    As in Docker, a name such as `s` or `abc` that happens to start the ID counts.
    """
    return image_id.startswith(term) or image_id.partition(":")[2].startswith(term)


class Deleter:
    """One `ImageDelete` call: state shared by the recursion (records and freed blobs)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.records: list[Record] = []
        self.blob_digests: list[str] = []
        # Bytes of the layers released, as moby's prune sums their DiffSize.
        self.reclaimed = 0

    # --- references ---

    def remove_reference(self, reference: Named) -> Named:
        """moby removeImageRef: delete a tag or digest reference (`latest` when bare)."""
        reference = tag_name_only(reference)
        if reference.digest is not None:
            # A name:tag@digest is stored, and removed, as name@digest (favorDigest).
            condition = ImageReference.digest == reference.digest
        else:
            condition = ImageReference.tag == reference.tag
        named = self.session.scalars(
            delete(ImageReference)
            .where(ImageReference.repository == reference.name, condition)
            .returning(ImageReference.image_id)
        ).all()
        if not named:
            raise NotFound("reference does not exist")
        kept_facts.names_changed(session=self.session, image_ids=named)
        return reference

    def untag(self, reference: Named) -> None:
        removed = self.remove_reference(reference)
        self.records.append({"Untagged": familiar_string(removed)})

    # --- conflicts ---

    def first_container(self, image_id: str, *, running: bool | None) -> str | None:
        query = select(Container.id).where(Container.image_id == image_id)
        if running is True:
            query = query.where(Container.state.in_(RUNNING_STATES))
        elif running is False:
            query = query.where(Container.state.not_in(RUNNING_STATES))
        return self.session.scalar(query.order_by(Container.created, Container.id).limit(1))

    def has_children(self, image_id: str) -> bool:
        return bool(self.session.scalar(select(exists().where(Image.parent_id == image_id))))

    def has_references(self, image_id: str) -> bool:
        return bool(
            self.session.scalar(select(exists().where(ImageReference.image_id == image_id)))
        )

    def check_conflict(self, image_id: str, mask: ConflictType) -> ImageDeleteConflict | None:
        """moby checkImageDeleteConflict, in its order."""
        if mask & ConflictType.DEPENDENT_CHILD and self.has_children(image_id):
            return ImageDeleteConflict(True, False, image_id, "image has dependent child images")
        if mask & ConflictType.RUNNING_CONTAINER:
            container = self.first_container(image_id, running=True)
            if container is not None:
                return ImageDeleteConflict(
                    True,
                    True,
                    image_id,
                    f"image is being used by running container {short_id(container)}",
                )
        if mask & ConflictType.ACTIVE_REFERENCE and self.has_references(image_id):
            return ImageDeleteConflict(
                False, False, image_id, "image is referenced in multiple repositories"
            )
        if mask & ConflictType.STOPPED_CONTAINER:
            container = self.first_container(image_id, running=False)
            if container is not None:
                return ImageDeleteConflict(
                    False,
                    True,
                    image_id,
                    f"image is being used by stopped container {short_id(container)}",
                )
        return None

    def is_dangling(self, image_id: str) -> bool:
        return not (self.has_references(image_id) or self.has_children(image_id))

    # --- deleting ---

    def delete(self, term: str, *, force: bool, prune: bool) -> None:
        """moby ImageDelete for one name or ID."""
        if not term.strip():
            raise InvalidReference("image name cannot be blank")
        image_id = resolve_image_id(self.session, term)
        references = references_of(self.session, image_id)
        removed_repository_reference = False
        if not is_image_id_prefix(image_id, term):
            # A name: untag it. A container using the image stops that when this is its
            # only name, unless forced, so that the image is not left dangling.
            if not force and is_single_reference(references):
                container = self.first_container(image_id, running=None)
                if container is not None:
                    raise Conflict(
                        f"conflict: unable to remove repository reference {go_quote(term)}"
                        f" (must force) - container {short_id(container)} is using its"
                        f" referenced image {short_id(image_id)}"
                    )
            parsed = self.remove_reference(parse_normalized_named(term))
            self.records.append({"Untagged": familiar_string(parsed)})
            references = references_of(self.session, image_id)
            if parsed.digest is None and not any(
                r.digest is None and r.name == parsed.name for r in references
            ):
                # The repository's last tag went: its digest references go too.
                remaining = []
                for reference in references:
                    if reference.digest is not None and reference.name == parsed.name:
                        self.untag(reference)
                    else:
                        remaining.append(reference)
                references = remaining
            if references:
                return
            removed_repository_reference = True
        elif is_single_reference(references):
            # An ID whose names are all in one repository: they go with the image.
            mask = ConflictType.HARD
            if not force:
                mask |= ConflictType.SOFT & ~ConflictType.ACTIVE_REFERENCE
            conflict = self.check_conflict(image_id, mask)
            if conflict is not None:
                raise conflict.error()
            for reference in references:
                self.untag(reference)
        self.delete_helper(image_id, force=force, prune=prune, quiet=removed_repository_reference)

    def delete_helper(self, image_id: str, *, force: bool, prune: bool, quiet: bool) -> None:
        """moby imageDeleteHelper; its tail recursion into the parent is a loop here."""
        current: str | None = image_id
        while current is not None:
            mask = ConflictType.HARD if force else ConflictType.HARD | ConflictType.SOFT
            conflict = self.check_conflict(current, mask)
            if conflict is not None:
                if quiet and (not self.is_dangling(current) or conflict.used):
                    return
                raise conflict.error()
            parent = self.session.scalar(select(Image.parent_id).where(Image.id == current))
            for reference in references_of(self.session, current):
                self.untag(reference)
            self.delete_image_rows(current)
            if not prune:
                return
            # Parents are pruned quietly and never forced.
            current, force, quiet = parent, False, True

    def delete_image_rows(self, image_id: str) -> None:
        """Delete the image (its config, layer list, labels and history cascade), then the
        layers no image uses any more (top first, as moby's releaseLayer walks) and the
        blob rows no layer uses any more."""
        chains = self.session.scalars(
            select(ImageLayer.chain_id)
            .where(ImageLayer.image_id == image_id)
            .order_by(ImageLayer.position.desc())
        ).all()
        parent_id = self.session.scalar(
            delete(Image).where(Image.id == image_id).returning(Image.parent_id)
        )
        kept_facts.image_removed(
            session=self.session, image_id=image_id, chains=chains, parent_id=parent_id
        )
        self.records.append({"Deleted": image_id})
        for chain in self.release_layers(chains):
            self.records.append({"Deleted": chain})

    def release_layers(self, chains: Sequence[str]) -> list[str]:
        """Remove the rows of `chains` (a stack, top first) that nothing uses any more."""
        if not chains:
            return []
        used = set(
            self.session.scalars(
                select(ImageLayer.chain_id).where(ImageLayer.chain_id.in_(chains)).distinct()
            )
        )
        # A layer row stacked on one of these by another stack holds it, as in moby.
        held = set(
            self.session.scalars(
                select(Layer.parent_chain_id).where(
                    Layer.parent_chain_id.in_(chains), Layer.chain_id.not_in(chains)
                )
            )
        )
        removed: list[str] = []
        for chain in chains:
            if chain in used or chain in held:
                break
            removed.append(chain)
        if not removed:
            return []
        blobs = set(
            self.session.scalars(
                select(Layer.blob_digest).where(Layer.chain_id.in_(removed)).distinct()
            )
        )
        self.reclaimed += int(
            self.session.scalar(
                select(func.coalesce(func.sum(Layer.diff_size), 0)).where(
                    Layer.chain_id.in_(removed)
                )
            )
            or 0
        )
        layers = cast(Table, Layer.__table__)
        # One row at a time, top first: SQLite checks RESTRICT at once, row by row.
        self.session.execute(
            delete(layers).where(layers.c.chain_id == bindparam("chain")),
            [{"chain": chain} for chain in removed],
        )
        still_used = set(
            self.session.scalars(
                select(Layer.blob_digest).where(Layer.blob_digest.in_(blobs)).distinct()
            )
        )
        freed = sorted(blobs - still_used)
        if freed:
            self.session.execute(delete(Blob).where(Blob.digest.in_(freed)))
            self.blob_digests.extend(freed)
        return removed


def delete_image(
    *, session: Session, term: str, force: bool = False, prune: bool = True
) -> tuple[list[Record], list[str]]:
    """Delete what `term` names as `docker rmi` does; its records and freed blob digests.

    Raises the first conflict or lookup error; the caller's transaction holds whatever
    happened before it, so use `delete_images` to have a failed term change nothing.
    """
    deleter = Deleter(session)
    deleter.delete(term, force=force, prune=prune)
    return deleter.records, deleter.blob_digests


def delete_images(
    *, session: Session, terms: Iterable[str], force: bool = False, prune: bool = True
) -> ImageDeletion:
    """`docker rmi TERM...`: each term in turn, like the docker CLI, which goes on after a
    failed one. Each term runs in a savepoint, so a failed one changes nothing."""
    deletion = ImageDeletion()
    for term in terms:
        try:
            with session.begin_nested():
                records, blobs = delete_image(session=session, term=term, force=force, prune=prune)
        except CatalogError as exc:
            deletion.failures.append(DeleteFailure(term, exc))
            continue
        deletion.records.extend(records)
        deletion.blob_digests.extend(blobs)
    return deletion
