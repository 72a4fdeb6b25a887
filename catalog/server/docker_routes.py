"""Docker's image endpoints: each parses its parameters as the daemon does, calls the same
services and operations as the CLI, and shapes the answer for the API version asked."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from catalog.docker.gojson import go_json_text
from catalog.errors import Conflict, InvalidArgument, InvalidReference, NotFound
from catalog.operations.removal import prune_images, remove_images
from catalog.server import documents
from catalog.server.container_documents import container_summary
from catalog.server.jobs import LoadJob
from catalog.server.params import (
    bool_value,
    bool_value_or_default,
    decode_platform,
    filters_param,
    parse_go_bool,
    platforms_param,
    repo_tag_reference,
)
from catalog.server.routing import JSON, RequestTooLarge, json_response, route
from catalog.server.versions import ApiVersion
from catalog.services.container_listing import container_counts, container_views, list_containers
from catalog.services.info import count_rows
from catalog.services.inspect import image_history, inspect_image
from catalog.services.listing import (
    SummaryShape,
    disk_usage_totals,
    image_rows,
    json_array,
    json_items,
    listing_query,
    summary_writer,
)
from catalog.services.tag import tag_image

if TYPE_CHECKING:
    from catalog.server.app import EngineApp


@route("HEAD", "/_ping")
@route("GET", "/_ping")
async def ping(app: EngineApp, request: Request, version: ApiVersion, name: str) -> Response:
    headers = documents.ping_headers()
    if request.method == "HEAD":
        headers["Content-Length"] = "0"
        return Response(status_code=200, headers=headers, media_type="text/plain")
    return Response(b"OK", headers=headers, media_type="text/plain")


@route("GET", "/version")
async def version_(app: EngineApp, request: Request, version: ApiVersion, name: str) -> Response:
    return json_response(documents.engine_version())


@route("GET", "/info")
async def info(app: EngineApp, request: Request, version: ApiVersion, name: str) -> Response:
    def work(session: Session) -> tuple[int, int, int]:
        counts = count_rows(session=session)
        running = len(list_containers(session=session))
        return counts.images, counts.containers, running

    images, containers, running = await app.read(work)
    return json_response(
        documents.engine_info(
            images=images,
            containers=containers,
            running=running,
            name=socket.gethostname(),
            cpus=os.cpu_count() or 1,
        )
    )


@route("GET", "/images/json")
async def images_json(app: EngineApp, request: Request, version: ApiVersion, name: str) -> Response:
    params = request.query_params
    filters = filters_param(params)
    if version.before("1.25") and "reference" not in filters and params.get("filter"):
        filters.add("reference", params["filter"])
    shared_size = version.at_least("1.42") and bool_value(params, "shared-size")
    all_images = bool_value(params, "all")
    write = summary_writer(shared_size=shared_size, shape=summary_shape(version))

    def answer(session: Session) -> Iterator[bytes]:
        # A bad filter raises before the first byte: an ordinary error response.
        listing = listing_query(session=session, filters=filters, all_images=all_images)
        rows = image_rows(session=session, listing=listing)
        for piece in json_array(write(row) for row in rows):
            yield piece.encode()

    return await app.read_response(answer)


def summary_shape(version: ApiVersion) -> SummaryShape:
    """An ImageSummary of GET /images/json at `version` (as `documents.image_summary`)."""
    return SummaryShape(
        placeholders=version.before("1.43"),
        containers_unknown=version.before("1.51"),
        virtual_size=version.before("1.44"),
    )


def df_summary_shape(version: ApiVersion) -> SummaryShape:
    """An image of /system/df at `version`: real container counts, no placeholders."""
    return SummaryShape(virtual_size=version.before("1.44"))


@route("GET", "/images/get")
async def images_get(app: EngineApp, request: Request, version: ApiVersion, name: str) -> Response:
    params = request.query_params
    platforms_param(params, version, "platform")
    return await app.archive_response(params.getlist("names"))


@route("POST", "/images/load")
async def images_load(app: EngineApp, request: Request, version: ApiVersion, name: str) -> Response:
    params = request.query_params
    platforms = platforms_param(params, version, "platform")
    if len(platforms) > 1:
        raise InvalidArgument("loading more than one platform at a time is not supported")
    quiet = bool_value_or_default(params, "quiet", True)
    try:
        spool = await app.spool_body(request)
    except RequestTooLarge as exc:
        # Load errors go in the message stream, as the daemon writes them.
        return StreamingResponse(_single(documents.error_message(exc.message)), media_type=JSON)
    job = LoadJob(
        app.catalog,
        spool,
        platform=platforms[0] if platforms else None,
        quiet=quiet,
        loop=asyncio.get_running_loop(),
    )
    job.start()
    return StreamingResponse(job.stream(), media_type=JSON)


async def _single(message: bytes) -> AsyncIterator[bytes]:
    yield message


@route("POST", "/images/prune")
async def images_prune(
    app: EngineApp, request: Request, version: ApiVersion, name: str
) -> Response:
    filters = filters_param(request.query_params)
    if not app.prune_lock.acquire(blocking=False):
        raise Conflict("a prune operation is already running")
    try:
        report = await app.run(lambda catalog: prune_images(catalog, filters))
    finally:
        app.prune_lock.release()
    return json_response(documents.prune_report(report.images_deleted, report.space_reclaimed))


@route("GET", "/system/df")
async def system_df(app: EngineApp, request: Request, version: ApiVersion, name: str) -> Response:
    params = request.query_params
    types: list[str] = []
    if version.at_least("1.42") and "type" in params:
        types = params.getlist("type")
        for kind in types:
            if kind not in documents.DF_TYPES:
                raise InvalidArgument(f"unknown object type: {kind}")
    verbose: bool | None = None
    raw_verbose = params.get("verbose", "")
    if version.at_least("1.52") and raw_verbose:
        verbose = parse_go_bool(raw_verbose)
        if verbose is None:
            raise InvalidArgument(f"invalid value for verbose: {raw_verbose}")
    wanted = set(types) if types else {"container", "image", "volume"}
    write = summary_writer(shared_size=True, shape=df_summary_shape(version))

    def answer(session: Session) -> Iterator[bytes]:
        totals = disk_usage_totals(session=session) if "image" in wanted else None
        container_count: int | None = None
        container_running = 0
        if "container" in wanted:
            container_count, container_running = container_counts(session=session)
        now = datetime.now(UTC)

        def items() -> Iterator[str]:
            rows = image_rows(session=session, listing=listing_query(session=session))
            return json_items(write(row) for row in rows)

        def container_items() -> Iterator[str]:
            # moby's disk usage lists them as `GET /containers/json?all=1&size=1`.
            views = container_views(session=session, size=True)
            return json_items(go_json_text(container_summary(v, version, now)) for v in views)

        pieces = documents.disk_usage_pieces(
            version=version,
            types=types,
            verbose=verbose,
            image_count=totals.total_count if totals is not None else None,
            image_items=items,
            layers_size=totals.total_size if totals is not None else 0,
            image_active=totals.active_count if totals is not None else 0,
            image_reclaimable=totals.reclaimable if totals is not None else 0,
            container_count=container_count,
            container_running=container_running,
            container_items=container_items,
        )
        for piece in pieces:
            yield piece.encode()

    return await app.read_response(answer)


@route("GET", "/images/{name}/json")
async def image_json(app: EngineApp, request: Request, version: ApiVersion, name: str) -> Response:
    params = request.query_params
    manifests = (
        version.at_least("1.48")
        and params.get("manifests", "") != ""
        and bool_value(params, "manifests")
    )
    platform = None
    if version.at_least("1.49") and params.get("platform"):
        platform = decode_platform(params["platform"])
    if manifests and platform is not None:
        raise InvalidArgument(
            "conflicting options: manifests and platform options cannot both be set"
        )
    document = await app.read(lambda session: inspect_image(session=session, term=name))
    shaped, sort_keys = documents.image_inspect(document, version)
    return json_response(shaped, sort_keys=sort_keys)


@route("GET", "/images/{name}/history")
async def image_history_(
    app: EngineApp, request: Request, version: ApiVersion, name: str
) -> Response:
    params = request.query_params
    if version.at_least("1.48") and params.get("platform"):
        decode_platform(params["platform"])
    items = await app.read(lambda session: image_history(session=session, term=name))
    return json_response([item.to_json() for item in items])


@route("POST", "/images/{name}/tag")
async def image_tag(app: EngineApp, request: Request, version: ApiVersion, name: str) -> Response:
    params = request.query_params
    target = repo_tag_reference(params.get("repo", ""), params.get("tag", ""))
    if target is None:
        return Response(status_code=200)
    # The target parses (checked above): what tag_image refuses now is the source, which
    # the daemon reports as not found.
    try:
        await app.write(lambda session: tag_image(session=session, source=name, target=target))
    except InvalidReference as exc:
        raise NotFound(exc.message) from None
    return Response(status_code=201)


@route("GET", "/images/{name}/get")
async def image_get(app: EngineApp, request: Request, version: ApiVersion, name: str) -> Response:
    platforms_param(request.query_params, version, "platform")
    return await app.archive_response([name])


@route("DELETE", "/images/{name}")
async def image_delete(
    app: EngineApp, request: Request, version: ApiVersion, name: str
) -> Response:
    params = request.query_params
    if not name.strip():
        raise InvalidReference("image name cannot be blank")
    force = bool_value(params, "force")
    prune = not bool_value(params, "noprune")
    if version.at_least("1.50"):
        for value in params.getlist("platforms"):
            decode_platform(value)
    deletion = await app.run(
        lambda catalog: remove_images(catalog, [name], force=force, prune=prune)
    )
    if deletion.failures:
        raise deletion.failures[0].error
    return json_response(deletion.records)
