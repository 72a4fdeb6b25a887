"""Writing a long answer to stdout as it is made: in pieces, never whole in memory, and
quietly stopped when the reader goes away (`catalog images | head`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TextIO

from catalog.errors import os_failure

# Characters gathered before one write.
CHUNK = 1 << 16


class Output:
    """stdout, written in pieces of about CHUNK characters."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.pending: list[str] = []
        self.size = 0

    def write(self, text: str) -> None:
        self.pending.append(text)
        self.size += len(text)
        if self.size >= CHUNK:
            self.flush()

    def write_all(self, texts: Iterable[str]) -> None:
        for text in texts:
            self.write(text)

    def flush(self) -> None:
        if self.pending:
            text, self.pending, self.size = "".join(self.pending), [], 0
            _write(self.stream.write, text)

    def __enter__(self) -> Output:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        try:
            if error is None:
                self.flush()
                _write(lambda _: self.stream.flush(), "")
        except BrokenPipeError:
            error = BrokenPipeError()
        if isinstance(error, BrokenPipeError):
            # The reader has gone: stop, and let nothing write to the closed pipe again
            # (Python's own advice: point stdout at devnull before exiting).
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, sys.stdout.fileno())
            except (OSError, ValueError):  # not a real file (a test's captured output)
                pass
            finally:
                os.close(devnull)
            return True
        return False


def _write(write: Callable[[str], object], text: str) -> None:
    """A write to stdout whose failure, but for a reader gone away, is one line: a full
    disk under `catalog images > file` says so (catalog.errors.os_failure)."""
    try:
        write(text)
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise os_failure(exc, "writing the output") from None
