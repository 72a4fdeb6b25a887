"""catalog's own endpoints, outside Docker's paths (under `/catalog/`, unversioned): info,
the reports, squash, and the OpenAPI document that describes them."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from catalog.errors import InvalidArgument
from catalog.operations.squash import squash_image
from catalog.server import documents
from catalog.server.openapi import openapi_document
from catalog.server.routing import json_response, route
from catalog.server.versions import ApiVersion
from catalog.services.info import count_rows
from catalog.services.reports import (
    MAX_COUNT,
    OPTION_NAMES,
    REPORTS,
    ReportOptions,
    get_report,
    run_report,
)

if TYPE_CHECKING:
    from catalog.server.app import EngineApp


@route("GET", "/catalog/openapi.json", versioned=False)
async def catalog_openapi(
    app: EngineApp, request: Request, version: ApiVersion, name: str
) -> Response:
    return json_response(openapi_document())


@route("GET", "/catalog/info", versioned=False)
async def catalog_info(
    app: EngineApp, request: Request, version: ApiVersion, name: str
) -> Response:
    counts = await app.read(lambda session: count_rows(session=session))
    return json_response(
        {
            "images": counts.images,
            "layers": counts.layers,
            "references": counts.references,
            "containers": counts.containers,
            "blobs": counts.blobs,
            "blob_bytes": counts.blob_bytes,
        }
    )


@route("GET", "/catalog/reports", versioned=False)
async def catalog_reports(
    app: EngineApp, request: Request, version: ApiVersion, name: str
) -> Response:
    return json_response([documents.report_description(r) for r in REPORTS.values()])


def _report_options(params: QueryParams) -> ReportOptions:
    unknown = sorted(set(params) - set(OPTION_NAMES))
    if unknown:
        raise InvalidArgument(f"unknown report option: {unknown[0]}")
    numbers: dict[str, int | None] = {}
    for key in ("max_tags", "limit"):
        value = params.get(key)
        if value is None:
            numbers[key] = None
            continue
        # Decimal digits only, as Go's Atoi: Python's int() also takes `1_000`, spaces
        # and other scripts' digits.
        if not _WHOLE_NUMBER.fullmatch(value):
            raise InvalidArgument(f"invalid {key} value: {value!r} (a whole number)")
        if len(value.lstrip("+-0")) > len(str(MAX_COUNT)):
            raise InvalidArgument(
                f"invalid {key} value: {value} (must be between 1 and {MAX_COUNT})"
            )
        numbers[key] = int(value)
    period = params.get("period")
    if period is not None and period not in ("week", "month"):
        raise InvalidArgument(f"invalid period value: {period!r} (week or month)")
    return ReportOptions(
        older_than=params.get("older_than"),
        max_tags=numbers["max_tags"],
        period=period,  # type: ignore[arg-type]  # checked just above
        limit=numbers["limit"],
    )


@route("GET", "/catalog/reports/{name}", versioned=False)
async def catalog_report(
    app: EngineApp, request: Request, version: ApiVersion, name: str
) -> Response:
    get_report(name)  # an unknown report is a 404 before any option is looked at
    options = _report_options(request.query_params)
    result = await app.read(lambda session: run_report(session=session, name=name, options=options))
    return json_response(documents.report_result(result))


_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")
_SQUASH_FIELDS = {"parent": str, "layers": int, "tags": list, "message": str}


@route("POST", "/catalog/images/{name}/squash", versioned=False)
async def catalog_squash(
    app: EngineApp, request: Request, version: ApiVersion, name: str
) -> Response:
    body = await app.json_body(request)
    if not isinstance(body, dict):
        raise InvalidArgument("the body must be a JSON object")
    for key, value in body.items():
        kind = _SQUASH_FIELDS.get(key)
        if kind is None:
            raise InvalidArgument(f"unknown field: {key}")
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise InvalidArgument(f"{key} must be {kind.__name__}")
    tags = body.get("tags") or []
    if not all(isinstance(tag, str) for tag in tags):
        raise InvalidArgument("tags must be a list of strings")
    result = await app.run(
        lambda catalog: squash_image(
            catalog,
            name,
            parent=body.get("parent"),
            layers=body.get("layers"),
            tags=tags,
            message=body.get("message"),
        )
    )
    return json_response(
        {
            "id": result.image_id,
            "diff_id": result.diff_id,
            "diff_size": result.diff_size,
            "squashed_layers": result.squashed_layers,
            "parent_id": result.parent_id,
        },
        201,
    )
