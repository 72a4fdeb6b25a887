"""`docker images` as SQL: Docker's `Images(filters, all, sharedSize)` and `/system/df`.

Every filter is a condition in one SELECT over `images` (docs/listing.md §3, §4); the
listing then reads the selected images' references and labels, and (when asked) their
shared sizes, each in one more statement: a fixed number of queries whatever the catalog
holds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, false, func, literal, or_, select, true
from sqlalchemy.orm import Session, aliased

from catalog.db.models import Container, Image, ImageLabel, ImageLayer, ImageReference, Layer
from catalog.db.sql import familiar_name, one_of
from catalog.docker.filters import FilterArgs, label_checks
from catalog.docker.gotime import LATEST, GoTimeError, parse_docker_timestamp, unix_seconds
from catalog.docker.pathmatch import BadPattern, path_pattern_regex
from catalog.domain.reference import Named
from catalog.errors import InvalidFilter
from catalog.services.lookup import resolve_image_id
from catalog.services.refstore import repo_digests, repo_tags, stored_reference

_NO_TIME = datetime.min.replace(tzinfo=UTC)
LIST_FILTERS = ("before", "dangling", "label", "label!", "reference", "since", "until")


@dataclass
class ImageSummary:
    """One image as `GET /images/json` describes it."""

    id: str
    parent_id: str
    created: datetime | None
    size: int
    shared_size: int
    containers: int
    labels: dict[str, str] | None
    references: list[Named]

    @property
    def repo_tags(self) -> list[str]:
        return repo_tags(self.references)

    @property
    def repo_digests(self) -> list[str]:
        return repo_digests(self.references)

    @property
    def created_unix(self) -> int:
        return unix_seconds(self.created) if self.created is not None else 0

    def to_api(self) -> dict[str, Any]:
        """The API >= 1.51 shape, keys in Docker's order; arrays never null."""
        return {
            "Containers": self.containers,
            "Created": self.created_unix,
            "Id": self.id,
            "Labels": self.labels,
            "ParentId": self.parent_id,
            "RepoDigests": self.repo_digests,
            "RepoTags": self.repo_tags,
            "SharedSize": self.shared_size,
            "Size": self.size,
        }


# --- the pieces of the WHERE clause -------------------------------------------------


def _reference_suffix() -> ColumnElement[str]:
    return case(
        (ImageReference.tag.isnot(None), literal(":") + ImageReference.tag),
        else_=literal("@") + ImageReference.digest,
    )


def reference_condition(patterns: Sequence[str]) -> ColumnElement[bool]:
    """A stored reference matches any pattern (docker >= 29.5): Go path.Match against its
    FamiliarString, FamiliarName, TagNameOnly string or Name (docs/listing.md §3.6)."""
    familiar = familiar_name(ImageReference.repository)
    suffix = _reference_suffix()
    targets = (
        familiar + suffix,
        familiar,
        ImageReference.repository + suffix,
        ImageReference.repository,
    )
    conditions: list[ColumnElement[bool]] = []
    for pattern in patterns:
        try:
            regex = path_pattern_regex(pattern)
        except BadPattern as exc:
            raise InvalidFilter(str(exc)) from None
        conditions.extend(target.regexp_match(regex) for target in targets)
    return or_(*conditions)


def _label_condition(args: FilterArgs) -> list[ColumnElement[bool]]:
    conditions = []
    for check in label_checks(args):
        match = [ImageLabel.key == check.key]
        if check.value is not None:
            match.append(ImageLabel.value == check.value)
        if check.negate:
            conditions.append(~exists().where(ImageLabel.image_id == Image.id, *match))
        else:
            # IN, not a correlated EXISTS: the (key, value) index finds the few labelled
            # images instead of every image probing for its label.
            conditions.append(Image.id.in_(select(ImageLabel.image_id).where(*match)))
    return conditions


def _created_of(session: Session, term: str) -> datetime | None:
    image_id = resolve_image_id(session, term)
    return session.scalar(select(Image.created).where(Image.id == image_id))


def _time_conditions(
    session: Session, args: FilterArgs, now: datetime
) -> list[ColumnElement[bool]]:
    """before/until share one strict upper cutoff (the oldest wins), since a strict lower
    one (the newest wins); images without a creation time drop out when either is set."""
    upper: list[datetime] = []
    for term in args.get("before"):
        created = _created_of(session, term)
        if created is not None:
            upper.append(created)
    for value in args.get("until"):
        try:
            upper.append(parse_docker_timestamp(value, now))
        except GoTimeError as exc:
            raise InvalidFilter(f"invalid value for 'until' filter: {exc}") from None
    lower = [c for c in (_created_of(session, t) for t in args.get("since")) if c is not None]
    conditions: list[ColumnElement[bool]] = []
    if upper:
        cutoff = min(upper)
        # An `until` past year 9999 is kept as LATEST (docs/differences.md §3); for Go it
        # is after every image, those created at LATEST too.
        after_all = cutoff == LATEST and len(args.get("before")) == 0
        conditions.append(Image.created <= cutoff if after_all else Image.created < cutoff)
    if lower:
        conditions.append(Image.created > max(lower))
    return conditions


def _selection(
    session: Session, args: FilterArgs, all_images: bool, now: datetime
) -> list[ColumnElement[bool]]:
    """The WHERE clause for Docker's image list (docs/listing.md §4.1 and the §4.2 table)."""
    args.validate(LIST_FILTERS)
    dangling_only = args.get_bool_or_default("dangling", False)
    has_reference_filter = "reference" in args
    matching: list[ColumnElement[bool]] = [ImageReference.image_id == Image.id]
    if has_reference_filter:
        matching.append(reference_condition(args.get("reference")))
    tagged = exists().where(*matching, ImageReference.tag.isnot(None))
    digested = exists().where(*matching, ImageReference.digest.isnot(None))
    # Tagged or digested: every reference is one or the other (ck tag_or_digest), so one
    # probe of the index instead of two.
    named = exists().where(*matching)
    child = aliased(Image)
    leaf = ~exists().where(child.parent_id == Image.id)

    conditions: list[ColumnElement[bool]] = []
    if dangling_only:
        # Heads only; no tags left after the reference filter; bare ones only without one.
        conditions += [leaf, ~tagged, digested if has_reference_filter else true()]
    elif "dangling" in args:  # dangling=false: only images with a (matching) reference
        conditions.append(named)
    else:
        untagged_allowed = false() if has_reference_filter else (true() if all_images else leaf)
        conditions.append(or_(named, untagged_allowed))
    conditions += _label_condition(args)
    conditions += _time_conditions(session, args, now)
    return conditions


# --- the listing ----------------------------------------------------------------------


def _container_counts() -> Any:
    return (
        select(Container.image_id, func.count().label("count"))
        .group_by(Container.image_id)
        .subquery("container_counts")
    )


def shared_chains() -> Any:
    """Chains used by more than one image, counted over all images (docs/listing.md §6.1)."""
    return (
        select(ImageLayer.chain_id)
        .group_by(ImageLayer.chain_id)
        .having(func.count() > 1)
        .subquery("shared_chains")
    )


def list_images(
    *,
    session: Session,
    filters: FilterArgs | None = None,
    all_images: bool = False,
    shared_size: bool = False,
    now: datetime | None = None,
) -> list[ImageSummary]:
    """Docker's `Images(filters, all, sharedSize)`, newest first (ties by ID)."""
    args = filters or FilterArgs()
    now = now or datetime.now().astimezone()
    conditions = _selection(session, args, all_images, now)

    # Rows through Core (the session's connection): plain tuples, no ORM loading.
    connection = session.connection()
    counts = _container_counts()
    rows = list(
        connection.execute(
            select(
                Image.id,
                Image.parent_id,
                Image.created,
                Image.size,
                func.coalesce(counts.c.count, 0),
            )
            .outerjoin(counts, counts.c.image_id == Image.id)
            .where(*conditions)
        )
    )
    if not rows:
        return []
    # Newest first, no creation time last, ties by ID: sorted here rather than by an
    # ORDER BY, which makes SQLite walk the created index and fetch every row out of
    # order. Two stable sorts: by ID, then by time descending.
    rows.sort(key=lambda row: row[0])
    rows.sort(key=lambda row: (row[2] is not None, row[2] or _NO_TIME), reverse=True)
    listed = {row[0] for row in rows}
    # Without filters every reference is a listed image's (the images left out, untagged
    # parents, have none) and the few labels of left-out images are skipped below: reading
    # the tables whole beats evaluating the selection again per row. With filters, only
    # the listed images' rows are read, by their IDs (one parameter), not by evaluating
    # the selection again.
    listed_ids = one_of(connection.dialect.name, sorted(listed)) if args else None

    reference_query = select(
        ImageReference.image_id,
        ImageReference.repository,
        ImageReference.tag,
        ImageReference.digest,
    )
    if listed_ids is not None:
        reference_query = reference_query.where(listed_ids(ImageReference.image_id))
    if "reference" in args:
        reference_query = reference_query.where(reference_condition(args.get("reference")))
    references: dict[str, list[Named]] = defaultdict(list)
    names: dict[str, Named] = {}  # repository -> its parsed name: parsed once, not per row
    for image_id, repository, tag, digest in connection.execute(reference_query):
        name = names.get(repository)
        if name is None:
            name = names[repository] = stored_reference(repository, None, None)
        references[image_id].append(Named(name.domain, name.path, tag, digest))

    label_query = select(ImageLabel.image_id, ImageLabel.key, ImageLabel.value)
    if listed_ids is not None:
        label_query = label_query.where(listed_ids(ImageLabel.image_id))
    labels: dict[str, dict[str, str]] = defaultdict(dict)
    for image_id, key, value in connection.execute(label_query):
        if image_id in listed:
            labels[image_id][key] = value

    shared: dict[str, int] = {}
    if shared_size:
        chains = shared_chains()
        # The shared chains as an IN list, not a join: with few listed images SQLite then
        # starts from their layers instead of probing every shared chain for each of them.
        shared_query = (
            select(ImageLayer.image_id, func.sum(Layer.diff_size))
            .join(Layer, Layer.chain_id == ImageLayer.chain_id)
            .where(ImageLayer.chain_id.in_(select(chains.c.chain_id)))
            .group_by(ImageLayer.image_id)
        )
        if listed_ids is not None:
            shared_query = shared_query.where(listed_ids(ImageLayer.image_id))
        shared = {image_id: int(total) for image_id, total in connection.execute(shared_query)}

    summaries = []
    for image_id, parent_id, created, size, containers in rows:
        image_references = references.get(image_id, [])
        if len(image_references) > 1:
            image_references.sort(key=str)  # refstore order: the full normalized string
        summaries.append(
            ImageSummary(
                id=image_id,
                parent_id=parent_id or "",
                created=created,
                size=size,
                shared_size=shared.get(image_id, 0) if shared_size else -1,
                containers=int(containers),
                labels=labels.get(image_id),
                references=image_references,
            )
        )
    return summaries


@dataclass
class DiskUsage:
    """`/system/df` for images and containers (docs/listing.md §9)."""

    images: list[ImageSummary]
    total_size: int
    containers_total: int
    containers_running: int

    @property
    def active_count(self) -> int:
        return sum(1 for image in self.images if image.containers > 0)

    @property
    def reclaimable(self) -> int:
        return sum(
            image.size - image.shared_size
            for image in self.images
            if image.containers == 0 and image.shared_size >= 0
        )


def layers_size(*, session: Session) -> int:
    """moby ImageDiskUsage: the diff sizes of every layer chain some image uses, each
    counted once, leaving out untagged images with children (intermediates)."""
    child = aliased(Image)
    intermediate = and_(
        ~exists().where(ImageReference.image_id == Image.id),
        exists().where(child.parent_id == Image.id),
    )
    used = (
        select(ImageLayer.chain_id)
        .join(Image, Image.id == ImageLayer.image_id)
        .where(~intermediate)
        .distinct()
        .subquery()
    )
    total = session.scalar(
        select(func.coalesce(func.sum(Layer.diff_size), 0)).where(
            Layer.chain_id.in_(select(used.c.chain_id))
        )
    )
    return int(total or 0)


def disk_usage(*, session: Session) -> DiskUsage:
    """Images as listed with shared sizes (all=false), the layers' size, container counts."""
    images = list_images(session=session, shared_size=True)
    total, running = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((Container.state == "running", 1), else_=0)), 0),
        ).select_from(Container)
    ).one()
    return DiskUsage(
        images=images,
        total_size=layers_size(session=session),
        containers_total=int(total),
        containers_running=int(running),
    )
