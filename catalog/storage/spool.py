"""Spool files: archives copied to disk before they are read (standard input, pipes,
compressed archives, and the bodies of `POST /images/load`), under the catalog's
`<root>/tmp`.

A spool is an anonymous file (O_TMPFILE, or a name unlinked at once where the file
system lacks it): it has no name to leave behind, and its space returns to the disk
when the process ends, however it ends. Named spools are what older versions of
`catalog serve` wrote (`serve-load-*.tar`, 1.5 GB left by one killed upload), and what
the unlink fallback leaves if killed within its instant: `leftover_spools` finds them,
for the server's start-up, `catalog gc` and `catalog fsck`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from catalog.errors import CatalogError

__all__ = ["SPOOL_PREFIXES", "leftover_spools", "open_spool"]

# Names of spool files: tempfile's fallback, and what older `catalog serve` wrote.
SPOOL_PREFIXES = ("load-", "serve-load-")


def open_spool(directory: Path, prefix: str = "load-") -> BinaryIO:
    """A new anonymous read-write file under `directory` (created if need be)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryFile(dir=directory, prefix=prefix)
    except OSError as exc:
        raise CatalogError(
            f"cannot create a temporary file in {directory}: {exc.strerror}"
        ) from None


def leftover_spools(directory: Path) -> list[Path]:
    """Named spool files under `directory`: none is in use by a current catalog."""
    try:
        with os.scandir(directory) as entries:
            return sorted(
                Path(entry.path)
                for entry in entries
                if entry.name.startswith(SPOOL_PREFIXES) and entry.is_file(follow_symlinks=False)
            )
    except (FileNotFoundError, NotADirectoryError):
        return []
