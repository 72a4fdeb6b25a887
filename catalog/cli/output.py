"""Writing a long answer to stdout as it is made: in pieces, never whole in memory, and
quietly stopped when the reader goes away (`catalog images | head`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from types import TracebackType
from typing import TextIO

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
            self.stream.write("".join(self.pending))
            self.pending, self.size = [], 0

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
                self.stream.flush()
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
