"""docker-py (7.1) container calls against `catalog serve`: `containers.list` with its
options and filters, `containers.get` and the Container model's properties, `df()`, and
`containers.run` / `create` raising docker-py's APIError with catalog's line."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import pytest
from support.serving import Served, serve_catalog

from catalog.server.container_documents import NOT_RUN


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The populated catalog (`web` running of app:latest, `store` exited of db:15) and
    an exited job with a command and a label."""
    with serve_catalog(tmp_path_factory.mktemp("dockerpy-containers"), unix=False) as running:
        running.cli("container", "create", "--image", "app:1.0", "--name", "job", "--state",
                    "exited", "--created", "30h", "--exit-code", "1", "--label", "k=v",
                    "--", "make", "all")  # fmt: skip
        yield running


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[Any]:
    opened = docker.DockerClient(base_url=served.docker_host, timeout=120)
    try:
        yield opened
    finally:
        opened.close()


def test_list_and_the_container_model(client: Any, served: Served) -> None:
    running = client.containers.list()
    assert [c.name for c in running] == ["web"]
    web = running[0]
    assert web.status == "running"
    assert web.image.id == served.ids["app"]  # docker-py fetches the image by its ID
    assert web.labels == {"team": "a", "tier": "web"}
    assert web.attrs["Config"]["Image"] == "app:latest"
    everything = client.containers.list(all=True)
    assert [c.name for c in everything] == ["store", "web", "job"]  # newest first
    job = everything[2]
    assert (job.status, job.attrs["State"]["ExitCode"]) == ("exited", 1)
    assert job.attrs["Path"] == "make"
    assert job.attrs["Args"] == ["all"]
    assert job.labels["k"] == "v"
    assert job.health == "unknown"  # no health check: docker-py's own word
    assert job.ports == {}


def test_list_options_and_filters(client: Any, served: Served) -> None:
    def listed(**kwargs: Any) -> list[str]:
        return [c.name for c in client.containers.list(**kwargs)]

    assert listed(filters={"status": "exited"}) == ["store", "job"]
    assert listed(all=True, filters={"label": "k=v"}) == ["job"]
    assert listed(all=True, filters={"ancestor": "app:1.0"}) == ["web", "job"]
    assert listed(all=True, filters={"exited": 1}) == ["job"]
    assert listed(all=True, filters={"name": "st"}) == ["store"]
    assert listed(limit=1) == ["store"]
    assert listed(all=True, filters={"before": "store"}) == ["web", "job"]
    assert listed(all=True, filters={"since": "web"}) == ["store"]
    sparse = client.containers.list(all=True, sparse=True)
    assert [c.attrs["Names"] for c in sparse] == [["/store"], ["/web"], ["/job"]]
    with pytest.raises(docker.errors.APIError) as bad:
        client.containers.list(filters={"status": "up"})
    assert bad.value.status_code == 400
    assert "invalid filter 'status=up'" in bad.value.explanation


def test_get(client: Any, served: Served) -> None:
    store = client.containers.get("store")
    assert store.name == "store"
    assert store.image.tags == ["db:15"]
    assert client.containers.get(store.id[:12]).id == store.id
    with pytest.raises(docker.errors.NotFound) as missing:
        client.containers.get("nope")
    assert missing.value.explanation == "No such container: nope"


@pytest.mark.parametrize("call", ["run", "create"])
def test_run_and_create_raise_catalogs_line(client: Any, call: str) -> None:
    with pytest.raises(docker.errors.APIError) as refused:
        getattr(client.containers, call)("app:latest", "true")
    assert not isinstance(refused.value, docker.errors.ImageNotFound)  # no pull attempted
    assert refused.value.status_code == 501
    assert refused.value.explanation == NOT_RUN


def test_runtime_calls_raise_catalogs_line(client: Any) -> None:
    web = client.containers.get("web")
    for call in (web.stop, web.logs, web.wait, web.restart, lambda: web.exec_run("true")):
        with pytest.raises(docker.errors.APIError) as refused:
            call()
        assert refused.value.status_code == 501


def test_df_and_an_older_api_version(client: Any, served: Served) -> None:
    containers = client.df()["ContainerUsage"]
    assert (containers["TotalCount"], containers["ActiveCount"]) == (3, 1)
    assert [c["Names"] for c in client.api.df()["Containers"]] == [["/store"], ["/web"], ["/job"]]
    with docker.APIClient(base_url=served.docker_host, version="1.41") as old:
        listed = old.containers(all=True)
        assert [c["Names"] for c in listed] == [["/store"], ["/web"], ["/job"]]
        assert all("Health" not in c for c in listed)
        assert old.inspect_container("web")["GraphDriver"]["Name"] == "catalog"
