"""The ASGI application over one open catalog: Docker's image endpoints
(`docker_routes`), catalog's own under `/catalog/` (`catalog_routes`), and the web view
at `/` and under `/web/` (`catalog.server.web`, handed those paths before routing).

Routing follows moby's router (docs/engine-api.md §3): the path is percent-decoded, an
optional `/vX.Y` prefix is split off and checked (every version from 1.24 to ours), then
exact paths are matched before the greedy `/images/{name}/...` patterns. Anything else
is a 404 `page not found`. Every error is `{"message": ...}` with `Content-Type:
application/json` exactly and Docker's status code.

Handlers parse parameters as the daemon does, call the same service functions as the CLI
in a worker thread (the services are synchronous), and shape the result for the version
asked (`documents`). `POST /images/load` spools the request body to an anonymous file
under the catalog's root, then loads it with `load_archive` (verified, all or nothing)
while a JSON message stream goes out; `GET /images/get` streams the archive through a
pipe from a thread that writes it. Neither holds a whole archive in memory. Connection
bounds (`limits`) and the Engine API's guard against browsers (`middleware`) wrap this
application in `listen.server_config`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

import anyio.to_thread
from sqlalchemy.orm import Session
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from catalog.context import Catalog
from catalog.db.failures import as_catalog_error
from catalog.docker.jsontext import JSONTextError, decode_json
from catalog.errors import CatalogError, InvalidArgument
from catalog.operations.load import TEMPORARY_DIRNAME
from catalog.server import documents
from catalog.server.jobs import SEND_CHUNK, AbortedStream, PipeJob, SaveJob
from catalog.server.routing import (
    JSON,
    PAGE_NOT_FOUND,
    ROUTES,
    TAR,
    RequestTooLarge,
    error_response,
    status_of,
)
from catalog.server.versions import check_version, split_version
from catalog.server.web.app import serves as web_serves
from catalog.server.web.app import web_app
from catalog.storage.spool import leftover_spools, open_spool

# Importing them registers their routes (into ROUTES), Docker's first.
from catalog.server import docker_routes  # noqa: F401  # isort: skip
from catalog.server import catalog_routes  # noqa: F401  # isort: skip
from catalog.server import distribution  # noqa: F401  # isort: skip
from catalog.server import container_routes  # noqa: F401  # isort: skip

__all__ = ["EngineApp", "ServerLimits"]

logger = logging.getLogger("catalog.server")

T = TypeVar("T")

# Spooled request bodies are written in pieces this big.
CHUNK = 1 << 20


@dataclass(frozen=True)
class ServerLimits:
    """Bounds on what one request may make the server do."""

    # An image archive sent to POST /images/load.
    max_load_bytes: int = 64 << 30
    # A JSON request body (catalog's own endpoints).
    max_json_bytes: int = 1 << 20


class EngineApp:
    """The ASGI application over one open catalog (its owner closes it)."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        limits: ServerLimits | None = None,
        web_hosts: Sequence[str] = (),
    ) -> None:
        self.catalog = catalog
        self.limits = limits or ServerLimits()
        # The web view (`/` and `/web/...`), with its own same-origin policy.
        self.web = web_app(catalog, hosts=web_hosts)
        # moby's single-flight prune: a second one while one runs is a 409.
        self.prune_lock = threading.Lock()

    # --- ASGI ---

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if web_serves(scope["path"]):
            await self.web(scope, receive, send)
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
        # The catalog is open before the server starts: spools a killed server left
        # behind go (storage.spool), then the server is ready.
        while True:
            message: Message = await receive()
            if message["type"] == "lifespan.startup":
                await anyio.to_thread.run_sync(self.remove_leftover_spools)
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
            except Exception as exc:
                # An OS or database condition is one line, as in the CLI; a bug is logged.
                failure = as_catalog_error(exc, self.catalog.location.display_url)
                if failure is not None:
                    logger.warning("%s %s failed: %s", method, path, failure.message)
                    return error_response(failure.message, status_of(failure))
                logger.exception("%s %s failed", method, path)
                return error_response("internal server error (see the server log)", 500)
        if method == "HEAD":
            return Response(status_code=404, headers={"Content-Length": "0"}, media_type=JSON)
        return error_response(PAGE_NOT_FOUND, 404)

    def remove_leftover_spools(self) -> None:
        for path in leftover_spools(self.catalog.location.root / TEMPORARY_DIRNAME):
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                logger.warning("cannot remove the leftover spool %s: %s", path, exc.strerror)
                continue
            logger.info("removed %s, left by an interrupted load", path)

    # --- running services and operations, in worker threads (they are synchronous) ---

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

    async def run(self, operation: Callable[[Catalog], T]) -> T:
        """`operation(catalog)`: an operation, which owns its transactions and files."""
        return await anyio.to_thread.run_sync(operation, self.catalog)

    # --- bodies ---

    async def spool_body(self, request: Request) -> BinaryIO:
        """The request body in a new anonymous file under the catalog's root (nothing is
        left behind however the server ends), written in pieces as it arrives;
        RequestTooLarge past the bound."""
        directory = self.catalog.location.root / TEMPORARY_DIRNAME
        spool = await anyio.to_thread.run_sync(open_spool, directory, "serve-load-")
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
            await anyio.to_thread.run_sync(spool.flush)
        except BaseException:
            spool.close()
            raise
        return spool

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
            return decode_json(body)
        except JSONTextError as exc:
            raise InvalidArgument(f"invalid JSON body: {exc}") from None

    async def archive_response(self, names: Sequence[str]) -> Response:
        """The `docker save` archive of `names`, streamed from a writer thread through a
        pipe. An error before the first byte is an ordinary error response."""
        return await self.piped_response(
            lambda write_fd: SaveJob(self.catalog, names, write_fd), TAR, f"saving {names}"
        )

    async def read_response(
        self, produce: Callable[[Session], Iterator[bytes]], media_type: str = JSON
    ) -> Response:
        """An answer written as `produce(session)` makes it, in a read transaction of a
        thread of its own, through a pipe: never whole in memory. An error before the first
        byte (a bad filter) is an ordinary error response."""

        def work(out: BinaryIO) -> None:
            with self.catalog.database.read() as session:
                for piece in produce(session):
                    out.write(piece)

        return await self.piped_response(
            lambda write_fd: PipeJob("catalog-read", work, write_fd), media_type, "an answer"
        )

    async def piped_response(
        self, start: Callable[[int], PipeJob], media_type: str, what: str
    ) -> Response:
        """The bytes a job writes into a pipe, streamed as they come."""
        read_fd, write_fd = os.pipe()
        job = start(write_fd)
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
            if job.error is not None:
                raise job.error
            raise RuntimeError(f"{what}: the writer wrote nothing")

        async def body() -> AsyncIterator[bytes]:
            try:
                yield first
                while chunk := await anyio.to_thread.run_sync(reader.read, SEND_CHUNK):
                    yield chunk
                await anyio.to_thread.run_sync(job.join)
                if job.error is not None:
                    logger.error("%s failed after it started: %s", what, job.error)
                    raise AbortedStream(str(job.error))
            finally:
                reader.close()

        return StreamingResponse(body(), media_type=media_type)
