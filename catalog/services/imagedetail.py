"""An image and what it is tied to, for the web view's image and layer pages: its layers
bottom to top with how many other images use each, its parent and children, its
containers, and the images that use a layer. A fixed number of statements each.

A layer is a chain ID (docs/listing.md §6.1): the same diff on another base is another
layer, and "shared" means another image uses the same chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from catalog.db.models import Container, Image, ImageLayer, Layer
from catalog.domain.reference import Named
from catalog.errors import NotFound
from catalog.services.lookup import resolve_image_id
from catalog.services.refstore import references_by_image


@dataclass(frozen=True)
class LayerUse:
    """One layer of an image: its place, its IDs and size, and how many other images use
    the same chain."""

    position: int
    chain_id: str
    diff_id: str
    diff_size: int
    other_images: int


@dataclass(frozen=True)
class ContainerRow:
    id: str
    name: str
    state: str
    created: datetime


@dataclass
class ImageDetail:
    """An image's row, names, layers, relations and containers. `names` holds the
    references of the image and of every image named here (parent, children)."""

    id: str
    parent_id: str | None
    created: datetime | None
    size: int
    os: str
    architecture: str
    variant: str | None
    layers: list[LayerUse]
    children: list[str]
    containers: list[ContainerRow]
    names: dict[str, list[Named]]

    @property
    def references(self) -> list[Named]:
        return self.names.get(self.id, [])

    @property
    def shared_size(self) -> int:
        return sum(layer.diff_size for layer in self.layers if layer.other_images)


def image_detail(*, session: Session, term: str) -> ImageDetail:
    """The image `term` names (an ID, a prefix, a name) and what it is tied to."""
    image = session.get(Image, resolve_image_id(session, term))
    assert image is not None
    # Each layer with the number of images using its chain, from the (chain_id,
    # image_id) index; minus this image.
    users = (
        select(ImageLayer.chain_id, func.count().label("images"))
        .where(
            ImageLayer.chain_id.in_(
                select(ImageLayer.chain_id).where(ImageLayer.image_id == image.id)
            )
        )
        .group_by(ImageLayer.chain_id)
        .subquery("users")
    )
    mine = aliased(ImageLayer)
    layers = [
        LayerUse(position, chain_id, diff_id, diff_size, int(count) - 1)
        for position, chain_id, diff_id, diff_size, count in session.execute(
            select(mine.position, Layer.chain_id, Layer.diff_id, Layer.diff_size, users.c.images)
            .join(Layer, Layer.chain_id == mine.chain_id)
            .join(users, users.c.chain_id == mine.chain_id)
            .where(mine.image_id == image.id)
            .order_by(mine.position)
        )
    ]
    children = list(
        session.scalars(
            select(Image.id)
            .where(Image.parent_id == image.id)
            .order_by(Image.created.desc().nulls_last(), Image.id)
        )
    )
    containers = [
        ContainerRow(row.id, row.name, row.state, row.created)
        for row in session.execute(
            select(Container.id, Container.name, Container.state, Container.created)
            .where(Container.image_id == image.id)
            .order_by(Container.created.desc(), Container.id)
        )
    ]
    related = [image.id, *children, *([image.parent_id] if image.parent_id else [])]
    return ImageDetail(
        id=image.id,
        parent_id=image.parent_id,
        created=image.created,
        size=image.size,
        os=image.os,
        architecture=image.architecture,
        variant=image.variant,
        layers=layers,
        children=children,
        containers=containers,
        names=references_by_image(session, related),
    )


@dataclass
class LayerDetail:
    """A layer (chain), how many images use it, and the newest `limit` of them with
    their names (a base layer may be under tens of thousands)."""

    chain_id: str
    diff_id: str
    diff_size: int
    parent_chain_id: str | None
    depth: int
    image_count: int
    images: list[str]
    names: dict[str, list[Named]]


def layer_detail(*, session: Session, chain_id: str, limit: int = 200) -> LayerDetail:
    """The layer `chain_id` and the images whose stacks hold it; NotFound otherwise."""
    layer = session.get(Layer, chain_id)
    if layer is None:
        raise NotFound(f"No such layer: {chain_id}")
    count, depth = session.execute(
        select(func.count(), func.min(ImageLayer.position)).where(ImageLayer.chain_id == chain_id)
    ).one()
    images = list(
        session.scalars(
            select(ImageLayer.image_id)
            .join(Image, Image.id == ImageLayer.image_id)
            .where(ImageLayer.chain_id == chain_id)
            .order_by(Image.created.desc().nulls_last(), Image.id)
            .limit(limit)
        )
    )
    return LayerDetail(
        chain_id=layer.chain_id,
        diff_id=layer.diff_id,
        diff_size=layer.diff_size,
        parent_chain_id=layer.parent_chain_id,
        depth=int(depth or 0),
        image_count=int(count),
        images=images,
        names=references_by_image(session, images),
    )
