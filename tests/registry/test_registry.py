"""`catalog pull`, `push`, `login`, `logout` against real registries (Debian's
docker-registry, distribution 2.8), with images put there by skopeo from the fixtures:
a multi-platform OCI index, Docker and OCI media types, gzip and zstd layers. What catalog
pushes is read back by skopeo, and pulled again."""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import os
import re
import struct
import subprocess
import termios
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from support.builders import ImageBuilder, layer_tar
from support.environment import console_script, need
from support.files import fixture
from support.registries import (
    DOCKER_REGISTRY,
    ENABLE,
    OPENSSL,
    SKOPEO,
    CuttingProxy,
    Registry,
    TokenService,
    install_credential_helper,
    outward_address,
    run_registry,
)
from typer.testing import Result

from catalog.context import Catalog
from catalog.db.models import Image, ImageManifest, LayerDistribution
from catalog.domain.digest import sha256_digest
from catalog.registry.settings import SETTINGS_FILE
from catalog.storage.layers import ingest_layer

HELLO = fixture("google-go-containerregistry/tarball/hello-world-v25.tar")
DIVE_DOCKER = fixture("wagoodman-dive/test-docker-image.tar")
DIVE_ZSTD = fixture("wagoodman-dive/test-oci-zstd-image.tar")
MULTI = fixture("regclient-regclient/testrepo")
# The multi-platform index `v1` of regclient's testrepo: amd64 and arm64, two attestations.
MULTI_INDEX = "sha256:7ceb9b6bcc274697d0c38be6214b50cec79d601bc61708747d3f6cb772f6c6fa"
MULTI_AMD64_CONFIG = "sha256:03d7b3c657a4af5b4ff7967bf843d04a93008f28d658a7df3f679b2c7e519639"

Cli = Callable[..., Result]


def tools() -> None:
    need(DOCKER_REGISTRY and SKOPEO and OPENSSL, f"docker-registry, skopeo, openssl: {ENABLE}")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An anonymous registry over HTTP on loopback, with the fixtures pushed by skopeo."""
    tools()
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        running.put(f"docker-archive:{HELLO}", "hello:latest")
        running.put(f"docker-archive:{DIVE_DOCKER}", "dive:docker", "--format", "v2s2")
        running.put(f"oci-archive:{DIVE_ZSTD}", "dive:zstd")
        running.put(f"oci:{MULTI}:v1", "multi:v1", "--all")
        yield running


@pytest.fixture(autouse=True)
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty docker config directory: never the user's own credentials."""
    directory = tmp_path / "docker-config"
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    return directory


def images_count(catalog: Catalog) -> int:
    with catalog.database.read() as session:
        return int(session.scalar(select(func.count()).select_from(Image)) or 0)


def inspect(cli: Cli, name: str) -> dict[str, object]:
    document = json.loads(cli("image", "inspect", name).stdout)[0]
    assert isinstance(document, dict)
    return document


def failed(cli: Cli, *args: str, **kwargs: Any) -> str:
    """Run a command that must fail with one `Error:` line; that line."""
    result = cli(*args, exit_code=1, **kwargs)
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return lines[0]


# --- pull ---


def test_pull_docker_image_by_tag(registry: Registry, cli: Cli, catalog: Catalog) -> None:
    result = cli("pull", registry.ref("dive:docker"))
    expected = registry.inspect("dive:docker")
    lines = result.output.splitlines()
    assert lines[0] == "docker: Pulling from dive"
    assert f"Digest: {expected['Digest']}" in lines
    assert f"Status: Downloaded newer image for {registry.ref('dive:docker')}" in lines
    assert lines[-1] == registry.ref("dive:docker")
    assert sum(line.endswith(": Pull complete") for line in lines) == len(expected["Layers"])
    document = inspect(cli, registry.ref("dive:docker"))
    assert document["RepoTags"] == [registry.ref("dive:docker")]
    assert document["RepoDigests"] == [f"{registry.ref('dive')}@{expected['Digest']}"]
    config = registry.inspect("dive:docker", "--config")
    assert document["RootFS"] == {"Type": "layers", "Layers": config["rootfs"]["diff_ids"]}
    # Pulled again: nothing travels, the image is up to date.
    again = cli("pull", registry.ref("dive:docker")).output.splitlines()
    assert f"Status: Image is up to date for {registry.ref('dive:docker')}" in again
    assert not any("Pull complete" in line for line in again)
    assert cli("fsck").exit_code == 0


def test_pull_picks_the_platform_of_an_index(
    registry: Registry, cli: Cli, catalog: Catalog
) -> None:
    output = cli("pull", "-q", registry.ref("multi:v1")).output
    assert output == registry.ref("multi:v1") + "\n"
    document = inspect(cli, registry.ref("multi:v1"))
    assert document["Id"] == MULTI_AMD64_CONFIG
    assert document["Architecture"] == "amd64"
    # RepoDigests names what the tag resolved to: the index, as docker records it.
    assert document["RepoDigests"] == [f"{registry.ref('multi')}@{MULTI_INDEX}"]
    cli("pull", "-q", "--platform", "linux/arm64", registry.ref("multi:v1"))
    arm = inspect(cli, registry.ref("multi:v1"))
    assert arm["Architecture"] == "arm64"
    assert arm["Id"] != MULTI_AMD64_CONFIG
    line = failed(cli, "pull", "--platform", "linux/s390x", registry.ref("multi:v1"))
    assert line.startswith(
        f"Error: {registry.ref('multi:v1')}: no matching manifest for linux/s390x"
    )
    with catalog.database.read() as session:
        kept = {row.digest: row.media_type for row in session.scalars(select(ImageManifest))}
    assert kept[MULTI_INDEX] == "application/vnd.oci.image.index.v1+json"


def test_pull_zstd_layers_and_by_digest(registry: Registry, cli: Cli, catalog: Catalog) -> None:
    expected = registry.inspect("dive:zstd")
    by_digest = f"{registry.ref('dive')}@{expected['Digest']}"
    output = cli("pull", by_digest).output
    assert output.splitlines()[-1] == by_digest
    document = inspect(cli, by_digest)
    assert document["RepoTags"] == []
    assert document["RepoDigests"] == [by_digest]
    with catalog.database.read() as session:
        seen = session.execute(select(LayerDistribution.digest, LayerDistribution.media_type))
        distributions = [tuple(row) for row in seen]
    assert distributions == [(expected["Layers"][0], "application/vnd.oci.image.layer.v1.tar+zstd")]


def test_pull_all_tags(registry: Registry, cli: Cli, catalog: Catalog) -> None:
    output = cli("pull", "-a", registry.ref("dive")).output
    assert output.splitlines()[-1] == registry.ref("dive")
    listed = json.loads(cli("images", "--format", "json").stdout)
    tags = {tag for image in listed for tag in image.get("RepoTags") or []}
    assert {registry.ref("dive:docker"), registry.ref("dive:zstd")} <= tags
    assert "tag can't be used with --all-tags/-a" in failed(
        cli, "pull", "-a", registry.ref("dive:x")
    )


def test_second_pull_downloads_only_new_layers(
    registry: Registry, cli: Cli, catalog: Catalog, images: ImageBuilder, tmp_path: Path
) -> None:
    """Two images sharing a base, pushed by catalog, pulled into a fresh catalog: the
    second pull downloads only the layer the first did not bring."""
    base = [layer_tar({f"base/{i}": bytes([i]) * 3000}) for i in range(3)]
    images.add(base, tags=[registry.ref("shared/one:1")])
    images.add([*base, layer_tar({"top": b"new" * 999})], tags=[registry.ref("shared/two:1")])
    cli("push", "-q", registry.ref("shared/one:1"))
    pushed = cli("push", registry.ref("shared/two:1")).output
    assert pushed.count("Mounted from shared/one") == 3
    assert pushed.count(": Pushed") == 1

    fresh: list[str] = ["--root", str(tmp_path / "fresh"), "--db", f"sqlite:///{tmp_path / 'f.db'}"]
    cli(*fresh, "pull", registry.ref("shared/one:1"))
    second = cli(*fresh, "pull", registry.ref("shared/two:1")).output.splitlines()
    assert sum(line.endswith(": Already exists") for line in second) == 3
    assert sum(line.endswith(": Pull complete") for line in second) == 1


def test_retry_resumes_from_stored_layers(registry: Registry, cli: Cli, catalog: Catalog) -> None:
    """Blobs an interrupted pull stored (no rows yet) are not downloaded again."""
    config = registry.inspect("dive:docker", "--config")
    diff_ids = config["rootfs"]["diff_ids"]
    # What an interrupted pull leaves: the layers in the store, nothing registered.
    with registry.blob_file(registry.inspect("dive:docker")["Layers"][0]).open("rb") as blob:
        ingested = ingest_layer(catalog.store, blob)
    assert ingested.diff_id == diff_ids[0]
    assert images_count(catalog) == 0
    lines = cli("pull", registry.ref("dive:docker")).output.splitlines()
    assert sum(line.endswith(": Already exists") for line in lines) == 1
    assert sum(line.endswith(": Pull complete") for line in lines) == len(diff_ids) - 1
    assert images_count(catalog) == 1


def in_a_terminal(*args: str, columns: int = 100) -> str:
    """Run the catalog console script with a pseudo-terminal as its stdout and stderr (as
    a user's shell gives it); everything it drew there."""
    main, child = os.openpty()
    # The terminal's size, as a shell's would have it: rich draws bars to its width.
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    environment = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(columns)}
    environment.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [console_script(), *args],
        stdout=child,
        stderr=child,
        stdin=subprocess.DEVNULL,
        env=environment,
    )
    os.close(child)
    drawn = bytearray()
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        drawn += chunk
    os.close(main)
    assert process.wait(timeout=120) == 0, drawn.decode(errors="replace")
    return drawn.decode(errors="replace")


def test_pull_in_a_terminal_draws_progress_bars(
    registry: Registry, root: Path, db_url: str
) -> None:
    """In a terminal, each layer gets a line with a bar, its bytes and its speed, as
    `docker pull` draws them; `-q` (or a pipe, the other tests) draws none."""
    where = ["--root", str(root), "--db", db_url]
    drawn = in_a_terminal(*where, "pull", registry.ref("dive:docker"))
    layers = registry.inspect("dive:docker")["Layers"]
    assert "\x1b[" in drawn  # drawn with the terminal's escape sequences, not plain lines
    assert "\u2501" in drawn  # rich's bar
    complete = re.findall(r"([0-9a-f]{12}): Pull complete", drawn)
    assert sorted(set(complete)) == sorted(layer.removeprefix("sha256:")[:12] for layer in layers)
    assert re.search(r"[0-9.]+/[0-9.]+ [kMG]?B", drawn)  # bytes done of total
    # Speed: rich shows "?" until it has two samples, which a layer of a few kB, read at
    # once from loopback, never gives.
    assert re.search(r"[0-9.]+ [kMG]?B/s|\x1b\[31m\?", drawn)
    assert f"Status: Downloaded newer image for {registry.ref('dive:docker')}" in drawn
    quiet = in_a_terminal(*where, "pull", "-q", registry.ref("dive:zstd"))
    assert "\u2501" not in quiet and "Pull complete" not in quiet
    assert quiet.strip() == registry.ref("dive:zstd")


# --- push ---


def test_push_round_trip_read_by_skopeo(
    registry: Registry, cli: Cli, catalog: Catalog, tmp_path: Path
) -> None:
    cli("load", "-q", "-i", str(DIVE_DOCKER))
    cli("tag", "dive-test:latest", registry.ref("pushed/dive:1"))
    image_id = inspect(cli, "dive-test:latest")["Id"]
    output = cli("push", registry.ref("pushed/dive:1")).output.splitlines()
    assert output[0] == f"The push refers to repository [{registry.ref('pushed/dive')}]"
    digest_line = output[-1]
    assert digest_line.startswith("1: digest: sha256:")
    digest = digest_line.split()[2]
    # skopeo reads it: the manifest, the config (its digest is the image ID), the layers.
    document = registry.inspect("pushed/dive:1")
    assert document["Digest"] == digest
    config = registry.inspect("pushed/dive:1", "--config", "--raw")
    assert sha256_digest(json.dumps(config).encode()) != "" and config["rootfs"]["diff_ids"]
    raw = registry.raw_manifest("pushed/dive:1")
    assert sha256_digest(raw) == digest
    manifest = json.loads(raw)
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert manifest["config"]["digest"] == image_id
    # Each layer is a gzip of the stored tar: its diff ID is the config's.
    for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True):
        blob = registry.blob_file(layer["digest"]).read_bytes()
        assert hashlib.sha256(gzip.decompress(blob)).hexdigest() == diff_id.removeprefix("sha256:")
    assert f"{registry.ref('pushed/dive')}@{digest}" in inspect(cli, image_id)["RepoDigests"]
    # skopeo copies it out (verifying every blob), and catalog pulls it back.
    copy = tmp_path / "copy"
    registry.copy_out("pushed/dive:1", f"dir:{copy}")
    assert (copy / "manifest.json").read_bytes() == raw
    cli("rmi", "-f", image_id)
    cli("pull", "-q", registry.ref("pushed/dive:1"))
    assert inspect(cli, registry.ref("pushed/dive:1"))["Id"] == image_id
    # Pushed again, unchanged: every layer is there, the digest is the same.
    again = cli("push", registry.ref("pushed/dive:1")).output
    assert "Pushed" not in again
    assert again.splitlines()[-1] == digest_line


def test_push_of_a_pulled_image_keeps_its_manifest(
    registry: Registry, cli: Cli, catalog: Catalog
) -> None:
    expected = registry.inspect("dive:zstd")
    cli("pull", "-q", registry.ref("dive:zstd"))
    cli("tag", registry.ref("dive:zstd"), registry.ref("copies/zstd:1"))
    output = cli("push", registry.ref("copies/zstd:1")).output
    assert "Mounted from dive" in output
    assert output.splitlines()[-1].split()[2] == expected["Digest"]
    assert registry.raw_manifest("copies/zstd:1") == registry.raw_manifest("dive:zstd")


def test_push_errors(registry: Registry, cli: Cli, catalog: Catalog) -> None:
    line = failed(cli, "push", registry.ref("nothing:here"))
    assert line == f"Error: An image does not exist locally with the tag: {registry.ref('nothing')}"
    assert "cannot push a digest reference" in failed(
        cli, "push", registry.ref("x@sha256:" + "a" * 64)
    )


# --- bad input ---


def unique_image(images: ImageBuilder, name: str, layers: int = 2) -> str:
    return images.add(
        [layer_tar({f"{name}/{i}": name.encode() * 500}) for i in range(layers)], tags=[name]
    )


def test_manifest_that_does_not_match_its_digest(
    registry: Registry, cli: Cli, catalog: Catalog, images: ImageBuilder
) -> None:
    name = registry.ref("bad/manifest:1")
    image_id = unique_image(images, name)
    digest = cli("push", name).output.splitlines()[-1].split()[2]
    cli("rmi", "-f", image_id)
    before = images_count(catalog)
    stored = registry.blob_file(digest)
    stored.write_bytes(stored.read_bytes().replace(b'"schemaVersion":2', b'"schemaVersion": 2'))
    for reference in (name, f"{registry.ref('bad/manifest')}@{digest}"):
        line = failed(cli, "pull", reference)
        assert digest in line and "hashes to" in line, line
        assert registry.ref("bad/manifest") in line
    assert images_count(catalog) == before


def test_blob_with_wrong_bytes(
    registry: Registry, cli: Cli, catalog: Catalog, images: ImageBuilder
) -> None:
    name = registry.ref("bad/blob:1")
    image_id = unique_image(images, name)
    cli("push", "-q", name)
    cli("rmi", "-f", image_id)
    layer = json.loads(registry.raw_manifest("bad/blob:1"))["layers"][1]["digest"]
    blob = registry.blob_file(layer)
    data = bytearray(blob.read_bytes())
    data[-12] ^= 0xFF  # inside the gzip trailer's CRC: same length, other bytes
    blob.write_bytes(bytes(data))
    line = failed(cli, "pull", name)
    assert name in line and layer in line, line
    assert images_count(catalog) == 0


def test_registry_that_drops_the_connection_mid_blob(
    registry: Registry, cli: Cli, catalog: Catalog, images: ImageBuilder
) -> None:
    name = "bad/dropped:1"
    image_id = unique_image(images, registry.ref(name), layers=1)
    cli("push", "-q", registry.ref(name))
    cli("rmi", "-f", image_id)
    layer = json.loads(registry.raw_manifest(name))["layers"][0]["digest"]
    with CuttingProxy(registry.host, f"/blobs/{layer}", after=300) as proxy:
        line = failed(cli, "pull", f"{proxy.host}/{name}")
        assert proxy.cuts == 1
    assert f"{proxy.host}/{name}" in line, line
    assert images_count(catalog) == 0


def test_tag_that_does_not_exist(registry: Registry, cli: Cli, catalog: Catalog) -> None:
    line = failed(cli, "pull", registry.ref("hello:nope"))
    assert line == (
        f"Error: manifest for {registry.ref('hello:nope')} not found: "
        "manifest unknown: manifest unknown"
    )


def test_unknown_media_types(registry: Registry, cli: Cli, catalog: Catalog) -> None:
    """An artifact (its config and layer not an image's) and a manifest of a type no
    image has are refused, naming the reference."""
    base = f"http://{registry.host}/v2/odd"
    config, layer = b"{}", b"not a tar"

    def upload(data: bytes) -> str:
        digest = sha256_digest(data)
        start = httpx.post(f"{base}/blobs/uploads/")
        location = httpx.URL(start.url).join(start.headers["location"])
        put = httpx.put(location.copy_merge_params({"digest": digest}), content=data)
        assert put.status_code == 201, put.text
        return digest

    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": upload(config),
            "size": len(config),
        },
        "layers": [
            {"mediaType": "application/vnd.example.thing", "digest": upload(layer), "size": 9}
        ],
    }
    put = httpx.put(
        f"{base}/manifests/artifact",
        content=json.dumps(manifest).encode(),
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert put.status_code == 201, put.text
    line = failed(cli, "pull", registry.ref("odd:artifact"))
    assert line == (
        f"Error: {registry.ref('odd:artifact')}: unsupported layer media type "
        "'application/vnd.example.thing'"
    )
    assert images_count(catalog) == 0


# --- authentication, TLS, credentials ---


@pytest.fixture(scope="module")
def secure_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """htpasswd basic auth over TLS, on an address docker treats as secure (not loopback)."""
    tools()
    address = outward_address()
    need(
        address, "a non-loopback IPv4 address on this machine (docker treats loopback as insecure)"
    )
    assert address is not None
    directory = tmp_path_factory.mktemp("secure")
    with run_registry(directory, host=address, tls=True, users={"alice": "wonderland"}) as running:
        running.put(f"docker-archive:{HELLO}", "hello:latest")
        yield running


def certs_settings(root: Path, registry: Registry) -> None:
    """registries.json pointing catalog at the registry's certs.d (ca.crt)."""
    assert registry.ca is not None
    root.mkdir(parents=True, exist_ok=True)
    certs_dir = registry.ca.parent / "certs.d"
    (root / SETTINGS_FILE).write_text(json.dumps({"certs-dir": str(certs_dir)}))


def test_tls_needs_the_certs_d_ca(
    secure_registry: Registry, cli: Cli, catalog: Catalog, root: Path, docker_config: Path
) -> None:
    line = failed(cli, "pull", secure_registry.ref("hello"))
    assert "tls: failed to verify certificate" in line, line
    certs_settings(root, secure_registry)
    # Known CA, no credentials: the registry's 401, one line.
    line = failed(cli, "pull", secure_registry.ref("hello"))
    assert line.startswith(f"Error: pull access denied for {secure_registry.ref('hello')}"), line
    assert "unauthorized" in line


def test_login_pull_logout_with_basic_auth(
    secure_registry: Registry, cli: Cli, catalog: Catalog, root: Path, docker_config: Path
) -> None:
    certs_settings(root, secure_registry)
    host = secure_registry.host
    wrong = failed(cli, "login", host, "-u", "alice", "--password-stdin", input="nope\n")
    assert "unauthorized" in wrong and host in wrong
    assert not (docker_config / "config.json").exists()
    result = cli("login", host, "-u", "alice", "--password-stdin", input="wonderland\n")
    assert "Login Succeeded" in result.output
    config = json.loads((docker_config / "config.json").read_text())
    assert config["auths"][host]["auth"] == "YWxpY2U6d29uZGVybGFuZA=="  # alice:wonderland
    assert (docker_config / "config.json").stat().st_mode & 0o777 == 0o600
    cli("pull", "-q", secure_registry.ref("hello"))
    assert images_count(catalog) == 1
    cli("tag", secure_registry.ref("hello"), secure_registry.ref("mine/hello:2"))
    cli("push", "-q", secure_registry.ref("mine/hello:2"))
    assert secure_registry.inspect("mine/hello:2")["Digest"]
    assert cli("logout", host).output == f"Removing login credentials for {host}\n"
    assert host not in json.loads((docker_config / "config.json").read_text())["auths"]
    # Bad credentials in the config: the registry's 401, one line naming the image.
    (docker_config / "config.json").write_text(
        json.dumps({"auths": {host: {"auth": "YWxpY2U6bm9wZQ=="}}})  # alice:nope
    )
    line = failed(cli, "pull", secure_registry.ref("hello"))
    assert secure_registry.ref("hello") in line and "unauthorized" in line


def test_plain_http_refused_for_a_registry_not_named_insecure(
    cli: Cli, catalog: Catalog, tmp_path: Path
) -> None:
    tools()
    address = outward_address()
    need(address, "a non-loopback IPv4 address on this machine")
    assert address is not None
    with run_registry(tmp_path / "plain", host=address) as plain:
        plain.put(f"docker-archive:{HELLO}", "hello:latest")
        line = failed(cli, "pull", plain.ref("hello"))
        assert "server gave HTTP response to HTTPS client" in line, line
        assert f"--insecure-registry {plain.host}" in line
        cli("pull", "-q", "--insecure-registry", plain.host, plain.ref("hello"))
        assert images_count(catalog) == 1


def test_token_auth_with_a_credential_helper(
    cli: Cli, catalog: Catalog, images: ImageBuilder, tmp_path: Path, docker_config: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    tools()
    users = {"bob": "builder"}
    with (
        TokenService(tmp_path / "token", users) as tokens,
        run_registry(tmp_path / "registry", token=tokens, users=users) as registry,
    ):
        registry.put(f"docker-archive:{HELLO}", "hello:latest")
        # Anonymous: a pull-only token.
        cli("pull", "-q", registry.ref("hello"))
        assert tokens.requests[-1] == {
            "user": None, "scopes": ["repository:hello:pull"], "service": tokens.service,
        }  # fmt: skip
        unique_image(images, registry.ref("mine/app:1"))
        line = failed(cli, "push", registry.ref("mine/app:1"))
        assert registry.ref("mine/app") in line and "unauthorized" in line, line
        # credsStore: `catalog login` stores through the helper, push uses it.
        bin_dir = tmp_path / "bin"
        store = tmp_path / "helper-store.json"
        install_credential_helper(bin_dir, "catalogtest", store)
        monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
        docker_config.mkdir(parents=True, exist_ok=True)
        (docker_config / "config.json").write_text(json.dumps({"credsStore": "catalogtest"}))
        cli("login", registry.host, "-u", "bob", "-p", "builder")
        assert json.loads(store.read_text()) == {registry.host: ["bob", "builder"]}
        assert "auth" not in json.loads((docker_config / "config.json").read_text())["auths"].get(
            registry.host, {}
        )
        output = cli("push", registry.ref("mine/app:1")).output
        assert ": Pushed" in output
        assert tokens.requests[-1]["user"] == "bob"
        cli("logout", registry.host)
        assert json.loads(store.read_text()) == {}
