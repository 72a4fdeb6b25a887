"""The web view's templates: Jinja2 with autoescaping on for every template, so every
value a page shows (names, labels, commands, messages: user data) is HTML-escaped, and
filters that show sizes, IDs and times as the CLI shows them."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from catalog.docker.humanize import created_since, human_size
from catalog.domain.digest import short_id
from catalog.domain.reference import Named, familiar_string


def _size(value: int | None, precision: int = 3) -> str:
    return "" if value is None else human_size(value, precision)


def _since(value: datetime | int | None) -> str:
    if value is None or value == 0:
        return "unknown"
    return created_since(value)


def _utc(value: datetime | int | None) -> str:
    if value is None or value == 0:
        return ""
    when = datetime.fromtimestamp(value, UTC) if isinstance(value, int) else value
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _iso(value: datetime | int | None) -> str:
    if value is None or value == 0:
        return ""
    when = datetime.fromtimestamp(value, UTC) if isinstance(value, int) else value
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _short_digest(reference: str) -> str:
    """`name@sha256:0123456789ab` for a long `name@sha256:...`."""
    name, at, digest = reference.rpartition("@")
    return f"{name}@{digest[:19]}" if at else reference


def _familiar(reference: Named) -> str:
    return familiar_string(reference)


def svg_data_uri(svg: str) -> str:
    """An SVG as a data: URI for an <img>: the chart keeps its own styles, which the
    page's Content-Security-Policy would refuse inline."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii")


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("catalog.server.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        size=_size,
        since=_since,
        utc=_utc,
        iso=_iso,
        short_id=short_id,
        short_digest=_short_digest,
        familiar=_familiar,
    )
    return env


class Pages:
    """Renders the templates into responses."""

    def __init__(self, *, source: str) -> None:
        self.templates = Jinja2Templates(env=environment())
        # Shown in every page's footer: which catalog this is.
        self.source = source

    def render(
        self, request: Request, name: str, context: dict[str, Any], status: int = 200
    ) -> Response:
        return self.templates.TemplateResponse(
            request, name, {"source": self.source, "section": "", **context}, status_code=status
        )
