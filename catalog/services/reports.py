"""Batch reports over the catalog: what uses the disk, what is shared, what can go.

Each report is one SQL statement built with SQLAlchemy Core (common table expressions,
window functions) that runs unchanged on SQLite and PostgreSQL; where the backends spell a
thing differently (byte-order text comparison, the start of a week or month) it uses the
constructs of `catalog.db.sql`, compiled per dialect, so the statement itself is one object
for both.

Definitions (the reports' descriptions repeat them for users):

* **Bytes** are layers' diff sizes: the bytes of a layer's own regular files, the number
  `catalog images` adds up into SIZE (docs/layers-and-squash.md §1.5). Blob and compressed
  sizes play no part.
* **A layer is a chain**, identified by its chain ID: a diff at one depth of one stack.
  The same diff applied on another base is another layer. This is how the catalog stores
  layers (`layers.chain_id`), how Docker's layer store keeps them (one directory per
  chain), how Docker's SharedSize and `system df` count, and what deleting an image
  releases (`catalog rmi` and `image prune` report the diff sizes of the chains no image
  uses any more). The catalog's content store goes one step further and keeps one blob
  per diff ID, so two chains with the same diff share a file; the reports do not count
  that saving, so their numbers are Docker's and the deletion commands'.
* **Counted images** are all images except intermediate ones: an untagged image with
  child images that no container uses. Docker deletes such an image along with its last
  child ("parents are pruned quietly"), and its layers are its children's lower layers,
  so counting it would only make the children's layers look shared (the confusion of
  docker/cli#5012). Every disk report counts a layer's users among counted images only.
* **A repository** is a normalized repository name with at least one tag or digest
  reference. Counted images with no reference at all (dangling images) form one more
  group, shown as `<none>`, so that every counted image belongs to some group.

With these, the numbers add up: for every repository unique + shared = total; every layer
is unique to at most one group; per image, "freed if deleted" counts only layers that
image alone uses, so over any set the sum of those is at most the set's total, which
counts each layer whose users are all in the set once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Select,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from catalog.db.models import (
    CONTAINER_STATES,
    Container,
    Image,
    ImageLayer,
    ImageReference,
    Layer,
    UTCDateTime,
)
from catalog.db.sql import byte_order, familiar_name, month_start, week_start
from catalog.docker.gotime import GoTimeError, parse_docker_timestamp
from catalog.errors import InvalidArgument, NotFound

# How a column's values are to be shown: the CLI and the HTML report format by kind.
ColumnKind = Literal["id", "text", "name", "count", "bytes", "time", "flag", "period"]
Period = Literal["week", "month"]
PERIODS: tuple[Period, ...] = ("week", "month")
# The options a report may take, by ReportOptions' field names. Errors name an option as
# the caller spells it (`option_names`: the CLI passes its flags), else by these names.
OPTION_NAMES = ("older_than", "max_tags", "period", "limit")
# The largest count option (a signed 64-bit integer, what SQL binds).
MAX_COUNT = (1 << 63) - 1
OptionNames = Mapping[str, str]


def _bytes(expression: ColumnElement[Any]) -> ColumnElement[int]:
    """A sum of byte counts as a 64-bit integer on both backends (PostgreSQL's SUM of a
    bigint is numeric), zero when there is nothing to add."""
    return cast(func.coalesce(expression, 0), BigInteger)


def _flag(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """A condition selected as a column: True or False (SQLite's 1/0 read as booleans)."""
    return case((condition, true()), else_=false())


# --- The pieces every report shares ----------------------------------------------------


def counted_images() -> Any:
    """Every image except intermediate ones: untagged, with children, used by no container
    (see the module doc). Columns: image_id, created, size."""
    child = aliased(Image)
    intermediate = and_(
        ~exists().where(ImageReference.image_id == Image.id),
        exists().where(child.parent_id == Image.id),
        ~exists().where(Container.image_id == Image.id),
    )
    return (
        select(Image.id.label("image_id"), Image.created, Image.size)
        .where(~intermediate)
        .cte("counted_images")
    )


def _first_reference(image_id: ColumnElement[str]) -> ColumnElement[str]:
    """An image's first tag in refstore order (the full normalized string, byte order),
    else its first digest reference, familiar; NULL for an image with no name."""

    def first(suffix: ColumnElement[str], condition: ColumnElement[bool]) -> Any:
        return (
            select(func.min(byte_order(ImageReference.repository + suffix)))
            .where(ImageReference.image_id == image_id, condition)
            .scalar_subquery()
        )

    tag = first(literal(":") + ImageReference.tag, ImageReference.tag.isnot(None))
    digest = first(literal("@") + ImageReference.digest, ImageReference.digest.isnot(None))
    return familiar_name(func.coalesce(tag, digest))


# --- Options -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportOptions:
    """What a user may tune; None means the report's default. A report refuses an option
    it does not take."""

    older_than: str | None = None
    max_tags: int | None = None
    period: Period | None = None
    limit: int | None = None

    def given(self) -> list[str]:
        return [name for name in OPTION_NAMES if getattr(self, name) is not None]


@dataclass(frozen=True)
class Settings:
    """Options resolved against a report's defaults, with the cutoff time computed."""

    older_than: str | None
    cutoff: datetime | None
    max_tags: int
    period: Period
    limit: int


# --- The reports -------------------------------------------------------------------------


def usage_by_repository(settings: Settings) -> Select[Any]:
    counted = counted_images()
    untagged = ~exists().where(ImageReference.image_id == counted.c.image_id)
    owners = union_all(
        select(ImageReference.image_id, ImageReference.repository).distinct(),
        select(counted.c.image_id, literal("").label("repository")).where(untagged),
    ).cte("owners")
    owner_chains = (
        select(owners.c.repository, ImageLayer.chain_id)
        .join(ImageLayer, ImageLayer.image_id == owners.c.image_id)
        .distinct()
        .cte("owner_chains")
    )
    chain_owners = (
        select(owner_chains.c.chain_id, func.count().label("owners"))
        .group_by(owner_chains.c.chain_id)
        .cte("chain_owners")
    )
    repository_bytes = (
        select(
            owner_chains.c.repository,
            _bytes(func.sum(Layer.diff_size)).label("total"),
            _bytes(func.sum(case((chain_owners.c.owners == 1, Layer.diff_size), else_=0))).label(
                "unique_bytes"
            ),
        )
        .join(Layer, Layer.chain_id == owner_chains.c.chain_id)
        .join(chain_owners, chain_owners.c.chain_id == owner_chains.c.chain_id)
        .group_by(owner_chains.c.repository)
        .cte("repository_bytes")
    )
    repository_counts = union_all(
        select(
            ImageReference.repository,
            func.count(ImageReference.tag).label("tags"),
            func.count(ImageReference.image_id.distinct()).label("images"),
        ).group_by(ImageReference.repository),
        select(literal("").label("repository"), literal(0).label("tags"), func.count())
        .select_from(counted)
        .where(untagged)
        .having(func.count() > 0),
    ).cte("repository_counts")
    total = _bytes(repository_bytes.c.total)
    unique = _bytes(repository_bytes.c.unique_bytes)
    name = case(
        (repository_counts.c.repository == "", null()),
        else_=familiar_name(repository_counts.c.repository),
    )
    return (
        select(
            name.label("repository"),
            repository_counts.c.tags,
            repository_counts.c.images,
            total.label("total_bytes"),
            unique.label("unique_bytes"),
            cast(total - unique, BigInteger).label("shared_bytes"),
        )
        .select_from(repository_counts)
        .outerjoin(
            repository_bytes, repository_bytes.c.repository == repository_counts.c.repository
        )
        .order_by(
            total.desc(),
            (repository_counts.c.repository == "").asc(),
            byte_order(name),
        )
    )


def layer_sharing(settings: Settings) -> Select[Any]:
    counted = counted_images()
    users = (
        select(ImageLayer.chain_id, func.count(ImageLayer.image_id.distinct()).label("images"))
        .join(counted, counted.c.image_id == ImageLayer.image_id)
        .group_by(ImageLayer.chain_id)
        .having(func.count(ImageLayer.image_id.distinct()) > 1)
        .cte("chain_users")
    )
    repositories = (
        select(
            ImageLayer.chain_id,
            func.count(ImageReference.repository.distinct()).label("repositories"),
        )
        .join(ImageReference, ImageReference.image_id == ImageLayer.image_id)
        .group_by(ImageLayer.chain_id)
        .cte("chain_repositories")
    )
    saved = cast(Layer.diff_size * (users.c.images - 1), BigInteger)
    return (
        select(
            Layer.chain_id,
            Layer.diff_id,
            Layer.diff_size,
            users.c.images,
            func.coalesce(repositories.c.repositories, 0).label("repositories"),
            saved.label("saved_bytes"),
        )
        .join(users, users.c.chain_id == Layer.chain_id)
        .outerjoin(repositories, repositories.c.chain_id == Layer.chain_id)
        .order_by(saved.desc(), Layer.diff_size.desc(), byte_order(Layer.chain_id))
        .limit(settings.limit)
    )


def reclaimable(settings: Settings) -> Select[Any]:
    counted = counted_images()
    chain_users = (
        select(ImageLayer.chain_id, ImageLayer.image_id)
        .join(counted, counted.c.image_id == ImageLayer.image_id)
        .cte("chain_users")
    )
    user_counts = (
        select(chain_users.c.chain_id, func.count().label("users"))
        .group_by(chain_users.c.chain_id)
        .cte("user_counts")
    )
    child = aliased(Image)
    has_tag = exists().where(
        ImageReference.image_id == counted.c.image_id, ImageReference.tag.isnot(None)
    )
    has_children = exists().where(child.parent_id == counted.c.image_id)
    conditions: list[ColumnElement[bool]] = [
        ~exists().where(Container.image_id == counted.c.image_id)
    ]
    if settings.cutoff is not None:
        # As `image prune --filter until=`: inclusive, and no creation time means no.
        conditions += [
            counted.c.created.isnot(None),
            counted.c.created <= literal(settings.cutoff, UTCDateTime()),
        ]
    candidates = (
        select(
            counted.c.image_id,
            counted.c.created,
            counted.c.size,
            _flag(and_(~has_tag, ~has_children)).label("dangling"),
        )
        .where(*conditions)
        .cte("candidates")
    )
    # Layers by the number of their users inside a set: when that is all of their users,
    # deleting the whole set releases them.
    in_set = (
        select(
            chain_users.c.chain_id,
            func.count().label("all_users"),
            func.sum(case((candidates.c.dangling, 1), else_=0)).label("dangling_users"),
        )
        .join(candidates, candidates.c.image_id == chain_users.c.image_id)
        .group_by(chain_users.c.chain_id)
        .cte("users_in_set")
    )
    released = (
        select(
            _bytes(
                func.sum(case((in_set.c.all_users == user_counts.c.users, Layer.diff_size)))
            ).label("all_bytes"),
            _bytes(
                func.sum(case((in_set.c.dangling_users == user_counts.c.users, Layer.diff_size)))
            ).label("dangling_bytes"),
        )
        .select_from(in_set)
        .join(user_counts, user_counts.c.chain_id == in_set.c.chain_id)
        .join(Layer, Layer.chain_id == in_set.c.chain_id)
        .cte("released")
    )
    alone = (
        select(chain_users.c.image_id, _bytes(func.sum(Layer.diff_size)).label("freed"))
        .join(user_counts, user_counts.c.chain_id == chain_users.c.chain_id)
        .join(Layer, Layer.chain_id == chain_users.c.chain_id)
        .where(user_counts.c.users == 1)
        .group_by(chain_users.c.image_id)
        .cte("freed_alone")
    )
    per_image = (
        select(
            literal("image").label("scope"),
            candidates.c.image_id,
            _first_reference(candidates.c.image_id).label("reference"),
            candidates.c.created,
            candidates.c.dangling,
            literal(1).label("images"),
            cast(candidates.c.size, BigInteger).label("size"),
            _bytes(alone.c.freed).label("freed_bytes"),
            literal(0).label("part"),
        )
        .select_from(candidates)
        .outerjoin(alone, alone.c.image_id == candidates.c.image_id)
    )

    def total(scope: str, part: int, images: Any, freed: Any) -> Select[Any]:
        return select(
            literal(scope).label("scope"),
            null().label("image_id"),
            null().label("reference"),
            null().label("created"),
            null().label("dangling"),
            images.label("images"),
            null().label("size"),
            freed.label("freed_bytes"),
            literal(part).label("part"),
        )

    dangling_count = (
        select(func.count()).select_from(candidates).where(candidates.c.dangling).scalar_subquery()
    )
    all_count = select(func.count()).select_from(candidates).scalar_subquery()
    rows = union_all(
        per_image,
        total(
            "all dangling", 1, dangling_count, select(released.c.dangling_bytes).scalar_subquery()
        ),
        total("all", 2, all_count, select(released.c.all_bytes).scalar_subquery()),
    ).subquery("rows")
    return select(
        rows.c.scope,
        rows.c.image_id,
        rows.c.reference,
        type_coerce(rows.c.created, UTCDateTime()).label("created"),
        type_coerce(rows.c.dangling, Boolean).label("dangling"),
        rows.c.images,
        rows.c.size,
        _bytes(rows.c.freed_bytes).label("freed_bytes"),
    ).order_by(
        rows.c.part,
        rows.c.freed_bytes.desc(),
        rows.c.size.desc(),
        byte_order(rows.c.image_id),
    )


def stale_tags(settings: Settings) -> Select[Any]:
    assert settings.cutoff is not None
    ordered = (
        select(
            ImageReference.repository,
            ImageReference.tag,
            ImageReference.image_id,
            Image.created,
            func.row_number()
            .over(
                partition_by=ImageReference.repository,
                order_by=(Image.created.desc().nulls_last(), byte_order(ImageReference.tag)),
            )
            .label("rank"),
            func.count().over(partition_by=ImageReference.repository).label("repository_tags"),
        )
        .join(Image, Image.id == ImageReference.image_id)
        .where(ImageReference.tag.isnot(None))
        .cte("ranked_tags")
    )
    old = and_(
        ordered.c.created.isnot(None),
        ordered.c.created <= literal(settings.cutoff, UTCDateTime()),
    )
    beyond = ordered.c.rank > settings.max_tags
    name = familiar_name(ordered.c.repository)
    return (
        select(
            name.label("repository"),
            ordered.c.tag,
            ordered.c.image_id,
            ordered.c.created,
            ordered.c.rank,
            ordered.c.repository_tags,
            _flag(old).label("older_than_cutoff"),
            _flag(beyond).label("beyond_max_tags"),
        )
        .where(or_(old, beyond))
        .order_by(byte_order(name), ordered.c.rank)
    )


def growth(settings: Settings) -> Select[Any]:
    counted = counted_images()
    bucket: Callable[[Any], ColumnElement[str]] = (
        week_start if settings.period == "week" else month_start
    )
    # '' stands for "no creation time" so that it joins; NULL again on the way out.
    image_periods = (
        select(
            func.coalesce(bucket(counted.c.created), literal_column("''")).label("period"),
            func.count().label("images"),
        )
        .group_by(literal_column("period"))
        .cte("image_periods")
    )
    first_use = (
        select(ImageLayer.chain_id, func.min(counted.c.created).label("first_created"))
        .join(counted, counted.c.image_id == ImageLayer.image_id)
        .group_by(ImageLayer.chain_id)
        .cte("first_use")
    )
    chain_periods = (
        select(
            func.coalesce(bucket(first_use.c.first_created), literal_column("''")).label("period"),
            func.sum(Layer.diff_size).label("new_bytes"),
        )
        .join(Layer, Layer.chain_id == first_use.c.chain_id)
        .group_by(literal_column("period"))
        .cte("chain_periods")
    )
    new_bytes = _bytes(chain_periods.c.new_bytes)
    unknown_last = case((image_periods.c.period == "", 1), else_=0)
    order = (unknown_last, byte_order(image_periods.c.period))
    cumulative = func.sum(new_bytes).over(order_by=order, rows=(None, 0))
    return (
        select(
            case((image_periods.c.period == "", null()), else_=image_periods.c.period).label(
                "period"
            ),
            image_periods.c.images,
            new_bytes.label("new_bytes"),
            cast(cumulative, BigInteger).label("cumulative_bytes"),
        )
        .select_from(image_periods)
        .outerjoin(chain_periods, chain_periods.c.period == image_periods.c.period)
        .order_by(*order)
    )


def containers_by_image(settings: Settings) -> Select[Any]:
    counted = counted_images()
    per_state = [
        cast(func.sum(case((Container.state == state, 1), else_=0)), BigInteger).label(state)
        for state in CONTAINER_STATES
    ]
    counts = (
        select(Container.image_id, func.count().label("containers"), *per_state)
        .group_by(Container.image_id)
        .cte("container_counts")
    )
    # Counted images, and the IDs containers name whose image has been deleted (`rmi -f`).
    subjects = union_all(
        select(counted.c.image_id, literal(1).label("present")),
        select(counts.c.image_id, literal(0).label("present")).where(
            ~exists().where(Image.id == counts.c.image_id)
        ),
    ).cte("subjects")
    reference = _first_reference(subjects.c.image_id)
    containers = func.coalesce(counts.c.containers, 0)
    return (
        select(
            subjects.c.image_id,
            reference.label("reference"),
            _flag(subjects.c.present == 1).label("image_exists"),
            containers.label("containers"),
            *[func.coalesce(counts.c[state], 0).label(state) for state in CONTAINER_STATES],
        )
        .select_from(subjects)
        .outerjoin(counts, counts.c.image_id == subjects.c.image_id)
        .order_by(
            containers.desc(),
            func.coalesce(counts.c.running, 0).desc(),
            reference.is_(None).asc(),
            byte_order(reference),
            byte_order(subjects.c.image_id),
        )
    )


# --- The registry --------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    title: str
    kind: ColumnKind
    description: str


@dataclass(frozen=True)
class Report:
    name: str
    title: str
    summary: str
    description: str
    columns: tuple[Column, ...]
    statement: Callable[[Settings], Select[Any]]
    options: tuple[str, ...] = ()
    defaults: ReportOptions = field(default_factory=ReportOptions)

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


_STATE_COLUMNS = tuple(
    Column(state, state.upper(), "count", f"its containers in state {state}")
    for state in CONTAINER_STATES
)

REPORTS: dict[str, Report] = {
    report.name: report
    for report in (
        Report(
            name="usage-by-repository",
            title="Disk usage by repository",
            summary="per repository: tags, images, and bytes in total, unique and shared",
            description=(
                "One row per repository, plus <none> for the images that have no name at all "
                "(dangling images). A repository's images are those with a tag or digest in "
                "it; an image named in two repositories belongs to both. TOTAL counts every "
                "layer of its images once, however many of them use it. UNIQUE is the part "
                "in layers that no image outside the repository uses; SHARED is the part in "
                "layers other repositories (or <none>) use too. UNIQUE + SHARED = TOTAL, "
                "always: unlike docker system df, no layer is unique to one image and shared "
                "at once. Intermediate images (untagged parents no container uses) are not "
                "counted: Docker deletes them with their last child."
            ),
            columns=(
                Column("repository", "REPOSITORY", "name", "the repository (<none>: no name)"),
                Column("tags", "TAGS", "count", "tags in the repository"),
                Column("images", "IMAGES", "count", "images with a name in the repository"),
                Column("total_bytes", "TOTAL", "bytes", "bytes of its images' layers, once"),
                Column("unique_bytes", "UNIQUE", "bytes", "bytes only this repository uses"),
                Column("shared_bytes", "SHARED", "bytes", "bytes other repositories use too"),
            ),
            statement=usage_by_repository,
        ),
        Report(
            name="layer-sharing",
            title="Most shared layers",
            summary="the layers that sharing saves the most bytes on",
            description=(
                "The layers (by chain ID: one diff at one depth of one stack, as Docker's "
                "layer store keeps them) that more than one image uses, by the bytes that "
                "sharing saves: SIZE x (IMAGES - 1), the copies that images with their own "
                "layers would need. IMAGES counts images except intermediate ones; "
                "REPOSITORIES counts the named repositories among them."
            ),
            columns=(
                Column("chain_id", "CHAIN ID", "id", "the layer's chain ID"),
                Column("diff_id", "DIFF ID", "id", "the digest of the layer's tar"),
                Column("diff_size", "SIZE", "bytes", "the bytes of the layer's own files"),
                Column("images", "IMAGES", "count", "images using the layer"),
                Column("repositories", "REPOSITORIES", "count", "repositories using it"),
                Column("saved_bytes", "SAVED", "bytes", "bytes saved by sharing it"),
            ),
            statement=layer_sharing,
            options=("limit",),
            defaults=ReportOptions(limit=20),
        ),
        Report(
            name="reclaimable",
            title="What deleting images would free",
            summary="images no container uses, and the bytes deleting them would free",
            description=(
                "Every image no container uses (with --older-than, only those created "
                "at or before the cutoff), as `image prune -a` would try them; DANGLING marks "
                "those `image prune` alone removes (no tag, no child image). FREED is what "
                "deleting that image alone would free: its layers no other image uses. A "
                "layer two candidates share is in neither one's FREED, but it is in the "
                "totals: the rows `all dangling` and `all` free every layer whose users are "
                "all in that set, each counted once. So the FREED of a set's images never "
                "add up to more than its total. Intermediate parents go with their last "
                "child, so their layers count as that child's."
            ),
            columns=(
                Column("scope", "SCOPE", "text", "image, or a total: all dangling, all"),
                Column("image_id", "IMAGE ID", "id", "the image (totals: none)"),
                Column("reference", "NAME", "name", "its first tag, or first digest name"),
                Column("created", "CREATED", "time", "when the image was created"),
                Column("dangling", "DANGLING", "flag", "no tag and no child image"),
                Column("images", "IMAGES", "count", "images the row covers"),
                Column("size", "SIZE", "bytes", "the image's size"),
                Column("freed_bytes", "FREED", "bytes", "bytes deleting the row's images frees"),
            ),
            statement=reclaimable,
            options=("older_than",),
        ),
        Report(
            name="stale-tags",
            title="Stale tags",
            summary="tags of old images, and tags beyond the newest --max-tags of a repository",
            description=(
                "Tags whose image was created at or before the --older-than cutoff "
                "(default 2160h, 90 days), and the tags of a repository beyond its newest "
                "--max-tags (default 10) by image creation time. RANK is the tag's place in "
                "its repository, newest image first. Images without a creation time are "
                "never old, and rank last."
            ),
            columns=(
                Column("repository", "REPOSITORY", "name", "the repository"),
                Column("tag", "TAG", "text", "the tag"),
                Column("image_id", "IMAGE ID", "id", "the image it names"),
                Column("created", "CREATED", "time", "when the image was created"),
                Column("rank", "RANK", "count", "1 = newest in its repository"),
                Column("repository_tags", "TAGS", "count", "tags in the repository"),
                Column("older_than_cutoff", "OLD", "flag", "created at or before the cutoff"),
                Column("beyond_max_tags", "EXCESS", "flag", "beyond the newest --max-tags"),
            ),
            statement=stale_tags,
            options=("older_than", "max_tags"),
            defaults=ReportOptions(older_than="2160h", max_tags=10),
        ),
        Report(
            name="growth",
            title="Growth over time",
            summary="images and new bytes per week or month of image creation",
            description=(
                "Images by the week (starting Monday, UTC) or month of their creation time, "
                "and the bytes of the layers that first appeared then: a layer belongs to "
                "the period of the oldest image using it, so each layer is counted once and "
                "NEW BYTES add up to the catalog's total (CUMULATIVE). Periods without images "
                "are left out; images without a creation time come last, with no period. "
                "Intermediate images are not counted: their layers come with their children."
            ),
            columns=(
                Column("period", "PERIOD", "period", "the week's Monday or the month"),
                Column("images", "IMAGES", "count", "images created in the period"),
                Column("new_bytes", "NEW BYTES", "bytes", "bytes of layers new in the period"),
                Column("cumulative_bytes", "CUMULATIVE", "bytes", "total to the period's end"),
            ),
            statement=growth,
            options=("period",),
            defaults=ReportOptions(period="week"),
        ),
        Report(
            name="containers-by-image",
            title="Containers by image",
            summary="images with their containers, by state",
            description=(
                "Every image (but intermediate ones no container uses) with the number of its "
                "containers in each state, most containers first. Containers of an image "
                "deleted with `rmi -f` keep its ID: such rows say no under EXISTS."
            ),
            columns=(
                Column("image_id", "IMAGE ID", "id", "the image"),
                Column("reference", "NAME", "name", "its first tag, or first digest name"),
                Column("image_exists", "EXISTS", "flag", "the image is in the catalog"),
                Column("containers", "CONTAINERS", "count", "its containers, in any state"),
                *_STATE_COLUMNS,
            ),
            statement=containers_by_image,
        ),
    )
}


def get_report(name: str) -> Report:
    try:
        return REPORTS[name]
    except KeyError:
        known = ", ".join(REPORTS)
        raise NotFound(f"no such report: {name!r} (reports: {known})") from None


def resolve_settings(
    report: Report,
    options: ReportOptions,
    now: datetime,
    *,
    option_names: OptionNames | None = None,
) -> Settings:
    """The options a report runs with; a user's mistake is an InvalidArgument that names
    the option as `option_names` spells it (default: the field name)."""
    names = option_names or {}

    def shown(name: str) -> str:
        return names.get(name, name)

    for name in options.given():
        if name not in report.options:
            raise InvalidArgument(f"report {report.name} takes no {shown(name)} option")
    merged = replace(
        report.defaults,
        **{name: getattr(options, name) for name in options.given()},
    )
    cutoff = None
    if merged.older_than is not None:
        try:
            cutoff = parse_docker_timestamp(merged.older_than, now).astimezone(UTC)
        except GoTimeError as exc:
            raise InvalidArgument(f"invalid {shown('older_than')} value: {exc}") from None
    for key in ("max_tags", "limit"):
        number = getattr(merged, key)
        # Both backends keep integers in 64 bits; a larger count means "all" anyway.
        if number is not None and not 1 <= number <= MAX_COUNT:
            raise InvalidArgument(
                f"invalid {shown(key)} value: {number} (must be between 1 and {MAX_COUNT})"
            )
    if merged.period is not None and merged.period not in PERIODS:
        raise InvalidArgument(f"invalid {shown('period')} value: {merged.period!r} (week or month)")
    return Settings(
        older_than=merged.older_than,
        cutoff=cutoff,
        max_tags=merged.max_tags or 0,
        period=merged.period or "week",
        limit=merged.limit or 0,
    )


@dataclass(frozen=True)
class ReportResult:
    report: Report
    settings: Settings
    rows: list[dict[str, Any]]


def report_statement(
    name: str, options: ReportOptions | None = None, *, now: datetime | None = None
) -> Select[Any]:
    """The one SQL statement of report `name`, for any backend."""
    report = get_report(name)
    settings = resolve_settings(report, options or ReportOptions(), now or datetime.now(UTC))
    return report.statement(settings)


def run_report(
    *,
    session: Session,
    name: str,
    options: ReportOptions | None = None,
    now: datetime | None = None,
    option_names: OptionNames | None = None,
) -> ReportResult:
    """Run report `name` (one statement) and return its rows as column -> value dicts."""
    report = get_report(name)
    settings = resolve_settings(
        report, options or ReportOptions(), now or datetime.now(UTC), option_names=option_names
    )
    result = session.execute(report.statement(settings))
    keys = list(result.keys())
    assert keys == report.column_names, (keys, report.column_names)
    rows = [dict(zip(keys, row, strict=True)) for row in result]
    return ReportResult(report=report, settings=settings, rows=rows)


def run_reports(
    *,
    session: Session,
    names: Sequence[str] | None = None,
    options: ReportOptions | None = None,
    now: datetime | None = None,
    option_names: OptionNames | None = None,
) -> list[ReportResult]:
    """Several reports (all by default), each given only the options it takes."""
    options = options or ReportOptions()
    results = []
    for name in names or list(REPORTS):
        report = get_report(name)
        own = ReportOptions(
            **{key: getattr(options, key) for key in options.given() if key in report.options}
        )
        results.append(
            run_report(session=session, name=name, options=own, now=now, option_names=option_names)
        )
    return results
