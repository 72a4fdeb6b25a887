"""Reading an image's names as Docker's reference store gives them.

Rows of `image_references` become `Named` references, listed as moby's
`refstore.References` lists them: sorted by the full normalized string
(`docker.io/library/busybox:latest` before `localhost:5000/...`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.db.models import ImageReference
from catalog.domain.reference import Named, familiar_string, with_name


def stored_reference(repository: str, tag: str | None, digest: str | None) -> Named:
    """The reference a row stores: its normalized repository plus its tag or digest."""
    name = with_name(repository)
    return Named(name.domain, name.path, tag, digest)


def references_by_image(session: Session, image_ids: Collection[str]) -> dict[str, list[Named]]:
    """Every image's references in refstore order, in one query (absent: no names)."""
    found: dict[str, list[Named]] = defaultdict(list)
    if not image_ids:
        return found
    rows = session.execute(
        select(
            ImageReference.image_id,
            ImageReference.repository,
            ImageReference.tag,
            ImageReference.digest,
        ).where(ImageReference.image_id.in_(list(image_ids)))
    )
    for image_id, repository, tag, digest in rows:
        found[image_id].append(stored_reference(repository, tag, digest))
    for references in found.values():
        references.sort(key=str)
    return found


def references_of(session: Session, image_id: str) -> list[Named]:
    """One image's references in refstore order."""
    return references_by_image(session, [image_id]).get(image_id, [])


def repo_tags(references: Sequence[Named]) -> list[str]:
    """Docker's RepoTags: the familiar `name:tag` of each tag reference."""
    return [familiar_string(r) for r in references if r.tag is not None and r.digest is None]


def repo_digests(references: Sequence[Named]) -> list[str]:
    """Docker's RepoDigests: the familiar `name@digest` of each digest reference."""
    return [familiar_string(r) for r in references if r.digest is not None]
