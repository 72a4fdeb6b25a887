"""Containers as docker create records them and docker ps lists them: the image's config
merged in, times that follow the state, the image shown (refreshed), and a listing that is
a fixed number of queries whatever the number of containers."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from support.builders import ImageBuilder, image_config, layer_tar

from catalog.context import Catalog
from catalog.docker.filters import FilterArgs
from catalog.errors import InvalidArgument
from catalog.services.container_listing import (
    container_counts,
    container_views,
    current_images,
    list_containers,
)
from catalog.services.containers import create_container, start_container, stop_container
from catalog.services.tag import tag_image

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def image(images: ImageBuilder) -> str:
    """An image with an entrypoint, a command and labels, tagged tool:1."""
    layer = layer_tar({"bin/tool": b"tool"})
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = {"Entrypoint": ["/ep"], "Cmd": ["run"], "Labels": {"x": "1", "y": "image"}}
    raw = image_config([diff_id], labels=None, extra={"config": config})
    return images.add([layer], config=raw, tags=["tool:1"])


def create(catalog: Catalog, **kwargs: Any) -> Any:
    with catalog.database.write() as session:
        container = create_container(session=session, **kwargs)
        return (
            container.image,
            container.entrypoint,
            container.cmd,
            {label.key: label.value for label in container.labels},
        )


@pytest.mark.parametrize(
    ("given", "entrypoint", "cmd"),
    [
        ({}, ["/ep"], ["run"]),
        ({"cmd": ["other"]}, ["/ep"], ["other"]),
        ({"entrypoint": ["/new"]}, ["/new"], None),  # an entrypoint drops the image's CMD
        ({"entrypoint": ["/new"], "cmd": ["x"]}, ["/new"], ["x"]),
        ({"entrypoint": []}, [], ["run"]),  # `--entrypoint ""`: cleared, the CMD stays
    ],
)
def test_create_merges_the_images_command_as_docker_does(
    catalog: Catalog, image: str, given: dict[str, Any], entrypoint: Any, cmd: Any
) -> None:
    recorded = create(catalog, image="tool:1", **given)
    assert recorded[:3] == ("tool:1", entrypoint, cmd)


def test_create_keeps_the_name_given_and_merges_labels(catalog: Catalog, image: str) -> None:
    assert create(catalog, image=image[7:19], labels={"y": "mine", "z": ""})[0] == image[7:19]
    assert create(catalog, image="tool:1", labels={"y": "mine", "z": ""})[3] == {
        "x": "1",
        "y": "mine",
        "z": "",
    }


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"state": "created", "started_at": T0}, "a container in state created was never started"),
        ({"state": "created", "exit_code": 1}, "a container in state created has no exit code"),
        (
            {"state": "running", "created": T0, "started_at": T0 - timedelta(1)},
            "a container cannot start before it was created",
        ),
        (
            {"state": "running", "finished_at": T0},
            "a running container has no finish time or exit code",
        ),
        (
            {"state": "exited", "created": T0, "finished_at": T0 - timedelta(1)},
            "a container cannot finish before it started",
        ),
    ],
)
def test_times_must_follow_the_state(
    catalog: Catalog, image: str, given: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        create(catalog, image="tool:1", **given)
    assert str(refused.value).startswith(message)


def test_start_and_stop_record_times_and_exit_codes(catalog: Catalog, image: str) -> None:
    with catalog.database.write() as session:
        container = create_container(session=session, image="tool:1", name="cc", created=T0)
    with catalog.database.write() as session:
        started = start_container(session=session, term="cc")
        assert started.started_at is not None and started.started_at > T0
    with catalog.database.write() as session:
        stopped = stop_container(session=session, term="cc", exit_code=137)
        assert (stopped.state, stopped.exit_code) == ("exited", 137)
        assert stopped.finished_at is not None
    with catalog.database.read() as session:
        [view] = list_containers(session=session, all_states=True)
    assert view.id == container.id
    assert view.status().startswith("Exited (137) ")
    with catalog.database.write() as session:
        assert start_container(session=session, term="cc").exit_code == 0


def test_current_images(catalog: Catalog, images: ImageBuilder, image: str) -> None:
    other = images.add([layer_tar({"other": b"o"})], tags=["other:1", "tool@sha256:" + "9" * 64])
    with catalog.database.read() as session:
        found = current_images(
            session,
            {
                "tool:1",
                "tool",  # tool:latest: no such tag
                image,
                image[7:19],
                "sha256:" + image[7:15],
                f"tool@sha256:{'9' * 64}",
                "sha256:" + "0" * 64,
                "Bad Name",
                "other:1",
                "",
            },
        )
    assert found == {
        "tool:1": image,
        "tool": None,
        image: image,
        image[7:19]: image,
        "sha256:" + image[7:15]: image,
        f"tool@sha256:{'9' * 64}": other,
        "sha256:" + "0" * 64: None,
        "Bad Name": None,
        "other:1": other,
        "": None,
    }


@contextmanager
def counted_queries(catalog: Catalog) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = catalog.database.engine

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_a_listing_is_a_fixed_number_of_queries(
    catalog: Catalog, images: ImageBuilder, image: str
) -> None:
    child = images.add([layer_tar({"child": b"c"})], parent=image, tags=["child:1"])
    filters = FilterArgs({"ancestor": ["tool:1"], "label": ["x"], "name": ["c"]})

    def queries_for_a_listing() -> int:
        with counted_queries(catalog) as statements, catalog.database.read() as session:
            list_containers(session=session, all_states=True, filters=filters, size=True)
        return len([s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))])

    terms = ["tool:1", image, image[7:19], "child:1", child]
    for number in range(5):
        with catalog.database.write() as session:
            create_container(session=session, image=terms[number], name=f"cc{number}")
    few = queries_for_a_listing()
    for number in range(5, 40):
        with catalog.database.write() as session:
            create_container(session=session, image=terms[number % 5], name=f"cc{number}")
    assert queries_for_a_listing() == few
    assert few <= 8


@pytest.mark.parametrize("batch", [1, 3, 500])
@pytest.mark.parametrize("size", [False, True])
def test_container_views_are_the_listing_of_every_container(
    catalog: Catalog, images: ImageBuilder, image: str, batch: int, size: bool
) -> None:
    """`system df` streams the containers: the same views as `list_containers` of all,
    in its order, whatever the batch in which labels and names are read."""
    child = images.add([layer_tar({"child": b"c"})], parent=image, tags=["child:1"])
    terms = ["tool:1", image, image[7:19], "child:1", child, "tool:1", "child:1"]
    for number, term in enumerate(terms):
        with catalog.database.write() as session:
            create_container(
                session=session,
                image=term,
                name=f"v{number}",
                created=T0 + timedelta(minutes=number % 3),  # ties, ordered by ID
                labels={"n": str(number)} if number % 2 else None,
            )
    with catalog.database.write() as session:
        tag_image(session=session, source=image, target="child:1")  # no longer the child's
    with catalog.database.read() as session:
        expected = list_containers(session=session, all_states=True, size=size)
        views = list(container_views(session=session, size=size, batch=batch))
        assert container_counts(session=session) == (len(terms), 0)
    assert views == expected
    assert len(views) == len(terms)
    assert {view.image for view in views} >= {"tool:1", image, child}
