"""Progress of a pull or push, in docker's terms: a status per layer (`Pulling fs layer`,
`Downloading`, `Pull complete`, `Layer already exists`, ...), byte counts while blobs
travel, and lines about the whole image (`Digest: ...`, `Status: ...`).

The operations tell a `TransferProgress`; the CLI draws rich progress bars (or prints
lines when not on a terminal), `catalog serve` sends docker's JSON messages. Calls come
from several download or upload threads at once.
"""

from __future__ import annotations

from typing import Protocol


class TransferProgress(Protocol):
    def status(self, text: str, layer: str | None = None) -> None:
        """A status line: about one layer (its short ID) or, without one, the image."""

    def advance(self, layer: str, action: str, current: int, total: int) -> None:
        """`current` of `total` bytes of `layer` have gone (`Downloading`, `Pushing`)."""


class SilentProgress:
    """Tells nobody (`-q`)."""

    def status(self, text: str, layer: str | None = None) -> None:
        return

    def advance(self, layer: str, action: str, current: int, total: int) -> None:
        return
