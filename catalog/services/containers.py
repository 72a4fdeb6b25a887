"""Containers, recorded as `docker create` would make them (never run), so that counts,
image delete conflicts, `docker ps` and `docker inspect` are real; listing them is
`container_listing`.

Docker's rules (moby `daemon/create.go`, `daemon/names.go`, `daemon/container.go`
`GetContainer`, `daemon/delete.go`): a random 64-hex ID whose 12-character short form is
never all digits; a name given (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`, unique) or generated as
`adjective_surname`; lookup by full ID, then exact name, then unique ID prefix; a running
container is removed only with force. Names are stored without Docker's leading `/`;
messages show it where Docker does.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from catalog.db.models import Container, ContainerLabel, ImageConfigJSON, ImageLabel, utcnow
from catalog.docker.containers import RUNNING_STATES
from catalog.domain.digest import short_id
from catalog.domain.imageconfig import typed_image_config
from catalog.errors import Conflict, InvalidArgument, InvalidReference, NotFound
from catalog.services import kept_facts
from catalog.services.lookup import resolve_image_id

# States a user may give; the table knows Docker's others too.
SETTABLE_STATES = ("created", "running", "exited")

_VALID_NAME = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+\Z")
_HEX = re.compile(r"[0-9a-f]+\Z")
MAX_NAME_LENGTH = 255

# A short list in the spirit of moby's pkg/namesgenerator (adjective_surname).
_ADJECTIVES = (
    "admiring", "agitated", "amazing", "awesome", "blissful", "brave", "clever", "competent",
    "confident", "dazzling", "determined", "eager", "ecstatic", "elegant", "epic", "festive",
    "focused", "friendly", "gallant", "gifted", "happy", "hopeful", "jolly", "keen", "kind",
    "laughing", "loving", "lucid", "modest", "nifty", "optimistic", "peaceful", "pensive",
    "quirky", "relaxed", "serene", "sharp", "stoic", "tender", "trusting", "upbeat", "vibrant",
    "vigilant", "wizardly", "youthful", "zealous", "zen",
)  # fmt: skip
_SURNAMES = (
    "albattani", "allen", "babbage", "bardeen", "bartik", "bohr", "curie", "darwin", "dijkstra",
    "einstein", "elion", "euclid", "fermat", "fermi", "feynman", "franklin", "galileo", "goodall",
    "hamilton", "hawking", "hopper", "hypatia", "johnson", "kepler", "knuth", "lamarr",
    "lovelace", "meitner", "newton", "noether", "pasteur", "ritchie", "shannon", "thompson",
    "torvalds", "turing", "wozniak", "wright", "yonath",
)  # fmt: skip
_NAME_ATTEMPTS = 6


def generate_container_id() -> str:
    """moby stringid.GenerateRandomID: 64 hex digits whose short form is not a number."""
    while True:
        value = secrets.token_hex(32)
        if not value[:12].isdigit():
            return value


def random_name(retry: int) -> str:
    """moby namesgenerator.GetRandomName: `adjective_surname`, plus a digit on a retry."""
    while True:
        name = f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_SURNAMES)}"
        if name != "boring_wozniak":  # as moby: Steve Wozniak is not boring
            break
    return f"{name}{secrets.randbelow(10)}" if retry > 0 else name


def _name_in_use(session: Session, name: str) -> str | None:
    return session.scalar(select(Container.id).where(Container.name == name))


def _check_name(name: str) -> str:
    if not _VALID_NAME.match(name):
        raise InvalidReference(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    name = name.removeprefix("/")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidReference(
            f"Invalid container name ({name}): longer than {MAX_NAME_LENGTH} characters"
        )
    return name


def _image_defaults(session: Session, image_id: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The image's typed config (what docker create merges into the container's) and
    its labels."""
    raw = session.scalar(select(ImageConfigJSON.config).where(ImageConfigJSON.image_id == image_id))
    config: dict[str, Any] = {}
    if raw is not None:
        try:
            config = typed_image_config(json.loads(raw).get("config"))
        except (ValueError, AttributeError):
            config = {}
    rows = session.execute(
        select(ImageLabel.key, ImageLabel.value).where(ImageLabel.image_id == image_id)
    )
    labels = {str(key): str(value) for key, value in rows}  # (a Result is no mapping)
    return config, labels


def _check_times(
    state: str,
    created: datetime,
    started_at: datetime | None,
    finished_at: datetime | None,
    exit_code: int,
) -> tuple[datetime | None, datetime | None]:
    """The start and finish times a container in `state` records (docker's rules: one
    never started has neither; one that ran has a start; one that exited, a finish)."""
    if state == "created":
        if started_at is not None or finished_at is not None:
            raise InvalidArgument("a container in state created was never started: no times")
        if exit_code:
            raise InvalidArgument("a container in state created has no exit code")
        return None, None
    started = started_at or created
    if started < created:
        raise InvalidArgument("a container cannot start before it was created")
    if state == "running":
        if finished_at is not None or exit_code:
            raise InvalidArgument("a running container has no finish time or exit code")
        return started, None
    finished = finished_at or max(utcnow(), started)
    if finished < started:
        raise InvalidArgument("a container cannot finish before it started")
    return started, finished


def create_container(
    *,
    session: Session,
    image: str,
    name: str | None = None,
    state: str = "created",
    entrypoint: Sequence[str] | None = None,
    cmd: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
    created: datetime | None = None,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    exit_code: int = 0,
) -> Container:
    """Record a new container of the image `image` names, as `docker create` would make
    it: the image kept as named; entrypoint, command and labels merged with the image's
    (moby's merge: the image's command unless an entrypoint or command is given, its
    entrypoint unless one is given, even empty; its labels under the given ones); Docker's
    name rules (an empty name means a generated one). A state other than `created` needs
    times that follow (created <= started <= finished); they default to the creation time
    (start) and now (finish)."""
    if state not in SETTABLE_STATES:
        raise InvalidReference(
            f"invalid container state {state!r}: use one of {', '.join(SETTABLE_STATES)}"
        )
    created = created or utcnow()
    started, finished = _check_times(state, created, started_at, finished_at, exit_code)
    image_id = resolve_image_id(session, image)
    container_id = generate_container_id()
    if name:
        name = _check_name(name)
        holder = _name_in_use(session, name)
        if holder is not None:
            raise Conflict(
                f'Conflict. The container name "/{name}" is already in use by container'
                f' "{holder}". You have to remove (or rename) that container to be able to'
                " reuse that name."
            )
    else:
        for attempt in range(_NAME_ATTEMPTS):
            candidate = random_name(attempt)
            if _name_in_use(session, candidate) is None:
                name = candidate
                break
        else:  # as moby generateNewName: fall back to the short ID
            name = short_id(container_id)
    config, image_labels = _image_defaults(session, image_id)
    if not entrypoint:
        if not cmd:
            cmd = config.get("Cmd")
        if entrypoint is None:
            entrypoint = config.get("Entrypoint")
    merged_labels = {**image_labels, **(labels or {})}
    container = Container(
        id=container_id,
        name=name,
        image_id=image_id,
        image=image,
        entrypoint=list(entrypoint) if entrypoint is not None else None,
        cmd=list(cmd) if cmd else None,
        state=state,
        created=created,
        started_at=started,
        finished_at=finished,
        exit_code=exit_code,
        labels=[ContainerLabel(key=k, value=v) for k, v in sorted(merged_labels.items())],
    )
    session.add(container)
    session.flush()
    kept_facts.container_added(session=session, image_id=image_id)
    return container


def resolve_container(session: Session, term: str) -> Container:
    """moby GetContainer: a full ID, an exact name (with or without `/`), a unique ID
    prefix; Docker's errors otherwise."""
    if term == "":
        raise InvalidReference("Container name cannot be empty")
    found = session.get(Container, term)
    if found is not None:
        return found
    by_name = session.scalar(select(Container).where(Container.name == term.removeprefix("/")))
    if by_name is not None:
        return by_name
    matches: Sequence[Container] = []
    if _HEX.match(term):
        # IDs are lower hex, all below "g": this range is exactly the prefix matches.
        matches = session.scalars(
            select(Container)
            .where(Container.id >= term, Container.id < term + "g")
            .order_by(Container.id)
            .limit(2)
        ).all()
    if len(matches) > 1:
        raise InvalidReference(f"multiple IDs found with provided prefix: {term}")
    if not matches:
        raise NotFound(f"No such container: {term}")
    return matches[0]


def start_container(*, session: Session, term: str) -> Container:
    """`docker start`: the container runs from now, exit code reset (starting a running
    one changes nothing)."""
    container = resolve_container(session, term)
    if container.state not in RUNNING_STATES:
        container.state = "running"
        container.started_at = max(utcnow(), container.created)
        container.exit_code = 0
    session.flush()
    return container


def stop_container(*, session: Session, term: str, exit_code: int = 0) -> Container:
    """`docker stop`: a running container exits now with `exit_code`; one that is not
    running stays as it is."""
    container = resolve_container(session, term)
    if container.state in RUNNING_STATES:
        container.state = "exited"
        started = container.started_at or container.created
        container.finished_at = max(utcnow(), started)
        container.exit_code = exit_code
    session.flush()
    return container


def remove_container(*, session: Session, term: str, force: bool = False) -> Container:
    """`docker rm`: remove a container; a running one needs `force`."""
    container = resolve_container(session, term)
    if container.state in RUNNING_STATES and not force:
        raise Conflict(
            f'cannot remove container "/{container.name}": container is running:'
            " stop the container before removing or force remove"
        )
    session.execute(delete(Container).where(Container.id == container.id))
    kept_facts.container_removed(session=session, image_id=container.image_id)
    session.expunge(container)
    return container
