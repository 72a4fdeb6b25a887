"""Finding an image by what a user typed, as Docker's daemon does (docs/references.md §5):
a full ID, an ID prefix with or without `sha256:`, `name[:tag]` (latest by default), or
`name@digest`."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from catalog.db.reader import Reader, first_row
from catalog.domain.digest import SHA256_PREFIX
from catalog.domain.reference import (
    DigestReference,
    Named,
    familiar_string,
    parse_any_reference,
    tag_name_only,
)
from catalog.errors import NotFound

if TYPE_CHECKING:  # a listing (catalog images) looks names up without SQLAlchemy
    from sqlalchemy.orm import Session

    from catalog.db.models import Image

_HEX_PREFIX = re.compile(r"[0-9a-f]{1,64}\Z")


def no_such_image(reference: Named | DigestReference) -> NotFound:
    """Docker's 404 text: the reference as typed, familiar, with `:latest` when bare."""
    shown = reference if isinstance(reference, DigestReference) else tag_name_only(reference)
    return NotFound(f"No such image: {familiar_string(shown)}")


def as_reader(source: Session | Reader) -> Reader:
    """The lookups' statements are SQL text (a listing runs them without SQLAlchemy):
    a session reads them through its own connection."""
    if isinstance(source, Reader):
        return source
    from catalog.db.sql import SessionReader

    return SessionReader(source)


def find_by_reference(source: Session | Reader, reference: Named) -> str | None:
    """The image a tag or digest reference names, if any (a bare name means `:latest`)."""
    value: str | None
    if reference.digest is not None:
        # name:tag@digest is looked up by its digest only, as Docker does.
        condition, value = "digest = :value", reference.digest
    else:
        condition, value = "tag = :value", tag_name_only(reference).tag
    found = first_row(
        as_reader(source),
        f"SELECT image_id FROM image_references WHERE repository = :name AND {condition}",
        {"name": reference.name, "value": value},
    )
    return None if found is None else str(found[0])


def find_by_id_prefix(source: Session | Reader, term: str) -> str | None:
    """go-digest digestset semantics: a unique hex prefix of any length, `sha256:` optional.

    Several matches count as not found, as in Docker's graphdriver store.
    """
    prefix = term.removeprefix(SHA256_PREFIX)
    if not _HEX_PREFIX.match(prefix):
        return None
    low = SHA256_PREFIX + prefix
    # IDs hold only hex after the prefix, all below "g": this range is exactly the prefix
    # matches, and unlike LIKE it uses the primary key index on both backends.
    matches = list(
        as_reader(source).rows(
            "SELECT id FROM images WHERE id >= :low AND id < :high ORDER BY id LIMIT 2",
            {"low": low, "high": low + "g"},
            stream=False,
        )
    )
    return str(matches[0][0]) if len(matches) == 1 else None


def resolve_image_id(source: Session | Reader, term: str) -> str:
    """The ID of the image `term` names; InvalidReference or NotFound with Docker's texts."""
    reader = as_reader(source)
    reference = parse_any_reference(term)
    if isinstance(reference, DigestReference):
        if first_row(reader, "SELECT id FROM images WHERE id = :id", {"id": reference.digest}):
            return reference.digest
        raise no_such_image(reference)
    found = find_by_reference(reader, reference)
    if found is None:
        found = find_by_id_prefix(reader, term)
    if found is None:
        raise no_such_image(reference)
    return found


def resolve_image(session: Session, term: str) -> Image:
    """The Image row `term` names (see resolve_image_id)."""
    from catalog.db.models import Image

    image = session.get(Image, resolve_image_id(session, term))
    assert image is not None
    return image
