"""`docker image prune`'s rows: delete unused images with Docker's rules (docs/listing.md
§10, moby daemon/images/image_prune.go); operations.removal removes their files after.

Candidates are one SQL query; each is then deleted through `Deleter` as `docker rmi`
would, in its own savepoint, and one that conflicts (a container uses it) is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, not_, select, true
from sqlalchemy.orm import Session, aliased

from catalog.db.models import Image, ImageLabel, ImageReference
from catalog.docker.filters import FilterArgs, kv_checks
from catalog.docker.gotime import GoTimeError, parse_docker_timestamp
from catalog.errors import CatalogError, InvalidFilter
from catalog.services.delete import Deleter, Record
from catalog.services.refstore import references_by_image

PRUNE_FILTERS = ("dangling", "label", "label!", "until")


@dataclass
class PruneReport:
    """Docker's ImagesPruneReport, plus the blobs whose files go after the commit."""

    images_deleted: list[Record] = field(default_factory=list)
    space_reclaimed: int = 0
    blob_digests: list[str] = field(default_factory=list)


def _kv_list(args: FilterArgs, name: str) -> ColumnElement[bool]:
    """moby MatchKVList over an image's labels: every term holds (so, with no terms, it
    holds for every image: `label!` given without a value prunes nothing, as in moby)."""
    terms: list[ColumnElement[bool]] = [true()]
    for key, value in kv_checks(args, name):
        match = [ImageLabel.image_id == Image.id, ImageLabel.key == key]
        if value is not None:
            match.append(ImageLabel.value == value)
        terms.append(exists().where(*match))
    return and_(*terms)


def prune_candidates(session: Session, args: FilterArgs, now: datetime | None = None) -> list[str]:
    """The images `docker image prune` would try to delete, oldest first."""
    args.validate(PRUNE_FILTERS)
    dangling_only = args.get_bool_or_default("dangling", True)
    untils = args.get("until")
    if len(untils) > 1:
        raise InvalidFilter("more than one until filter specified")
    child = aliased(Image)
    has_children = exists().where(child.parent_id == Image.id)
    has_references = exists().where(ImageReference.image_id == Image.id)
    conditions: list[ColumnElement[bool]] = [not_(and_(~has_references, has_children))]
    if dangling_only:
        has_tag = exists().where(
            ImageReference.image_id == Image.id, ImageReference.tag.isnot(None)
        )
        conditions += [~has_children, ~has_tag]
    if untils:
        try:
            until = parse_docker_timestamp(untils[0], now or datetime.now().astimezone())
        except GoTimeError as exc:
            raise InvalidFilter(str(exc)) from None
        # Inclusive here, unlike the listing's strict cutoff; no creation time, no prune.
        conditions += [Image.created.isnot(None), Image.created <= until]
    if "label" in args:
        conditions.append(_kv_list(args, "label"))
    if "label!" in args:
        conditions.append(~_kv_list(args, "label!"))
    return list(
        session.scalars(
            select(Image.id).where(*conditions).order_by(Image.created.nulls_first(), Image.id)
        )
    )


def delete_unused_images(
    *, session: Session, filters: FilterArgs | None = None, now: datetime | None = None
) -> PruneReport:
    """Delete the candidates by their names (or ID when they have none), as moby does;
    deletes that conflict are skipped. Space reclaimed = the released layers' diff sizes."""
    args = filters or FilterArgs()
    candidates = prune_candidates(session, args, now)
    references = references_by_image(session, candidates)
    deleter = Deleter(session)
    report = PruneReport()
    for image_id in candidates:
        terms = [str(r) for r in references.get(image_id, [])] or [image_id.split(":", 1)[1]]
        for term in terms:
            records_before = len(deleter.records)
            blobs_before = len(deleter.blob_digests)
            reclaimed_before = deleter.reclaimed
            try:
                with session.begin_nested():
                    deleter.delete(term, force=False, prune=True)
            except CatalogError:
                # moby's imageDeleteFailed: a conflict or a vanished image is skipped.
                del deleter.records[records_before:]
                del deleter.blob_digests[blobs_before:]
                deleter.reclaimed = reclaimed_before
    report.images_deleted = deleter.records
    report.space_reclaimed = deleter.reclaimed
    report.blob_digests = deleter.blob_digests
    return report
