"""The web view's same-origin policy, as ASGI middleware around its pages (docs/web.md
§5).

The pages are read-only and for a browser on the same machine (or one the server was
told to serve), so the policy is strict and needs no session or token:

- **No state-changing methods.** GET and HEAD only; anything else is 405 before any page
  code runs. There is no form that writes, so cross-site request forgery has nothing to
  forge.
- **Host must be the served address** (DNS rebinding): a page at `evil.example` whose
  name is made to resolve to 127.0.0.1 sends `Host: evil.example`, which is refused. The
  Host's port must be the connection's local port; its name must be the local address
  itself (an IP literal), `localhost` when that address is loopback, or a name the
  server was started with (`catalog serve --host NAME`). A unix socket, which no web
  page can reach, has no address to check.
- **Cross-site requests only as navigations**: a request whose `Origin` is another
  origin is refused, and so is a cross-site one (`Sec-Fetch-Site: cross-site`) that is not
  the user following a link to a page, so other sites can neither read nor embed the
  pages.
- **Headers on every answer**: a Content-Security-Policy that allows only the server's
  own scripts, styles and images (and data: images: the charts are SVG images inlined as
  data), no framing, no referrer, `nosniff`, and `no-store` (the catalog changes).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
SAFE_METHODS = ("GET", "HEAD")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _split_host(value: str) -> tuple[str, int | None] | None:
    """`name[:port]` or `[v6]:port` as (lower-case name, port); None if malformed."""
    try:
        parts = urlsplit("//" + value)
        port = parts.port
    except ValueError:
        return None
    if parts.hostname is None or parts.username is not None or parts.path:
        return None
    return parts.hostname.lower(), port


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return None


def host_allowed(scope: Scope, names: Collection[str]) -> bool:
    """The request's Host names this server, as the module doc says."""
    server = scope.get("server")
    if server is None or server[1] is None:
        return True  # a unix socket
    local_host, local_port = str(server[0]), int(server[1])
    host = Headers(scope=scope).get("host")
    if host is None:
        return False
    split = _split_host(host)
    if split is None:
        return False
    name, port = split
    if (port or _DEFAULT_PORTS.get(scope.get("scheme", "http"))) != local_port:
        return False
    local = _address(local_host)
    if name in names:
        return True
    if name == "localhost":
        return local is not None and local.is_loopback
    given = _address(name)
    return given is not None and local is not None and given == local


def _same_origin(scope: Scope, headers: Headers) -> bool:
    origin = headers.get("origin")
    if origin is not None and origin != "null":
        own = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}"
        if origin.lower() != own.lower():
            return False
    site = headers.get("sec-fetch-site")
    if site == "cross-site":
        navigating = headers.get("sec-fetch-mode") == "navigate"
        return navigating and headers.get("sec-fetch-dest") == "document"
    return True


class SameOriginPolicy:
    """Refuse what the module doc says; add the security headers to every answer."""

    def __init__(self, app: ASGIApp, *, hosts: Collection[str] = ()) -> None:
        self.app = app
        self.hosts = {host.lower().strip("[]") for host in hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    headers.setdefault(key, value)
            await send(message)

        refusal = self.refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def refusal(self, scope: Scope) -> PlainTextResponse | None:
        if scope["method"] not in SAFE_METHODS:
            return PlainTextResponse(
                "Method Not Allowed: the web view is read-only (GET and HEAD)\n",
                405,
                headers={"Allow": ", ".join(SAFE_METHODS)},
            )
        if not host_allowed(scope, self.hosts):
            return PlainTextResponse(
                "Misdirected Request: the Host header does not name this server\n", 421
            )
        if not _same_origin(scope, Headers(scope=scope)):
            return PlainTextResponse("Forbidden: a request from another site\n", 403)
        return None
