"""`catalog container ...`: Docker's container names, lookup, states and removal."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable

import pytest
from sqlalchemy import select
from support.builders import ImageBuilder, layer_tar
from typer.testing import Result

from catalog.context import Catalog
from catalog.db.models import Container
from catalog.errors import Conflict, InvalidReference, NotFound
from catalog.services import containers as service
from catalog.services.container_listing import list_containers
from catalog.services.containers import (
    create_container,
    remove_container,
    resolve_container,
    start_container,
    stop_container,
)

HEX64 = re.compile(r"[0-9a-f]{64}\Z")


def create(catalog: Catalog, image: str, name: str | None = None, state: str = "created") -> str:
    with catalog.database.write() as session:
        return create_container(session=session, image=image, name=name, state=state).id


def state_of(catalog: Catalog, container_id: str) -> str | None:
    with catalog.database.read() as session:
        return session.scalar(select(Container.state).where(Container.id == container_id))


def resolve(catalog: Catalog, term: str) -> str:
    with catalog.database.read() as session:
        return resolve_container(session, term).id


@pytest.fixture
def image(images: ImageBuilder) -> str:
    return images.add([layer_tar({"bin/app": b"app"})], tags=["app:1"])


def test_create_records_a_container(catalog: Catalog, image: str) -> None:
    container_id = create(catalog, "app:1", name="web", state="running")
    assert HEX64.match(container_id)
    with catalog.database.read() as session:
        row = session.get(Container, container_id)
        assert row is not None
        assert (row.name, row.image_id, row.state) == ("web", image, "running")


def test_generated_names(catalog: Catalog, image: str) -> None:
    names = set()
    for _ in range(5):
        container_id = create(catalog, image)
        with catalog.database.read() as session:
            row = session.get(Container, container_id)
            assert row is not None
            names.add(row.name)
            assert re.fullmatch(r"[a-z]+_[a-z]+\d?", row.name), row.name
    assert len(names) == 5


def test_a_taken_generated_name_falls_back_to_the_short_id(
    catalog: Catalog, image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "random_name", lambda retry: "same_name")
    first = create(catalog, image)
    second = create(catalog, image)
    with catalog.database.read() as session:
        assert session.get(Container, first).name == "same_name"  # type: ignore[union-attr]
        assert session.get(Container, second).name == second[:12]  # type: ignore[union-attr]


def test_container_ids_never_look_like_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    # moby stringid: a short form that parses as a number is drawn again.
    values = iter(["1" * 64, "123456789012" + "a" * 52, "1234567890ab" + "a" * 52])
    monkeypatch.setattr(service.secrets, "token_hex", lambda n: next(values))
    assert service.generate_container_id() == "1234567890ab" + "a" * 52


def test_random_name_retries_add_a_digit() -> None:
    assert re.fullmatch(r"[a-z]+_[a-z]+", service.random_name(0))
    assert re.fullmatch(r"[a-z]+_[a-z]+\d", service.random_name(1))


def test_name_rules(catalog: Catalog, image: str) -> None:
    first = create(catalog, image, name="/web")
    with pytest.raises(Conflict) as caught:
        create(catalog, image, name="web")
    assert str(caught.value) == (
        f'Conflict. The container name "/web" is already in use by container "{first}".'
        " You have to remove (or rename) that container to be able to reuse that name."
    )
    for bad in ("x", "-web", "we b", "web/1", "_web"):
        with pytest.raises(InvalidReference) as refused:
            create(catalog, image, name=bad)
        assert str(refused.value) == (
            f"Invalid container name ({bad}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    assert create(catalog, image, name="Web_2.0-x")
    generated = create(catalog, image, name="")  # empty: generated, as in moby
    with catalog.database.read() as session:
        assert re.fullmatch(r"[a-z]+_[a-z]+\d?", session.get(Container, generated).name)  # type: ignore[union-attr]


def test_create_needs_an_existing_image(catalog: Catalog) -> None:
    with pytest.raises(NotFound, match=r"^No such image: nope:latest$"):
        create(catalog, "nope")
    with pytest.raises(InvalidReference):
        create(catalog, "app", state="paused")


def test_lookup_by_id_name_and_prefix(catalog: Catalog, image: str) -> None:
    ids = [create(catalog, image, name=f"c{i}") for i in range(17)]
    target = ids[0]
    assert resolve(catalog, target) == target
    assert resolve(catalog, "c0") == resolve(catalog, "/c0") == target
    others = [i for i in ids if i != target]
    length = next(n for n in range(1, 65) if not any(o.startswith(target[:n]) for o in others))
    assert resolve(catalog, target[:length]) == target
    # 17 IDs: two share a first digit.
    shared = next(i[0] for i in ids if sum(other.startswith(i[0]) for other in ids) > 1)
    with pytest.raises(InvalidReference) as ambiguous:
        resolve(catalog, shared)
    assert str(ambiguous.value) == f"multiple IDs found with provided prefix: {shared}"
    with pytest.raises(NotFound, match=r"^No such container: nothing$"):
        resolve(catalog, "nothing")
    with pytest.raises(InvalidReference, match="cannot be empty"):
        resolve(catalog, "")


def test_a_name_wins_over_an_id_prefix(catalog: Catalog, image: str) -> None:
    first = create(catalog, image)
    second = create(catalog, image, name=first[:6])
    assert resolve(catalog, first[:6]) == second


def test_start_and_stop(catalog: Catalog, image: str) -> None:
    container_id = create(catalog, image, name="web")
    with catalog.database.write() as session:
        stop_container(session=session, term="web")  # not running: stays created
    assert state_of(catalog, container_id) == "created"
    with catalog.database.write() as session:
        start_container(session=session, term="web")
    assert state_of(catalog, container_id) == "running"
    with catalog.database.write() as session:
        start_container(session=session, term=container_id[:10])
        stop_container(session=session, term="web")
    assert state_of(catalog, container_id) == "exited"


def test_remove(catalog: Catalog, image: str) -> None:
    running = create(catalog, image, name="web", state="running")
    with pytest.raises(Conflict) as caught, catalog.database.write() as session:
        remove_container(session=session, term="web")
    assert str(caught.value) == (
        'cannot remove container "/web": container is running:'
        " stop the container before removing or force remove"
    )
    assert state_of(catalog, running) == "running"
    with catalog.database.write() as session:
        remove_container(session=session, term="web", force=True)
    assert state_of(catalog, running) is None
    stopped = create(catalog, image, state="exited")
    with catalog.database.write() as session:
        remove_container(session=session, term=stopped)
    with catalog.database.read() as session:
        assert list_containers(session=session, all_states=True) == []


def test_list(catalog: Catalog, images: ImageBuilder, image: str) -> None:
    untagged = images.add([layer_tar({"other": b"x"})])
    old = create(catalog, image, name="old", state="exited")
    new = create(catalog, untagged, name="new", state="running")
    with catalog.database.read() as session:
        running = list_containers(session=session)
        everything = list_containers(session=session, all_states=True)
    assert [c.id for c in running] == [new]
    assert [(c.id, c.image, c.state) for c in everything] == [
        (new, untagged, "running"),  # created by its ID: shown by it
        (old, image, "exited"),
    ]
    assert everything[0].status().startswith("Up ")
    assert everything[1].status().startswith("Exited (0) ")


def test_container_commands(cli: Callable[..., Result], image: str) -> None:
    web = cli("container", "create", "--image", "app:1", "--name", "web", "--state", "running")
    web_id = web.stdout.strip()
    assert HEX64.match(web_id)
    db_id = cli("container", "create", "--image", image[7:15], "--name", "db").stdout.strip()
    result = cli("container", "ls")
    lines = result.stdout.splitlines()
    assert lines[0].split("   ") == [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ] or re.split(r"\s{2,}", lines[0]) == [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    assert len(lines) == 2  # running ones only
    assert re.match(rf'{web_id[:12]}   app:1     ""        \S.* ago\s+Up \S.*\s+web$', lines[1]), (
        lines[1]
    )
    listed = cli("container", "ls", "-a", "--format", "json").stdout.splitlines()
    rows = [json.loads(line) for line in listed]
    assert (
        [(r["ID"], r["Names"], r["Image"], r["State"], r["Status"]) for r in rows]
        == [
            (db_id[:12], "db", image[7:15], "created", "Created"),  # newest first
            (web_id[:12], "web", "app:1", "running", rows[1]["Status"]),
        ]
    )
    assert rows[1]["Status"].startswith("Up ")
    assert list(rows[0]) == [
        "Command",
        "CreatedAt",
        "ID",
        "Image",
        "Labels",
        "LocalVolumes",
        "Mounts",
        "Names",
        "Networks",
        "Platform",
        "Ports",
        "RunningFor",
        "Size",
        "State",
        "Status",
    ]
    assert cli("container", "ls", "-aq", "--no-trunc").stdout.split() == [db_id, web_id]
    result = cli("container", "rm", "web", "db", exit_code=1)
    assert result.stdout == "db\n"
    assert result.stderr.startswith('Error: cannot remove container "/web": container is running')
    assert cli("container", "stop", "web", web_id[:8]).stdout == f"web\n{web_id[:8]}\n"
    assert cli("container", "start", "web").stdout == "web\n"
    assert cli("container", "rm", "-f", "/web/", "ghost").stdout == "/web/\n"
    result = cli("container", "rm", "ghost", exit_code=1)
    assert result.stderr == "Error: No such container: ghost\n"
    assert cli("container", "ls", "-a").stdout.splitlines()[1:] == []


def test_container_console_script(
    run_catalog: Callable[..., subprocess.CompletedProcess[str]], image: str
) -> None:
    run = run_catalog

    created = run("container", "create", "--image", "app:1", "--state", "exited")
    assert created.returncode == 0, created.stderr
    container_id = created.stdout.strip()
    assert HEX64.match(container_id)
    blocked = run("rmi", image)
    assert blocked.returncode == 1
    assert blocked.stderr == (
        f"Error: conflict: unable to delete {image[7:19]} (must be forced)"
        f" - image is being used by stopped container {container_id[:12]}\n"
    )
    assert run("container", "rm", container_id[:12]).returncode == 0
    assert run("rmi", image).stdout.startswith("Untagged: app:1\nDeleted: " + image)
