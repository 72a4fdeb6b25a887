"""`catalog serve`'s answers against moby's own per-version Engine API specs
(tests/fixtures/moby-api, validated with jsonschema; see support/apispec.py for how
Swagger's `x-nullable` and moby's known nulls are read).

Every image and container endpoint is validated at 1.41, 1.44 and the newest version
served (1.52), over every image and container of the served catalog; image inspect's
`Config` also at 1.50, and against what the API changelog says of each version.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.apispec import SPEC_VERSIONS, assert_valid, definition, load_spec, validation_errors
from support.builders import ImageBuilder, image_config, layer_tar
from support.serving import Served, serve_catalog

from catalog.server.documents import LEGACY_CONFIG_V1_49, LEGACY_CONFIG_V1_50_51
from catalog.server.versions import API_VERSION

VERSIONS = ("1.41", "1.44", API_VERSION)
assert API_VERSION in SPEC_VERSIONS  # the newest version served has its spec here


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The populated catalog (a running and an exited container), plus a container with
    a command, labels and an exit code, and one never started."""
    with serve_catalog(tmp_path_factory.mktemp("schemas"), unix=False) as running:
        exited = ("--state", "exited", "--exit-code", "2", "--label", "k=v")
        running.cli("container", "create", "--image", "app:1.0", "--name", "job", *exited,
                    "--", "sh", "-c", "true")  # fmt: skip
        running.cli("container", "create", "--image", "db:15", "--entrypoint", "", "--name", "new")
        # An image whose config is empty: no Env, Cmd, labels (moby's nil slices: null).
        layer = layer_tar({"bare/file": b"b"})
        diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
        bare = image_config([diff_id], extra={"config": {}})
        ImageBuilder(running.catalog).add([layer], tags=["bare:1"], config=bare)
        running.cli("container", "create", "--image", "bare:1", "--name", "bare")
        yield running


@pytest.fixture(scope="module")
def http(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.base_url, timeout=60) as client:
        yield client


def image_ids(served: Served) -> list[str]:
    return served.cli("images", "-a", "-q", "--no-trunc").stdout.split()


def check(http: httpx.Client, version: str, method: str, url: str, path: str, **kw: Any) -> Any:
    """Send one request at `version`; validate the JSON answer against the spec's schema
    for its status and `path` (the spec's path template). Returns the decoded body."""
    response = http.request(method, f"/v{version}{url}", **kw)
    assert response.headers["content-type"] == "application/json", (url, response.text)
    document = response.json()
    assert_valid(version, method, path, response.status_code, document)
    return document


def test_the_checker_can_fail() -> None:
    """A wrong type, a null the spec does not allow and a missing required field are
    caught; the tolerated nulls are tolerated only where listed."""
    summary = {"Id": 1, "ParentId": "", "RepoTags": [], "RepoDigests": [], "Created": 0}
    errors = list(validation_errors("1.52", "get", "/images/json", 200, [summary]))
    assert any("0/Id" in e and "is not of type 'string'" in e for e in errors)
    assert any("'Size' is a required property" in e for e in errors)
    config = {"Cmd": None, "Hostname": None}
    assert list(validation_errors("1.41", "get", "/images/{name}/json", 200, {"Config": config}))
    assert not list(
        validation_errors("1.41", "get", "/images/{name}/json", 200, {"Config": {"Cmd": None}})
    )
    assert list(
        validation_errors("1.52", "get", "/images/{name}/json", 200, {"Config": {"Cmd": None}})
    )
    # x-nullable is honoured: Config.OnBuild may be null at every version.
    assert not list(
        validation_errors("1.52", "get", "/images/{name}/json", 200, {"Config": {"OnBuild": None}})
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_image_list(http: httpx.Client, version: str) -> None:
    for query in ("", "?all=1", "?all=1&shared-size=1", '?filters={"dangling":["true"]}'):
        listed = check(http, version, "GET", f"/images/json{query}", "/images/json")
        assert listed


@pytest.mark.parametrize("version", VERSIONS)
def test_image_inspect_and_history_of_every_image(
    http: httpx.Client, served: Served, version: str
) -> None:
    ids = image_ids(served)
    assert len(ids) >= 10
    for image_id in ids:
        document = check(http, version, "GET", f"/images/{image_id}/json", "/images/{name}/json")
        assert document["Id"] == image_id
        check(http, version, "GET", f"/images/{image_id}/history", "/images/{name}/history")


@pytest.mark.parametrize("version", VERSIONS)
def test_image_errors(http: httpx.Client, version: str) -> None:
    missing = check(http, version, "GET", "/images/nope/json", "/images/{name}/json")
    assert missing == {"message": "No such image: nope:latest"}
    check(http, version, "GET", "/images/nope/history", "/images/{name}/history")
    check(http, version, "GET", '/images/json?filters={"foo":["x"]}', "/images/json")
    check(http, version, "POST", "/images/nope/tag?repo=x", "/images/{name}/tag")
    check(http, version, "DELETE", "/images/nope", "/images/{name}")
    conflict = check(http, version, "DELETE", "/images/db:15", "/images/{name}")
    assert "conflict: unable to" in conflict["message"]
    check(http, version, "GET", "/images/get?names=nope", "/images/get")
    check(http, version, "POST", "/images/create?fromImage=Bad%20Name", "/images/create")
    check(http, version, "POST", "/images/nope/push", "/images/{name}/push")


@pytest.mark.parametrize("version", VERSIONS)
def test_tag_delete_prune_and_load(http: httpx.Client, served: Served, version: str) -> None:
    builder = ImageBuilder(served.catalog)
    image = builder.add([layer_tar({f"schema/{version}": version.encode() * 40})])
    tagged = http.post(f"/v{version}/images/{image}/tag", params={"repo": "schema", "tag": version})
    assert tagged.status_code == 201
    deleted = check(http, version, "DELETE", f"/images/schema:{version}", "/images/{name}")
    assert deleted[0] == {"Untagged": f"schema:{version}"}
    assert {"Deleted": image} in deleted
    pruned = check(
        http, version, "POST", '/images/prune?filters={"label":["none-has-it"]}', "/images/prune"
    )
    assert pruned == {"ImagesDeleted": None, "SpaceReclaimed": 0}
    # A load's answer is a stream of JSON messages: the spec gives it no schema, but a
    # refused body before the stream is an ErrorResponse.
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w"):
        pass
    loaded = http.post(f"/v{version}/images/load", content=archive.getvalue())
    messages = [json.loads(line) for line in loaded.text.splitlines()]
    assert messages and "error" in messages[-1]


@pytest.mark.parametrize("version", VERSIONS)
def test_system_df(http: httpx.Client, version: str) -> None:
    check(http, version, "GET", "/system/df", "/system/df")
    if version >= "1.42":
        check(http, version, "GET", "/system/df?type=image&type=container", "/system/df")
    if version == "1.52":
        for verbose in ("1", "0"):
            check(http, version, "GET", f"/system/df?verbose={verbose}", "/system/df")


@pytest.mark.parametrize("version", VERSIONS)
def test_info_and_version(http: httpx.Client, version: str) -> None:
    info = check(http, version, "GET", "/info", "/info")
    assert info["ExperimentalBuild"] is False
    assert "Experimental" not in info  # not a field of moby's SystemInfo
    check(http, version, "GET", "/version", "/version")


# --- image inspect's Config, version by version (the API changelog) ----------------------

# Fields moby's changelog says API 1.50 stopped sending (they were always empty before).
REMOVED_IN_1_50 = {
    "Hostname",
    "Domainname",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "Image",
    "NetworkDisabled",
    "MacAddress",
    "StopTimeout",
}
# Fields 1.52 omits when not set.
OMITTED_WHEN_EMPTY_1_52 = {"Cmd", "Entrypoint", "Env", "Labels", "OnBuild", "User", "Volumes"}


@pytest.fixture(scope="module")
def legacy_image(served: Served) -> str:
    """An image whose config holds an old builder's container-config keys, some set."""
    config = {
        "Hostname": "builder-host",
        "Image": "sha256:" + "1" * 64,
        "AttachStdout": True,
        "Tty": True,
        "Env": ["PATH=/bin"],
        "Cmd": ["/bin/sh"],
        "WorkingDir": "",
        "Labels": None,
        "StopSignal": "SIGQUIT",
    }
    layer = layer_tar({"legacy/config": b"l" * 30})
    raw = image_config(["sha256:" + hashlib.sha256(layer).hexdigest()], extra={"config": config})
    return ImageBuilder(served.catalog).add([layer], tags=["legacy:config"], config=raw)


@pytest.mark.parametrize("version", SPEC_VERSIONS)
def test_inspect_config_per_version(http: httpx.Client, legacy_image: str, version: str) -> None:
    document = check(http, version, "GET", "/images/legacy:config/json", "/images/{name}/json")
    config = document["Config"]
    # Strictly: no key the version's ImageConfig schema does not define.
    allowed = set(definition(version, "ImageConfig")["properties"])
    assert set(config) <= allowed, set(config) - allowed
    if version < "1.50":
        # Every legacy key, empty, even where the image's config had a value.
        assert {k: config[k] for k in LEGACY_CONFIG_V1_49 if k not in ("Env", "Cmd")} == {
            k: v for k, v in LEGACY_CONFIG_V1_49.items() if k not in ("Env", "Cmd")
        }
    else:
        assert not set(config) & REMOVED_IN_1_50
    if version in ("1.50", "1.51"):
        assert set(LEGACY_CONFIG_V1_50_51) <= set(config)
        assert config["Entrypoint"] is None
    if version >= "1.52":
        assert not set(config) & (OMITTED_WHEN_EMPTY_1_52 - {"Env", "Cmd"})
        assert "WorkingDir" not in config
    assert config["Env"] == ["PATH=/bin"]
    assert config["Cmd"] == ["/bin/sh"]
    assert config["StopSignal"] == "SIGQUIT"
    # GraphDriver: what catalog is, where the version's schema has it; from 1.52 moby
    # leaves it out unless a graph driver stores the image.
    if version < "1.52":
        assert document["GraphDriver"] == {"Name": "catalog", "Data": {}}
    else:
        assert "GraphDriver" not in document
    assert "GraphDriver" in load_spec(version)["definitions"]["ImageInspect"]["properties"]


# --- containers -----------------------------------------------------------------------


def container_ids(served: Served) -> list[str]:
    return served.cli("container", "ls", "-a", "-q", "--no-trunc").stdout.split()


@pytest.mark.parametrize("version", VERSIONS)
def test_container_list(http: httpx.Client, version: str) -> None:
    for query in ("", "?all=1", "?all=1&size=1", "?limit=2", '?all=1&filters={"label":["k"]}'):
        listed = check(http, version, "GET", f"/containers/json{query}", "/containers/json")
        assert listed
    check(http, version, "GET", '/containers/json?filters={"status":["x"]}', "/containers/json")


@pytest.mark.parametrize("version", VERSIONS)
def test_container_inspect_of_every_container(
    http: httpx.Client, served: Served, version: str
) -> None:
    ids = container_ids(served)
    assert len(ids) == 5
    for container_id in ids:
        for query in ("", "?size=1"):
            document = check(
                http,
                version,
                "GET",
                f"/containers/{container_id}/json{query}",
                "/containers/{id}/json",
            )
            assert document["Id"] == container_id
    check(http, version, "GET", "/containers/nope/json", "/containers/{id}/json")


@pytest.mark.parametrize("version", VERSIONS)
def test_container_runtime_errors(http: httpx.Client, version: str) -> None:
    refused = check(
        http, version, "POST", "/containers/create", "/containers/create", json={"Image": "x"}
    )
    assert refused == {"message": "catalog records containers but does not run them"}
    check(http, version, "POST", "/containers/web/start", "/containers/{id}/start")
    check(http, version, "POST", "/containers/nope/start", "/containers/{id}/start")
    check(http, version, "POST", "/containers/web/wait", "/containers/{id}/wait")
    check(http, version, "POST", "/containers/web/attach", "/containers/{id}/attach")
    check(http, version, "GET", "/containers/web/logs", "/containers/{id}/logs")
    check(http, version, "POST", "/containers/web/exec", "/containers/{id}/exec")
