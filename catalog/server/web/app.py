"""The web view as an ASGI application: its routes, its static files, its error pages,
behind its same-origin policy (`policy`).

It answers `/` (the images page) and everything under `/web/`; `catalog.server.app`
sends it those paths and Docker's and catalog's API paths to the Engine API, whose paths
stay as they are (none of them is `/` or under `/web/`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from catalog.context import Catalog
from catalog.errors import CatalogError
from catalog.server.web import pages
from catalog.server.web.policy import SameOriginPolicy
from catalog.server.web.templating import Pages

__all__ = ["WEB_PREFIX", "serves", "web_app"]

logger = logging.getLogger("catalog.server.web")

WEB_PREFIX = "/web/"


def serves(path: str) -> bool:
    """True for the paths the web view answers: `/` and `/web/...`."""
    return path == "/" or path == WEB_PREFIX.rstrip("/") or path.startswith(WEB_PREFIX)


Page = Callable[[Request], Response]


def _guarded(page: Page) -> Page:
    """The page, or an error page: a CatalogError's own message and status (404 for
    no such image, 400 for a bad option), and for a bug a 500 that names no detail
    (the log has the traceback)."""

    @functools.wraps(page)
    def guarded(request: Request) -> Response:
        try:
            return page(request)
        except CatalogError as exc:
            return pages.site_of(request).error(request, exc)
        except Exception:
            logger.exception("GET %s failed", request.url.path)
            return pages.site_of(request).render(
                request,
                "error.html",
                {"message": "Internal server error (see the server log)."},
                500,
            )

    return guarded


def _routes() -> list[Route | Mount]:
    return [
        Route("/", _guarded(pages.images_page), methods=["GET"]),
        Route("/web/images/{term:path}", _guarded(pages.image_page), methods=["GET"]),
        Route("/web/layers/{chain_id}", _guarded(pages.layer_page), methods=["GET"]),
        Route("/web/reports", _guarded(pages.reports_page), methods=["GET"]),
        Route("/web/reports/{name}.{kind}", _guarded(pages.report_download), methods=["GET"]),
        Route("/web/reports/{name}", _guarded(pages.report_page), methods=["GET"]),
        Mount(
            "/web/static",
            StaticFiles(packages=[("catalog.server.web", "static")]),
            name="static",
        ),
    ]


def web_app(catalog: Catalog, *, hosts: Collection[str] = ()) -> ASGIApp:
    """The web view of `catalog`; `hosts` are names (besides the local address, and
    `localhost` on loopback) a browser may use for the server."""
    site = pages.Site(catalog, Pages(source=catalog.location.display_url))

    async def http_error(request: Request, exc: Exception) -> Response:
        # Starlette's own: no such path (404).
        assert isinstance(exc, HTTPException)
        message = "No such page." if exc.status_code == 404 else exc.detail
        return site.render(request, "error.html", {"message": message}, exc.status_code)

    app = Starlette(routes=_routes(), exception_handlers={HTTPException: http_error})
    app.state.site = site
    return SameOriginPolicy(app, hosts=hosts)
