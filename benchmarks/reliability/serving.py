"""Serving safely (issue 12, item 7): `catalog serve` keeps answering while hostile clients
hold connections, trickle or never finish their bodies, and browsers are kept out.

- a flood: hundreds of idle sockets and slowloris senders against a real `catalog serve`
  (default limits), while honest clients must each be served within seconds;
- bodies: uploads that stall, arrive a few bytes at a time, or never end are answered
  408 or refused with Docker's JSON error; others are served meanwhile; nothing changes
  and no spool is left (short limits, in process; the full form adds the defaults);
- busy: past the request limit, answers are Docker's JSON 503 with Retry-After;
- browsers: requests with an `Origin`, or a `Host` not naming the server, are refused
  (403, JSON) over TCP; the real docker CLI and docker-py still work over TCP and the
  unix socket;
- spools: `kill -9` of the server during an upload leaves no spool file, and a leftover
  of an older server goes when it starts again.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.reliability.hostile import (
    CatalogUnderTest,
    catalog_under_test,
    console_script,
    differences,
    snapshot,
)
from benchmarks.reliability.results import ClassResult, RunSettings
from catalog.server.app import EngineApp, ServerLimits
from catalog.server.limits import ConnectionLimits
from catalog.server.listen import BackgroundServer, bind_tcp, server_config

SHORT = ConnectionLimits(
    max_connections=64,
    max_requests=4,
    idle_timeout=1.0,
    header_timeout=1.0,
    body_idle_timeout=1.0,
    body_min_rate=20_000,
    send_timeout=2.0,
)


@dataclass
class Running:
    """A `catalog serve` process and where it listens."""

    process: subprocess.Popen[str]
    port: int
    unix: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def catalog_serve(env: CatalogUnderTest) -> Iterator[Running]:
    """The console script serving `env` on a free port and a unix socket."""
    unix = env.work / "docker.sock"
    process = subprocess.Popen(
        [*console_script(), "serve", "--port", "0", "--unix", str(unix), "--log-level", "error"],
        env={**os.environ, "CATALOG_ROOT": str(env.root), "CATALOG_DATABASE_URL": env.url},
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        port = 0
        assert process.stderr is not None
        for line in process.stderr:
            if "at tcp://127.0.0.1:" in line:
                port = int(line.split("at tcp://127.0.0.1:")[1].split()[0])
                break
        if not port:
            raise RuntimeError("catalog serve did not start")
        threading.Thread(target=process.stderr.read, daemon=True).start()  # drain
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/_ping", timeout=2).status_code == 200:
                    break
            time.sleep(0.1)
        yield Running(process, port, unix)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def in_process(env: CatalogUnderTest, *, max_load_bytes: int = 64 << 30) -> Iterator[str]:
    sock = bind_tcp("127.0.0.1", 0)
    app = EngineApp(env.catalog, limits=ServerLimits(max_load_bytes=max_load_bytes))
    server = BackgroundServer(server_config(app, log_level="critical", limits=SHORT), [sock])
    with server.running():
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def _raise_file_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


# --- the flood ----------------------------------------------------------------------------


def flood_trials(settings: RunSettings, env: CatalogUnderTest, running: Running) -> ClassResult:
    idle_count = 1000 if settings.full else 300
    slow_count = idle_count // 3
    honest = 200 if settings.full else 40
    _raise_file_limit(idle_count + slow_count + 256)
    started = time.perf_counter()
    sockets: list[socket.socket] = []
    stop = threading.Event()
    failures: list[str] = []
    latencies: list[float] = []
    try:
        for _ in range(idle_count):
            sockets.append(socket.create_connection(("127.0.0.1", running.port), timeout=10))
        slow = [socket.create_connection(("127.0.0.1", running.port)) for _ in range(slow_count)]
        sockets += slow

        def trickle() -> None:  # slowloris: a header byte every half second, for ever
            while not stop.wait(0.5):
                for sock in slow:
                    with contextlib.suppress(OSError):
                        sock.send(b"X")

        threading.Thread(target=trickle, daemon=True).start()
        for number in range(honest):
            begun = time.perf_counter()
            path = "/images/json" if number % 2 else "/_ping"
            try:
                response = httpx.get(running.base + path, timeout=10)
                if response.status_code != 200:
                    failures.append(f"honest request {number}: {response.status_code}")
            except httpx.HTTPError as exc:
                failures.append(f"honest request {number}: {type(exc).__name__}: {exc}")
            latencies.append(time.perf_counter() - begun)
            if latencies[-1] > 5:
                failures.append(f"honest request {number} took {latencies[-1]:.1f} s")
    finally:
        stop.set()
        closed = 0
        for sock in sockets:
            sock.setblocking(False)
            try:
                if sock.recv(1) == b"":
                    closed += 1
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
            sock.close()
    latencies.sort()
    return ClassResult(
        "serving: idle and slowloris flood",
        settings.backend,
        honest,
        len(failures),
        time.perf_counter() - started,
        [
            f"- {idle_count} idle sockets and {slow_count} sending a header byte every 0.5 s "
            f"against `catalog serve` (default limits: {ConnectionLimits().max_connections} "
            f"connections), {honest} honest requests on new connections meanwhile",
            f"- honest latency p50 {statistics.median(latencies) * 1000:.0f} ms, p99 "
            f"{latencies[int(len(latencies) * 0.99) - 1] * 1000:.0f} ms; "
            f"{closed} of the {len(sockets)} flood sockets closed by the server by the end",
            *(f"- FAILED {line}" for line in failures),
        ],
    )


# --- bodies -----------------------------------------------------------------------------


def _load_head(port: int, length: int) -> bytes:
    return (
        f"POST /images/load HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {length}\r\n"
        "Content-Type: application/x-tar\r\n\r\n"
    ).encode()


def _response(sock: socket.socket, seconds: float) -> tuple[int, bytes]:
    sock.settimeout(seconds)
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split()[1]) if head.startswith(b"HTTP/") else 0
    return status, body


def body_trials(settings: RunSettings, env: CatalogUnderTest, rounds: int) -> ClassResult:
    started = time.perf_counter()
    failures: list[str] = []
    trials = 0
    with in_process(env, max_load_bytes=4 << 20) as base:
        port = int(base.rsplit(":", 1)[1])
        for round_ in range(rounds):
            for kind in ("stall", "trickle", "endless"):
                trials += 1
                before = snapshot(env)
                problem = None
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                try:
                    if kind == "endless":
                        problem = _endless(base)
                    else:
                        sock.sendall(_load_head(port, 50_000_000) + b"\0" * 2048)
                        if kind == "trickle":
                            with contextlib.suppress(OSError):
                                for _ in range(30):
                                    sock.send(b"\0" * 16)
                                    time.sleep(0.1)
                        if httpx.get(base + "/_ping", timeout=10).status_code != 200:
                            problem = "others were not served meanwhile"
                        status, body = _response(sock, 15)
                        if status != 408 or not json.loads(body or b"{}").get("message"):
                            problem = f"answered {status} {body[:200]!r}"
                except (OSError, httpx.HTTPError, ValueError) as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                finally:
                    sock.close()
                changes, _ = differences(before, snapshot(env), env)
                if problem or changes:
                    failures.append(
                        f"{kind} #{round_}: {'; '.join(filter(None, [problem, *changes]))}"
                    )
    return ClassResult(
        "serving: bodies that stall, trickle or never end",
        settings.backend,
        trials,
        len(failures),
        time.perf_counter() - started,
        [
            f"- {rounds} rounds of a load body that stops, one of 16 bytes every 0.1 s "
            f"(408 after {SHORT.body_idle_timeout:g} s at under {SHORT.body_min_rate} B/s), "
            "and an endless one (refused past the 4 MiB bound set): catalog unchanged, no "
            "spool left, others served meanwhile",
            *(f"- FAILED {line}" for line in failures),
        ],
    )


def _endless(base: str) -> str | None:
    """An upload that never ends, while another client asks for /_ping."""

    def forever() -> Iterator[bytes]:
        while True:
            yield b"\0" * 65536

    problems: list[str] = []

    def upload() -> None:
        try:
            response = httpx.post(base + "/images/load", content=forever(), timeout=60)
        except httpx.HTTPError:
            return  # cut off once answered: the answer is what matters, checked below
        errors = [json.loads(line).get("error") for line in response.text.splitlines()]
        if not any(e and "larger than this server accepts" in e for e in errors):
            problems.append(f"endless upload answered {response.text[:200]!r}")

    thread = threading.Thread(target=upload)
    thread.start()
    if httpx.get(base + "/_ping", timeout=10).status_code != 200:
        problems.append("others were not served meanwhile")
    thread.join(90)
    if thread.is_alive():
        problems.append("the endless upload was never cut off")
    return "; ".join(problems) or None


# --- busy -------------------------------------------------------------------------------


def busy_trials(settings: RunSettings, env: CatalogUnderTest) -> ClassResult:
    started = time.perf_counter()
    failures: list[str] = []
    trials = 0
    with in_process(env) as base:
        port = int(base.rsplit(":", 1)[1])
        holders = []
        try:
            for _ in range(SHORT.max_requests):  # uploads in progress hold every slot
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                sock.sendall(_load_head(port, 10_000_000) + b"\0" * 60_000)
                holders.append(sock)
            time.sleep(0.3)
            for _ in range(5):
                trials += 1
                response = httpx.get(base + "/_ping", timeout=10)
                ok = (
                    response.status_code == 503
                    and response.headers.get("content-type") == "application/json"
                    and response.headers.get("retry-after") == "1"
                    and response.json().get("message", "").startswith("the server is busy")
                )
                if not ok:
                    failures.append(f"busy answer {response.status_code} {response.text[:200]!r}")
        finally:
            for sock in holders:
                sock.close()
        trials += 1
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if httpx.get(base + "/_ping", timeout=10).status_code == 200:
                break
            time.sleep(0.2)
        else:
            failures.append("not served again once the uploads went")
    return ClassResult(
        "serving: busy answers",
        settings.backend,
        trials,
        len(failures),
        time.perf_counter() - started,
        [
            f"- {SHORT.max_requests} uploads hold every request slot: others get 503, JSON, "
            "Retry-After; served again once they go",
            *(f"- FAILED {line}" for line in failures),
        ],
    )


# --- browsers, and the real clients -----------------------------------------------------


def browser_trials(settings: RunSettings, running: Running) -> ClassResult:
    started = time.perf_counter()
    failures: list[str] = []
    trials = 0
    refused = [
        ("POST", "/images/prune", {"Origin": "https://evil.example"}),
        ("DELETE", "/images/hostile:1", {"Origin": "null"}),
        ("POST", "/v1.50/images/hostile:1/tag?repo=x", {"Origin": running.base}),
        ("GET", "/images/json", {"Host": f"evil.example:{running.port}"}),
        ("POST", "/images/prune", {"Host": "rebind.attacker.example"}),
        ("GET", "/catalog/info", {"Host": "localhost.evil.example"}),
    ]
    for method, path, headers in refused:
        trials += 1
        response = httpx.request(method, running.base + path, headers=headers, timeout=10)
        if response.status_code != 403 or "message" not in response.json():
            failures.append(f"{method} {path} {headers}: {response.status_code}")
    for host in (f"127.0.0.1:{running.port}", f"localhost:{running.port}", "api.moby.localhost"):
        trials += 1
        response = httpx.get(running.base + "/_ping", headers={"Host": host}, timeout=10)
        if response.status_code != 200:
            failures.append(f"Host {host}: {response.status_code}")
    with httpx.Client(
        transport=httpx.HTTPTransport(uds=str(running.unix)), base_url="http://evil.example"
    ) as unix_client:
        trials += 1
        if unix_client.get("/_ping").status_code != 200:
            failures.append("a unix socket request with any Host was refused")
    clients = 0
    docker = shutil.which("docker")
    if docker is not None:
        for host in (f"tcp://127.0.0.1:{running.port}", f"unix://{running.unix}"):
            for args in (["version"], ["images"]):
                trials += 1
                clients += 1
                done = subprocess.run(
                    [docker, *args],
                    capture_output=True,
                    text=True,
                    env={
                        "PATH": os.environ.get("PATH", ""),
                        "DOCKER_HOST": host,
                        "DOCKER_CONFIG": str(settings.workdir / "docker-config"),
                    },
                    timeout=60,
                    check=False,
                )
                if done.returncode != 0:
                    failures.append(f"docker {' '.join(args)} over {host}: {done.stderr[-200:]!r}")
    try:  # docker-py (a test dependency) has no type stubs
        docker_py: Any = importlib.import_module("docker")
    except ImportError:
        docker_py = None
    if docker_py is not None:
        for url in (f"tcp://127.0.0.1:{running.port}", f"unix://{running.unix}"):
            trials += 1
            clients += 1
            try:
                client = docker_py.DockerClient(base_url=url)
                if not any("hostile:1" in image.tags for image in client.images.list()):
                    failures.append(f"docker-py over {url} did not list hostile:1")
                client.close()
            except Exception as exc:  # docker-py raises its own errors
                failures.append(f"docker-py over {url}: {type(exc).__name__}: {exc}")
    return ClassResult(
        "serving: browsers refused, clients served",
        settings.backend,
        trials,
        len(failures),
        time.perf_counter() - started,
        [
            "- requests with Origin, or a Host naming another server, refused 403 over TCP; "
            "IP addresses, localhost names and any Host over the unix socket served; "
            f"{clients} runs of the real docker CLI and docker-py over TCP and unix"
            + ("" if docker else " (no docker CLI on PATH)"),
            *(f"- FAILED {line}" for line in failures),
        ],
    )


# --- spools -----------------------------------------------------------------------------


def spool_trials(settings: RunSettings, env: CatalogUnderTest, rounds: int) -> ClassResult:
    started = time.perf_counter()
    failures: list[str] = []
    spools = env.root / "tmp"
    for round_ in range(rounds):
        legacy = spools / f"serve-load-legacy{round_}.tar"
        spools.mkdir(parents=True, exist_ok=True)
        legacy.write_bytes(b"\0" * 65536)
        with catalog_serve(env) as running:
            if legacy.exists():
                failures.append(f"#{round_}: a leftover spool survived start-up")
            sock = socket.create_connection(("127.0.0.1", running.port), timeout=10)
            sock.sendall(_load_head(running.port, 100_000_000) + b"\0" * (4 << 20))
            time.sleep(0.5)
            running.process.kill()  # kill -9 in the middle of the upload
            running.process.wait()
            sock.close()
            named = [p.name for p in spools.iterdir()] if spools.exists() else []
            if named:
                failures.append(f"#{round_}: files left under tmp/: {named}")
    return ClassResult(
        "serving: spools of killed uploads",
        settings.backend,
        rounds,
        len(failures),
        time.perf_counter() - started,
        [
            "- `kill -9` of `catalog serve` 0.5 s into a 4 MiB upload leaves no spool file "
            "(uploads spool to anonymous files); a leftover of an older server goes at start-up",
            *(f"- FAILED {line}" for line in failures),
        ],
    )


def run(settings: RunSettings) -> list[ClassResult]:
    results = []
    with catalog_under_test(settings, "serving") as env:
        with catalog_serve(env) as running:
            results.append(flood_trials(settings, env, running))
            results.append(browser_trials(settings, running))
        results.append(body_trials(settings, env, 5 if settings.full else 1))
        results.append(busy_trials(settings, env))
        results.append(spool_trials(settings, env, 5 if settings.full else 1))
    return results
