"""An image and what it is tied to: layers with the images sharing each, parent and
children, containers; and a layer with the images using it."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest
from sqlalchemy import select
from support.generated import generate

from catalog.context import Catalog
from catalog.db.models import Container, Image, ImageLayer
from catalog.errors import NotFound
from catalog.services.imagedetail import image_detail, layer_detail


def test_layers_relations_and_users_match_the_rows(catalog: Catalog) -> None:
    generate(catalog, images=200, seed=9)
    with catalog.database.read() as session:
        stacks: dict[str, list[str]] = defaultdict(list)
        for image_id, chain_id in session.execute(
            select(ImageLayer.image_id, ImageLayer.chain_id).order_by(ImageLayer.position)
        ):
            stacks[image_id].append(chain_id)
        users = Counter(chain for stack in stacks.values() for chain in stack)
        parents = {row[0]: row[1] for row in session.execute(select(Image.id, Image.parent_id))}
        containers = Counter(session.scalars(select(Container.image_id)))
        for image_id in sorted(stacks)[::7]:
            detail = image_detail(session=session, term=image_id)
            assert [layer.chain_id for layer in detail.layers] == stacks[image_id]
            assert [layer.position for layer in detail.layers] == list(range(len(stacks[image_id])))
            assert [layer.other_images for layer in detail.layers] == [
                users[chain] - 1 for chain in stacks[image_id]
            ]
            assert detail.parent_id == parents[image_id]
            assert sorted(detail.children) == sorted(i for i, p in parents.items() if p == image_id)
            assert len(detail.containers) == containers[image_id]
            assert detail.size == sum(layer.diff_size for layer in detail.layers)
            top = stacks[image_id][-1]
            layer = layer_detail(session=session, chain_id=top)
            assert sorted(layer.images) == sorted(i for i, s in stacks.items() if top in s)
            assert layer.image_count == len(layer.images)
            assert layer.depth == len(stacks[image_id]) - 1
        busiest, users_of_busiest = users.most_common(1)[0]
        assert users_of_busiest > 5
        layer = layer_detail(session=session, chain_id=busiest, limit=5)
        assert layer.image_count == users_of_busiest and len(layer.images) == 5
        with pytest.raises(NotFound, match="No such layer"):
            layer_detail(session=session, chain_id="sha256:" + "0" * 64)
        with pytest.raises(NotFound, match="No such image"):
            image_detail(session=session, term="nosuch")
