"""ASGI middleware around the Engine API: which requests may reach it at all
(`EngineApiGuard`), and how many run at once (`RequestLimit`); docs/engine-api.md §7.

Loopback is not a boundary for browsers. A web page the user visits can send simple
cross-origin POSTs to `http://127.0.0.1:2375` (CSRF), and a name of the attacker's that
resolves first to its own server, then to 127.0.0.1, makes the page same-origin with the
Engine API (DNS rebinding). Either way it could prune or retag every image. The docker CLI
and docker-py never send an `Origin` header and always address the server by the name
they were given, so `EngineApiGuard` refuses, with Docker's JSON error and status 403:

- a request that carries an `Origin` header (browsers send one with every cross-origin
  request and with every POST);
- over TCP, a request whose `Host` does not name this server: an IP address is fine (a
  browser sends one only when the page's own address is that IP, so nothing was
  rebound), and so are `localhost` and names under `.localhost` (browsers resolve those
  to loopback themselves), this machine's host name, and the names the server was told
  it serves (`catalog serve --host NAME`). A rebinding attack carries the attacker's name;
- over a unix socket, nothing about `Host`: browsers cannot reach a unix socket (its file
  mode guards it), and clients send what they like there (the docker CLI
  `api.moby.localhost`, before 23.0 `docker`; docker-py `localhost`).

The guard applies to every path except those `own_policy` claims: pages for browsers (the
web view) pass through untouched and check same-origin themselves.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from catalog.server import documents

__all__ = ["EngineApiGuard", "HostPolicy", "RequestLimit", "guarded"]

logger = logging.getLogger("catalog.server")


async def send_error(
    send: Send, status: int, message: str, *, close: bool = False, retry_after: int | None = None
) -> None:
    """Docker's JSON error (`{"message": ...}`), as a whole response."""
    body = documents.go_json({"message": message})
    common = documents.common_headers()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *[(key.lower().encode(), value.encode()) for key, value in common.items()],
    ]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    if close:  # the request's body, if any, is not read: the connection cannot be reused
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _over_unix_socket(scope: Scope) -> bool:
    # uvicorn gives a unix socket's path without a port as the server address.
    server = scope.get("server")
    return server is None or server[1] is None


@dataclass(frozen=True)
class HostPolicy:
    """The `Host` values a TCP request may carry (see the module doc)."""

    names: frozenset[str]

    @classmethod
    def serving(cls, names: Iterable[str] = ()) -> HostPolicy:
        """The policy of a server told it serves `names` (its --host), on this machine."""
        known = {socket.gethostname(), *names}
        return cls(frozenset(_normalized(name) for name in known if name))

    def allows(self, host: str | None) -> bool:
        if host is None:
            return True  # HTTP/1.0 without Host: no browser sends that
        name = _hostname(host)
        if not name:
            return False
        if name == "localhost" or name.endswith(".localhost") or name in self.names:
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True


def _normalized(name: str) -> str:
    return name.strip().strip("[]").rstrip(".").lower()


def _hostname(host: str) -> str:
    """The host part of a Host header: `[::1]:2375` is `::1`, `Name.:80` is `name`."""
    host = host.strip()
    if host.startswith("["):
        end = host.find("]")
        return _normalized(host[1:end]) if end > 0 else ""
    name, _, _port = host.partition(":")
    return _normalized(name)


class EngineApiGuard:
    """Refuses requests a browser could have been made to send (see the module doc)."""

    def __init__(
        self,
        app: ASGIApp,
        policy: HostPolicy,
        *,
        own_policy: Callable[[str], bool] = lambda path: False,
    ) -> None:
        self.app = app
        self.policy = policy
        self.own_policy = own_policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.own_policy(str(scope["path"])):
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        if origin is not None:
            logger.warning("refused %s %s with Origin %r", scope["method"], scope["path"], origin)
            await send_error(
                send,
                403,
                f"refusing a request from a web page (Origin: {origin[:200]}): the Engine "
                "API is for the docker CLI and SDKs, which send no Origin",
                close=True,
            )
            return
        host = _header(scope, b"host")
        if not _over_unix_socket(scope) and not self.policy.allows(host):
            logger.warning("refused %s %s with Host %r", scope["method"], scope["path"], host)
            await send_error(
                send,
                403,
                f"refusing a request for host {host[:200] if host else ''!r}: this server "
                "answers requests addressed to it by an IP address, localhost or its own names",
                close=True,
            )
            return
        await self.app(scope, receive, send)


class RequestLimit:
    """At most `limit` requests at once; more are answered 503 with Docker's JSON error
    (and `Retry-After`) at once, instead of waiting or being dropped."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.running = 0
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.running >= self.limit:
            self.refused += 1
            await send_error(
                send,
                503,
                f"the server is busy: {self.running} requests are being served; try again",
                close=True,
                retry_after=1,
            )
            return
        self.running += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.running -= 1


def guarded(
    app: ASGIApp,
    *,
    max_requests: int,
    policy: HostPolicy,
    own_policy: Callable[[str], bool] = lambda path: False,
) -> RequestLimit:
    """`app` behind both: requests are counted first, so a refused one costs nothing."""
    return RequestLimit(EngineApiGuard(app, policy, own_policy=own_policy), max_requests)
