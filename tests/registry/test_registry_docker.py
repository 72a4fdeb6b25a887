"""The real docker CLI and docker-py pulling and pushing through `catalog serve`
(`POST /images/create`, `POST /images/{name}/push`, `POST /auth`), against a real
docker-registry: docker's progress stream, X-Registry-Auth and login included."""

from __future__ import annotations

import json
from collections.abc import Iterator

import docker
import pytest
from support.environment import need
from support.files import fixture
from support.registries import (
    DOCKER_REGISTRY,
    ENABLE,
    OPENSSL,
    SKOPEO,
    Registry,
    outward_address,
    run_registry,
)
from support.serving import DOCKER, DOCKER_MISSING, Served, serve_catalog

from catalog.registry.settings import SETTINGS_FILE

HELLO = fixture("google-go-containerregistry/tarball/hello-world-v25.tar")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    need(DOCKER_REGISTRY and SKOPEO and OPENSSL, f"docker-registry, skopeo, openssl: {ENABLE}")
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        running.put(f"docker-archive:{HELLO}", "hello:latest")
        yield running


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> Iterator[Served]:
    need(DOCKER, DOCKER_MISSING)
    with serve_catalog(tmp_path_factory.mktemp("served"), populated=False, unix=False) as running:
        yield running


def ok(result: object) -> str:
    assert getattr(result, "returncode", None) == 0, (
        getattr(result, "args", None),
        getattr(result, "stdout", None),
        getattr(result, "stderr", None),
    )
    return str(getattr(result, "stdout", ""))


def test_docker_pull_and_push(served: Served, registry: Registry) -> None:
    expected = registry.inspect("hello:latest")
    output = ok(served.docker("pull", registry.ref("hello")))
    lines = output.splitlines()
    assert lines[0] == "Using default tag: latest"
    assert "latest: Pulling from hello" in lines
    assert any(line.endswith(": Pull complete") for line in lines)
    assert f"Digest: {expected['Digest']}" in lines
    assert f"Status: Downloaded newer image for {registry.ref('hello:latest')}" in lines
    assert lines[-1] == registry.ref("hello:latest")
    listed = ok(served.docker("images", "--digests", "--format", "{{.Repository}} {{.Digest}}"))
    assert f"{registry.ref('hello')} {expected['Digest']}" in listed.splitlines()
    again = ok(served.docker("pull", registry.ref("hello:latest")))
    assert f"Status: Image is up to date for {registry.ref('hello:latest')}" in again

    ok(served.docker("tag", registry.ref("hello"), registry.ref("via-docker/hello:1")))
    pushed = ok(served.docker("push", registry.ref("via-docker/hello:1")))
    assert f"The push refers to repository [{registry.ref('via-docker/hello')}]" in pushed
    assert "Mounted from hello" in pushed
    assert f"1: digest: {expected['Digest']} size:" in pushed
    assert registry.inspect("via-docker/hello:1")["Digest"] == expected["Digest"]


def test_docker_pull_errors(served: Served, registry: Registry) -> None:
    result = served.docker("pull", registry.ref("hello:missing"))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error response from daemon: manifest for {registry.ref('hello:missing')} "
        "not found: manifest unknown: manifest unknown"
    )
    result = served.docker("push", registry.ref("absent:1"))
    assert result.returncode == 1
    assert "An image does not exist locally with the tag" in result.stderr


def test_docker_py_pull_and_push(served: Served, registry: Registry) -> None:
    client = docker.DockerClient(base_url=served.docker_host)
    try:
        image = client.images.pull(registry.ref("hello"), tag="latest")
        assert registry.ref("hello:latest") in image.tags
        assert image.tag(registry.ref("from-py/hello"), "2")
        events = list(
            client.images.push(registry.ref("from-py/hello"), tag="2", stream=True, decode=True)
        )
        assert not [e for e in events if "error" in e], events
        aux = [e["aux"] for e in events if "aux" in e]
        assert aux and aux[0]["Tag"] == "2" and aux[0]["Digest"].startswith("sha256:")
    finally:
        client.close()


def test_docker_login_and_pull_with_credentials(
    served: Served, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`docker login` goes to the daemon (POST /auth); `docker pull` then sends the
    credentials in X-Registry-Auth, to a registry with basic auth over verified TLS."""
    address = outward_address()
    need(address, "a non-loopback IPv4 address (docker treats loopback as insecure)")
    assert address is not None
    directory = tmp_path_factory.mktemp("secure")
    with run_registry(directory, host=address, tls=True, users={"alice": "wonderland"}) as secure:
        secure.put(f"docker-archive:{HELLO}", "hello:latest")
        assert secure.ca is not None
        settings = {"certs-dir": str(secure.ca.parent / "certs.d")}
        (served.root / SETTINGS_FILE).write_text(json.dumps(settings))
        try:
            bad = served.docker("login", secure.host, "-u", "alice", "--password-stdin",
                                input="wrong\n")  # fmt: skip
            assert bad.returncode == 1
            assert "unauthorized" in bad.stderr
            login = served.docker("login", secure.host, "-u", "alice", "--password-stdin",
                                  input="wonderland\n")  # fmt: skip
            assert "Login Succeeded" in ok(login)
            output = ok(served.docker("pull", secure.ref("hello")))
            assert f"Status: Downloaded newer image for {secure.ref('hello:latest')}" in output
        finally:
            (served.root / SETTINGS_FILE).unlink()
