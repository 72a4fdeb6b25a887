"""The real `docker` CLI's container commands against `catalog serve`: `docker ps` in its
forms printing what `catalog container ls` prints, `docker inspect`, `docker system df -v`'s
containers table, and `docker run` / `docker create` printing catalog's one line instead
of looking for the image.

Version-tolerant where Debian's docker.io 20.10 (API 1.41) prints otherwise than 28.2.2:
errors of `container inspect` (20.10 says `Error: No such container: X`), the text after
`docker run`'s error line, `--format json` (which 20.10 does not know), and the exit
status of a failed `docker create`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from support.environment import need
from support.files import fixture
from support.serving import DOCKER, DOCKER_MISSING, Served, serve_catalog

from catalog.server.container_documents import NOT_RUN
from catalog.server.versions import API_VERSION

# Times far enough back that `3 days ago` reads the same a few seconds later.
OLD = ("--created", "80h", "--started", "79h")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    need(DOCKER, DOCKER_MISSING)
    with serve_catalog(tmp_path_factory.mktemp("docker-ps"), populated=False) as running:
        running.cli("load", "-q", "-i", str(fixture("wagoodman-dive/test-docker-image.tar")))
        running.cli("load", "-q", "-i", str(fixture("containers-image/almostempty.tar")))
        cli = running.cli
        cli("container", "create", "--image", "dive-test:latest", "--name", "web", "--state",
            "running", *OLD, "--label", "tier=web", "--", "httpd", "-f", "-p", "80")  # fmt: skip
        ran = ("--created", "90h", "--started", "89h", "--finished", "75h", "--exit-code", "2")
        cli("container", "create", "--image", "emptyimage", "--name", "job", "--state",
            "exited", *ran, "--entrypoint", "/bin/sh", "--", "-c",
            "echo a long command that gets cut")  # fmt: skip
        cli("container", "create", "--image", "dive-test", "--name", "fresh", "--created", "50h")
        yield running


def ok(result: object) -> str:
    assert getattr(result, "returncode", None) == 0, (
        getattr(result, "args", None),
        getattr(result, "stdout", None),
        getattr(result, "stderr", None),
    )
    return str(getattr(result, "stdout", ""))


def client_major(served: Served) -> int:
    version = ok(served.docker("version", "--format", "{{.Client.Version}}")).strip()
    return int(version.split(".")[0])


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("-a",),
        ("-a", "--no-trunc"),
        ("-a", "-q"),
        ("-aq", "--no-trunc"),
        ("-a", "-s"),
        ("-n", "2"),
        ("-l",),
        ("-a", "--filter", "status=exited"),
        ("--filter", "status=created"),
        ("-a", "--filter", "label=tier=web"),
        ("-a", "--filter", "exited=2"),
        ("-a", "--filter", "ancestor=dive-test"),
        ("-a", "--filter", "name=^/?j"),
        ("-a", "--filter", "before=web"),
        ("-a", "--filter", "since=job"),
    ],
    ids=lambda args: " ".join(args) or "plain",
)
def test_ps_prints_what_catalog_container_ls_prints(served: Served, args: tuple[str, ...]) -> None:
    docker = ok(served.docker("ps", *args))
    catalog = served.cli("container", "ls", *args).stdout
    assert docker == catalog
    assert docker.strip() or args == ("--filter", "status=created")


def test_ps_rows(served: Served) -> None:
    lines = ok(served.docker("ps", "-a")).splitlines()
    assert re.split(r"\s{2,}", lines[0]) == [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    rows = [re.split(r"\s{2,}", line) for line in lines[1:]]
    assert [row[1:] for row in rows] == [
        ["dive-test", '"sh"', "2 days ago", "Created", "fresh"],  # the image's CMD
        ["dive-test:latest", '"httpd -f -p 80"', "3 days ago", "Up 3 days", "web"],
        ["emptyimage", '"/bin/sh -c \'echo a …"', "3 days ago", "Exited (2) 3 days ago", "job"],
    ]


def test_ps_json_format(served: Served) -> None:
    docker = ok(served.docker("ps", "-a", "--format", "json")).splitlines()
    if client_major(served) < 23:
        # docker 20.10 knows no `json` format: it prints the word as a template, per row.
        # (A skip would fail CI, which turns skips into failures.)
        assert docker == ["json"] * 3
        return
    catalog = served.cli("container", "ls", "-a", "--format", "json").stdout.splitlines()
    assert [json.loads(line) for line in docker] == [json.loads(line) for line in catalog]
    assert docker == catalog  # the same bytes: keys sorted, Go's escapes


def test_inspect_a_container(served: Served) -> None:
    [document] = json.loads(ok(served.docker("inspect", "web")))
    assert document["Name"] == "/web"
    assert (document["Path"], document["Args"]) == ("httpd", ["-f", "-p", "80"])
    assert document["State"]["Status"] == "running"
    assert document["Config"]["Image"] == "dive-test:latest"
    assert document["Config"]["Labels"]["tier"] == "web"
    image_id = ok(served.docker("image", "inspect", "-f", "{{.Id}}", "dive-test")).strip()
    assert document["Image"] == image_id
    template = served.docker("container", "inspect", "-f", "{{.State.ExitCode}} {{.Name}}", "job")
    assert ok(template) == "2 /job\n"
    missing = served.docker("container", "inspect", "nope")
    assert missing.returncode == 1
    assert missing.stderr.strip() in (
        "Error response from daemon: No such container: nope",
        "Error: No such container: nope",
    )
    # Without --type the CLI asks for a container first, then an image.
    [image] = json.loads(ok(served.docker("inspect", "dive-test")))
    assert image["Id"] == image_id


def test_system_df_verbose_containers_table(served: Served) -> None:
    docker = ok(served.docker("system", "df", "-v"))
    catalog = served.cli("system", "df", "-v").stdout
    docker_table = docker.split("Containers space usage:\n\n")[1].split("\n\n")[0]
    catalog_table = catalog.split("Containers space usage:\n\n")[1].split("\n\n")[0]
    assert docker_table.strip() == catalog_table.strip()
    assert "Up 3 days" in docker_table
    summary = ok(served.docker("system", "df")).splitlines()
    assert summary[2].split()[:4] == ["Containers", "3", "1", "0B"]


@pytest.mark.parametrize("command", ["run", "create"])
def test_run_and_create_print_catalogs_line(served: Served, command: str) -> None:
    mark = len(served.recorder.requests)
    result = served.docker(command, "dive-test:latest")
    assert result.returncode != 0
    assert "Unable to find image" not in result.stderr
    first_line = result.stderr.splitlines()[0]
    prefix = "docker: " if command == "run" else ""
    assert first_line == f"{prefix}Error response from daemon: {NOT_RUN}"
    if command == "run":
        assert result.returncode == 125
    # One create request and nothing else: no pull was tried.
    posts = [r for r in served.recorder.requests[mark:] if r[0] == "POST"]
    assert [path.rsplit("/", 2)[-2:] for _, path, _ in posts] == [["containers", "create"]]
    assert served.cli("container", "ls", "-aq").stdout.count("\n") == 3  # nothing recorded


@pytest.mark.parametrize(
    "args",
    [("start", "job"), ("stop", "web"), ("logs", "web"), ("exec", "web", "true"), ("wait", "job")],
)
def test_runtime_commands_print_catalogs_line(served: Served, args: tuple[str, ...]) -> None:
    result = served.docker(*args)
    assert result.returncode != 0
    assert f"Error response from daemon: {NOT_RUN}" in result.stderr


def test_errors_of_ps(served: Served) -> None:
    bad = served.docker("ps", "--filter", "status=up")
    assert bad.returncode == 1
    assert bad.stderr.strip() == (
        "Error response from daemon: invalid filter 'status=up': invalid value for state (up):"
        " must be one of created, running, paused, restarting, removing, exited, dead"
    )
    missing = served.docker("ps", "--filter", "before=nope")
    assert missing.stderr.strip() == "Error response from daemon: No such container: nope"


def test_an_older_api_version(served: Served) -> None:
    """Debian's docker.io 20.10 speaks API 1.41: the same table at that version."""
    pinned = served.docker("ps", "-a", env={"DOCKER_API_VERSION": "1.41"})
    assert ok(pinned) == served.cli("container", "ls", "-a").stdout
    assert any(path == "/v1.41/containers/json" for _, path, _ in served.recorder.requests)
    assert API_VERSION == "1.52"
