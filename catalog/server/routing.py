"""Routing and errors, as moby's router does them: routes registered by method and path
(`route`), Docker's status for each error (`status_of`), and JSON responses."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from catalog.errors import CatalogError, Conflict, InvalidArgument, NotFound
from catalog.server import documents
from catalog.server.versions import ApiVersion

if TYPE_CHECKING:
    from catalog.server.app import EngineApp


JSON = "application/json"
TAR = "application/x-tar"
PAGE_NOT_FOUND = "page not found"


class RequestTooLarge(CatalogError):
    """A request body over the server's bound (413)."""


def status_of(error: CatalogError) -> int:
    """Docker's status for an error (moby httpstatus.FromError)."""
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, Conflict):
        return 409
    if isinstance(error, RequestTooLarge):
        return 413
    if isinstance(error, InvalidArgument):  # its kinds too: filters, references, archives
        return 400
    return 500


def json_response(document: Any, status: int = 200, *, sort_keys: bool = False) -> Response:
    return Response(
        documents.go_json(document, sort_keys=sort_keys), status_code=status, media_type=JSON
    )


def error_response(message: str, status: int) -> Response:
    return json_response({"message": message}, status)


Handler = Callable[["EngineApp", Request, ApiVersion, str], Awaitable[Response]]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    # Docker's routes take a /vX.Y prefix; catalog's own do not.
    versioned: bool = True


ROUTES: list[Route] = []


def route(method: str, path: str, *, versioned: bool = True) -> Callable[[Handler], Handler]:
    """Register a handler; `{name}` in `path` matches greedily, as gorilla/mux's `.*`."""
    regex = "^" + re.escape(path).replace(re.escape("{name}"), "(?P<name>.*)") + "$"

    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method, re.compile(regex, re.DOTALL), handler, versioned))
        return handler

    return register
