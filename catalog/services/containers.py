"""Containers, recorded so that container counts and image delete conflicts are real.

Docker's rules (moby `daemon/create.go`, `daemon/names.go`, `daemon/container.go`
`GetContainer`, `daemon/delete.go`): a random 64-hex ID whose 12-character short form is
never all digits; a name given (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`, unique) or generated as
`adjective_surname`; lookup by full ID, then exact name, then unique ID prefix; a running
container is removed only with force. Names are stored without Docker's leading `/`;
messages show it where Docker does.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from catalog.db.models import Container, utcnow
from catalog.domain.digest import short_id
from catalog.domain.reference import familiar_string
from catalog.errors import Conflict, InvalidReference, NotFound
from catalog.services import kept_facts
from catalog.services.lookup import resolve_image_id
from catalog.services.refstore import references_by_image

# States a user may give; the table knows Docker's others too.
SETTABLE_STATES = ("created", "running", "exited")
# Docker's State.IsRunning() is true for these (a paused or restarting container runs).
RUNNING_STATES = ("running", "paused", "restarting")

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


@dataclass(frozen=True)
class ContainerSummary:
    """One row of `container ls`: the container and how its image is shown."""

    id: str
    name: str
    image_id: str
    image: str
    state: str
    created: datetime

    @property
    def status(self) -> str:
        return container_status(self.state)


def container_status(state: str) -> str:
    """Docker's State.String() without durations or exit codes (the catalog has neither)."""
    return {
        "created": "Created",
        "running": "Up",
        "paused": "Up (Paused)",
        "restarting": "Restarting",
        "removing": "Removal In Progress",
        "exited": "Exited",
        "dead": "Dead",
    }.get(state, state)


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


def create_container(
    *, session: Session, image: str, name: str | None = None, state: str = "created"
) -> Container:
    """Record a new container of the image `image` names; Docker's name rules apply (an
    empty name means a generated one, as in moby)."""
    if state not in SETTABLE_STATES:
        raise InvalidReference(
            f"invalid container state {state!r}: use one of {', '.join(SETTABLE_STATES)}"
        )
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
    container = Container(
        id=container_id, name=name, image_id=image_id, state=state, created=utcnow()
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
    """`docker start`: the container runs (starting a running one changes nothing)."""
    container = resolve_container(session, term)
    if container.state not in RUNNING_STATES:
        container.state = "running"
    session.flush()
    return container


def stop_container(*, session: Session, term: str) -> Container:
    """`docker stop`: a running container exits; one that is not running stays as it is."""
    container = resolve_container(session, term)
    if container.state in RUNNING_STATES:
        container.state = "exited"
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


def list_containers(*, session: Session, all_states: bool = False) -> list[ContainerSummary]:
    """`docker ps`: running containers (every one with `all_states`), newest first.

    IMAGE is the image's first tag in refstore order, or its short ID when untagged (the
    catalog does not keep the name a container was created from).
    """
    query = select(Container).order_by(Container.created.desc(), Container.id)
    if not all_states:
        query = query.where(Container.state.in_(RUNNING_STATES))
    containers = session.scalars(query).all()
    names = references_by_image(session, {c.image_id for c in containers})
    summaries = []
    for container in containers:
        tags = [r for r in names.get(container.image_id, []) if r.tag is not None]
        image = familiar_string(tags[0]) if tags else short_id(container.image_id)
        summaries.append(
            ContainerSummary(
                id=container.id,
                name=container.name,
                image_id=container.image_id,
                image=image,
                state=container.state,
                created=container.created,
            )
        )
    return summaries
