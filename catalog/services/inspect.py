"""`docker image inspect` and `docker history`, from the catalog's rows.

Inspect gives Docker's ImageInspect shape (moby `daemon/images/image_inspect.go` and the
image router): Parent, Comment, DockerVersion and Author always present (as API 1.51
shows them), Created omitted when unknown, Variant and OsVersion omitted when empty, and
`Config` typed as moby types it (DockerOCIImageConfig, empty fields omitted, as API 1.52
shows it; `catalog.server.documents` shapes older versions). History
follows moby `daemon/images/image_history.go`, quirks included.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.db.models import Image, ImageConfigJSON, ImageHistory, ImageLayer, Layer
from catalog.docker.gotime import unix_seconds
from catalog.domain.imageconfig import typed_image_config
from catalog.errors import CatalogError
from catalog.services.lookup import resolve_image_id
from catalog.services.refstore import references_by_image, repo_digests, repo_tags

MISSING = "<missing>"
# Go's zero time.Time as RFC 3339: what Docker shows for a LastTagTime never set.
ZERO_TIME = "0001-01-01T00:00:00Z"

_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d+))?"
    r"(?P<zone>[Zz]|[+-]\d{2}:\d{2})\Z"
)


def rfc3339_nano(text: str) -> str | None:
    """Go's `time.Parse(RFC3339)` then `Format(RFC3339Nano)` on a config's timestamp.

    Nanoseconds are kept as written (Python's datetime would cut them to microseconds),
    trailing zeros trimmed, the offset kept (`Z` when zero). None if it does not parse.
    """
    match = _RFC3339.match(text)
    if match is None:
        return None
    fraction = (match["fraction"] or "")[:9].rstrip("0")
    zone = match["zone"].upper()
    if zone in ("+00:00", "-00:00"):
        zone = "Z"
    return f"{match['date']}T{match['time']}{'.' + fraction if fraction else ''}{zone}"


def format_time(value: datetime | None) -> str:
    """A stored time as Go's RFC3339Nano in UTC; Go's zero time when there is none."""
    if value is None:
        return ZERO_TIME
    value = value.astimezone(UTC)
    fraction = f"{value.microsecond:06d}".rstrip("0")
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"


def _text(document: dict[str, Any], key: str) -> str:
    value = document.get(key)
    return value if isinstance(value, str) else ""


def _inspect_document(
    image: Image, raw_config: bytes, tags: list[str], digests: list[str]
) -> dict[str, Any]:
    document = json.loads(raw_config)
    comment = _text(document, "comment")
    history = document.get("history") or []
    if not comment and history and isinstance(history[-1], dict):
        # moby: an image without a comment shows its last history entry's.
        comment = _text(history[-1], "comment")
    result: dict[str, Any] = {
        "Id": image.id,
        "RepoTags": tags,
        "RepoDigests": digests,
        "Parent": image.parent_id or "",
        "Comment": comment,
    }
    created = rfc3339_nano(_text(document, "created"))
    if created is not None:
        result["Created"] = created
    result["DockerVersion"] = _text(document, "docker_version")
    result["Author"] = _text(document, "author")
    result["Config"] = typed_image_config(document.get("config"))
    result["Architecture"] = _text(document, "architecture")
    variant = _text(document, "variant")
    if variant:
        result["Variant"] = variant
    result["Os"] = _text(document, "os")
    os_version = _text(document, "os.version")
    if os_version:
        result["OsVersion"] = os_version
    result["Size"] = image.size
    rootfs = document.get("rootfs") or {}
    root_fs: dict[str, Any] = {"Type": rootfs.get("type") or "layers"}
    diff_ids = rootfs.get("diff_ids") or []
    if diff_ids:
        root_fs["Layers"] = list(diff_ids)
    result["RootFS"] = root_fs
    result["Metadata"] = {"LastTagTime": format_time(image.last_tag_time)}
    return result


@dataclass(frozen=True)
class InspectFailure:
    term: str
    error: CatalogError


def inspect_images(
    *, session: Session, terms: Sequence[str]
) -> tuple[list[dict[str, Any]], list[InspectFailure]]:
    """ImageInspect documents for the images `terms` name, in order, and the terms that
    name none (docker prints what it found and the errors). Each term is looked up on
    its own; the images' rows then come in a fixed number of queries."""
    found: list[tuple[str, str]] = []
    failures: list[InspectFailure] = []
    for term in terms:
        try:
            found.append((term, resolve_image_id(session, term)))
        except CatalogError as exc:
            failures.append(InspectFailure(term, exc))
    ids = {image_id for _, image_id in found}
    rows = (
        session.execute(
            select(Image, ImageConfigJSON.config)
            .join(ImageConfigJSON, ImageConfigJSON.image_id == Image.id)
            .where(Image.id.in_(ids))
        ).all()
        if ids
        else []
    )
    by_id = {image.id: (image, config) for image, config in rows}
    names = references_by_image(session, ids)
    documents = []
    for _, image_id in found:
        image, config = by_id[image_id]
        references = names.get(image_id, [])
        documents.append(
            _inspect_document(image, config, repo_tags(references), repo_digests(references))
        )
    return documents, failures


def inspect_image(*, session: Session, term: str) -> dict[str, Any]:
    """The ImageInspect document of one image; NotFound or InvalidReference otherwise."""
    documents, failures = inspect_images(session=session, terms=[term])
    if failures:
        raise failures[0].error
    return documents[0]


@dataclass(frozen=True)
class HistoryItem:
    """One entry of Docker's HistoryResponseItem."""

    id: str
    created: int
    created_by: str
    tags: list[str] | None
    size: int
    comment: str

    def to_json(self) -> dict[str, Any]:
        """The Engine API's JSON: Id, Created, CreatedBy, Tags (null when none), Size,
        Comment."""
        return {
            "Id": self.id,
            "Created": self.created,
            "CreatedBy": self.created_by,
            "Tags": self.tags,
            "Size": self.size,
            "Comment": self.comment,
        }


def _ancestry(session: Session, image_id: str) -> list[tuple[str, str | None]]:
    """The image and its parents, (id, parent_id) from the image up, in one query."""
    chain = (
        select(Image.id, Image.parent_id, Image.id.label("start"))
        .where(Image.id == image_id)
        .cte("ancestry", recursive=True)
    )
    parent = Image.__table__.alias("parent")
    chain = chain.union_all(
        select(parent.c.id, parent.c.parent_id, chain.c.start).where(
            parent.c.id == chain.c.parent_id
        )
    )
    rows = session.execute(select(chain.c.id, chain.c.parent_id)).all()
    parents = {row.id: row.parent_id for row in rows}
    lineage: list[tuple[str, str | None]] = []
    current: str | None = image_id
    while current is not None and current in parents and len(lineage) <= len(parents):
        lineage.append((current, parents[current]))
        current = parents[current]
    return lineage


def image_history(*, session: Session, term: str) -> list[HistoryItem]:
    """`docker history`: the config's history, newest first, each with its layer's size.

    As moby does, the newest entry gets the image's ID and each older entry the next
    ancestor's (one build step, one history entry), until the parent chain ends; the rest
    are `<missing>`. Tags are each ancestor's tag references, None when it has none.
    """
    image_id = resolve_image_id(session, term)
    entries = session.scalars(
        select(ImageHistory)
        .where(ImageHistory.image_id == image_id)
        .order_by(ImageHistory.position)
    ).all()
    sizes = session.scalars(
        select(Layer.diff_size)
        .join(ImageLayer, ImageLayer.chain_id == Layer.chain_id)
        .where(ImageLayer.image_id == image_id)
        .order_by(ImageLayer.position)
    ).all()
    items: list[dict[str, Any]] = []
    layer = 0
    for entry in entries:
        size = 0
        if not entry.empty_layer:
            if layer >= len(sizes):
                raise CatalogError("too many non-empty layers in History section")
            size = sizes[layer]
            layer += 1
        created = unix_seconds(entry.created) if entry.created is not None else 0
        items.append(
            {
                "created": created,
                "created_by": entry.created_by or "",
                "comment": entry.comment or "",
                "size": size,
            }
        )
    items.reverse()
    lineage = _ancestry(session, image_id) if items else []
    names = references_by_image(session, [i for i, _ in lineage])
    result = []
    for position, item in enumerate(items):
        if position < len(lineage):
            ancestor = lineage[position][0]
            tags = repo_tags(names.get(ancestor, [])) or None
        else:
            ancestor, tags = MISSING, None
        result.append(HistoryItem(id=ancestor, tags=tags, **item))
    return result
