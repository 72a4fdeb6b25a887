"""The ASGI application: Docker's image endpoints, and catalog's own under `/catalog/`.

Routing follows moby's router (engine-api.md §1, §5): the path is percent-decoded, an
optional `/vX.Y` prefix is split off and checked (every version from 1.24 to ours), then
exact paths are matched before the greedy `/images/{name}/...` patterns. Anything else
is a 404 `page not found`. Every error is `{"message": ...}` with `Content-Type:
application/json` exactly and Docker's status code.

Handlers parse parameters as the daemon does, call the same service functions as the CLI
in a worker thread (the services are synchronous), and shape the result for the version
asked (`documents`). `POST /images/load` spools the request body to a file under the
catalog's root, then loads it with `load_archive` (verified, all or nothing) while a JSON
message stream goes out; `GET /images/get` streams the archive through a pipe from a
thread that writes it. Neither holds a whole archive in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy.orm import Session
from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from catalog.context import Catalog
from catalog.docker.filters import FilterArgs, filters_from_json
from catalog.domain.reference import familiar_name, parse_normalized_named, tag_name_only, with_tag
from catalog.errors import (
    CatalogError,
    Conflict,
    InvalidArchive,
    InvalidDigest,
    InvalidFilter,
    InvalidReference,
    NotFound,
)
from catalog.operations.load import TEMPORARY_DIRNAME, load_archive
from catalog.operations.save import save_images
from catalog.operations.squash import squash_image
from catalog.server import documents
from catalog.server.openapi import openapi_document
from catalog.server.versions import ApiVersion, UnsupportedVersion, check_version, split_version
from catalog.services.containers import list_containers
from catalog.services.delete import delete_images, remove_blob_files
from catalog.services.info import count_rows
from catalog.services.inspect import image_history, inspect_image
from catalog.services.listing import disk_usage, list_images
from catalog.services.prune import prune_images
from catalog.services.reports import OPTION_FLAGS, REPORTS, ReportOptions, run_report
from catalog.services.tag import AMBIGUOUS_NAME, tag_image
from catalog.storage.archive.formats import Platform

__all__ = ["EngineApp", "InvalidRequest", "RequestTooLarge", "ServerLimits", "status_of"]

logger = logging.getLogger("catalog.server")

T = TypeVar("T")

JSON = "application/json"
TAR = "application/x-tar"
# Spooled request bodies are written in pieces this big.
CHUNK = 1 << 20
# Archives go out in pieces this big: read from the pipe, then sent.
SEND_CHUNK = 256 << 10
PAGE_NOT_FOUND = "page not found"


class InvalidRequest(CatalogError):
    """A request parameter the daemon would refuse (400)."""


class RequestTooLarge(CatalogError):
    """A request body over the server's bound (413)."""


@dataclass(frozen=True)
class ServerLimits:
    """Bounds on what one request may make the server do."""

    # An image archive sent to POST /images/load.
    max_load_bytes: int = 64 << 30
    # A JSON request body (catalog's own endpoints).
    max_json_bytes: int = 1 << 20


def status_of(error: CatalogError) -> int:
    """Docker's status for an error (moby httpstatus.FromError)."""
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, Conflict):
        return 409
    if isinstance(error, RequestTooLarge):
        return 413
    if isinstance(
        error,
        InvalidFilter
        | InvalidReference
        | InvalidDigest
        | InvalidArchive
        | InvalidRequest
        | UnsupportedVersion,
    ):
        return 400
    return 500


def json_response(document: Any, status: int = 200, *, sort_keys: bool = False) -> Response:
    return Response(
        documents.go_json(document, sort_keys=sort_keys), status_code=status, media_type=JSON
    )


def error_response(message: str, status: int) -> Response:
    return json_response({"message": message}, status)


# --- parameters, parsed as moby's httputils does -----------------------------------------


def bool_value(params: QueryParams, key: str) -> bool:
    """httputils.BoolValue: false for "", 0, no, false, none (any case); true otherwise."""
    value = params.get(key, "").strip().lower()
    return value not in ("", "0", "no", "false", "none")


def bool_value_or_default(params: QueryParams, key: str, default: bool) -> bool:
    return bool_value(params, key) if key in params else default


def parse_go_bool(value: str) -> bool | None:
    """strconv.ParseBool; None when it does not parse."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


def decode_platform(text: str) -> Platform:
    """httputils.DecodePlatform: a JSON OCI platform with both os and architecture."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"failed to parse platform: {exc.msg}") from None
    if not isinstance(document, dict):
        raise InvalidRequest("failed to parse platform: not a JSON object")
    os_name = document.get("os") or ""
    architecture = document.get("architecture") or ""
    variant = document.get("variant") or ""
    if not all(isinstance(v, str) for v in (os_name, architecture, variant)):
        raise InvalidRequest("failed to parse platform: fields must be strings")
    optional = variant or document.get("os.version") or document.get("os.features")
    if not os_name and not architecture and optional:
        raise InvalidRequest(
            "optional platform fields provided, but OS and Architecture are missing"
        )
    if not os_name or not architecture:
        raise InvalidRequest("both OS and Architecture must be provided")
    return Platform(os_name, architecture, variant or None)


def platforms_param(params: QueryParams, version: ApiVersion, key: str) -> list[Platform]:
    """The `platform` values of load and save (API >= 1.48, several from 1.52)."""
    if version.before("1.48"):
        return []
    values = [v for v in params.getlist(key) if v]
    if version.before("1.52") and len(values) > 1:
        raise InvalidRequest(
            "multiple platform parameters are not supported in this API version; "
            "use API version 1.52 or later"
        )
    return [decode_platform(value) for value in values]


def filters_param(params: QueryParams) -> FilterArgs:
    return filters_from_json(params.get("filters", ""))


def repo_tag_reference(repo: str, tag: str) -> str | None:
    """httputils.RepoTagReference: the full tag reference `repo` and `tag` name, or None
    for an empty `repo` (the daemon then answers a bare 200 and does nothing)."""
    if not repo:
        return None
    named = parse_normalized_named(repo)
    if named.digest is not None:
        raise InvalidReference("cannot import digest reference")
    named = with_tag(named, tag) if tag else tag_name_only(named)
    if familiar_name(named) == "sha256":
        raise InvalidReference(AMBIGUOUS_NAME)
    return str(named)


# --- streaming -----------------------------------------------------------------------


class _LoadProgress:
    """LoadProgress that sends `Loading layer` messages, at most about 50 per layer."""

    def __init__(self, emit: Callable[[bytes], None]) -> None:
        self._emit = emit
        self._layer = ""
        self._total = 0
        self._current = 0
        self._shown = 0

    def layer_started(self, description: str, total: int) -> None:
        self._layer, self._total, self._current, self._shown = description, total, 0, 0
        self._emit(documents.progress_message(self._layer, 0, total))

    def layer_advanced(self, count: int) -> None:
        self._current += count
        if self._current - self._shown >= max(self._total // 50, 1 << 16):
            self._shown = self._current
            self._emit(documents.progress_message(self._layer, self._current, self._total))

    def layer_finished(self) -> None:
        self._emit(documents.progress_message(self._layer, self._total, self._total))


class _LoadJob(threading.Thread):
    """Loads a spooled archive, putting JSON messages on an asyncio queue (None last);
    the spool is removed when done. A thread of its own, so that long loads never hold
    the worker threads the other requests need."""

    def __init__(
        self,
        catalog: Catalog,
        spool: Path,
        *,
        platform: Platform | None,
        quiet: bool,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(name="catalog-load", daemon=True)
        self.catalog = catalog
        self.spool = spool
        self.platform = platform
        self.quiet = quiet
        self.loop = loop
        self.messages: asyncio.Queue[bytes | None] = asyncio.Queue()

    def emit(self, message: bytes | None) -> None:
        with contextlib.suppress(RuntimeError):  # the event loop has gone: nobody listens
            self.loop.call_soon_threadsafe(self.messages.put_nowait, message)

    def run(self) -> None:
        try:
            progress = None if self.quiet else _LoadProgress(self.emit)
            result = load_archive(
                self.catalog, self.spool, platform=self.platform, progress=progress
            )
            for line in result.lines():
                self.emit(documents.stream_message(line + "\n"))
        except CatalogError as exc:
            self.emit(documents.error_message(exc.message))
        except Exception:
            logger.exception("loading an archive failed")
            self.emit(documents.error_message("internal error while loading (see the server log)"))
        finally:
            with contextlib.suppress(FileNotFoundError):
                self.spool.unlink()
            self.emit(None)

    async def stream(self) -> AsyncIterator[bytes]:
        while (message := await self.messages.get()) is not None:
            yield message


class _SaveJob(threading.Thread):
    """Writes the archive of `names` into a pipe; the response reads the other end."""

    def __init__(self, catalog: Catalog, names: Sequence[str], write_fd: int) -> None:
        super().__init__(name="catalog-save", daemon=True)
        self.catalog = catalog
        self.names = list(names)
        self.write_fd = write_fd
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with open(self.write_fd, "wb", buffering=SEND_CHUNK) as out:  # noqa: PTH123
                save_images(self.catalog, self.names, out)
        except BaseException as exc:  # BrokenPipeError when the client went away
            self.error = exc


class _AbortedStream(Exception):
    """An archive that failed after its first bytes went out: the connection is cut."""


# --- the application --------------------------------------------------------------------

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


class EngineApp:
    """The ASGI application over one open catalog (its owner closes it)."""

    def __init__(self, catalog: Catalog, *, limits: ServerLimits | None = None) -> None:
        self.catalog = catalog
        self.limits = limits or ServerLimits()
        # moby's single-flight prune: a second one while one runs is a 409.
        self.prune_lock = threading.Lock()

    # --- ASGI ---

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        try:
            response = await self.dispatch(request)
        except ClientDisconnect:
            return
        for key, value in documents.common_headers().items():
            response.headers.setdefault(key, value)
        await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        # The catalog is open before the server starts: nothing to do but agree.
        while True:
            message: Message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def dispatch(self, request: Request) -> Response:
        """The response to one request: routed, version-checked, errors mapped."""
        path = request.scope["path"]
        requested, unversioned = split_version(path)
        method = request.method
        for candidate in ROUTES:
            if candidate.method != method:
                continue
            target = unversioned if candidate.versioned else path
            if not candidate.versioned and requested is not None:
                continue
            match = candidate.pattern.match(target)
            if match is None:
                continue
            try:
                version = check_version(requested)
                return await candidate.handler(
                    self, request, version, match.groupdict().get("name") or ""
                )
            except CatalogError as exc:
                return error_response(exc.message, status_of(exc))
            except ClientDisconnect:
                raise
            except Exception:
                logger.exception("%s %s failed", method, path)
                return error_response("internal server error (see the server log)", 500)
        if method == "HEAD":
            return Response(status_code=404, headers={"Content-Length": "0"}, media_type=JSON)
        return error_response(PAGE_NOT_FOUND, 404)

    # --- running service functions ---

    async def read(self, work: Callable[[Session], T]) -> T:
        """`work(session)` in a read transaction, in a worker thread."""

        def run() -> T:
            with self.catalog.database.read() as session:
                return work(session)

        return await anyio.to_thread.run_sync(run)

    async def write(self, work: Callable[[Session], T]) -> T:
        """`work(session)` in a write transaction that commits at the end."""

        def run() -> T:
            with self.catalog.database.write() as session:
                return work(session)

        return await anyio.to_thread.run_sync(run)

    async def remove_blobs(self, digests: Sequence[str]) -> None:
        """After a delete has committed: the files of blobs no row uses any more."""
        if digests:
            store = self.catalog.store
            await self.read(
                lambda session: remove_blob_files(session=session, store=store, digests=digests)
            )

    # --- bodies ---

    async def spool_body(self, request: Request) -> Path:
        """The request body in a new file (mode 0600) under the catalog's root, written
        in pieces as it arrives; RequestTooLarge past the bound."""
        directory = self.catalog.location.root / TEMPORARY_DIRNAME

        def create() -> Any:
            directory.mkdir(parents=True, exist_ok=True)
            return tempfile.NamedTemporaryFile(
                dir=directory, prefix="serve-load-", suffix=".tar", delete=False
            )

        spool = await anyio.to_thread.run_sync(create)
        path = Path(spool.name)
        try:
            received = 0
            pending: list[bytes] = []
            pending_size = 0
            async for chunk in request.stream():
                received += len(chunk)
                if received > self.limits.max_load_bytes:
                    raise RequestTooLarge(
                        f"the archive is larger than this server accepts "
                        f"({self.limits.max_load_bytes} bytes)"
                    )
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= CHUNK:
                    await anyio.to_thread.run_sync(spool.write, b"".join(pending))
                    pending, pending_size = [], 0
            if pending:
                await anyio.to_thread.run_sync(spool.write, b"".join(pending))
            await anyio.to_thread.run_sync(spool.close)
        except BaseException:
            spool.close()
            path.unlink(missing_ok=True)
            raise
        return path

    async def json_body(self, request: Request) -> Any:
        """A JSON request body of at most `limits.max_json_bytes`; `{}` when empty."""
        parts: list[bytes] = []
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > self.limits.max_json_bytes:
                raise RequestTooLarge(
                    f"the request body is larger than {self.limits.max_json_bytes} bytes"
                )
            parts.append(chunk)
        body = b"".join(parts)
        if not body.strip():
            return {}
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"invalid JSON body: {exc}") from None

    async def archive_response(self, names: Sequence[str]) -> Response:
        """The `docker save` archive of `names`, streamed from a writer thread through a
        pipe. An error before the first byte is an ordinary error response."""
        read_fd, write_fd = os.pipe()
        job = _SaveJob(self.catalog, names, write_fd)
        reader = open(read_fd, "rb", buffering=SEND_CHUNK)  # noqa: PTH123, SIM115
        try:
            job.start()
            first = await anyio.to_thread.run_sync(reader.read, SEND_CHUNK)
        except BaseException:
            reader.close()
            raise
        if not first:
            reader.close()
            await anyio.to_thread.run_sync(job.join)
            if isinstance(job.error, CatalogError):
                raise job.error
            if job.error is not None:
                raise job.error
            raise RuntimeError("the archive writer wrote nothing")

        async def body() -> AsyncIterator[bytes]:
            try:
                yield first
                while chunk := await anyio.to_thread.run_sync(reader.read, SEND_CHUNK):
                    yield chunk
                await anyio.to_thread.run_sync(job.join)
                if job.error is not None:
                    logger.error("saving %s failed after it started: %s", names, job.error)
                    raise _AbortedStream(str(job.error))
            finally:
                reader.close()

        return StreamingResponse(body(), media_type=TAR)


# --- Docker's routes ------------------------------------------------------------------


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
    summaries = await app.read(
        lambda session: list_images(
            session=session, filters=filters, all_images=all_images, shared_size=shared_size
        )
    )
    return json_response([documents.image_summary(s.to_api(), version) for s in summaries])


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
        raise InvalidRequest("loading more than one platform at a time is not supported")
    quiet = bool_value_or_default(params, "quiet", True)
    try:
        spool = await app.spool_body(request)
    except RequestTooLarge as exc:
        # Load errors go in the message stream, as the daemon writes them.
        return StreamingResponse(_single(documents.error_message(exc.message)), media_type=JSON)
    job = _LoadJob(
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
        report = await app.write(lambda session: prune_images(session=session, filters=filters))
    finally:
        app.prune_lock.release()
    await app.remove_blobs(report.blob_digests)
    return json_response(documents.prune_report(report.images_deleted, report.space_reclaimed))


@route("GET", "/system/df")
async def system_df(app: EngineApp, request: Request, version: ApiVersion, name: str) -> Response:
    params = request.query_params
    types: list[str] = []
    if version.at_least("1.42") and "type" in params:
        types = params.getlist("type")
        for kind in types:
            if kind not in documents.DF_TYPES:
                raise InvalidRequest(f"unknown object type: {kind}")
    verbose: bool | None = None
    raw_verbose = params.get("verbose", "")
    if version.at_least("1.52") and raw_verbose:
        verbose = parse_go_bool(raw_verbose)
        if verbose is None:
            raise InvalidRequest(f"invalid value for verbose: {raw_verbose}")
    wanted = set(types) if types else {"container", "image", "volume"}

    def work(session: Session) -> tuple[Any, list[dict[str, Any]] | None]:
        usage = disk_usage(session=session) if "image" in wanted else None
        containers = None
        if "container" in wanted:
            containers = [
                documents.container_summary(
                    id=c.id,
                    name=c.name,
                    image=c.image,
                    image_id=c.image_id,
                    state=c.state,
                    status=c.status,
                    created=c.created,
                )
                for c in list_containers(session=session, all_states=True)
            ]
        return usage, containers

    usage, containers = await app.read(work)
    return json_response(
        documents.disk_usage(
            version=version,
            types=types,
            verbose=verbose,
            images=[image.to_api() for image in usage.images] if usage is not None else None,
            layers_size=usage.total_size if usage is not None else 0,
            image_active=usage.active_count if usage is not None else 0,
            image_reclaimable=usage.reclaimable if usage is not None else 0,
            containers=containers,
        )
    )


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
        raise InvalidRequest(
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
    deletion = await app.write(
        lambda session: delete_images(session=session, terms=[name], force=force, prune=prune)
    )
    if deletion.failures:
        raise deletion.failures[0].error
    await app.remove_blobs(deletion.blob_digests)
    return json_response(deletion.records)


# --- catalog's own routes -------------------------------------------------------------


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


def _user_mistake(exc: CatalogError) -> CatalogError:
    """catalog's own services raise a plain CatalogError for a bad option: a 400 here."""
    return InvalidRequest(exc.message) if type(exc) is CatalogError else exc


@route("GET", "/catalog/reports", versioned=False)
async def catalog_reports(
    app: EngineApp, request: Request, version: ApiVersion, name: str
) -> Response:
    return json_response([documents.report_description(r) for r in REPORTS.values()])


def _report_options(params: QueryParams) -> ReportOptions:
    unknown = sorted(set(params) - set(OPTION_FLAGS))
    if unknown:
        raise InvalidRequest(f"unknown report option: {unknown[0]}")
    numbers: dict[str, int | None] = {}
    for key in ("max_tags", "limit"):
        value = params.get(key)
        if value is None:
            numbers[key] = None
            continue
        try:
            numbers[key] = int(value)
        except ValueError:
            raise InvalidRequest(f"invalid {key} value: {value!r} (a whole number)") from None
    period = params.get("period")
    if period is not None and period not in ("week", "month"):
        raise InvalidRequest(f"invalid period value: {period!r} (week or month)")
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
    if name not in REPORTS:
        raise NotFound(f"no such report: {name!r} (reports: {', '.join(REPORTS)})")
    options = _report_options(request.query_params)
    try:
        result = await app.read(
            lambda session: run_report(session=session, name=name, options=options)
        )
    except CatalogError as exc:
        raise _user_mistake(exc) from None
    return json_response(documents.report_result(result))


_SQUASH_FIELDS = {"parent": str, "layers": int, "tags": list, "message": str}


@route("POST", "/catalog/images/{name}/squash", versioned=False)
async def catalog_squash(
    app: EngineApp, request: Request, version: ApiVersion, name: str
) -> Response:
    body = await app.json_body(request)
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    for key, value in body.items():
        kind = _SQUASH_FIELDS.get(key)
        if kind is None:
            raise InvalidRequest(f"unknown field: {key}")
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise InvalidRequest(f"{key} must be {kind.__name__}")
    tags = body.get("tags") or []
    if not all(isinstance(tag, str) for tag in tags):
        raise InvalidRequest("tags must be a list of strings")
    catalog = app.catalog
    try:
        result = await anyio.to_thread.run_sync(
            lambda: squash_image(
                catalog,
                name,
                parent=body.get("parent"),
                layers=body.get("layers"),
                tags=tags,
                message=body.get("message"),
            )
        )
    except CatalogError as exc:
        raise _user_mistake(exc) from None
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
