"""The real `docker` CLI against `catalog serve` (DOCKER_HOST=tcp://127.0.0.1:PORT, and
unix://PATH): every image command the issue names, its output compared with what the
catalog's own commands print for the same catalog."""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.builders import ImageBuilder, layer_tar
from support.environment import need
from support.files import fixture
from support.serving import (
    DOCKER,
    DOCKER_MISSING,
    OPENSSL,
    OPENSSL_MISSING,
    Served,
    make_certificates,
    serve_catalog,
)

from catalog.server.versions import API_VERSION


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    need(DOCKER, DOCKER_MISSING)
    with serve_catalog(tmp_path_factory.mktemp("docker")) as running:
        yield running


def ok(result: object) -> str:
    assert getattr(result, "returncode", None) == 0, (
        getattr(result, "args", None),
        getattr(result, "stdout", None),
        getattr(result, "stderr", None),
    )
    return str(getattr(result, "stdout", ""))


def client_major(served: Served) -> int:
    """The docker CLI's major version (28 on these machines; Debian 12's docker.io is 20)."""
    version = ok(served.docker("version", "--format", "{{.Client.Version}}")).strip()
    return int(version.split(".")[0])


def not_found(stderr: str, name: str) -> bool:
    """The CLI's rendering of the daemon's 404 `No such image`: CLIs before 23 (Debian 12's
    docker.io 20.10) print their own text for inspect and rmi."""
    reference = name if ":" in name else f"{name}:latest"
    return stderr.strip() in (
        f"Error response from daemon: No such image: {reference}",
        f"Error: No such image: {name}",
    )


def client_api_version(served: Served) -> str:
    """The newest API version this docker CLI speaks (1.50 for 28.2.2)."""
    return ok(served.docker("version", "--format", "{{.Client.APIVersion}}")).strip()


def test_version_and_negotiation(served: Served) -> None:
    client_max = client_api_version(served)
    mark = len(served.recorder.requests)
    output = ok(served.docker("version"))
    assert "Server: catalog" in output
    assert f"API version:      {API_VERSION} (minimum version 1.24)" in output
    assert served.paths_since(mark)[:2] == ["/_ping", f"/v{client_max}/version"]
    assert served.recorder.requests[mark][0] == "HEAD"
    both = served.docker("version", "--format", "{{.Server.APIVersion}} {{.Client.APIVersion}}")
    assert ok(both).strip() == f"{API_VERSION} {client_max}"


@pytest.mark.parametrize("version", ["1.41", "1.50", "1.51"])
def test_pinned_versions_are_served(served: Served, version: str) -> None:
    mark = len(served.recorder.requests)
    ok(served.docker("images", env={"DOCKER_API_VERSION": version}))
    assert f"/v{version}/images/json" in served.paths_since(mark)


def test_too_new_a_version_is_refused(served: Served) -> None:
    result = served.docker("images", env={"DOCKER_API_VERSION": "1.53"})
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error response from daemon: client version 1.53 is too new. Maximum supported API "
        "version is 1.52"
    )


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("-a",),
        ("--digests",),
        ("--no-trunc",),
        ("-q",),
        ("-a", "-q", "--no-trunc"),
        ("--digests", "--no-trunc"),
        ("app",),
        ("app:1.0",),
        ("--filter", "dangling=true"),
        ("--filter", "dangling=false"),
        ("--filter", "label=tier=web"),
        ("--filter", "label=tier", "--filter", "label!=tier=db"),
        ("--filter", "reference=app*"),
        ("--filter", "reference=*/*/app:*"),
        ("--filter", "before=db:15"),
        ("--filter", "since=app:latest"),
        ("--filter", "until=2023-07-01T00:00:00"),
        ("digested",),
    ],
    ids=lambda args: " ".join(args) or "plain",
)
def test_images_renders_as_catalog_images(served: Served, args: tuple[str, ...]) -> None:
    docker = ok(served.docker("images", *args))
    catalog = served.cli("images", *args).stdout
    assert docker.strip()
    assert len(docker) == len(catalog)
    assert rows_by_image(docker) == rows_by_image(catalog)


def rows_by_image(table: str) -> list[list[str]]:
    """The rows of a `docker images` table, grouped by image in order, each group's rows
    sorted: the docker CLI groups an image's tags by repository in a Go map, so the order
    of an image's repositories changes from run to run."""
    lines = table.splitlines()
    if not lines or "IMAGE ID" not in lines[0]:  # -q: IDs only
        return [[line] for line in lines]
    column = lines[0].index("IMAGE ID")
    groups: list[list[str]] = [[lines[0]]]
    previous = None
    for line in lines[1:]:
        image = line[column:].split()[0]
        if image != previous:
            groups.append([])
            previous = image
        groups[-1].append(line)
    return [sorted(group) for group in groups]


def test_image_ls_json_format(served: Served) -> None:
    listed = ok(served.docker("image", "ls", "--format", "{{json .}}"))
    rows = [json.loads(line) for line in listed.splitlines()]
    app_rows = [r for r in rows if r["Repository"] == "app"]
    assert {r["Tag"] for r in app_rows} == {"latest", "1.0"}
    assert all(r["ID"] == served.ids["app"][7:19] for r in app_rows)


def test_filter_errors_render(served: Served) -> None:
    result = served.docker("images", "--filter", "foo=bar")
    assert result.returncode == 1
    assert result.stderr.strip() == "Error response from daemon: invalid filter 'foo'"
    before = served.docker("images", "--filter", "before=nosuch")
    assert before.stderr.strip() == "Error response from daemon: No such image: nosuch:latest"


def test_image_inspect(served: Served) -> None:
    documents = json.loads(ok(served.docker("image", "inspect", "app:latest", "db:15")))
    assert [d["Id"] for d in documents] == [served.ids["app"], served.ids["db"]]
    assert documents[0]["RepoTags"] == [
        "app:1.0",
        "app:latest",
        "registry.example.com:5000/org/app:1",
    ]
    catalog = json.loads(served.cli("image", "inspect", "app:latest").stdout)[0]
    for key in ("Id", "RepoTags", "RepoDigests", "Parent", "Size", "RootFS", "Architecture"):
        assert documents[0][key] == catalog[key], key
    template = served.docker("image", "inspect", "-f", "{{.Id}} {{.Size}}", "db:15")
    assert ok(template).strip() == f"{served.ids['db']} {catalog_size(served, 'db:15')}"
    partial = served.docker("image", "inspect", "nope", "app:latest")
    assert partial.returncode == 1
    assert [d["Id"] for d in json.loads(partial.stdout)] == [served.ids["app"]]
    assert not_found(partial.stderr, "nope")
    generic = served.docker("inspect", "nope")
    assert generic.returncode == 1
    assert generic.stderr.strip() == "Error: No such object: nope"
    assert json.loads(ok(served.docker("inspect", "app:latest")))[0]["Id"] == served.ids["app"]


def catalog_size(served: Served, name: str) -> int:
    return int(json.loads(served.cli("image", "inspect", name).stdout)[0]["Size"])


@pytest.mark.parametrize(
    ("docker_args", "catalog_args"),
    [
        (("app:latest",), ("app:latest",)),
        (("--no-trunc", "-H=false", "dive-test"), ("--no-trunc", "--human=false", "dive-test")),
        (("-q", "sample"), ("-q", "sample")),
    ],
)
def test_history_renders_as_catalog_history(
    served: Served, docker_args: tuple[str, ...], catalog_args: tuple[str, ...]
) -> None:
    assert ok(served.docker("history", *docker_args)) == served.cli("history", *catalog_args).stdout


def test_tag_and_rmi(served: Served) -> None:
    ok(served.docker("tag", "app:latest", "cli-tag:1"))
    ok(served.docker("tag", served.ids["db"][7:19], "registry.example.com:5000/cli/db"))
    listed = ok(served.docker("images", "cli-tag"))
    assert re.search(rf"^cli-tag\s+1\s+{served.ids['app'][7:19]}\s", listed, re.MULTILINE)
    assert served.ids["db"] in ok(
        served.docker("image", "inspect", "-f", "{{.Id}}", "registry.example.com:5000/cli/db")
    )
    bad = served.docker("tag", "app:latest", "Bad:1")
    assert bad.returncode == 1
    assert "invalid reference format" in bad.stderr
    missing = served.docker("tag", "nope", "x:1")
    assert missing.stderr.strip() == "Error response from daemon: No such image: nope:latest"

    assert ok(served.docker("rmi", "cli-tag:1")) == "Untagged: cli-tag:1\n"
    both = served.docker("rmi", "nope", "registry.example.com:5000/cli/db")
    assert both.returncode == 1
    assert both.stdout == "Untagged: registry.example.com:5000/cli/db:latest\n"
    assert not_found(both.stderr, "nope")
    forced = served.docker("rmi", "-f", "nope")
    assert forced.returncode == 0
    assert not_found(forced.stderr, "nope") or forced.stderr == ""
    conflict = served.docker("rmi", served.ids["app"][7:19])
    assert conflict.returncode == 1
    assert "conflict: unable to delete" in conflict.stderr
    assert "(cannot be forced) - image is being used by running container" in conflict.stderr


def test_rmi_deletes_and_prunes_parents(served: Served) -> None:
    builder = ImageBuilder(served.catalog)
    parent = builder.add([layer_tar({"rmi/parent": b"p" * 10})])
    child = builder.add(
        [layer_tar({"rmi/parent": b"p" * 10}), layer_tar({"rmi/child": b"c" * 10})],
        parent=parent,
        tags=["rmi-child:1"],
    )
    lines = ok(served.docker("rmi", "--no-prune", "rmi-child:1")).splitlines()
    assert lines[:2] == ["Untagged: rmi-child:1", f"Deleted: {child}"]
    assert ok(served.docker("rmi", parent[7:19])).splitlines()[0] == f"Deleted: {parent}"


def test_system_df_matches_catalog_system_df(served: Served) -> None:
    docker = ok(served.docker("system", "df")).splitlines()
    catalog = served.cli("system", "df").stdout.splitlines()
    assert docker[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    # TOTAL, ACTIVE and SIZE agree; docker CLI 28 computes RECLAIMABLE by its own formula.
    assert docker[1].split()[:4] == catalog[1].split()[:4]
    assert docker[2].split()[:4] == catalog[2].split()[:4]
    verbose = ok(served.docker("system", "df", "-v"))
    images_section = verbose.split("\n\n")[1].strip()
    catalog_section = served.cli("system", "df", "-v").stdout.split("\n\n")[1]
    catalog_section = catalog_section.strip().split("\nContainers:")[0]
    if client_major(served) >= 23:
        assert images_section == catalog_section
    else:  # docker 20.10 shows SIZE with 4 significant digits, as UNIQUE SIZE
        assert [row.split()[:4] for row in images_section.splitlines()] == [
            row.split()[:4] for row in catalog_section.splitlines()
        ]
    assert "Containers space usage:" in verbose
    # The image as the container was created with it (see test_server_docker_containers).
    assert re.search(r"\s+app:latest\s+\"\"\s+0\s+0B\s+.*\s+Up .*\s+web$", verbose, re.MULTILINE)


def test_image_prune(served: Served) -> None:
    builder = ImageBuilder(served.catalog)
    dangling = builder.add([layer_tar({"prune/cli": b"x" * 333})], labels={"cli-prune": "1"})
    tagged = builder.add([layer_tar({"prune/cli2": b"y" * 333})], tags=["cli-prune:1"])
    other = builder.add(
        [layer_tar({"prune/cli3": b"z" * 333})], tags=["cli-other:1"], labels={"prune-me": "1"}
    )
    output = ok(served.docker("image", "prune", "-f", "--filter", "label=cli-prune=1"))
    assert output.startswith(f"Deleted Images:\ndeleted: {dangling}\n")
    assert output.splitlines()[-1].startswith("Total reclaimed space: ")
    assert tagged in ok(served.docker("images", "-q", "--no-trunc", "cli-prune"))
    all_output = ok(
        served.docker("image", "prune", "-a", "-f", "--filter", "label=nothing-has-this")
    )
    assert all_output == "Total reclaimed space: 0B\n"
    old = served.docker("image", "prune", "-a", "-f", "--filter", "until=1960-01-01")
    assert ok(old) == "Total reclaimed space: 0B\n"
    # -a: tagged images that no container uses go too.
    unused = ok(served.docker("image", "prune", "-a", "-f", "--filter", "label=prune-me"))
    assert f"deleted: {other}" in unused
    assert "untagged: cli-other:1" in unused


def test_save_and_load(served: Served, tmp_path: Path) -> None:
    archive = tmp_path / "out.tar"
    ok(served.docker("tag", "db:15", "saved:1"))
    ok(served.docker("save", "-o", str(archive), "saved:1", "sample:latest"))
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert archive.stat().st_size > 0
    assert ok(served.docker("rmi", "saved:1")) == "Untagged: saved:1\n"
    loaded = ok(served.docker("load", "-i", str(archive)))
    assert loaded.splitlines() == ["Loaded image: saved:1", "Loaded image: sample:latest"]
    assert served.ids["db"] in ok(served.docker("image", "inspect", "-f", "{{.Id}}", "saved:1"))
    missing = tmp_path / "missing.tar"
    failed = served.docker("save", "-o", str(missing), "nope")
    assert failed.returncode == 1
    assert failed.stderr.strip() == "Error response from daemon: No such image: nope:latest"
    assert not missing.exists()
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not an archive" * 100)
    bad = served.docker("load", "-i", str(junk))
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("invalid archive")
    archive = fixture("containers-image/almostempty.tar")
    assert ok(served.docker("load", "-i", str(archive))) == "Loaded image: emptyimage:latest\n"


def test_unix_socket(served: Served) -> None:
    assert served.unix_path is not None
    host = f"unix://{served.unix_path}"
    listed = ok(served.docker("images", host=host))
    assert rows_by_image(listed) == rows_by_image(served.cli("images").stdout)
    assert "Server: catalog" in ok(served.docker("version", host=host))


def test_tls_verify(tmp_path: Path) -> None:
    """`docker --tlsverify` against `catalog serve --tls-cert --tls-key --tls-ca`."""
    need(DOCKER, DOCKER_MISSING)
    need(OPENSSL, OPENSSL_MISSING)
    certificates = make_certificates(tmp_path / "tls")
    with serve_catalog(tmp_path / "served", tls=certificates.server, populated=False) as tls:
        tls.cli("load", "-q", "-i", str(fixture("containers-image/almostempty.tar")))
        flags = ("--tlsverify", "--tlscacert", str(certificates.ca))
        client = (
            "--tlscert",
            str(certificates.client_cert),
            "--tlskey",
            str(certificates.client_key),
        )
        listed = ok(tls.docker(*flags, *client, "images", "-q"))
        assert listed.strip() == tls.cli("images", "-q").stdout.strip()
        refused = tls.docker(*flags, "images")
        assert refused.returncode != 0
