"""Finding an image by what a user typed, as Docker's daemon does (docs/references.md §5):
a full ID, an ID prefix with or without `sha256:`, `name[:tag]` (latest by default), or
`name@digest`."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.db.models import Image, ImageReference
from catalog.domain.digest import SHA256_PREFIX
from catalog.domain.reference import (
    DigestReference,
    Named,
    familiar_string,
    parse_any_reference,
    tag_name_only,
)
from catalog.errors import NotFound

_HEX_PREFIX = re.compile(r"[0-9a-f]{1,64}\Z")


def no_such_image(reference: Named | DigestReference) -> NotFound:
    """Docker's 404 text: the reference as typed, familiar, with `:latest` when bare."""
    shown = reference if isinstance(reference, DigestReference) else tag_name_only(reference)
    return NotFound(f"No such image: {familiar_string(shown)}")


def find_by_reference(session: Session, reference: Named) -> str | None:
    """The image a tag or digest reference names, if any (a bare name means `:latest`)."""
    if reference.digest is not None:
        # name:tag@digest is looked up by its digest only, as Docker does.
        condition = ImageReference.digest == reference.digest
    else:
        condition = ImageReference.tag == tag_name_only(reference).tag
    return session.scalar(
        select(ImageReference.image_id).where(
            ImageReference.repository == reference.name, condition
        )
    )


def find_by_id_prefix(session: Session, term: str) -> str | None:
    """go-digest digestset semantics: a unique hex prefix of any length, `sha256:` optional.

    Several matches count as not found, as in Docker's graphdriver store.
    """
    prefix = term.removeprefix(SHA256_PREFIX)
    if not _HEX_PREFIX.match(prefix):
        return None
    low = SHA256_PREFIX + prefix
    # IDs hold only hex after the prefix, all below "g": this range is exactly the prefix
    # matches, and unlike LIKE it uses the primary key index on both backends.
    matches = session.scalars(
        select(Image.id).where(Image.id >= low, Image.id < low + "g").order_by(Image.id).limit(2)
    ).all()
    return matches[0] if len(matches) == 1 else None


def resolve_image_id(session: Session, term: str) -> str:
    """The ID of the image `term` names; InvalidReference or NotFound with Docker's texts."""
    reference = parse_any_reference(term)
    if isinstance(reference, DigestReference):
        if session.get(Image, reference.digest) is None:
            raise no_such_image(reference)
        return reference.digest
    found = find_by_reference(session, reference)
    if found is None:
        found = find_by_id_prefix(session, term)
    if found is None:
        raise no_such_image(reference)
    return found


def resolve_image(session: Session, term: str) -> Image:
    """The Image row `term` names (see resolve_image_id)."""
    image = session.get(Image, resolve_image_id(session, term))
    assert image is not None
    return image
