"""docker-py (the `docker` package, 7.1) against `catalog serve`: the calls the issue
names, negotiation, and errors raised as docker-py's own exceptions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import pytest
from support.builders import ImageBuilder, layer_tar
from support.serving import Served, serve_catalog

from catalog.server.versions import API_VERSION


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_catalog(tmp_path_factory.mktemp("dockerpy")) as running:
        yield running


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[Any]:
    opened = docker.DockerClient(base_url=served.docker_host, timeout=120)
    try:
        yield opened
    finally:
        opened.close()


def test_negotiation_version_and_ping(client: Any, served: Served) -> None:
    assert client.api.api_version == API_VERSION
    mark = len(served.recorder.requests)
    assert client.ping() is True
    version = client.version()
    assert version["ApiVersion"] == API_VERSION
    assert served.paths_since(mark) == [f"/v{API_VERSION}/_ping", f"/v{API_VERSION}/version"]


def test_unix_socket_client(served: Served) -> None:
    over_unix = docker.DockerClient(base_url=f"unix://{served.unix_path}")
    try:
        assert over_unix.ping() is True
        assert over_unix.images.get("app:latest").id == served.ids["app"]
    finally:
        over_unix.close()


@pytest.mark.parametrize("version", ["1.41", "1.50", "1.51"])
def test_explicit_versions(served: Served, version: str) -> None:
    with docker.APIClient(base_url=served.docker_host, version=version) as api:
        summaries = {s["Id"]: s for s in api.images()}
        app = summaries[served.ids["app"]]
        assert app["Containers"] == (1 if version == "1.51" else -1)
        assert ("VirtualSize" in app) == (version == "1.41")
        assert api.inspect_image("app:latest")["Id"] == served.ids["app"]


def test_images_list_and_filters(client: Any, served: Served) -> None:
    listed = client.images.list()
    ids = [image.id for image in listed]
    assert served.ids["app"] in ids
    assert served.ids["base"] not in ids
    assert served.ids["base"] in [image.id for image in client.images.list(all=True)]
    app = next(image for image in listed if image.id == served.ids["app"])
    assert sorted(app.tags) == ["app:1.0", "app:latest", "registry.example.com:5000/org/app:1"]
    assert app.labels == {"team": "a", "tier": "web"}
    named = client.images.list(name="app", filters={"dangling": False})
    assert [image.id for image in named] == [served.ids["app"]]
    labelled = client.images.list(filters={"label": ["tier=web", "team"]})
    assert [image.id for image in labelled] == [served.ids["app"]]
    dangling = client.images.list(filters={"dangling": True})
    assert dangling
    assert all(not image.tags for image in dangling)
    quiet = client.api.images(name="app:1.0", quiet=True, all=True)
    assert quiet == [served.ids["app"]]
    with pytest.raises(docker.errors.APIError) as bad:
        client.images.list(filters={"foo": "bar"})
    assert bad.value.status_code == 400
    assert bad.value.explanation == "invalid filter 'foo'"


def test_images_get_and_not_found(client: Any, served: Served) -> None:
    image = client.images.get("registry.example.com:5000/org/app:1")
    assert image.id == served.ids["app"]
    assert image.short_id == served.ids["app"][:19]
    digested = client.images.get("digested@sha256:" + "7" * 64)
    assert digested.id == served.ids["digest_only"]
    assert digested.tags == []
    history = image.history()
    assert [entry["Id"] for entry in history] == [served.ids["app"], served.ids["base"]]
    for call in (
        lambda: client.images.get("nope"),
        lambda: client.api.inspect_image("nope"),
        lambda: client.images.remove("nope"),
        lambda: client.api.tag("nope", "x"),
        lambda: client.api.history("nope"),
        lambda: b"".join(client.api.get_image("nope")),
    ):
        with pytest.raises(docker.errors.ImageNotFound) as missing:
            call()
        assert missing.value.explanation == "No such image: nope:latest"


def test_tag_and_remove(client: Any, served: Served) -> None:
    assert client.api.tag("app:latest", "py-tag", "1") is True
    assert client.api.tag("app:latest", "registry.example.com:5000/py/tag", force=True) is True
    assert client.images.get("app:latest").tag("py-tag", "2") is True
    tags = client.images.get("py-tag:1").tags
    assert {"py-tag:1", "py-tag:2", "registry.example.com:5000/py/tag:latest"} <= set(tags)
    assert client.images.remove("py-tag:1") is None
    records = client.api.remove_image("py-tag:2", force=True, noprune=True)
    assert records == [{"Untagged": "py-tag:2"}]
    client.images.remove("registry.example.com:5000/py/tag")
    with pytest.raises(docker.errors.APIError) as conflict:
        client.images.remove(served.ids["app"], force=True)
    assert conflict.value.status_code == 409
    assert "image is being used by running container" in conflict.value.explanation


def test_prune(client: Any, served: Served) -> None:
    builder = ImageBuilder(served.catalog)
    dangling = builder.add([layer_tar({"py/prune": b"q" * 100})], labels={"py-prune": "1"})
    tagged = builder.add(
        [layer_tar({"py/prune2": b"r" * 100})], tags=["py-prune:1"], labels={"py-prune": "1"}
    )
    report = client.images.prune(filters={"label": ["py-prune=1"]})
    assert report["ImagesDeleted"][0] == {"Deleted": dangling}
    assert client.images.get("py-prune:1").id == tagged
    every = client.images.prune(filters={"dangling": False, "label": ["py-prune=1"]})
    assert {"Untagged": "py-prune:1"} in every["ImagesDeleted"]
    assert {"Deleted": tagged} in every["ImagesDeleted"]
    assert every["SpaceReclaimed"] > 0
    # No filters: dangling images only, so every tagged image stays.
    tagged_before = {i.id for i in client.images.list() if i.tags}
    client.images.prune()
    assert tagged_before <= {i.id for i in client.images.list() if i.tags}


def test_save_and_load(client: Any, served: Served) -> None:
    image = client.images.get("db:15")
    untagged_archive = b"".join(image.save())
    named_archive = b"".join(image.save(named=True))
    assert served.recorder.paths()[-1] == f"/v{API_VERSION}/images/db:15/get"
    by_name = b"".join(client.api.get_image("sample:latest"))
    assert len(untagged_archive) > 0
    assert len(by_name) > 0
    client.api.tag("db:15", "py-load", "1")
    client.images.remove("py-load:1")
    loaded = client.images.load(named_archive)
    assert [i.id for i in loaded] == [served.ids["db"]]
    assert "db:15" in loaded[0].tags
    by_id = client.images.load(untagged_archive)
    assert [i.id for i in by_id] == [served.ids["db"]]
    messages = list(client.api.load_image(by_name, quiet=True))
    assert messages == [{"stream": "Loaded image: sample:latest\n"}]
    with pytest.raises(docker.errors.ImageLoadError) as failed:
        client.images.load(b"not a tar archive" * 64)
    assert str(failed.value).startswith("invalid archive")


def test_disk_usage(client: Any, served: Served) -> None:
    usage = client.df()
    assert usage["LayersSize"] == usage["ImageUsage"]["TotalSize"] > 0
    assert served.ids["app"] in {image["Id"] for image in usage["Images"]}
    assert {c["Names"][0] for c in usage["Containers"]} == {"/web", "/store"}
    assert usage["ContainerUsage"]["ActiveCount"] == 1
