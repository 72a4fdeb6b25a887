"""The Engine API's registry endpoints: `POST /images/create` (pull), `POST
/images/{name}/push` and `POST /auth` (login), over `catalog.registry`.

Credentials come as docker sends them: the `X-Registry-Auth` header (base64url JSON of an
AuthConfig) for pulls and pushes, the JSON body for `/auth`. Registry settings (insecure
registries, mirrors, certs.d) are the catalog root's `registries.json`, as the daemon's
come from daemon.json. Progress goes out as docker's JSON messages, so the docker CLI draws
its bars and docker-py reads its stream. As in moby, an error before the first message is an
ordinary error response (a 404 for an unknown manifest); after it, an `error` message.

The routes register themselves with `catalog.server.app`'s router when this module is
imported (app.py imports it with the other route modules).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from catalog.context import Catalog
from catalog.db.models import ImageReference
from catalog.docker.humanize import human_size
from catalog.domain.platform import parse_platform
from catalog.domain.reference import parse_normalized_named, with_digest, with_tag
from catalog.errors import CatalogError, InvalidArchive, InvalidArgument, InvalidReference
from catalog.operations.pull import pull
from catalog.operations.push import push
from catalog.registry.client import check_credentials
from catalog.registry.credentials import Credentials, decode_registry_auth, normalize_server
from catalog.registry.errors import Unauthorized
from catalog.registry.progress import TransferProgress
from catalog.registry.settings import load_settings
from catalog.server import documents
from catalog.server.routing import JSON, error_response, json_response, route, status_of
from catalog.server.versions import ApiVersion

if TYPE_CHECKING:
    from catalog.server.app import EngineApp

__all__ = ["JsonProgress"]

logger = logging.getLogger("catalog.server")

AUTH_HEADER = "X-Registry-Auth"
# Byte progress goes out at most this often per layer (and always at the end).
PROGRESS_STEP = 512 << 10


def _status(error: CatalogError) -> int:
    return 401 if isinstance(error, Unauthorized) else status_of(error)


def progress_bar(current: int, total: int) -> str:
    """jsonmessage's JSONProgress string: `[====>    ]  1.2MB/3.4MB`."""
    if total <= 0:
        return human_size(current)
    width = 50
    filled = min(width * current // total, width)
    bar = "=" * max(filled - 1, 0) + (">" if filled < width else "=") + " " * (width - filled)
    return f"[{bar}]  {human_size(current)}/{human_size(total)}"


class JsonProgress:
    """TransferProgress as docker's JSON messages, handed to `emit` (thread-safe)."""

    def __init__(self, emit: Callable[[bytes], None]) -> None:
        self._emit = emit
        self._shown: dict[str, int] = {}
        self._lock = threading.Lock()

    def status(self, text: str, layer: str | None = None) -> None:
        document: dict[str, Any] = {"status": text}
        if layer is not None:
            document = {"status": text, "progressDetail": {}, "id": layer}
        self._emit(_message(document))

    def advance(self, layer: str, action: str, current: int, total: int) -> None:
        with self._lock:
            shown = self._shown.get(layer, -PROGRESS_STEP)
            if current - shown < PROGRESS_STEP and current < total:
                return
            self._shown[layer] = current
        self._emit(
            _message(
                {
                    "status": action,
                    "progressDetail": {"current": current, "total": total},
                    "progress": progress_bar(current, total),
                    "id": layer,
                }
            )
        )

    def aux(self, document: dict[str, Any]) -> None:
        self._emit(_message({"progressDetail": {}, "aux": document}))


def _message(document: dict[str, Any]) -> bytes:
    return documents.go_json(document).rstrip(b"\n") + b"\r\n"


class _TransferJob(threading.Thread):
    """Runs a pull or push, putting JSON messages on an asyncio queue (None last). A thread
    of its own, so long transfers never hold the worker threads other requests need."""

    def __init__(
        self, work: Callable[[JsonProgress], None], loop: asyncio.AbstractEventLoop
    ) -> None:
        super().__init__(name="catalog-transfer", daemon=True)
        self.work = work
        self.loop = loop
        self.messages: asyncio.Queue[bytes | CatalogError | None] = asyncio.Queue()

    def put(self, item: bytes | CatalogError | None) -> None:
        with contextlib.suppress(RuntimeError):  # the event loop has gone: nobody listens
            self.loop.call_soon_threadsafe(self.messages.put_nowait, item)

    def run(self) -> None:
        try:
            self.work(JsonProgress(self.put))
        except CatalogError as exc:
            self.put(exc)
        except Exception:
            logger.exception("a registry transfer failed")
            self.put(CatalogError("internal error during the transfer (see the server log)"))
        finally:
            self.put(None)

    async def response(self) -> Response:
        """An error response if the job fails before its first message, else the stream."""
        first = await self.messages.get()
        if isinstance(first, CatalogError):
            return error_response(first.message, _status(first))

        async def body() -> AsyncIterator[bytes]:
            item: bytes | CatalogError | None = first
            while item is not None:
                if isinstance(item, CatalogError):
                    yield documents.error_message(item.message)
                else:
                    yield item
                item = await self.messages.get()

        return StreamingResponse(body(), media_type=JSON)


def _credentials(request: Request) -> Callable[[str], Credentials | None]:
    credentials = decode_registry_auth(request.headers.get(AUTH_HEADER, ""))
    return lambda domain: credentials


def _run(work: Callable[[TransferProgress], None]) -> _TransferJob:
    job = _TransferJob(work, asyncio.get_running_loop())
    job.start()
    return job


@route("POST", "/images/create")
async def images_create(
    app: EngineApp, request: Request, version: ApiVersion, name: str
) -> Response:
    params = request.query_params
    image = params.get("fromImage", "")
    if not image:
        if params.get("fromSrc"):
            raise InvalidArgument("importing a root filesystem (fromSrc) is not supported")
        raise InvalidArgument("fromImage or fromSrc is required")
    # moby: "pull -a" may send a name with a trailing ":"; a digest may come as the tag.
    named = parse_normalized_named(image.removesuffix(":"))
    tag = params.get("tag", "")
    if tag:
        named = with_digest(named, tag) if tag.startswith("sha256:") else with_tag(named, tag)
    platform = None
    if params.get("platform"):
        try:
            platform = parse_platform(params["platform"])
        except InvalidArchive as exc:
            raise InvalidArgument(exc.message) from None
    all_tags = named.tag is None and named.digest is None
    catalog: Catalog = app.catalog
    settings = await anyio.to_thread.run_sync(lambda: load_settings(catalog.location.root))
    credentials = _credentials(request)
    reference = str(named)

    def work(progress: TransferProgress) -> None:
        pull(
            catalog,
            reference,
            settings=settings,
            credentials=credentials,
            platform=platform,
            all_tags=all_tags,
            progress=progress,
        )

    return await _run(work).response()


def _repository_tags(catalog: Catalog, repository: str) -> list[str]:
    with catalog.database.read() as session:
        return sorted(
            tag
            for tag in session.scalars(
                select(ImageReference.tag).where(
                    ImageReference.repository == repository, ImageReference.tag.is_not(None)
                )
            )
            if tag is not None
        )


@route("POST", "/images/{name}/push")
async def image_push(app: EngineApp, request: Request, version: ApiVersion, name: str) -> Response:
    named = parse_normalized_named(name)
    if named.digest is not None:
        raise InvalidReference("cannot push a digest reference")
    tag = request.query_params.get("tag", "") or named.tag or ""
    catalog: Catalog = app.catalog
    if tag:
        references = [str(with_tag(named, tag))]
    else:
        tags = await anyio.to_thread.run_sync(lambda: _repository_tags(catalog, named.name))
        if not tags:
            raise CatalogError(f"An image does not exist locally with the tag: {name}")
        references = [str(with_tag(named, t)) for t in tags]
    settings = await anyio.to_thread.run_sync(lambda: load_settings(catalog.location.root))
    credentials = _credentials(request)

    def work(progress: TransferProgress) -> None:
        assert isinstance(progress, JsonProgress)
        for reference in references:
            result = push(
                catalog, reference, settings=settings, credentials=credentials, progress=progress
            )
            progress.aux(
                {"Tag": result.reference.tag, "Digest": result.digest, "Size": result.size}
            )

    return await _run(work).response()


@route("POST", "/auth")
async def auth(app: EngineApp, request: Request, version: ApiVersion, name: str) -> Response:
    body = await app.json_body(request)
    if not isinstance(body, dict):
        raise InvalidArgument("the body must be a JSON object")
    username = str(body.get("username") or "")
    password = str(body.get("password") or "")
    server = normalize_server(str(body.get("serveraddress") or ""))
    domain = "docker.io" if server.startswith("https://index.docker.io") else server
    catalog: Catalog = app.catalog

    def work() -> None:
        settings = load_settings(catalog.location.root)
        check_credentials(settings, domain, Credentials(username=username, password=password))

    try:
        await anyio.to_thread.run_sync(work)
    except Unauthorized as exc:
        return error_response(exc.message, 401)
    return json_response({"Status": "Login Succeeded", "IdentityToken": ""})
