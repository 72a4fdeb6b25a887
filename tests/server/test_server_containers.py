"""`catalog serve`'s container endpoints over HTTP (httpx): `GET /containers/json` with
`all`, every filter, `limit` and `size`; `GET /containers/{id}/json`; the shapes of each
API version; and the runtime endpoints, which answer 501 with one line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.builders import ImageBuilder, layer_tar
from support.serving import Served, serve_catalog

from catalog.server.container_documents import NOT_RUN

JSON = "application/json"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The populated catalog (containers `web`, running, of app:latest and `store`,
    exited, of db:15) plus containers with a command, labels, times and exit codes."""
    with serve_catalog(tmp_path_factory.mktemp("containers"), unix=False) as running:
        cli = running.cli
        times = ("--created", "80h", "--started", "79h", "--finished", "72h", "--exit-code", "3")
        command = ("--", "sh", "-c", "echo hi there")
        cli("container", "create", "--image", "app:1.0", "--name", "old-job", "--state",
            "exited", *times, "--label", "job=nightly", *command)  # fmt: skip
        cli("container", "create", "--image", "db:15", "--name", "fresh", "--label", "job=once")
        child = ImageBuilder(running.catalog).add(
            [layer_tar({"child/layer": b"c" * 10})], parent=running.ids["app"], tags=["child:1"]
        )
        running.ids["child"] = child
        cli("container", "create", "--image", "child:1", "--name", "kid", "--state", "running",
            "--entrypoint", "/init", "--", "serve")  # fmt: skip
        yield running


@pytest.fixture(scope="module")
def http(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.base_url, timeout=60) as client:
        yield client


def names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["Names"][0].removeprefix("/") for item in response.json()]


def ps(http: httpx.Client, **filters: Any) -> httpx.Response:
    params: dict[str, str] = {}
    for key in ("all", "limit", "size"):
        if key in filters:
            params[key] = str(filters.pop(key))
    if filters:
        params["filters"] = json.dumps(
            {k.replace("_", "-"): v if isinstance(v, list) else [v] for k, v in filters.items()}
        )
    return http.get("/containers/json", params=params)


def test_running_and_all_newest_first(http: httpx.Client) -> None:
    assert names(ps(http)) == ["kid", "web"]
    assert names(ps(http, all=1)) == ["kid", "fresh", "store", "web", "old-job"]
    assert names(http.get("/containers/json", params={"all": "True"})) == names(ps(http, all=1))


def test_summary_fields(http: httpx.Client, served: Served) -> None:
    listed = {item["Names"][0]: item for item in ps(http, all=1).json()}
    job = listed["/old-job"]
    assert job["Image"] == "app:1.0"
    assert job["ImageID"] == served.ids["app"]
    assert job["Command"] == "sh -c 'echo hi there'"
    assert job["State"] == "exited"
    assert job["Status"] == "Exited (3) 3 days ago"
    assert job["Labels"] == {"job": "nightly", "team": "a", "tier": "web"}  # the image's too
    assert listed["/kid"]["Command"] == "/init serve"
    assert listed["/kid"]["Status"].startswith("Up ")
    assert listed["/fresh"]["Status"] == "Created"
    assert "SizeRw" not in job and "SizeRootFs" not in job
    sized = {item["Names"][0]: item for item in ps(http, all=1, size=1).json()}
    assert "SizeRw" not in sized["/old-job"]  # an empty writable layer: omitempty
    app_size = json.loads(served.cli("image", "inspect", "app:1.0").stdout)[0]["Size"]
    assert sized["/old-job"]["SizeRootFs"] == app_size


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"status": "exited"}, ["store", "old-job"]),
        ({"status": ["created", "running"]}, ["kid", "fresh", "web"]),
        ({"exited": "3"}, ["old-job"]),
        ({"exited": ["0", "3"]}, ["store", "old-job"]),
        ({"label": "job"}, ["fresh", "old-job"]),
        ({"label": "job=once"}, ["fresh"]),
        ({"label": ["job", "tier=web"]}, ["old-job"]),
        ({"name": "e"}, ["fresh", "store", "web"]),  # a regular expression
        ({"name": "^/?web$"}, ["web"]),
        ({"name": "(?=x)"}, []),  # not Go syntax: matches nothing
        ({"ancestor": "app:1.0"}, ["kid", "web", "old-job"]),  # and images built on it
        ({"ancestor": "child:1"}, ["kid"]),
        ({"ancestor": "nosuch"}, []),
        ({"before": "store"}, ["web", "old-job"]),
        ({"since": "store"}, ["kid", "fresh"]),
        ({"since": "web", "before": "kid"}, ["fresh", "store"]),
        ({"health": "none"}, ["kid", "fresh", "store", "web", "old-job"]),
        ({"health": "healthy"}, []),
        ({"is-task": "false"}, ["kid", "fresh", "store", "web", "old-job"]),
        ({"is-task": "true"}, []),
        ({"volume": "/data"}, []),
        ({"network": "bridge"}, []),
        ({"publish": "80"}, []),
        ({"expose": "8000-8080/tcp"}, []),
        ({"isolation": "default"}, ["kid", "fresh", "store", "web", "old-job"]),
    ],
    ids=lambda value: json.dumps(value) if isinstance(value, dict) else None,
)
def test_filters(http: httpx.Client, filters: dict[str, Any], expected: list[str]) -> None:
    assert names(ps(http, all=1, **filters)) == expected


def test_id_filter_and_name_with_ids(http: httpx.Client, served: Served) -> None:
    listed = {item["Names"][0]: item["Id"] for item in ps(http, all=1).json()}
    web = listed["/web"]
    assert names(ps(http, all=1, id=web[:10])) == ["web"]
    assert names(ps(http, all=1, id=web)) == ["web"]
    assert names(ps(http, all=1, id=[web[:10], listed["/store"]])) == ["store", "web"]
    assert names(ps(http, all=1, id=web[:10], name="store")) == []
    assert names(ps(http, all=1, id="")) == []


def test_status_filter_lists_stopped_ones_and_limit(http: httpx.Client) -> None:
    assert names(ps(http, status="exited")) == ["store", "old-job"]  # no `all` needed
    assert names(ps(http, limit=2)) == ["kid", "fresh"]  # a limit includes every state
    assert names(ps(http, limit=1, status="exited")) == ["store"]
    assert names(ps(http, limit=-1)) == ["kid", "web"]
    assert names(ps(http, all=1, limit=2, before="fresh")) == ["store", "web"]


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"filters": '{"foo":["x"]}'}, 400, "invalid filter 'foo'"),
        ({"filters": '{"label!":["x"]}'}, 400, "invalid filter 'label!'"),
        (
            {"filters": '{"status":["up"]}'},
            400,
            "invalid filter 'status=up': invalid value for state (up): must be one of created,"
            " running, paused, restarting, removing, exited, dead",
        ),
        (
            {"filters": '{"health":["sick"]}'},
            400,
            "invalid filter 'health=sick': invalid value for health (sick): must be one of"
            " none, starting, healthy, unhealthy",
        ),
        (
            {"filters": '{"exited":["x"]}'},
            400,
            "invalid filter 'exited=x': strconv.Atoi: parsing \"x\": invalid syntax",
        ),
        ({"filters": '{"is-task":["maybe"]}'}, 400, "invalid filter 'is-task=[maybe]'"),
        ({"filters": '{"before":["nope"]}'}, 404, "No such container: nope"),
        ({"filters": '{"since":["nope"]}'}, 404, "No such container: nope"),
        ({"limit": "two"}, 400, 'strconv.Atoi: parsing "two": invalid syntax'),
        (
            {"filters": '{"publish":["80:80"]}'},
            500,
            "filter for 'publish' should not contain ':': 80:80",
        ),
        (
            {"filters": '{"expose":["http"]}'},
            500,
            "error while looking up for expose http: invalid start port 'http': invalid syntax",
        ),
        ({"filters": "not json"}, 400, "invalid filter"),
    ],
)
def test_list_errors(http: httpx.Client, params: dict[str, str], status: int, message: str) -> None:
    response = http.get("/containers/json", params=params)
    assert (response.status_code, response.json()) == (status, {"message": message})
    assert response.headers["content-type"] == JSON


def test_the_image_shown_is_refreshed(http: httpx.Client, served: Served) -> None:
    """As moby's refreshImage: the name given while it still names the image, else the
    image's ID (a moved tag, a deleted image)."""
    builder = ImageBuilder(served.catalog)
    first = builder.add([layer_tar({"moving/1": b"1"})], tags=["moving:tag"])
    served.cli("container", "create", "--image", "moving:tag", "--name", "mover")
    served.cli("container", "create", "--image", first[7:17], "--name", "by-prefix")
    shown = {i["Names"][0]: i["Image"] for i in ps(http, all=1, name="mover|by-prefix").json()}
    assert shown == {"/mover": "moving:tag", "/by-prefix": first[7:17]}
    builder.add([layer_tar({"moving/2": b"2"})], tags=["moving:tag"])  # the tag moves
    shown = {i["Names"][0]: i["Image"] for i in ps(http, all=1, name="mover|by-prefix").json()}
    assert shown == {"/mover": first, "/by-prefix": first[7:17]}
    served.cli("container", "rm", "mover", "by-prefix")


def test_inspect(http: httpx.Client, served: Served) -> None:
    response = http.get("/containers/old-job/json")
    assert response.status_code == 200
    document = response.json()
    assert document["Name"] == "/old-job"
    assert (document["Path"], document["Args"]) == ("sh", ["-c", "echo hi there"])
    assert document["Image"] == served.ids["app"]
    assert document["State"]["Status"] == "exited"
    assert document["State"]["ExitCode"] == 3
    assert document["State"]["Running"] is False
    assert document["State"]["StartedAt"] < document["State"]["FinishedAt"]
    config = document["Config"]
    assert config["Image"] == "app:1.0"
    assert config["Cmd"] == ["sh", "-c", "echo hi there"]
    assert config["Entrypoint"] is None
    assert config["Labels"] == {"job": "nightly", "team": "a", "tier": "web"}
    assert config["Env"] == ["PATH=/usr/bin:/bin"]  # the image's
    assert config["Hostname"] == document["Id"][:12]
    assert "SizeRw" not in document
    sized = http.get("/containers/old-job/json", params={"size": "1"}).json()
    assert sized["SizeRw"] == 0
    assert sized["SizeRootFs"] > 0
    fresh = http.get("/containers/fresh/json").json()
    assert fresh["State"]["StartedAt"] == fresh["State"]["FinishedAt"] == "0001-01-01T00:00:00Z"
    kid = http.get(f"/containers/{served.cli('container', 'ls', '-q').stdout.split()[0]}/json")
    assert kid.json()["Config"]["Entrypoint"] == ["/init"]
    assert kid.json()["Config"]["Cmd"] == ["serve"]
    missing = http.get("/containers/nope/json")
    assert (missing.status_code, missing.json()) == (404, {"message": "No such container: nope"})


def test_shapes_per_version(http: httpx.Client) -> None:
    new = {i["Names"][0]: i for i in http.get("/v1.52/containers/json").json()}
    assert new["/web"]["Health"] == {"Status": "none", "FailingStreak": 0}
    old = {i["Names"][0]: i for i in http.get("/v1.51/containers/json").json()}
    assert "Health" not in old["/web"]
    assert list(old["/web"])[:4] == ["Id", "Names", "Image", "ImageID"]  # moby's field order
    inspected = http.get("/v1.51/containers/web/json").json()
    assert inspected["GraphDriver"] == {"Name": "catalog", "Data": {}}
    assert inspected["Config"]["OnBuild"] is None
    latest = http.get("/v1.52/containers/web/json").json()
    assert "GraphDriver" not in latest
    assert "OnBuild" not in latest["Config"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/containers/create"),
        ("POST", "/containers/create?name=x"),
        ("POST", "/containers/web/start"),
        ("POST", "/containers/web/stop"),
        ("POST", "/containers/web/restart"),
        ("POST", "/containers/web/kill"),
        ("POST", "/containers/web/pause"),
        ("POST", "/containers/web/unpause"),
        ("POST", "/containers/web/wait"),
        ("POST", "/containers/web/attach?stream=1&stdout=1"),
        ("POST", "/containers/web/exec"),
        ("POST", "/containers/web/resize?h=1&w=1"),
        ("POST", "/containers/web/rename?name=x"),
        ("POST", "/containers/web/update"),
        ("GET", "/containers/web/logs?stdout=1"),
        ("GET", "/containers/web/top"),
        ("GET", "/containers/web/stats?stream=0"),
        ("GET", "/containers/web/changes"),
        ("GET", "/containers/web/export"),
        ("GET", "/containers/web/archive?path=/"),
        ("PUT", "/containers/web/archive?path=/"),
        ("POST", "/commit?container=web"),
    ],
)
def test_runtime_endpoints_say_catalog_runs_nothing(
    http: httpx.Client, method: str, path: str
) -> None:
    response = http.request(method, "/v1.50" + path, json={"Image": "app:latest"})
    assert response.status_code == 501
    assert response.headers["content-type"] == JSON
    assert response.json() == {"message": NOT_RUN}


def test_runtime_endpoints_look_the_container_up_first(http: httpx.Client) -> None:
    response = http.post("/containers/nope/start")
    assert (response.status_code, response.json()) == (404, {"message": "No such container: nope"})
    head = http.head("/containers/web/archive", params={"path": "/"})
    assert (head.status_code, head.content) == (501, b"")
    assert http.head("/containers/nope/archive", params={"path": "/"}).status_code == 404
