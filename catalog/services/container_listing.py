"""Containers as `docker ps` and `docker inspect` show them (moby `daemon/list.go`,
`daemon/container/view.go`, `daemon/inspect.go`).

`list_containers` follows moby's Containers(): the containers newest first (or, with
`name` or `id` filters, only those that match them), walked in order with `before`,
`since`, `limit` and every other filter applied as moby applies them, and the image each
shows refreshed (the name it was created with while that name still gives its image,
else the image's ID). A listing is a fixed number of queries whatever the number of
containers: the containers, their labels, the images the names given now resolve to,
the ancestors' descendants, and the images' sizes when asked for.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, literal, select, union_all
from sqlalchemy.orm import Session

from catalog.db.models import Container, ContainerLabel, Image, ImageConfigJSON, ImageReference
from catalog.docker.containers import (
    NO_HEALTHCHECK,
    PS_FILTERS,
    RUNNING_STATES,
    check_health_filter,
    check_port_filter,
    check_state_filter,
    command_text,
    exit_code_filter,
    filter_match,
    process,
    status_text,
)
from catalog.docker.filters import FilterArgs, kv_checks
from catalog.domain.digest import SHA256_PREFIX
from catalog.domain.imageconfig import typed_image_config
from catalog.domain.reference import DigestReference, parse_any_reference, tag_name_only
from catalog.errors import CatalogError, NotFound
from catalog.services.containers import resolve_container
from catalog.services.lookup import resolve_image_id

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class ContainerView:
    """One container as the daemon's container view holds it."""

    id: str
    name: str
    # The image as `docker ps` shows it (refreshed) and as it was named (Config.Image).
    image: str
    image_named: str
    image_id: str
    entrypoint: list[str] | None
    cmd: list[str] | None
    created: datetime
    state: str
    started_at: datetime | None
    finished_at: datetime | None
    exit_code: int
    labels: dict[str, str] = field(default_factory=dict)
    # With `size`: the bytes of the image's layers, docker's SizeRootFs (the writable
    # layer, SizeRw, is always empty here: catalog keeps none).
    size_root_fs: int | None = None

    @property
    def running(self) -> bool:
        return self.state in RUNNING_STATES

    @property
    def path(self) -> str:
        return process(self.entrypoint, self.cmd)[0]

    @property
    def args(self) -> list[str]:
        return process(self.entrypoint, self.cmd)[1]

    @property
    def command(self) -> str:
        return command_text(self.path, self.args)

    def status(self, now: datetime | None = None) -> str:
        return status_text(
            self.state,
            started_at=self.started_at,
            finished_at=self.finished_at,
            exit_code=self.exit_code,
            now=now or datetime.now(UTC),
        )


# The columns a listing reads: plain rows, not ORM objects (a listing may hold thousands).
_COLUMNS = (
    Container.id,
    Container.name,
    Container.image_id,
    Container.image,
    Container.entrypoint,
    Container.cmd,
    Container.created,
    Container.state,
    Container.started_at,
    Container.finished_at,
    Container.exit_code,
)


def _view(
    container: Any,
    image: str,
    labels: Mapping[str, str],
    size_root_fs: int | None = None,
) -> ContainerView:
    """A view of `container` (a Container, or a row of _COLUMNS)."""
    return ContainerView(
        id=container.id,
        name=container.name,
        image=image,
        image_named=container.image,
        image_id=container.image_id,
        entrypoint=container.entrypoint,
        cmd=container.cmd,
        created=container.created,
        state=container.state,
        started_at=container.started_at,
        finished_at=container.finished_at,
        exit_code=container.exit_code,
        labels=dict(labels),
        size_root_fs=size_root_fs,
    )


# --- what image names resolve to now, in a fixed number of queries ----------------------


def _prefix_range(term: str) -> tuple[str, str] | None:
    prefix = term.removeprefix(SHA256_PREFIX)
    if not prefix or len(prefix) > 64 or not set(prefix) <= _HEX:
        return None
    low = SHA256_PREFIX + prefix
    # IDs hold only hex after the prefix, all below "g" (as services.lookup).
    return low, low + "g"


def current_images(session: Session, terms: Collection[str]) -> dict[str, str | None]:
    """The image each term names now, by resolve_image_id's rules (a full ID, a tag or
    digest reference, else a unique ID prefix); None for one that names none."""
    found: dict[str, str | None] = dict.fromkeys(terms)
    digests: dict[str, str] = {}
    named: dict[str, tuple[str, str | None, str | None]] = {}
    for term in terms:
        try:
            reference = parse_any_reference(term)
        except CatalogError:
            continue
        if isinstance(reference, DigestReference):
            digests[term] = reference.digest
        else:
            tagged = reference if reference.digest is not None else tag_name_only(reference)
            named[term] = (
                tagged.name,
                tagged.tag if tagged.digest is None else None,
                tagged.digest,
            )
    if digests:
        existing = set(session.scalars(select(Image.id).where(Image.id.in_(set(digests.values())))))
        for term, digest in digests.items():
            found[term] = digest if digest in existing else None
    pending: list[str] = []
    if named:
        rows = session.execute(
            select(
                ImageReference.repository,
                ImageReference.tag,
                ImageReference.digest,
                ImageReference.image_id,
            ).where(ImageReference.repository.in_({name for name, _, _ in named.values()}))
        ).all()
        by_tag = {(r.repository, r.tag): r.image_id for r in rows if r.tag is not None}
        by_digest = {(r.repository, r.digest): r.image_id for r in rows if r.digest is not None}
        for term, (name, tag, named_digest) in named.items():
            hit = by_digest.get((name, named_digest)) if named_digest else by_tag.get((name, tag))
            found[term] = hit
            if hit is None:
                pending.append(term)
    ranges = {term: r for term in pending if (r := _prefix_range(term)) is not None}
    if ranges:
        # At most two IDs per prefix (a unique one, or proof that it is ambiguous).
        parts = []
        for term, (low, high) in ranges.items():
            limited = (
                select(literal(term).label("term"), Image.id.label("id"))
                .where(Image.id >= low, Image.id < high)
                .order_by(Image.id)
                .limit(2)
                .subquery()
            )
            parts.append(select(limited.c.term, limited.c.id))
        matches: dict[str, list[str]] = {}
        for term, image_id in session.execute(union_all(*parts)).all():
            matches.setdefault(term, []).append(image_id)
        for term in ranges:
            ids = matches.get(term, [])
            found[term] = ids[0] if len(ids) == 1 else None
    return found


def _shown_image(container: Any, now_named: Mapping[str, str | None]) -> str:
    """moby refreshImage: the name the container was created with while it still names
    the same image; else the image's ID."""
    named, image_id = str(container.image), str(container.image_id)
    return named if named == image_id or now_named.get(named) == image_id else image_id


# --- docker ps ------------------------------------------------------------------------


@dataclass
class _Walk:
    """moby's listContext: the filters, checked once, and the walk's position."""

    filters: FilterArgs
    all_states: bool
    limit: int
    exit_codes: list[int]
    before: str | None
    since: str | None
    is_task: bool | None
    ancestors: set[str] | None
    ports: bool
    included: int = 0


def _prefix_match(containers: Iterable[Any], prefix: str) -> str | None:
    """ViewDB.GetByPrefix: the one ID with this prefix (several, or none: no match)."""
    if not prefix:
        return None
    matches = [c.id for c in containers if c.id.startswith(prefix)]
    return matches[0] if len(matches) == 1 else None


def _id_or_name(containers: list[Any], value: str) -> str:
    """moby idOrNameFilter: a full ID, else an exact name; NotFound otherwise."""
    for container in containers:
        if container.id == value:
            return value
    wanted = value.removeprefix("/")
    for container in containers:
        if container.name == wanted:
            return str(container.id)
    raise NotFound(f"No such container: {value}")


def _descendants(session: Session, roots: set[str]) -> set[str]:
    """The images `roots` name and every image built on them (by recorded parent)."""
    if not roots:
        return set()
    tree = select(Image.id).where(Image.id.in_(roots)).cte("descendants", recursive=True)
    child = Image.__table__.alias("child")
    tree = tree.union(select(child.c.id).where(child.c.parent_id == tree.c.id))
    return set(session.scalars(select(tree.c.id)))


def _walk(
    session: Session, filters: FilterArgs, all_states: bool, limit: int, containers: list[Any]
) -> _Walk:
    """foldFilter: every filter value checked, in moby's order, before anything is listed."""
    filters.validate(PS_FILTERS)
    exit_codes = [exit_code_filter(value) for value in filters.get("exited")]
    for value in filters.get("status"):
        check_state_filter(value)
        all_states = True
    is_task = filters.get_bool_or_default("is-task", False) if "is-task" in filters else None
    for value in filters.get("health"):
        check_health_filter(value)
    before = since = None
    for value in filters.get("before"):
        before = _id_or_name(containers, value)
    for value in filters.get("since"):
        since = _id_or_name(containers, value)
    ancestors = None
    if "ancestor" in filters:
        roots = set()
        for value in filters.get("ancestor"):
            try:
                roots.add(resolve_image_id(session, value))
            except CatalogError:
                continue  # moby logs "Error while looking up for image" and goes on
        ancestors = _descendants(session, roots)
    for key in ("publish", "expose"):
        for value in filters.get(key):
            check_port_filter(key, value)
    ports = bool(filters.get("publish") or filters.get("expose"))
    return _Walk(filters, all_states, limit, exit_codes, before, since, is_task, ancestors, ports)


def _candidates(containers: list[Any], filters: FilterArgs) -> list[Any]:
    """filterByNameIDMatches: with `name` or `id` filters only the containers they match
    (names limited to the IDs matched when both are given), newest first."""
    names, ids = filters.get("name"), filters.get("id")
    if not names and not ids:
        return containers
    matched = {found for value in ids if (found := _prefix_match(containers, value))}
    for container in containers:
        if ids and container.id not in matched:
            continue
        if names and (
            filter_match(names, "/" + container.name) or filter_match(names, container.name)
        ):
            matched.add(container.id)
    return [c for c in containers if c.id in matched]


def _include(container: Any, labels: Mapping[str, str], walk: _Walk) -> bool | None:
    """includeContainerInList: True to list it, False to skip it, None to stop."""
    filters = walk.filters
    if walk.before is not None:
        if container.id == walk.before:
            walk.before = None
        return False
    if walk.since is not None and container.id == walk.since:
        return None
    running = container.state in RUNNING_STATES
    if not running and not walk.all_states and walk.limit <= 0:
        return False
    names = filters.get("name")
    if not (filter_match(names, "/" + container.name) or filter_match(names, container.name)):
        return False
    if not filter_match(filters.get("id"), container.id):
        return False
    if walk.is_task is not None and walk.is_task:  # no container here is a swarm task
        return False
    for key, value in kv_checks(filters, "label"):
        if key not in labels or (value is not None and labels[key] != value):
            return False
    if walk.limit > 0 and walk.included == walk.limit:
        return None
    if walk.exit_codes and (
        running or container.started_at is None or container.exit_code not in walk.exit_codes
    ):
        return False
    if not filter_match(filters.get("status"), container.state):
        return False
    health = filters.get("health")
    if health and NO_HEALTHCHECK not in health:
        return False
    # No container here has volumes, networks or ports.
    if "volume" in filters or "network" in filters or walk.ports:
        return False
    return walk.ancestors is None or container.image_id in walk.ancestors


# Beyond this many containers, one scan of the labels beats a long IN list.
_LABELS_BY_ID = 500


def _labels(session: Session, ids: list[str] | None) -> dict[str, dict[str, str]]:
    """Containers' labels by container ID: of `ids`, or of every container (None)."""
    query = select(ContainerLabel.container_id, ContainerLabel.key, ContainerLabel.value)
    if ids is not None and len(ids) <= _LABELS_BY_ID:
        query = query.where(ContainerLabel.container_id.in_(ids))
    found: dict[str, dict[str, str]] = {}
    for container_id, key, value in session.execute(query):
        found.setdefault(container_id, {})[key] = value
    return found


def list_containers(
    *,
    session: Session,
    all_states: bool = False,
    filters: FilterArgs | None = None,
    limit: int = 0,
    size: bool = False,
) -> list[ContainerView]:
    """`docker ps` (GET /containers/json): running containers, every one with
    `all_states` (or a `status` filter, or a `limit`), newest first; Docker's filters and
    their errors (InvalidFilter, NotFound for a `before`/`since` that names none)."""
    filters = filters or FilterArgs()
    containers = list(
        session.execute(select(*_COLUMNS).order_by(Container.created.desc(), Container.id))
    )
    # Every container's labels when a filter needs them; else only the listed ones'.
    labels = _labels(session, None) if "label" in filters else {}
    walk = _walk(session, filters, all_states, limit, containers)
    listed: list[Any] = []
    for container in _candidates(containers, filters):
        verdict = _include(container, labels.get(container.id, {}), walk)
        if verdict is None:
            break
        if verdict:
            listed.append(container)
            walk.included += 1
    if "label" not in filters and listed:
        labels = _labels(session, [c.id for c in listed])
    now_named = current_images(session, {c.image for c in listed if c.image != c.image_id})
    sizes: dict[str, int] = {}
    if size and listed:
        rows = session.execute(
            select(Image.id, Image.size).where(Image.id.in_({c.image_id for c in listed}))
        )
        sizes = {image_id: int(image_size) for image_id, image_size in rows}
    return [
        _view(
            c,
            _shown_image(c, now_named),
            labels.get(c.id, {}),
            sizes.get(c.image_id, 0) if size else None,
        )
        for c in listed
    ]


def container_views(
    *, session: Session, size: bool = False, batch: int = _LABELS_BY_ID
) -> Iterator[ContainerView]:
    """Every container as `list_containers(all_states=True, size=size)` lists them, newest
    first, read through the driver's cursor and given as they come (moby's disk usage
    lists them so): their labels and the images their names give now are read `batch`
    containers at a time, so memory does not grow with the containers."""
    statement = (
        select(*_COLUMNS, Image.size)
        .outerjoin(Image, Image.id == Container.image_id)
        .order_by(Container.created.desc(), Container.id)
    )
    result = session.execute(statement, execution_options={"yield_per": batch})
    for rows in result.partitions():
        labels = _labels(session, [c.id for c in rows])
        now_named = current_images(session, {c.image for c in rows if c.image != c.image_id})
        for c in rows:
            yield _view(
                c,
                _shown_image(c, now_named),
                labels.get(c.id, {}),
                int(c.size or 0) if size else None,
            )


def container_counts(*, session: Session) -> tuple[int, int]:
    """How many containers there are, and how many of them are running."""
    total, running = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((Container.state == "running", 1), else_=0)), 0),
        ).select_from(Container)
    ).one()
    return int(total), int(running)


# --- docker inspect ---------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerDetails:
    """What `docker inspect CONTAINER` shows beyond the view: the image's config (typed,
    as image inspect shows it; None when the image is gone) and its OS."""

    view: ContainerView
    image_config: dict[str, Any] | None
    image_os: str
    size_root_fs: int | None


def inspect_container(*, session: Session, term: str, size: bool = False) -> ContainerDetails:
    """The container `term` names (docker's GetContainer rules) with its image's config."""
    container = resolve_container(session, term)
    row = session.execute(
        select(Image.os, Image.size, ImageConfigJSON.config)
        .join(ImageConfigJSON, ImageConfigJSON.image_id == Image.id)
        .where(Image.id == container.image_id)
    ).first()
    image_config = None
    image_os = ""
    image_size = 0
    if row is not None:
        image_os, image_size = row.os, row.size
        try:
            image_config = typed_image_config(json.loads(row.config).get("config"))
        except (ValueError, AttributeError):
            image_config = {}
    return ContainerDetails(
        view=_view(
            container,
            container.image,
            {label.key: label.value for label in container.labels},
        ),
        image_config=image_config,
        image_os=image_os,
        size_root_fs=image_size if size else None,
    )


__all__ = [
    "ContainerDetails",
    "ContainerView",
    "container_counts",
    "container_views",
    "current_images",
    "inspect_container",
    "list_containers",
]
