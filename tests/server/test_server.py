"""`catalog serve` over HTTP (httpx): versions, shapes, errors, streaming load and save,
limits, the unix socket, catalog's own endpoints, and the console script itself."""

from __future__ import annotations

import concurrent.futures
import io
import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import tarfile
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.builders import ImageBuilder, layer_tar
from support.environment import console_script, need
from support.serving import (
    OPENSSL,
    OPENSSL_MISSING,
    Served,
    first_answer,
    make_certificates,
    serve_catalog,
)

from catalog.errors import CatalogError
from catalog.server import documents
from catalog.server.app import ServerLimits
from catalog.server.listen import TlsFiles, bind_unix, check_exposure, is_loopback
from catalog.server.versions import (
    API_VERSION,
    MIN_API_VERSION,
    ApiVersion,
    UnsupportedVersion,
    check_version,
    compare,
    split_version,
)

JSON = "application/json"


# --- pure parts ---------------------------------------------------------------------------


def test_versions_compare_and_split() -> None:
    assert compare("1.9", "1.10") == -1
    assert compare("1.52", "1.52.0") == 0
    assert compare("2", "1.99") == 1
    assert split_version("/v1.50/images/json") == ("1.50", "/images/json")
    assert split_version("/images/app/json") == (None, "/images/app/json")
    assert split_version("/vx/images/json") == (None, "/vx/images/json")
    assert check_version(None).text == API_VERSION
    assert check_version("1.24").before("1.25")


def test_versions_out_of_range_use_dockers_texts() -> None:
    with pytest.raises(UnsupportedVersion) as too_new:
        check_version("1.53")
    assert too_new.value.message == (
        "client version 1.53 is too new. Maximum supported API version is 1.52"
    )
    with pytest.raises(UnsupportedVersion) as too_old:
        check_version("1.20")
    assert too_old.value.message == (
        "client version 1.20 is too old. Minimum supported API version is 1.24, please "
        "upgrade your client to a newer version"
    )


SUMMARY = {
    "Containers": 2,
    "Created": 1700000000,
    "Id": "sha256:" + "a" * 64,
    "Labels": {"b": "2", "a": "1"},
    "ParentId": "",
    "RepoDigests": [],
    "RepoTags": [],
    "SharedSize": -1,
    "Size": 10,
}


def test_summary_shapes_follow_the_version() -> None:
    old = documents.image_summary(SUMMARY, ApiVersion("1.42"))
    assert old["RepoTags"] == ["<none>:<none>"]
    assert old["RepoDigests"] == ["<none>@<none>"]
    assert old["VirtualSize"] == 10
    assert old["Containers"] == -1
    assert list(old) == sorted(old)
    digest_only = documents.image_summary(
        {**SUMMARY, "RepoDigests": ["x@sha256:" + "1" * 64]}, ApiVersion("1.42")
    )
    assert digest_only["RepoTags"] is None
    at_43 = documents.image_summary(SUMMARY, ApiVersion("1.43"))
    assert at_43["RepoTags"] == []
    assert "VirtualSize" in at_43
    at_44 = documents.image_summary(SUMMARY, ApiVersion("1.44"))
    assert "VirtualSize" not in at_44
    assert at_44["Containers"] == -1
    assert list(at_44) == list(SUMMARY)  # Go's struct order
    assert list(at_44["Labels"]) == ["a", "b"]
    assert documents.image_summary(SUMMARY, ApiVersion("1.51"))["Containers"] == 2


def test_inspect_shapes_follow_the_version() -> None:
    doc = {"Id": "x", "Parent": "", "Comment": "", "Author": "", "DockerVersion": "", "Size": 3}
    doc["Config"] = {"Env": ["A=1"]}
    old, old_sorted = documents.image_inspect(doc, ApiVersion("1.43"))
    assert old_sorted
    assert old["VirtualSize"] == 3
    assert old["Created"] == "0001-01-01T00:00:00Z"
    assert old["Container"] == ""
    assert old["Config"]["Tty"] is False
    assert old["Config"]["Env"] == ["A=1"]
    assert old["GraphDriver"] == {"Name": "catalog", "Data": {}}
    mid, _ = documents.image_inspect(doc, ApiVersion("1.50"))
    assert "Tty" not in mid["Config"]
    assert mid["Config"]["Cmd"] is None
    assert mid["Author"] == ""
    new, new_sorted = documents.image_inspect(doc, ApiVersion("1.52"))
    assert not new_sorted
    assert "Author" not in new
    assert "Parent" not in new
    assert new["Config"] == {"Env": ["A=1"]}
    assert "GraphDriver" not in new
    # A Parent (legacy builder) comes back through moby's compat.Wrap: sorted keys.
    _, parent_sorted = documents.image_inspect({**doc, "Parent": "sha256:p"}, ApiVersion("1.52"))
    assert parent_sorted


def test_go_json_escapes_as_go_does() -> None:
    assert documents.go_json({"a": "<none>&é"}) == b'{"a":"\\u003cnone\\u003e\\u0026\xc3\xa9"}\n'


def test_disk_usage_shapes() -> None:
    image = dict(SUMMARY)
    common: dict[str, Any] = {
        "images": [image],
        "layers_size": 10,
        "image_active": 1,
        "image_reclaimable": 0,
        "containers": [{"State": "running"}],
    }
    legacy = documents.disk_usage(version=ApiVersion("1.51"), types=[], verbose=None, **common)
    assert set(legacy) == {"LayersSize", "Images", "Containers", "Volumes"}
    both = documents.disk_usage(version=ApiVersion("1.52"), types=[], verbose=None, **common)
    assert both["ImageUsage"] == {"ActiveCount": 1, "TotalCount": 1, "TotalSize": 10}
    assert both["ContainerUsage"] == {"ActiveCount": 1, "TotalCount": 1}
    assert "LayersSize" in both
    verbose = documents.disk_usage(version=ApiVersion("1.52"), types=[], verbose=True, **common)
    assert "LayersSize" not in verbose
    assert verbose["ImageUsage"]["Items"][0]["Id"] == image["Id"]
    terse = documents.disk_usage(version=ApiVersion("1.52"), types=[], verbose=False, **common)
    assert "Items" not in terse["ImageUsage"]
    only_images = documents.disk_usage(
        version=ApiVersion("1.51"), types=["image"], verbose=None, **common
    )
    assert set(only_images) == {"LayersSize", "Images"}
    assert (
        documents.disk_usage(version=ApiVersion("1.41"), types=[], verbose=None, **common)[
            "Images"
        ][0]["VirtualSize"]
        == 10
    )


# --- safety of the listening side ------------------------------------------------------


def test_exposure_rules(tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")  # noqa: S104 (what is refused)
    assert check_exposure("127.0.0.1", None, insecure=False) is None
    with pytest.raises(CatalogError, match="not a loopback address, without TLS"):
        check_exposure("0.0.0.0", None, insecure=False)  # noqa: S104
    warning = check_exposure("0.0.0.0", None, insecure=True)  # noqa: S104
    assert warning is not None
    assert "plain HTTP" in warning
    cert, key, ca = (tmp_path / name for name in ("cert.pem", "key.pem", "ca.pem"))
    for path in (cert, key, ca):
        path.write_text("x")
    with pytest.raises(CatalogError, match="without client certificates"):
        check_exposure("0.0.0.0", TlsFiles(cert, key), insecure=False)  # noqa: S104
    assert check_exposure("0.0.0.0", TlsFiles(cert, key, ca), insecure=False) is None  # noqa: S104
    with pytest.raises(CatalogError, match="no such file"):
        check_exposure("127.0.0.1", TlsFiles(cert, tmp_path / "missing"), insecure=False)


def test_unix_socket_is_private_and_never_stolen(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    first = bind_unix(path)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        with pytest.raises(CatalogError, match="in use"):
            bind_unix(path)
    finally:
        first.close()
    # Nobody listens any more: the stale socket is replaced.
    bind_unix(path).close()
    regular = tmp_path / "file"
    regular.write_text("keep me")
    with pytest.raises(CatalogError, match="not a socket"):
        bind_unix(regular)
    assert regular.read_text() == "keep me"


# --- the served catalog ------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_catalog(tmp_path_factory.mktemp("served")) as running:
        yield running


@pytest.fixture
def http(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.base_url, timeout=60) as client:
        yield client


def assert_error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSON
    assert response.json() == {"message": message}


def test_ping_head_and_get(http: httpx.Client) -> None:
    head = http.head("/_ping")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["api-version"] == API_VERSION
    assert head.headers["ostype"] == "linux"
    assert head.headers["docker-experimental"] == "false"
    assert head.headers["cache-control"] == "no-cache, no-store, must-revalidate"
    assert head.headers["pragma"] == "no-cache"
    assert head.headers["content-type"] == "text/plain; charset=utf-8"
    assert "server" in head.headers
    assert "uvicorn" not in head.headers["server"]
    get = http.get("/v1.41/_ping")
    assert get.text == "OK"
    assert get.headers["api-version"] == API_VERSION


def test_version_unversioned_and_versioned(http: httpx.Client) -> None:
    document = http.get("/version").json()
    assert document["ApiVersion"] == API_VERSION
    assert document["MinAPIVersion"] == MIN_API_VERSION
    assert document["Components"][0]["Name"] == "Engine"
    assert http.get("/v1.24/version").json() == document


def test_every_prefix_is_served_and_higher_ones_refused(http: httpx.Client) -> None:
    for minor in range(24, int(API_VERSION.split(".")[1]) + 1):
        response = http.get(f"/v1.{minor}/images/json")
        assert response.status_code == 200, (minor, response.text)
    assert_error(
        http.get("/v1.53/images/json"),
        400,
        "client version 1.53 is too new. Maximum supported API version is 1.52",
    )
    assert_error(
        http.get("/v1.23/version"),
        400,
        "client version 1.23 is too old. Minimum supported API version is 1.24, please "
        "upgrade your client to a newer version",
    )


def test_unknown_paths_are_page_not_found(http: httpx.Client) -> None:
    assert_error(http.get("/v1.50/volumes/x"), 404, "page not found")
    assert_error(http.get("/containers/x/json"), 404, "No such container: x")  # issue 15
    assert_error(http.get("/v1.50/networks/x"), 404, "page not found")
    assert_error(http.post("/images/json"), 404, "page not found")
    head = http.head("/containers/x/json")
    assert head.status_code == 404
    assert head.content == b""
    # `docker inspect` ends at /info: a small document, not an error.
    assert http.get("/v1.50/info").json()["Swarm"]["LocalNodeState"] == "inactive"


def by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["Id"]: item for item in items}


def test_list_shapes_per_version(http: httpx.Client, served: Served) -> None:
    app_id, digest_only = served.ids["app"], served.ids["digest_only"]
    new = by_id(http.get("/v1.51/images/json").json())
    assert new[app_id]["Containers"] == 1
    assert new[app_id]["RepoTags"] == [
        "app:1.0",
        "app:latest",
        "registry.example.com:5000/org/app:1",
    ]
    assert new[app_id]["Labels"] == {"team": "a", "tier": "web"}
    assert new[digest_only]["RepoTags"] == []
    assert new[digest_only]["RepoDigests"] == ["digested@sha256:" + "7" * 64]
    assert "VirtualSize" not in new[app_id]
    at_50 = by_id(http.get("/v1.50/images/json").json())
    assert at_50[app_id]["Containers"] == -1
    at_43 = by_id(http.get("/v1.43/images/json").json())
    assert at_43[app_id]["VirtualSize"] == at_43[app_id]["Size"]
    assert at_43[digest_only]["RepoTags"] == []
    untagged = served.cli("images", "-q", "--no-trunc", "-f", "dangling=true").stdout.split()
    assert untagged
    at_41 = http.get("/v1.41/images/json")
    assert at_41.content.index(b'"Containers"') < at_41.content.index(b'"Created"')
    old = by_id(at_41.json())
    assert old[untagged[0]]["RepoTags"] == ["<none>:<none>"]
    assert old[untagged[0]]["RepoDigests"] == ["<none>@<none>"]
    assert old[digest_only]["RepoTags"] is None
    assert list(old[app_id]) == sorted(old[app_id])
    # The same rows, in the same order, as `catalog images --format json` lists.
    cli = json.loads(served.cli("images", "--format", "json").stdout)
    assert [i["Id"] for i in http.get("/images/json").json()] == [i["Id"] for i in cli]


def test_list_parameters_and_both_filter_forms(http: httpx.Client, served: Served) -> None:
    map_form = {"label": {"tier=web": True}, "dangling": {"false": True}}
    list_form = {"label": ["tier=web"], "dangling": ["false"]}
    first = http.get("/images/json", params={"filters": json.dumps(map_form)}).json()
    second = http.get(
        "/images/json", params={"filters": json.dumps(list_form), "only_ids": "1", "all": "0"}
    ).json()
    assert [i["Id"] for i in first] == [i["Id"] for i in second] == [served.ids["app"]]
    assert served.ids["base"] not in by_id(http.get("/images/json").json())
    assert served.ids["base"] in by_id(http.get("/images/json?all=True").json())
    assert served.ids["base"] not in by_id(http.get("/images/json?all=False").json())
    shared = by_id(http.get("/v1.42/images/json?shared-size=1").json())
    assert shared[served.ids["app"]]["SharedSize"] > 0
    ignored = by_id(http.get("/v1.41/images/json?shared-size=1").json())
    assert ignored[served.ids["app"]]["SharedSize"] == -1
    legacy = http.get("/v1.24/images/json", params={"filter": "app"}).json()
    assert [i["Id"] for i in legacy] == [served.ids["app"]]
    assert http.get("/images/json", params={"filters": '{"reference":["nope*"]}'}).json() == []


@pytest.mark.parametrize(
    ("filters", "status", "message"),
    [
        ('{"foo":["bar"]}', 400, "invalid filter 'foo'"),
        ('{"dangling":["maybe"]}', 400, "invalid filter 'dangling=[maybe]'"),
        ("notjson", 400, "invalid filter"),
        ('{"before":["nosuch"]}', 404, "No such image: nosuch:latest"),
    ],
)
def test_list_errors(http: httpx.Client, filters: str, status: int, message: str) -> None:
    assert_error(http.get("/images/json", params={"filters": filters}), status, message)


def test_inspect_finds_every_kind_of_name(http: httpx.Client, served: Served) -> None:
    app_id = served.ids["app"]
    for name in (app_id, app_id[7:19], "app:latest", "registry.example.com:5000/org/app:1"):
        document = http.get(f"/v1.51/images/{name}/json").json()
        assert document["Id"] == app_id, name
        assert document["Config"]["Labels"] == {"team": "a", "tier": "web"}
    digested = http.get(f"/images/digested%40sha256:{'7' * 64}/json").json()
    assert digested["Id"] == served.ids["digest_only"]
    assert_error(http.get("/images/nope/json"), 404, "No such image: nope:latest")
    old = http.get("/v1.43/images/app:latest/json")
    assert old.json()["VirtualSize"] == old.json()["Size"]
    assert old.json()["ContainerConfig"] == {}
    keys = list(old.json())
    assert keys == sorted(keys)
    newest = http.get("/v1.52/images/app:latest/json").json()
    assert "Author" not in newest
    assert newest["Parent"] == served.ids["base"]
    assert_error(
        http.get(
            "/v1.49/images/app/json",
            params={"manifests": "1", "platform": '{"os":"linux","architecture":"amd64"}'},
        ),
        400,
        "conflicting options: manifests and platform options cannot both be set",
    )


def test_history(http: httpx.Client, served: Served) -> None:
    items = http.get("/images/app:latest/history").json()
    assert [i["Id"] for i in items] == [served.ids["app"], served.ids["base"]]
    assert items[0]["Tags"] == ["app:1.0", "app:latest", "registry.example.com:5000/org/app:1"]
    assert items[1]["Tags"] is None
    assert set(items[0]) == {"Id", "Created", "CreatedBy", "Tags", "Size", "Comment"}
    assert_error(http.get("/images/nope/history"), 404, "No such image: nope:latest")


def test_tag_and_delete(http: httpx.Client, served: Served) -> None:
    created = http.post("/v1.51/images/app:latest/tag", params={"repo": "http-tag", "force": "0"})
    assert created.status_code == 201
    assert created.content == b""
    full = http.post(
        "/images/app:latest/tag", params={"repo": "docker.io/library/http-tag", "tag": "2"}
    )
    assert full.status_code == 201
    tags = http.get("/images/http-tag/json").json()["RepoTags"]
    assert "http-tag:latest" in tags
    assert "http-tag:2" in tags
    assert http.post("/images/app:latest/tag", params={"repo": ""}).status_code == 200
    assert_error(
        http.post("/images/app/tag", params={"repo": "x@sha256:" + "1" * 64}),
        400,
        "cannot import digest reference",
    )
    assert_error(
        http.post("/images/app/tag", params={"repo": "sha256", "tag": "1"}),
        400,
        "refusing to create an ambiguous tag using digest algorithm as name",
    )
    assert_error(
        http.post("/images/nope/tag", params={"repo": "y"}), 404, "No such image: nope:latest"
    )
    removed = http.delete("/images/http-tag:2", params={"force": "False", "noprune": "False"})
    assert removed.json() == [{"Untagged": "http-tag:2"}]
    assert http.delete("/images/http-tag").json() == [{"Untagged": "http-tag:latest"}]
    assert_error(http.delete("/images/http-tag"), 404, "No such image: http-tag:latest")
    assert_error(http.delete("/images/%20"), 400, "image name cannot be blank")
    conflict = http.delete(f"/images/{served.ids['app'][7:19]}", params={"force": "1"})
    assert conflict.status_code == 409
    assert "image is being used by running container" in conflict.json()["message"]


def test_disk_usage(http: httpx.Client, served: Served) -> None:
    legacy = http.get("/v1.50/system/df").json()
    assert set(legacy) == {"LayersSize", "Images", "Containers", "Volumes"}
    assert legacy["LayersSize"] > 0
    assert {c["Names"][0] for c in legacy["Containers"]} == {"/web", "/store"}
    assert by_id(legacy["Images"])[served.ids["app"]]["Containers"] == 1
    new = http.get("/v1.52/system/df").json()
    assert new["ImageUsage"]["TotalSize"] == legacy["LayersSize"]
    assert new["ImageUsage"]["ActiveCount"] == 2  # app (running) and db (exited)
    assert new["ContainerUsage"] == {"ActiveCount": 1, "TotalCount": 2}
    verbose = http.get("/v1.52/system/df?verbose=1&type=image").json()
    assert set(verbose) == {"ImageUsage"}
    assert len(verbose["ImageUsage"]["Items"]) == len(legacy["Images"])
    assert_error(http.get("/system/df?type=bogus"), 400, "unknown object type: bogus")
    assert_error(http.get("/system/df?verbose=maybe"), 400, "invalid value for verbose: maybe")


def test_prune(http: httpx.Client, served: Served) -> None:
    builder = ImageBuilder(served.catalog)
    dangling = builder.add([layer_tar({"prune/me": b"p" * 700})], labels={"prunable": "yes"})
    kept = builder.add([layer_tar({"prune/keep": b"k" * 10})], tags=["keep:1"])
    filters = json.dumps({"label": ["prunable=yes"]})
    report = http.post("/images/prune", params={"filters": filters}).json()
    assert {"Deleted": dangling} in report["ImagesDeleted"]
    assert report["SpaceReclaimed"] > 0
    assert http.post("/images/prune", params={"filters": filters}).json() == {
        "ImagesDeleted": None,
        "SpaceReclaimed": 0,
    }
    assert http.get(f"/images/{kept}/json").status_code == 200
    assert served.app.prune_lock.acquire(blocking=False)
    try:
        assert_error(http.post("/images/prune"), 409, "a prune operation is already running")
    finally:
        served.app.prune_lock.release()


def messages(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def test_save_and_load_round_trip(http: httpx.Client, served: Served, tmp_path: Path) -> None:
    archive = http.get("/images/get", params=[("names", "sample"), ("names", "db:15")])
    assert archive.status_code == 200
    assert archive.headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(archive.content)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert sorted(tag for entry in manifest for tag in entry["RepoTags"]) == [
        "db:15",
        "sample:latest",
    ]
    single = http.get("/images/sample:latest/get")
    assert single.status_code == 200
    assert_error(
        http.get("/images/get", params={"names": "nope"}), 404, "No such image: nope:latest"
    )
    assert_error(http.get("/images/nope/get"), 404, "No such image: nope:latest")

    sample_id = http.get("/images/sample/json").json()["Id"]
    http.post("/images/sample/tag", params={"repo": "roundtrip"})
    saved = http.get("/images/roundtrip/get").content
    assert http.delete("/images/roundtrip").json() == [{"Untagged": "roundtrip:latest"}]

    def chunks() -> Iterator[bytes]:  # no length: sent chunked, as the docker CLI does
        for start in range(0, len(saved), 4096):
            yield saved[start : start + 4096]

    loaded = http.post(
        "/images/load", content=chunks(), headers={"Content-Type": "application/x-tar"}
    )
    assert loaded.headers["content-type"] == JSON
    assert messages(loaded) == [{"stream": "Loaded image: roundtrip:latest\n"}]
    assert http.get("/images/roundtrip/json").json()["Id"] == sample_id
    # A sized body (docker-py), progress asked for.
    again = http.post("/v1.51/images/load", params={"quiet": "0"}, content=saved)
    statuses = [m for m in messages(again) if m.get("status") == "Loading layer"]
    assert statuses
    assert statuses[-1]["progressDetail"]["current"] == statuses[-1]["progressDetail"]["total"]
    assert messages(again)[-1] == {"stream": "Loaded image: roundtrip:latest\n"}
    assert list((served.root / "tmp").glob("serve-load-*")) == []


def test_load_errors_are_in_the_stream(http: httpx.Client, served: Served) -> None:
    bad = http.post("/images/load", content=b"this is not a tar archive at all" * 40)
    assert bad.status_code == 200
    assert bad.headers["content-type"] == JSON
    [message] = messages(bad)
    assert message["error"] == message["errorDetail"]["message"]
    assert message["error"].startswith("invalid archive")
    assert_error(
        http.post("/v1.48/images/load", params={"platform": '{"os":"linux"}'}),
        400,
        "both OS and Architecture must be provided",
    )
    # A platform that is not JSON gets Go's json.Unmarshal text, as the daemon answers.
    assert_error(
        http.get("/v1.49/images/app:latest/json", params={"platform": "linux/amd64"}),
        400,
        "failed to parse platform: invalid character 'l' looking for beginning of value",
    )
    assert list((served.root / "tmp").glob("serve-load-*")) == []


def test_load_body_is_bounded(tmp_path: Path) -> None:
    with serve_catalog(
        tmp_path, limits=ServerLimits(max_load_bytes=10_000), populated=False
    ) as small:
        with httpx.Client(base_url=small.base_url, timeout=60) as client:
            response = client.post("/images/load", content=b"\0" * 50_000)
            [message] = messages(response)
            assert "larger than this server accepts (10000 bytes)" in message["error"]
            assert client.get("/images/json").json() == []
        assert list((small.root / "tmp").glob("serve-load-*")) == []


def test_archives_stream_without_being_held_in_memory(served: Served, tmp_path: Path) -> None:
    big = os.urandom(24 << 20)
    ImageBuilder(served.catalog).add([layer_tar({"big/blob": big})], tags=["big:1"])
    del big
    target = tmp_path / "big.tar"
    tracemalloc.start()
    try:
        with httpx.Client(base_url=served.base_url, timeout=120) as client:
            with client.stream("GET", "/images/big:1/get") as response, target.open("wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
            _, save_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            assert client.delete("/images/big:1").status_code == 200

            def from_file() -> Iterator[bytes]:
                with target.open("rb") as source:
                    while chunk := source.read(256 << 10):
                        yield chunk

            loaded = client.post("/images/load", content=from_file())
            _, load_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert target.stat().st_size > 24 << 20
    assert messages(loaded) == [{"stream": "Loaded image: big:1\n"}]
    # Client and server share this process: the bound covers both (about 5 and 7 MiB
    # seen), while holding the archive would take more than all of it.
    assert save_peak < target.stat().st_size // 2, save_peak
    assert load_peak < target.stat().st_size // 2, load_peak


def test_concurrent_clients(served: Served) -> None:
    saved = httpx.get(f"{served.base_url}/images/emptyimage/get", timeout=60).content

    def client_work(number: int) -> list[int]:
        statuses = []
        with httpx.Client(base_url=served.base_url, timeout=120) as client:
            for _ in range(3):
                statuses.append(client.get("/images/json").status_code)
                statuses.append(client.get("/images/app:latest/json").status_code)
                tag = {"repo": f"concurrent{number}", "tag": "x"}
                statuses.append(client.post("/images/db:15/tag", params=tag).status_code)
                statuses.append(client.delete(f"/images/concurrent{number}:x").status_code)
                load = client.post("/images/load", content=saved)
                statuses.append(load.status_code)
                assert messages(load) == [{"stream": "Loaded image: emptyimage:latest\n"}]
        return statuses

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(client_work, range(8)))
    assert {status for statuses in results for status in statuses} <= {200, 201}
    names = {t for i in httpx.get(f"{served.base_url}/images/json").json() for t in i["RepoTags"]}
    assert not any(name.startswith("concurrent") for name in names)


def test_unix_socket(served: Served) -> None:
    assert served.unix_path is not None
    assert stat.S_IMODE(served.unix_path.stat().st_mode) == 0o600
    transport = httpx.HTTPTransport(uds=str(served.unix_path))
    with httpx.Client(transport=transport, base_url="http://localhost") as client:
        assert client.get("/_ping").text == "OK"
        assert client.get("/v1.50/images/app:latest/json").json()["Id"] == served.ids["app"]


def test_catalog_endpoints(http: httpx.Client, served: Served) -> None:
    spec = http.get("/catalog/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert {"/catalog/info", "/catalog/reports", "/catalog/reports/{name}"} <= set(spec["paths"])
    assert "post" in spec["paths"]["/catalog/images/{name}/squash"]
    for path in spec["paths"]:
        assert path.startswith("/catalog/")
    info = http.get("/catalog/info").json()
    assert info["images"] == json.loads(served.cli("info", "--format", "json").stdout)["images"]
    assert_error(http.get("/v1.50/catalog/info"), 404, "page not found")


def test_catalog_reports(http: httpx.Client, served: Served) -> None:
    listed = http.get("/catalog/reports").json()
    names = [report["name"] for report in listed]
    assert "usage-by-repository" in names
    for name in names:
        result = http.get(f"/catalog/reports/{name}")
        assert result.status_code == 200, (name, result.text)
    usage = http.get("/catalog/reports/usage-by-repository").json()
    cli = json.loads(served.cli("report", "usage-by-repository", "--format", "json").stdout)
    assert usage["rows"] == cli
    assert usage["columns"] == list(cli[0])
    limited = http.get("/catalog/reports/layer-sharing", params={"limit": "1"}).json()
    assert len(limited["rows"]) <= 1
    assert limited["settings"]["limit"] == 1
    assert_error(
        http.get("/catalog/reports/nope"),
        404,
        f"no such report: 'nope' (reports: {', '.join(names)})",
    )
    assert_error(
        http.get("/catalog/reports/usage-by-repository", params={"limit": "3"}),
        400,
        "report usage-by-repository takes no limit option",
    )
    assert_error(
        http.get("/catalog/reports/layer-sharing", params={"limit": "x"}),
        400,
        "invalid limit value: 'x' (a whole number)",
    )
    assert_error(
        http.get("/catalog/reports/layer-sharing", params={"bogus": "1"}),
        400,
        "unknown report option: bogus",
    )


def test_catalog_squash(http: httpx.Client, served: Served) -> None:
    response = http.post("/catalog/images/app:latest/squash", json={"tags": ["app:squashed"]})
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["parent_id"] == served.ids["base"]
    assert result["squashed_layers"] == 1  # the layer above its recorded parent
    squashed = http.get("/images/app:squashed/json").json()
    assert squashed["Id"] == result["id"]
    assert squashed["RootFS"]["Layers"][-1] == result["diff_id"]
    original = http.get("/images/app:latest/json").json()
    assert original["Id"] == served.ids["app"]
    assert_error(
        http.post("/catalog/images/app:latest/squash", json={"parent": "db:15", "layers": 2}),
        400,
        "--parent and --layers cannot be used together",
    )
    assert_error(
        http.post("/catalog/images/nope/squash", json={}), 404, "No such image: nope:latest"
    )
    assert_error(
        http.post("/catalog/images/app/squash", json={"layers": "2"}), 400, "layers must be int"
    )
    assert_error(http.post("/catalog/images/app/squash", json={"x": 1}), 400, "unknown field: x")
    assert_error(
        http.post("/catalog/images/app/squash", content=b"[1"),
        400,
        "invalid JSON body: Expecting ',' delimiter: line 1 column 3 (char 2)",
    )
    too_big = http.post("/catalog/images/app/squash", content=b" " * ((1 << 20) + 1))
    assert_error(too_big, 413, "the request body is larger than 1048576 bytes")
    assert_error(http.post("/v1.50/catalog/images/app/squash", json={}), 404, "page not found")
    assert http.delete("/images/app:squashed").status_code == 200


def test_tls_with_client_certificates(tmp_path: Path) -> None:
    need(OPENSSL, OPENSSL_MISSING)
    certificates = make_certificates(tmp_path / "tls")
    trusted = ssl.create_default_context(cafile=str(certificates.ca))
    with serve_catalog(tmp_path / "served", tls=certificates.server, populated=False) as tls:
        url = f"https://127.0.0.1:{tls.port}"
        client_cert = (str(certificates.client_cert), str(certificates.client_key))
        trusted.load_cert_chain(*client_cert)
        with httpx.Client(base_url=url, verify=trusted) as client:
            assert client.get("/_ping").text == "OK"
            assert client.get("/v1.41/images/json").json() == []
        anonymous = ssl.create_default_context(cafile=str(certificates.ca))
        with (
            httpx.Client(base_url=url, verify=anonymous) as client,
            pytest.raises((httpx.TransportError, ssl.SSLError)),
        ):
            client.get("/_ping")


# --- the console script --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_console_script_serves_tcp_and_unix(tmp_path: Path, db_url: str) -> None:
    script = console_script()
    port = free_port()
    sock = tmp_path / "d.sock"
    root = tmp_path / "root"
    process = subprocess.Popen(
        [str(script), "--root", str(root), "--db", db_url, "serve", "--port", str(port),
         "--unix", str(sock), "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        response = first_answer(process, f"http://127.0.0.1:{port}/_ping")
        assert response.text == "OK"
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        transport = httpx.HTTPTransport(uds=str(sock))
        with httpx.Client(transport=transport, base_url="http://localhost") as client:
            assert client.get("/images/json").json() == []
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert f"DOCKER_HOST=tcp://127.0.0.1:{port}" in stderr
    assert f"DOCKER_HOST=unix://{sock}" in stderr
    assert not sock.exists()


def test_console_script_refuses_an_exposed_address(tmp_path: Path, db_url: str) -> None:
    script = console_script()
    result = subprocess.run(
        [str(script), "--root", str(tmp_path), "--db", db_url, "serve", "--host", "0.0.0.0"],  # noqa: S104
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Error: refusing to serve 0.0.0.0, which is not a loopback")


def test_os_and_database_conditions_are_one_json_line(
    catalog: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in the CLI: a locked database or a full disk is Docker's JSON error, with one
    line naming what failed; not "internal server error" and a logged traceback."""
    import asyncio
    import sqlite3

    from sqlalchemy.exc import OperationalError

    import catalog.server.docker_routes as docker_routes
    from catalog.server.app import EngineApp

    def locked(**kwargs: Any) -> Any:
        raise OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked"))

    def full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(docker_routes, "listing_query", locked)
    monkeypatch.setattr(docker_routes, "prune_images", full)

    async def ask() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=EngineApp(catalog))
        async with httpx.AsyncClient(transport=transport, base_url="http://catalog") as client:
            return await client.get("/images/json"), await client.post("/images/prune")

    listed, pruned = asyncio.run(ask())
    assert listed.status_code == 500
    assert listed.json() == {
        "message": f"database {catalog.location.display_url}: database is locked"
    }
    assert (pruned.status_code, pruned.json()) == (500, {"message": "no space left on device"})
