"""fsck's checks of the rows: read in bulk, in one snapshot, a fixed number of queries."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import exists, func, literal, select, union_all
from sqlalchemy.orm import Session, aliased

from catalog.db.engine import Database
from catalog.db.models import (
    Blob,
    Container,
    Image,
    ImageConfigJSON,
    ImageHistory,
    ImageLabel,
    ImageLayer,
    ImageReference,
    Layer,
)
from catalog.domain.digest import chain_ids, sha256_digest
from catalog.domain.imageconfig import parse_config
from catalog.domain.reference import parse_named
from catalog.errors import CatalogError
from catalog.operations.fsck.problems import Checked, Fix, FixAction, Problem, by_subject, plural
from catalog.operations.gc import unused_layers
from catalog.services.kept_facts import kept_fact_differences

# Streamed config rows fetched at a time.
_CONFIG_BATCH = 64


@dataclass(frozen=True)
class LayerRow:
    diff_id: str
    parent: str | None
    diff_size: int
    blob: str


@dataclass
class ImageFacts:
    """What the size and top-chain checks need after the files are read."""

    size: int
    chains: list[str]
    top_chain_id: str | None
    # The layer list matches the config, which hashes to the image ID: sizes and the top
    # layer may be re-derived from it.
    layers_verified: bool
    # The layer list is wrong (gaps, missing layers, not the config's): its sums mean nothing.
    layers_broken: bool


@dataclass
class Rows:
    blobs: dict[str, int] = field(default_factory=dict)
    layers: dict[str, LayerRow] = field(default_factory=dict)
    images: dict[str, ImageFacts] = field(default_factory=dict)
    unused_layers: list[str] = field(default_factory=list)
    layer_problems: list[Problem] = field(default_factory=list)
    image_problems: list[Problem] = field(default_factory=list)
    other_problems: list[Problem] = field(default_factory=list)


@contextmanager
def snapshot(database: Database) -> Iterator[Session]:
    """A read session whose queries all see one snapshot."""
    with database.read() as session:
        if database.dialect == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        yield session


def read_rows(session: Session, checked: Checked) -> Rows:
    rows = Rows()
    rows.blobs = dict(session.execute(select(Blob.digest, Blob.size)).all())
    rows.layers = {
        chain: LayerRow(diff_id, parent, diff_size, blob)
        for chain, diff_id, parent, diff_size, blob in session.execute(
            select(
                Layer.chain_id,
                Layer.diff_id,
                Layer.parent_chain_id,
                Layer.diff_size,
                Layer.blob_digest,
            )
        )
    }
    checked.blobs, checked.layers = len(rows.blobs), len(rows.layers)
    rows.layer_problems = _check_layer_rows(rows)
    rows.unused_layers = unused_layers(session=session)
    image_layers: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for image_id, position, chain in session.execute(
        select(ImageLayer.image_id, ImageLayer.position, ImageLayer.chain_id).order_by(
            ImageLayer.image_id, ImageLayer.position
        )
    ):
        image_layers[image_id].append((position, chain))
    rows.image_problems = _check_images(session, rows, image_layers, checked)
    rows.other_problems = [
        *_check_references(session, checked),
        *_check_orphan_rows(session),
        *_check_containers(session, checked),
        *_check_kept_facts(session),
    ]
    return rows


def _check_layer_rows(rows: Rows) -> list[Problem]:
    problems: list[Problem] = []
    for chain, layer in sorted(rows.layers.items()):
        expected = (
            layer.diff_id
            if layer.parent is None
            else sha256_digest(f"{layer.parent} {layer.diff_id}".encode())
        )
        if chain != expected:
            what = "its diff ID" if layer.parent is None else "its parent and diff ID give"
            problems.append(
                Problem(
                    "layer-chain-id",
                    chain,
                    f"{what} {expected}",
                    unrepairable="a chain ID is a row's key; load the image again",
                )
            )
        if layer.parent is not None and layer.parent not in rows.layers:
            problems.append(
                Problem(
                    "layer-parent-missing",
                    chain,
                    f"parent layer {layer.parent} does not exist",
                    unrepairable="the parent layer's data is gone; load the image again",
                )
            )
        if layer.blob != layer.diff_id:
            problems.append(
                Problem(
                    "layer-blob",
                    chain,
                    f"its blob is {layer.blob}, not its diff ID {layer.diff_id}",
                    unrepairable="load the image again",
                )
            )
        if layer.blob not in rows.blobs:
            problems.append(
                Problem(
                    "layer-blob-missing",
                    chain,
                    f"blob row {layer.blob} does not exist",
                    unrepairable="load the image again",
                )
            )
    return problems


def _check_images(
    session: Session,
    rows: Rows,
    image_layers: dict[str, list[tuple[int, str]]],
    checked: Checked,
) -> list[Problem]:
    """Configs are streamed: one query, fetched a few rows at a time."""
    parent = aliased(Image)
    result = session.execute(
        select(
            Image.id,
            Image.size,
            Image.top_chain_id,
            Image.parent_id,
            parent.id,
            ImageConfigJSON.config,
        )
        .outerjoin(parent, parent.id == Image.parent_id)
        .outerjoin(ImageConfigJSON, ImageConfigJSON.image_id == Image.id)
        .order_by(Image.id)
        .execution_options(yield_per=_CONFIG_BATCH)
    )
    problems: list[Problem] = []
    for image_id, size, top_chain_id, parent_id, parent_found, config in result:
        checked.images += 1
        listed = image_layers.get(image_id, [])
        found = _check_layer_list(image_id, listed, rows.layers)
        broken = bool(found)
        verified = False
        if config is None:
            found.append(
                Problem("image-config-missing", image_id, "no config row", unrepairable=_CONFIG)
            )
        elif (actual := sha256_digest(config)) != image_id:
            found.append(
                Problem(
                    "image-config-digest",
                    image_id,
                    f"its config hashes to {actual}",
                    unrepairable=_CONFIG,
                )
            )
        elif not broken:
            config_problems = _check_against_config(image_id, config, listed)
            found += config_problems
            broken = any(p.kind != "image-config-invalid" for p in config_problems)
            verified = not config_problems
        if parent_id is not None and parent_found is None:
            found.append(
                Problem(
                    "image-parent-missing",
                    image_id,
                    f"parent image {parent_id} does not exist",
                    unrepairable="the parent is gone; clear images.parent_id by hand if wanted",
                )
            )
        problems += found
        rows.images[image_id] = ImageFacts(
            size=size,
            chains=[chain for _, chain in listed],
            top_chain_id=top_chain_id,
            layers_verified=verified,
            layers_broken=broken,
        )
    return problems


_RELOAD = "load the image again"
_CONFIG = "the config is the image; load the image again"


def _check_layer_list(
    image_id: str, listed: list[tuple[int, str]], layers: dict[str, LayerRow]
) -> list[Problem]:
    """The image's layer list on its own: positions 0..n-1, every layer there."""
    problems: list[Problem] = []
    positions = [position for position, _ in listed]
    if positions != list(range(len(positions))):
        shown = ", ".join(str(p) for p in positions)
        problems.append(
            Problem(
                "image-layer-positions",
                image_id,
                f"layer positions are {shown}, not 0 to {len(positions) - 1}",
                unrepairable=_RELOAD,
            )
        )
    problems += [
        Problem(
            "image-layer-missing",
            image_id,
            f"layer {position} ({chain}) does not exist",
            unrepairable=_RELOAD,
        )
        for position, chain in listed
        if chain not in layers
    ]
    return problems


def _check_against_config(
    image_id: str, config: bytes, listed: list[tuple[int, str]]
) -> list[Problem]:
    """The layer list against a config that hashes to the image ID."""
    try:
        parsed = parse_config(config)
    except CatalogError as exc:
        return [Problem("image-config-invalid", image_id, exc.message, unrepairable=_RELOAD)]
    expected = chain_ids(parsed.diff_ids)
    if len(listed) != len(expected):
        return [
            Problem(
                "image-layer-count",
                image_id,
                f"the config has {len(expected)} diff IDs, the image {len(listed)} layers",
                unrepairable=_RELOAD,
            )
        ]
    return [
        Problem(
            "image-chain-id",
            image_id,
            f"layer {position} is {chain}, the config's diff IDs give {want}",
            unrepairable=_RELOAD,
        )
        for (position, chain), want in zip(listed, expected, strict=True)
        if chain != want
    ]


def _check_references(session: Session, checked: Checked) -> list[Problem]:
    rows = session.execute(
        select(
            ImageReference.id,
            ImageReference.repository,
            ImageReference.tag,
            ImageReference.digest,
            ImageReference.image_id,
            Image.id,
        )
        .outerjoin(Image, Image.id == ImageReference.image_id)
        .order_by(ImageReference.id)
    )
    problems: list[Problem] = []
    for row_id, repository, tag, digest, image_id, found in rows:
        checked.references += 1
        text = repository + (f":{tag}" if tag is not None else f"@{digest}")
        fix = Fix(
            FixAction.DELETE_REFERENCE,
            str(row_id),
            f"deleted the reference (it named {image_id})",
        )
        if found is None:
            problems.append(
                Problem("reference-image-missing", text, f"image {image_id} does not exist", fix)
            )
            continue
        try:
            parse_named(text)
        except CatalogError as exc:
            problems.append(Problem("reference-invalid", text, exc.message, fix))
    problems.sort(key=by_subject)  # in code point order, whatever the database's collation
    return problems


def _check_containers(session: Session, checked: Checked) -> list[Problem]:
    checked.containers = session.scalar(select(func.count()).select_from(Container)) or 0
    rows = session.execute(
        select(Container.id, Container.name, Container.image_id)
        .where(~exists().where(Image.id == Container.image_id))
        .order_by(Container.id)
    )
    return [
        Problem(
            "container-image-missing",
            container_id,
            f"{name}: image {image_id} does not exist (removed with rmi -f);"
            " the container keeps its image ID",
        )
        for container_id, name, image_id in rows
    ]


IMAGE_TABLES: tuple[type[ImageConfigJSON | ImageLayer | ImageLabel | ImageHistory], ...] = (
    ImageConfigJSON,
    ImageLayer,
    ImageLabel,
    ImageHistory,
)


def _check_orphan_rows(session: Session) -> list[Problem]:
    """Rows of images that do not exist: only possible with foreign keys switched off."""
    selects = [
        select(
            literal(model.__tablename__).label("table_name"),
            model.image_id.label("image_id"),
            func.count().label("count"),
        )
        .where(~exists().where(Image.id == model.image_id))
        .group_by(model.image_id)
        for model in IMAGE_TABLES
    ]
    query = union_all(*selects)
    problems = []
    for table_name, image_id, count in session.execute(query):
        problems.append(
            Problem(
                "orphan-rows",
                image_id,
                f"{count} {table_name} row{plural(count)}, but the image does not exist",
                Fix(
                    FixAction.DELETE_ORPHAN_ROWS,
                    table_name,
                    f"deleted {count} {table_name} row{plural(count)}",
                    image_id=image_id,
                ),
            )
        )
    problems.sort(key=lambda p: (p.subject, p.detail))
    return problems


def _check_kept_facts(session: Session) -> list[Problem]:
    """Every fact kept for the listing against its recomputation from the rows."""
    return [
        Problem(
            "kept-fact",
            difference.subject,
            difference.detail(),
            Fix(FixAction.REWRITE_KEPT_FACTS, difference.subject, "rewrote it from the rows"),
        )
        for difference in kept_fact_differences(session=session)
    ]
