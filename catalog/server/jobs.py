"""The worker threads of load, save and streamed answers: a long load, an archive or a
long listing runs in a thread of its own, so that it never holds the worker threads the
other requests need."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from typing import BinaryIO

from catalog.context import Catalog
from catalog.db.failures import as_catalog_error
from catalog.domain.platform import Platform
from catalog.errors import CatalogError
from catalog.operations.load import TEMPORARY_DIRNAME, load_archive
from catalog.operations.save import save_images
from catalog.server import documents
from catalog.storage.archive.source import open_archive_file

logger = logging.getLogger("catalog.server")


# Archives go out in pieces this big: read from the pipe, then sent.
SEND_CHUNK = 256 << 10


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


class LoadJob(threading.Thread):
    """Loads a spooled archive, putting JSON messages on an asyncio queue (None last);
    the spool is removed when done. A thread of its own, so that long loads never hold
    the worker threads the other requests need."""

    def __init__(
        self,
        catalog: Catalog,
        spool: BinaryIO,
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
            with open_archive_file(
                self.spool,
                description="the request body",
                temporary_dir=self.catalog.location.root / TEMPORARY_DIRNAME,
            ) as archive:
                result = load_archive(
                    self.catalog, archive, platform=self.platform, progress=progress
                )
            for line in result.lines():
                self.emit(documents.stream_message(line + "\n"))
        except CatalogError as exc:
            self.emit(documents.error_message(exc.message))
        except Exception as exc:
            failure = as_catalog_error(exc, self.catalog.location.display_url)
            if failure is not None:  # an OS or database condition: one line
                self.emit(documents.error_message(failure.message))
            else:
                logger.exception("loading an archive failed")
                self.emit(
                    documents.error_message("internal error while loading (see the server log)")
                )
        finally:
            self.spool.close()  # the archive owns it once opened; closing twice is fine
            self.emit(None)

    async def stream(self) -> AsyncIterator[bytes]:
        while (message := await self.messages.get()) is not None:
            yield message


class PipeJob(threading.Thread):
    """Runs `produce(out)`, `out` the writing end of a pipe whose other end a response
    reads: the pipe's buffer holds the producer back while the client reads slowly."""

    def __init__(self, name: str, produce: Callable[[BinaryIO], None], write_fd: int) -> None:
        super().__init__(name=name, daemon=True)
        self.produce = produce
        self.write_fd = write_fd
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with open(self.write_fd, "wb", buffering=SEND_CHUNK) as out:  # noqa: PTH123
                self.produce(out)
        except BaseException as exc:  # BrokenPipeError when the client went away
            self.error = exc


class SaveJob(PipeJob):
    """Writes the archive of `names` into a pipe; the response reads the other end."""

    def __init__(self, catalog: Catalog, names: Sequence[str], write_fd: int) -> None:
        wanted = list(names)
        super().__init__("catalog-save", lambda out: save_images(catalog, wanted, out), write_fd)


class AbortedStream(Exception):
    """An archive that failed after its first bytes went out: the connection is cut."""
