"""Docker's container endpoints: `GET /containers/json` (docker ps) and
`GET /containers/{id}/json` (docker inspect) from the containers the catalog records,
and every container-runtime endpoint (create, start, attach, wait, exec, logs, ...)
answered 501 with one line the docker CLI prints as it is: catalog records containers
but runs none (a 404 on create would make the CLI look for the image and pull it);
docs/engine-api.md §9."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from catalog.docker.containers import go_atoi
from catalog.errors import CatalogError, InvalidArgument
from catalog.server.container_documents import NOT_RUN, container_inspect, container_summary
from catalog.server.params import bool_value, filters_param
from catalog.server.routing import JSON, error_response, json_response, route, status_of
from catalog.server.versions import ApiVersion
from catalog.services.container_listing import inspect_container, list_containers
from catalog.services.containers import resolve_container

if TYPE_CHECKING:
    from catalog.server.app import EngineApp


@route("GET", "/containers/json")
async def containers_json(
    app: EngineApp, request: Request, version: ApiVersion, name: str
) -> Response:
    params = request.query_params
    filters = filters_param(params)
    limit = 0
    if params.get("limit"):
        try:
            limit = go_atoi(params["limit"])
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
    views = await app.read(
        lambda session: list_containers(
            session=session,
            all_states=bool_value(params, "all"),
            filters=filters,
            limit=limit,
            size=bool_value(params, "size"),
        )
    )
    now = datetime.now(UTC)
    return json_response([container_summary(view, version, now) for view in views])


@route("GET", "/containers/{name}/json")
async def container_json(
    app: EngineApp, request: Request, version: ApiVersion, name: str
) -> Response:
    size = bool_value(request.query_params, "size")
    details = await app.read(
        lambda session: inspect_container(session=session, term=name, size=size)
    )
    return json_response(container_inspect(details, version, datetime.now(UTC)))


async def _not_run(app: EngineApp, request: Request, version: ApiVersion, name: str) -> Response:
    """501 NOT_RUN; for a named container, after docker's lookup (so a missing one is
    still `No such container`)."""
    status = 501
    if name:
        try:
            await app.read(lambda session: resolve_container(session, name))
        except CatalogError as exc:
            if request.method != "HEAD":
                raise
            status = status_of(exc)
    if request.method == "HEAD":  # no body after a HEAD answer
        return Response(status_code=status, headers={"Content-Length": "0"}, media_type=JSON)
    return error_response(NOT_RUN, status)


# moby's container router, the routes that need a running (or runnable) container.
RUNTIME_ROUTES = (
    ("POST", "/containers/create"),
    ("POST", "/commit"),
    ("GET", "/containers/{name}/export"),
    ("GET", "/containers/{name}/changes"),
    ("GET", "/containers/{name}/logs"),
    ("GET", "/containers/{name}/top"),
    ("GET", "/containers/{name}/stats"),
    ("GET", "/containers/{name}/attach/ws"),
    ("GET", "/containers/{name}/archive"),
    ("HEAD", "/containers/{name}/archive"),
    ("PUT", "/containers/{name}/archive"),
    ("POST", "/containers/{name}/kill"),
    ("POST", "/containers/{name}/pause"),
    ("POST", "/containers/{name}/unpause"),
    ("POST", "/containers/{name}/restart"),
    ("POST", "/containers/{name}/start"),
    ("POST", "/containers/{name}/stop"),
    ("POST", "/containers/{name}/wait"),
    ("POST", "/containers/{name}/resize"),
    ("POST", "/containers/{name}/attach"),
    ("POST", "/containers/{name}/exec"),
    ("POST", "/containers/{name}/rename"),
    ("POST", "/containers/{name}/update"),
)
for _method, _path in RUNTIME_ROUTES:
    route(_method, _path)(_not_run)
