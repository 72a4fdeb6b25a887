"""Serving safely (issue 12): idle and slow connections cannot shut others out, busy
answers are Docker's JSON, browsers cannot reach the Engine API (Origin, DNS rebinding),
and hostile request values are a 400, never a 500. Real sockets against a real server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send
from support.serving import Served, serve_catalog

from catalog.server.app import ServerLimits
from catalog.server.limits import ConnectionLimits
from catalog.server.middleware import EngineApiGuard, HostPolicy, RequestLimit
from catalog.storage.spool import leftover_spools

JSON = "application/json"
# Short deadlines, so that the rules show within seconds.
SHORT = ConnectionLimits(
    max_connections=24,
    max_requests=8,
    idle_timeout=1.0,
    header_timeout=1.0,
    body_idle_timeout=1.0,
    body_min_rate=20_000,
    send_timeout=1.5,
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_catalog(tmp_path_factory.mktemp("serving"), connection_limits=SHORT) as running:
        yield running


def connect(served: Served) -> socket.socket:
    return socket.create_connection(("127.0.0.1", served.port), timeout=10)


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """True if the server closes `sock` within `seconds` (what it sent before is skipped)."""
    sock.settimeout(seconds)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return False


def response_of(sock: socket.socket, seconds: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Read one whole response from `sock` until the server closes it."""
    sock.settimeout(seconds)
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def ping(served: Served) -> int:
    return httpx.get(f"{served.base_url}/_ping", timeout=10).status_code


# --- idle, slow and many connections ---------------------------------------------------


def test_idle_sockets_cannot_shut_others_out(served: Served) -> None:
    """Three times the connection limit of silent sockets: every newcomer makes room by
    closing the longest-waiting idle one, so others are still served at once."""
    idle = [connect(served) for _ in range(3 * SHORT.max_connections)]
    try:
        started = time.monotonic()
        assert [ping(served) for _ in range(5)] == [200] * 5
        assert time.monotonic() - started < 5
        # The oldest went to make room; the rest are closed by the idle timeout.
        assert closed_within(idle[0], 0.5)
        assert closed_within(idle[-1], SHORT.idle_timeout + 2)
    finally:
        for sock in idle:
            sock.close()


def test_a_request_head_sent_byte_by_byte_is_cut_off(served: Served) -> None:
    """Slowloris: the keep-alive timer alone restarts at every byte."""
    sock = connect(served)
    try:
        started = time.monotonic()
        closed = False
        for byte in b"GET /_ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
            try:
                sock.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if closed_within(sock, 0.2):
                closed = True
                break
        assert closed
        assert time.monotonic() - started < SHORT.header_timeout + 2
        assert ping(served) == 200
    finally:
        sock.close()


def load_head(length: int) -> bytes:
    return (
        f"POST /images/load HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n"
        "Content-Type: application/x-tar\r\n\r\n"
    ).encode()


@pytest.mark.parametrize("trickle", [False, True])
def test_a_body_that_stalls_or_trickles_is_a_408(served: Served, trickle: bool) -> None:
    """A load whose body stops (or comes a few bytes at a time) is answered 408 with
    Docker's JSON error, the connection closed, the spool gone; others are served."""
    sock = connect(served)
    try:
        sock.sendall(load_head(10_000_000) + b"\0" * 1000)
        if trickle:
            with contextlib.suppress(OSError):
                for _ in range(40):
                    sock.send(b"\0" * 10)
                    time.sleep(0.1)
        assert ping(served) == 200
        status, headers, body = response_of(sock)
        assert status == 408
        assert headers["content-type"] == JSON
        assert json.loads(body)["message"].startswith("the request body did not arrive in time")
    finally:
        sock.close()
    assert leftover_spools(served.root / "tmp") == []


def test_a_body_that_goes_on_after_the_answer_is_cut_off(tmp_path: Path) -> None:
    """An upload past the bound is answered at once; it was then read and dropped for as
    long as the client kept sending (for ever). Now 1 MiB more, then the connection goes."""
    with serve_catalog(
        tmp_path, limits=ServerLimits(max_load_bytes=100_000), populated=False, unix=False
    ) as small:
        sock = connect(small)
        sent = 0
        try:
            sock.sendall(load_head(1 << 30))
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                while sent < 64 << 20:
                    sent += sock.send(b"\0" * 65536)
        finally:
            sock.close()
        assert sent < 16 << 20
        assert ping(small) == 200


def test_a_client_that_stops_reading_is_cut_off(served: Served, tmp_path: Path) -> None:
    """`docker save` whose reader never reads: the response stalls, then is aborted."""
    served.cli("load", "-q", "-i", str(big_archive(tmp_path)))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", served.port))
    try:
        sock.sendall(b"GET /images/big:1/get HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        time.sleep(SHORT.send_timeout + 2)
        assert ping(served) == 200
        # What the buffers held arrives, then the end: far less than the archive.
        received = 0
        sock.settimeout(10)
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
        assert 0 < received < 8 << 20
    finally:
        sock.close()


def big_archive(directory: Path) -> Path:
    """A docker archive of one image of 16 MiB of random bytes (no buffer holds it)."""
    from support.archive_builders import Image, docker_archive
    from support.builders import layer_tar

    path = directory / "big.tar"
    path.write_bytes(docker_archive([Image([layer_tar({"big": os.urandom(16 << 20)})], ["big:1"])]))
    return path


def test_busy_answers_are_dockers_json() -> None:
    """Past max_requests, a request is answered at once: 503, JSON, Retry-After."""

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(0.5)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    limit = RequestLimit(slow, 2)
    transport = httpx.ASGITransport(app=limit)

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await asyncio.gather(*(client.get("/_ping") for _ in range(5)))

    responses = asyncio.run(run())
    assert sorted(r.status_code for r in responses) == [200, 200, 503, 503, 503]
    busy = next(r for r in responses if r.status_code == 503)
    assert busy.headers["content-type"] == JSON
    assert busy.headers["retry-after"] == "1"
    assert busy.json() == {"message": "the server is busy: 2 requests are being served; try again"}
    assert limit.running == 0


# --- browsers: Origin and Host ---------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_ping"),
        ("POST", "/images/prune"),
        ("POST", "/v1.50/images/app:latest/tag?repo=x"),
        ("DELETE", "/images/app:latest"),
        ("GET", "/catalog/info"),
        ("POST", "/catalog/images/app:latest/squash"),
    ],
)
def test_requests_from_web_pages_are_refused(served: Served, method: str, path: str) -> None:
    """A page's cross-origin POST (CSRF) carries Origin; docker and docker-py never do."""
    for origin in ("https://evil.example", "null", f"http://127.0.0.1:{served.port}"):
        response = httpx.request(
            method, served.base_url + path, headers={"Origin": origin}, timeout=10
        )
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == JSON
        assert response.json()["message"].startswith("refusing a request from a web page")
    transport = httpx.HTTPTransport(uds=str(served.unix_path))
    with httpx.Client(transport=transport, base_url="http://localhost") as client:
        assert client.get("/_ping", headers={"Origin": "https://evil.example"}).status_code == 403


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1:{port}", True),
        ("localhost:{port}", True),
        ("LocalHost.", True),
        ("api.moby.localhost", True),
        ("[::1]:{port}", True),
        ("10.1.2.3:{port}", True),
        ("{hostname}:{port}", True),
        ("evil.example:{port}", False),
        ("127.0.0.1.evil.example", False),
        ("localhost.evil.example:{port}", False),
        ("", False),
    ],
)
def test_tcp_requests_must_name_this_server(served: Served, host: str, allowed: bool) -> None:
    """DNS rebinding: the attacker's name resolves to 127.0.0.1, the Host stays its."""
    value = host.format(port=served.port, hostname=socket.gethostname())
    sock = connect(served)
    try:
        sock.sendall(f"GET /_ping HTTP/1.1\r\nHost: {value}\r\nConnection: close\r\n\r\n".encode())
        status, headers, body = response_of(sock)
    finally:
        sock.close()
    if allowed:
        assert status == 200, body
        assert body == b"OK"
    else:
        assert status == 403
        assert headers["content-type"] == JSON
        assert json.loads(body)["message"].startswith("refusing a request for host")


def test_unix_socket_requests_may_carry_any_host(served: Served) -> None:
    """Browsers cannot reach a unix socket; the docker CLI sends api.moby.localhost (or
    `docker` before 23.0), docker-py `localhost`."""
    assert served.unix_path is not None
    for host in ("api.moby.localhost", "docker", "localhost", "evil.example"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(served.unix_path))
        try:
            request = f"GET /_ping HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            sock.sendall(request.encode())
            status, _, body = response_of(sock)
        finally:
            sock.close()
        assert (status, body) == (200, b"OK"), host


def test_paths_with_a_policy_of_their_own_pass_through() -> None:
    """The web pages check same-origin themselves: the guard leaves their prefix alone."""

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    guard = EngineApiGuard(
        inner, HostPolicy.serving(), own_policy=lambda path: path.startswith("/web/")
    )
    transport = httpx.ASGITransport(app=guard, client=("127.0.0.1", 5000))

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=transport, base_url="http://evil.example:2375") as c:
            return [
                await c.get("/web/images", headers={"Origin": "http://evil.example"}),
                await c.get("/_ping"),
                await c.get("/webx"),
            ]

    page, ping_, other = asyncio.run(run())
    assert (page.status_code, page.text) == (200, "/web/images")
    assert ping_.status_code == other.status_code == 403


# --- hostile values: a 400 with one line, never a 500 ----------------------------------


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        (
            "/images/json",
            {"filters": '{"label":' + "[" * 3000 + "]" * 3000 + "}"},
            400,
            "invalid filter",
        ),
        (
            "/images/json",
            {"filters": '{"until":["99999999999999999999"]}'},
            400,
            "invalid value for 'until' filter: failed to parse value as time or duration: "
            'invalid seconds "99999999999999999999": value out of range',
        ),
        (
            "/v1.49/images/app:latest/json",
            {"platform": "[" * 5000 + "]" * 5000},
            400,
            "failed to parse platform: exceeded max depth",
        ),
        (
            "/catalog/reports/stale-tags",
            {"max_tags": "99999999999999999999"},
            400,
            "invalid max_tags value: 99999999999999999999 (must be between 1 and "
            "9223372036854775807)",
        ),
        (
            "/catalog/reports/reclaimable",
            {"older_than": "9999-12-31T23:00:00-05:00"},
            200,
            None,
        ),
    ],
)
def test_hostile_values_are_a_400(
    served: Served, path: str, params: dict[str, str], status: int, message: str | None
) -> None:
    """Deep JSON and out-of-range numbers were RecursionError and OverflowError: 500."""
    response = httpx.get(served.base_url + path, params=params, timeout=30)
    assert response.status_code == status, response.text
    if message is not None:
        assert response.json() == {"message": message}


def test_an_invalid_registry_auth_header_is_a_400(served: Served) -> None:
    """It was a 500 (an untyped error); moby answers InvalidParameter."""
    response = httpx.post(
        f"{served.base_url}/images/create",
        params={"fromImage": "127.0.0.1:9/x:1"},
        headers={"X-Registry-Auth": "%%%"},
        timeout=30,
    )
    assert response.status_code == 400
    assert response.json() == {"message": "invalid X-Registry-Auth header: not base64url JSON"}


def test_a_deeply_nested_json_body_is_a_400(served: Served) -> None:
    response = httpx.post(
        f"{served.base_url}/catalog/images/app:latest/squash",
        content=b"[" * 50_000 + b"]" * 50_000,
        timeout=30,
    )
    assert response.status_code == 400
    assert response.json() == {"message": "invalid JSON body: nested deeper than 100 levels"}


# --- spools ----------------------------------------------------------------------------


def test_spools_of_killed_uploads_go_at_start_up(tmp_path: Path) -> None:
    """A killed `POST /images/load` of an older server left `<root>/tmp/serve-load-*`
    (1.5 GB seen); uploads are anonymous files now, and leftovers go when serving starts."""
    leftover = tmp_path / "root" / "tmp" / "serve-load-abc123.tar"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"\0" * 4096)
    other = leftover.parent / "unrelated"
    other.write_bytes(b"keep")
    with serve_catalog(tmp_path, populated=False, unix=False) as served:
        assert not leftover.exists()
        assert other.exists()
        response = httpx.post(f"{served.base_url}/images/load", content=b"x" * 100_000)
        assert "error" in response.text
        assert leftover_spools(served.root / "tmp") == []
