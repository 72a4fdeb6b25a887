"""`docker tag`: give an image another name.

The checks are the docker client's (moby `client/image_tag.go`) followed by the daemon's
(`postImagesTag`, then `TagImage`): the source must parse as any reference, the target as a
normalized name without a digest; a bare target gets `latest`; the familiar name `sha256`
is refused; a tag that names another image moves (the daemon always forces).
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from catalog.db.models import Image, utcnow
from catalog.docker.gotime import go_quote
from catalog.domain.reference import (
    Named,
    familiar_name,
    parse_any_reference,
    parse_normalized_named,
    tag_name_only,
)
from catalog.errors import InvalidReference
from catalog.services.images import set_reference
from catalog.services.lookup import resolve_image_id

# The docker client refuses these before it calls the daemon; `docker tag` prints them.
DIGEST_TARGET = "refusing to create a tag with a digest reference"
# The daemon's check (router postImagesTag and refstore addReference).
AMBIGUOUS_NAME = "refusing to create an ambiguous tag using digest algorithm as name"


def _not_valid(text: str, exc: InvalidReference) -> InvalidReference:
    return InvalidReference(
        f"Error parsing reference: {go_quote(text)} is not a valid repository/tag: {exc.message}"
    )


def parse_tag_target(target: str) -> Named:
    """The reference `target` names as a new tag, with `latest` when it has none."""
    try:
        named = parse_normalized_named(target)
    except InvalidReference as exc:
        raise _not_valid(target, exc) from None
    if named.digest is not None:
        raise InvalidReference(DIGEST_TARGET)
    named = tag_name_only(named)
    if familiar_name(named) == "sha256":
        raise InvalidReference(AMBIGUOUS_NAME)
    return named


def tag_image(*, session: Session, source: str, target: str) -> tuple[str, Named]:
    """Point tag `target` at the image `source` names; return the image ID and the tag.

    An existing tag moves to this image. The image's LastTagTime is set, as Docker's
    TagImage does, even when the tag already named it.
    """
    try:
        parse_any_reference(source)
    except InvalidReference as exc:
        raise _not_valid(source, exc) from None
    named = parse_tag_target(target)
    image_id = resolve_image_id(session, source)
    set_reference(session=session, reference=named, image_id=image_id)
    session.execute(update(Image).where(Image.id == image_id).values(last_tag_time=utcnow()))
    return image_id, named
