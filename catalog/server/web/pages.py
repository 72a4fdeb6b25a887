"""The web view's pages: the images listing, an image, a layer, the reports.

Each page reads in one read transaction, through the same services as the CLI and the
Engine API (which take a session and never commit), and renders after it. Handlers are
plain functions: Starlette runs them in its worker threads, as the services are
synchronous.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from catalog.context import Catalog
from catalog.errors import CatalogError, NotFound
from catalog.presentation.reportformat import OPTION_FLAGS, as_csv, as_json, is_total, table_cell
from catalog.server.routing import status_of
from catalog.server.web.forms import DEFAULT_PAGE_SIZE, PAGE_SIZES, ImagesQuery, ReportForm
from catalog.server.web.templating import Pages, svg_data_uri
from catalog.services.deletepreview import preview_delete
from catalog.services.imagedetail import image_detail, layer_detail
from catalog.services.imagepages import ImagePage, list_images_page
from catalog.services.inspect import image_history, inspect_image
from catalog.services.reports import REPORTS, Column, ReportResult, get_report, run_report

T = TypeVar("T")

# Rows a report's page shows (its totals rows too); the downloads hold them all.
MAX_REPORT_ROWS = 500
# Report columns whose values are images or layers the view has pages for.
_LINKED_COLUMNS = {"image_id": "/web/images/", "chain_id": "/web/layers/"}


@dataclass(frozen=True)
class Site:
    """What every page needs: the catalog it reads and the renderer."""

    catalog: Catalog
    pages: Pages

    def read(self, work: Callable[[Session], T]) -> T:
        with self.catalog.database.read() as session:
            return work(session)

    def render(
        self, request: Request, name: str, context: dict[str, Any], status: int = 200
    ) -> Response:
        return self.pages.render(request, name, context, status)

    def error(self, request: Request, error: CatalogError) -> Response:
        status = status_of(error)
        return self.render(request, "error.html", {"message": error.message}, status)


def site_of(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


# --- images -----------------------------------------------------------------------------


def images_page(request: Request) -> Response:
    site = site_of(request)
    query = ImagesQuery.from_params(request.query_params)
    page: ImagePage | None = None
    error: CatalogError | None = None
    try:
        page = site.read(
            lambda session: list_images_page(
                session=session,
                filters=query.filters(),
                all_images=query.all_images,
                sort=query.sort,
                descending=query.descending,
                after=query.after,
                before=query.before,
                limit=query.limit,
            )
        )
    except CatalogError as exc:
        # A filter Docker refuses (or an image it names that is not there): the page
        # says why, with the form as it was sent, so it can be corrected.
        error = exc
    return site.render(
        request,
        "images.html",
        {
            "section": "images",
            "query": query,
            "page": page,
            "error": error.message if error is not None else None,
            "page_sizes": PAGE_SIZES,
            "default_limit": DEFAULT_PAGE_SIZE,
        },
        status_of(error) if error is not None else 200,
    )


# --- an image, a layer ------------------------------------------------------------------


def image_page(request: Request) -> Response:
    site = site_of(request)
    term = request.path_params["term"]

    def read(session: Session) -> dict[str, Any]:
        detail = image_detail(session=session, term=term)
        removal = preview_delete(session=session, image_id=detail.id)
        forced = (
            preview_delete(session=session, image_id=detail.id, force=True)
            if removal.conflict is not None and removal.forcible
            else None
        )
        return {
            "image": detail,
            "inspect": inspect_image(session=session, term=detail.id),
            "history": image_history(session=session, term=detail.id),
            "removal": removal,
            "forced": forced,
        }

    return site.render(request, "image.html", {"section": "images", **site.read(read)})


def layer_page(request: Request) -> Response:
    site = site_of(request)
    chain_id = request.path_params["chain_id"]
    layer = site.read(lambda session: layer_detail(session=session, chain_id=chain_id))
    return site.render(request, "layer.html", {"section": "images", "layer": layer})


# --- reports ----------------------------------------------------------------------------


def reports_page(request: Request) -> Response:
    return site_of(request).render(
        request, "reports.html", {"section": "reports", "reports": list(REPORTS.values())}
    )


def _cell(column: Column, value: Any, row: dict[str, Any]) -> dict[str, Any]:
    """A table cell: its text, the exact value as a tooltip, a link where there is a page."""
    text = table_cell(column, value, total=is_total(row))
    exact = None
    if value is not None and column.kind in ("id", "bytes"):
        exact = f"{value} bytes" if column.kind == "bytes" else str(value)
    link = _LINKED_COLUMNS.get(column.name)
    return {
        "text": text,
        "exact": exact,
        "href": link + str(value) if link is not None and value is not None else None,
        "numeric": column.kind in ("count", "bytes"),
        "id": column.kind == "id",
    }


def _shown_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first MAX_REPORT_ROWS rows, and the totals rows wherever they are."""
    if len(rows) <= MAX_REPORT_ROWS:
        return rows
    return rows[:MAX_REPORT_ROWS] + [row for row in rows[MAX_REPORT_ROWS:] if is_total(row)]


def report_page(request: Request) -> Response:
    site = site_of(request)
    report = get_report(request.path_params["name"])
    form: ReportForm | None = None
    result: ReportResult | None = None
    error: CatalogError | None = None
    try:
        form = ReportForm.from_params(report, request.query_params)
        options = form.options()
        result = site.read(
            lambda session: run_report(session=session, name=report.name, options=options)
        )
    except CatalogError as exc:
        error = exc
    chart = None
    if result is not None:
        # matplotlib is loaded on the first report page, not when the server starts.
        from catalog.presentation.reportcharts import report_chart

        svg = report_chart(report.name, result.rows)
        chart = svg_data_uri(svg) if svg is not None else None
    shown = _shown_rows(result.rows) if result is not None else []
    rows = [[_cell(c, row[c.name], row) for c in report.columns] for row in shown]
    return site.render(
        request,
        "report.html",
        {
            "section": "reports",
            "report": report,
            "values": form.values if form is not None else dict(request.query_params),
            "defaults": {name: getattr(report.defaults, name) for name in report.options},
            "flags": OPTION_FLAGS,
            "result": result,
            "rows": rows,
            "row_count": len(result.rows) if result is not None else 0,
            "truncated_to": (
                MAX_REPORT_ROWS if result is not None and len(shown) < len(result.rows) else None
            ),
            "chart": chart,
            "query": form.query() if form is not None else "",
            "error": error.message if error is not None else None,
        },
        status_of(error) if error is not None else 200,
    )


def report_download(request: Request) -> Response:
    """A report as `catalog report NAME --format csv|json` writes it, as a download."""
    site = site_of(request)
    name, kind = request.path_params["name"], request.path_params["kind"]
    if kind not in ("csv", "json"):
        raise NotFound(f"no such download: {name}.{kind} (csv or json)")
    report = get_report(name)
    options = ReportForm.from_params(report, request.query_params).options()
    result = site.read(
        lambda session: run_report(session=session, name=report.name, options=options)
    )
    body = as_csv(result) if kind == "csv" else as_json(result)
    media = "text/csv; charset=utf-8" if kind == "csv" else "application/json"
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{report.name}.{kind}"'},
    )
