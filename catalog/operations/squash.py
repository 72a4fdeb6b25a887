"""`catalog image squash`: an image made of a parent's layers plus one layer holding the
difference, as moby's `SquashImage` (daemon/images/image_squash.go) makes it.

Which layers. IMAGE's layers split into a base B, kept as they are, and the range R above
it, squashed into one new layer (catalog.domain.changeset: the diff of the two snapshots
apply(B) and apply(B + R), docs/layers-and-squash.md §3.2):

* `--parent PARENT`: B is PARENT's layers, which must be the first layers of IMAGE;
* `--layers N`: R is IMAGE's top N layers (layers are `rootfs.diff_ids`, not history
  rows). N <= 0, N above the number of layers and N = 1 are refused with docker-squash's
  texts (docs/layers-and-squash.md §3.6): one layer squashed is that layer again;
* neither: B is the layers of IMAGE's recorded parent image (its build parent), and
  without one B is empty and every layer is squashed: the new layer is the whole
  filesystem, with no whiteouts left in it.

A range of no layers (PARENT has all of IMAGE's layers) is refused: nothing to squash.

The new config is IMAGE's config document with its keys, unknown ones included, in their
order, and these changes (moby):

* `rootfs.diff_ids` = B's diff IDs + the new layer's;
* every `history` entry from index `len(PARENT's history)` on gets `empty_layer: true`
  (with `--layers`, from the entry after B's last non-empty one); one entry is appended:
  `{"created": now, "comment": "merge <image ID> to <parent ID>"}`, or `"create new from
  <image ID>"` without a base; `-m MESSAGE` replaces that comment. With `--layers` and no
  image of B's layers among IMAGE's ancestors, `<parent ID>` is B's top chain ID;
* `created` = now.

It is written as compact JSON (UTF-8); its digest is the new image's ID. The new image's
parent is PARENT (with `--layers`, the nearest ancestor whose layers are B, if any); the
original image is not touched. A range whose layers change nothing gives an empty layer,
registered as moby registers it (docs/layers-and-squash.md §3.4): moby's empty layer,
1024 zero bytes, so the history's non-empty entries still match the diff IDs one to one.

One transaction. The new layer streams into the content store first (a temporary file,
fsynced and renamed into place by `ContentStore.writer`); then one write transaction adds
every row (blob, layer, image, config, image layers, labels, history, tags). A failure or
a kill at any point leaves the rows as they were and at most one unreferenced blob, or a
temporary file, which `catalog gc` removes. The layers read and the new one are held in a
lease (catalog.operations.leases) until the rows commit, so no rmi, prune or gc removes
them meanwhile.

Fault points (catalog.faults), where the tests stop a squash as a kill would:

* `squash:layer-partial`: half of the new layer's entries are in the temporary file;
* `squash:layer-stored`: the layer blob is committed to the store, no row written yet;
* `squash:rows-written`: every row is written, inside the transaction, before its commit.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.context import Catalog
from catalog.db.models import Blob, Image, ImageConfigJSON, ImageLayer, Layer
from catalog.domain.changeset import squash_layers
from catalog.domain.digest import chain_ids
from catalog.domain.imageconfig import format_timestamp, parse_config
from catalog.domain.reference import Named
from catalog.errors import Conflict, InvalidArgument, os_failure
from catalog.faults import fault_point
from catalog.operations.leases import Lease
from catalog.services.images import StoredLayer, register_image, set_reference
from catalog.services.lookup import resolve_image_id
from catalog.services.tag import parse_tag_target

__all__ = [
    "SquashPlan",
    "SquashResult",
    "plan_squash",
    "squash_image",
    "squashed_config",
]

# moby's empty layer (a tar of 1024 zero bytes): what an empty squash writes.
EMPTY_LAYER_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"

# docker-squash's texts (image.py _validate_number_of_layers, _before_squashing).
LAYERS_NOT_POSITIVE = "Number of layers to squash cannot be less or equal 0"
SINGLE_LAYER = "Single layer marked to squash, no squashing is required"
PARENT_AND_LAYERS = "--parent and --layers cannot be used together"


@dataclass(frozen=True)
class _ImageFacts:
    id: str
    parent_id: str | None
    document: dict[str, Any]
    layers: list[StoredLayer]

    @property
    def diff_ids(self) -> list[str]:
        return [layer.diff_id for layer in self.layers]

    @property
    def history(self) -> list[Any]:
        history = self.document.get("history")
        return history if isinstance(history, list) else []


@dataclass(frozen=True)
class SquashPlan:
    """What a squash will do: IMAGE's layers `base` are kept, `squashed` become one."""

    image_id: str
    document: dict[str, Any]
    base: list[StoredLayer]
    squashed: list[StoredLayer]
    parent_id: str | None  # the new image's parent
    base_history: int  # history entries from this index on get empty_layer
    comment: str


@dataclass(frozen=True)
class SquashResult:
    """The new image, its new layer, and how many layers went into it."""

    image_id: str
    diff_id: str
    diff_size: int
    squashed_layers: int
    parent_id: str | None


def _image_facts(session: Session, image_id: str) -> _ImageFacts:
    """An image's parent, config document and stored layers: two queries."""
    row = session.execute(
        select(Image.parent_id, ImageConfigJSON.config)
        .join(ImageConfigJSON, ImageConfigJSON.image_id == Image.id)
        .where(Image.id == image_id)
    ).one()
    layers = [
        StoredLayer(diff_id, diff_size, size)
        for diff_id, diff_size, size in session.execute(
            select(Layer.diff_id, Layer.diff_size, Blob.size)
            .join(ImageLayer, ImageLayer.chain_id == Layer.chain_id)
            .join(Blob, Blob.digest == Layer.blob_digest)
            .where(ImageLayer.image_id == image_id)
            .order_by(ImageLayer.position)
        )
    ]
    document = parse_config(bytes(row.config)).document
    return _ImageFacts(id=image_id, parent_id=row.parent_id, document=document, layers=layers)


def _ancestor_with_top(session: Session, start: str | None, top_chain_id: str) -> str | None:
    """The nearest of `start` and its ancestors (by recorded parents) whose top layer is
    `top_chain_id`: one recursive query (UNION, so a cycle of parents ends it)."""
    if start is None:
        return None
    parent = Image.__table__.alias("parent")
    chain = (
        select(Image.id, Image.parent_id, Image.top_chain_id)
        .where(Image.id == start)
        .cte("ancestry", recursive=True)
    )
    chain = chain.union(
        select(parent.c.id, parent.c.parent_id, parent.c.top_chain_id).where(
            parent.c.id == chain.c.parent_id
        )
    )
    rows = {
        row.id: row
        for row in session.execute(select(chain.c.id, chain.c.parent_id, chain.c.top_chain_id))
    }
    current: str | None = start
    seen: set[str] = set()
    while current is not None and current in rows and current not in seen:
        if rows[current].top_chain_id == top_chain_id:
            return current
        seen.add(current)
        current = rows[current].parent_id
    return None


def _history_before(history: Sequence[Any], layers: int) -> int:
    """The index of the first history entry after the `layers`-th non-empty one."""
    if layers == 0:
        return 0
    seen = 0
    for index, entry in enumerate(history):
        if isinstance(entry, dict) and not entry.get("empty_layer", False):
            seen += 1
            if seen == layers:
                return index + 1
    return len(history)


def plan_squash(
    *,
    session: Session,
    term: str,
    parent: str | None = None,
    layers: int | None = None,
) -> SquashPlan:
    """Decide which of IMAGE's layers are kept and which are squashed (module doc)."""
    if parent is not None and layers is not None:
        raise InvalidArgument(PARENT_AND_LAYERS)
    image = _image_facts(session, resolve_image_id(session, term))
    count = len(image.layers)
    if count == 0 and layers is None:
        raise InvalidArgument(f"nothing to squash: {term} has no layers")

    if layers is not None:
        if layers <= 0:
            raise InvalidArgument(LAYERS_NOT_POSITIVE)
        if layers > count:
            raise InvalidArgument(
                f"Cannot squash {layers} layers, the {term} image contains only {count} layers"
            )
        if layers == 1:
            raise InvalidArgument(SINGLE_LAYER)
        kept = count - layers
        base_top = chain_ids(image.diff_ids[:kept])[-1] if kept else None
        parent_id = _ancestor_with_top(session, image.parent_id, base_top) if base_top else None
        base_history = _history_before(image.history, kept)
        target = parent_id or base_top
    else:
        parent_id = resolve_image_id(session, parent) if parent is not None else image.parent_id
        if parent_id is None:
            kept, base_history = 0, 0
        else:
            base = _image_facts(session, parent_id)
            shown = parent if parent is not None else parent_id
            if base.diff_ids != image.diff_ids[: len(base.diff_ids)]:
                raise InvalidArgument(
                    f"{shown} is not a parent of {term}: its layers are not the first "
                    f"layers of {term}"
                )
            kept, base_history = len(base.diff_ids), len(base.history)
            if kept == count:
                raise InvalidArgument(f"nothing to squash: {term} has no layers above {shown}")
        target = parent_id
    comment = f"merge {image.id} to {target}" if target else f"create new from {image.id}"
    return SquashPlan(
        image_id=image.id,
        document=image.document,
        base=image.layers[:kept],
        squashed=image.layers[kept:],
        parent_id=parent_id,
        base_history=base_history,
        comment=comment,
    )


def squashed_config(
    document: dict[str, Any],
    *,
    base_diff_ids: Sequence[str],
    diff_id: str,
    base_history: int,
    comment: str,
    created: datetime,
) -> bytes:
    """The new config bytes (module doc): the original's keys in their order."""
    new: dict[str, Any] = json.loads(json.dumps(document))  # a deep copy, key order kept
    created_text = format_timestamp(created)
    rootfs = new["rootfs"]  # parse_config has checked it is an object
    rootfs["diff_ids"] = [*base_diff_ids, diff_id]
    history = [
        dict(entry) if isinstance(entry, dict) else entry for entry in new.get("history") or []
    ]
    for index, entry in enumerate(history):
        if index >= base_history and isinstance(entry, dict):
            entry["empty_layer"] = True
    history.append({"created": created_text, "comment": comment})
    new["history"] = history
    new["created"] = created_text
    return json.dumps(new, separators=(",", ":"), ensure_ascii=False).encode()


@contextlib.contextmanager
def _storing(what: str) -> Iterator[None]:
    """A failure of the disk (no space, an I/O error) as one line naming what was stored."""
    try:
        yield
    except OSError as exc:
        raise os_failure(exc, f"storing {what}") from None


def squash_image(
    catalog: Catalog,
    term: str,
    *,
    parent: str | None = None,
    layers: int | None = None,
    tags: Sequence[str] = (),
    message: str | None = None,
    now: datetime | None = None,
) -> SquashResult:
    """Squash IMAGE (`term`) as the module doc says; register and tag the new image.

    Everything the user typed is checked before anything is written. The original image
    is untouched; a failure leaves the rows unchanged (at most an unreferenced blob).
    """
    references: list[Named] = [parse_tag_target(tag) for tag in tags]
    with catalog.database.read() as session:
        plan = plan_squash(session=session, term=term, parent=parent, layers=layers)
    created = now or datetime.now(UTC)
    comment = message if message is not None else plan.comment

    def config_bytes(diff_id: str) -> bytes:
        return squashed_config(
            plan.document,
            base_diff_ids=[layer.diff_id for layer in plan.base],
            diff_id=diff_id,
            base_history=plan.base_history,
            comment=comment,
            created=created,
        )

    # A config Docker would refuse (a history with more non-empty entries than layers)
    # is refused now, before anything is written.
    parse_config(config_bytes(EMPTY_LAYER_DIFF_ID))

    # The layers read and kept, then the new layer's blob, are held until the rows
    # commit (catalog.operations.leases): no rmi, prune or gc removes them meanwhile.
    with Lease(catalog, purpose="squashing") as lease:
        return _squash(catalog, lease, plan, references, config_bytes)


def _squash(
    catalog: Catalog,
    lease: Lease,
    plan: SquashPlan,
    references: Sequence[Named],
    config_bytes: Callable[[str], bytes],
) -> SquashResult:
    """`squash_image` once the plan is made, holding its blobs in `lease`."""
    store = catalog.store
    if lease.hold([layer.diff_id for layer in (*plan.base, *plan.squashed)], require_rows=True):
        raise Conflict(f"image {plan.image_id} was deleted while squashing")
    with _storing(f"the squashed layer of {plan.image_id}"), store.writer() as writer:

        def progress(done: int, total: int) -> None:
            if done == max(1, total // 2):
                fault_point("squash:layer-partial", flush=writer.flush)

        written = squash_layers(
            [layer.diff_id for layer in plan.base],
            [layer.diff_id for layer in plan.squashed],
            store.open,
            writer,
            progress=progress,
            open_stream=lambda digest: store.open(digest, verify=True),
        )
        blob = writer.commit(before_install=lease.hold_one)
    fault_point("squash:layer-stored")

    new_layer = StoredLayer(blob.digest, written.diff_size, blob.size)
    config = parse_config(config_bytes(blob.digest))
    with catalog.database.write() as session:
        # Writers are serialized: if the original (whose layers the new image shares)
        # or the parent is still there now, it is until this transaction commits.
        wanted = {plan.image_id} | ({plan.parent_id} if plan.parent_id else set())
        present = set(session.scalars(select(Image.id).where(Image.id.in_(wanted))))
        if present != wanted:
            missing = sorted(wanted - present)[0]
            raise Conflict(f"image {missing} was deleted while squashing")
        lease.commit(session)
        register_image(
            session=session,
            config=config,
            layers=[*plan.base, new_layer],
            parent_id=plan.parent_id,
        )
        for reference in references:
            set_reference(session=session, reference=reference, image_id=config.id)
        session.flush()
        fault_point("squash:rows-written")
    return SquashResult(
        image_id=config.id,
        diff_id=blob.digest,
        diff_size=written.diff_size,
        squashed_layers=len(plan.squashed),
        parent_id=plan.parent_id,
    )
