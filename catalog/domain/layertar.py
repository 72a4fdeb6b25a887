"""What a layer tar's entries may be: names inside the layer root, the entry types a
layer may hold, whiteouts, and hardlinks that stay inside (the OCI layer specification,
docs/layers-and-squash.md §2; moby's breakout checks). Used on the way in
(catalog.storage.layers) and by the squash merge (catalog.domain.changeset).

Pure: no SQLAlchemy, no Typer; it reads tar headers, never a file.
"""

from __future__ import annotations

import posixpath
import re
import tarfile

from catalog.errors import InvalidArchive

__all__ = [
    "MAX_PATH_LENGTH",
    "OPAQUE_WHITEOUT",
    "WHITEOUT_PREFIX",
    "check_entry",
    "normalize_entry_name",
]

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
MAX_PATH_LENGTH = 4096
_WINDOWS_PATH = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)")
_SUPPORTED_TYPES = frozenset(
    {
        tarfile.REGTYPE,
        tarfile.AREGTYPE,
        tarfile.LNKTYPE,
        tarfile.SYMTYPE,
        tarfile.CHRTYPE,
        tarfile.BLKTYPE,
        tarfile.DIRTYPE,
        tarfile.FIFOTYPE,
        tarfile.CONTTYPE,
    }
)


def normalize_entry_name(name: str) -> str:
    """The canonical form of a tar entry name (`./a/b/`, `/a/b`, `a//b` are all `a/b`).

    Raises InvalidArchive for a name that leaves the layer root (moby: breakout error).
    Returns "" for the root itself.
    """
    if "\x00" in name:
        raise InvalidArchive(f"invalid layer: entry name {name!r} contains NUL")
    if _WINDOWS_PATH.match(name):
        raise InvalidArchive(f"invalid layer: entry name {name!r} is a Windows path")
    cleaned = posixpath.normpath(name.lstrip("/")) if name.strip("/") else "."
    if cleaned == ".." or cleaned.startswith("../"):
        raise InvalidArchive(f"invalid layer: entry name {name!r} is outside the layer root")
    return "" if cleaned == "." else cleaned


def check_entry(member: tarfile.TarInfo, *, max_path_length: int = MAX_PATH_LENGTH) -> str:
    """Validate one tar entry as a layer entry; return its normalized name."""
    if len(member.name) > max_path_length:
        raise InvalidArchive(f"invalid layer: entry name longer than {max_path_length}")
    if member.type not in _SUPPORTED_TYPES:
        raise InvalidArchive(
            f"invalid layer: unsupported tar entry type {member.type!r} for {member.name!r}"
        )
    name = normalize_entry_name(member.name)
    base = posixpath.basename(name)
    if base.startswith(WHITEOUT_PREFIX) and base != OPAQUE_WHITEOUT:
        target = base[len(WHITEOUT_PREFIX) :]
        if target in ("", ".", ".."):
            raise InvalidArchive(f"invalid layer: invalid whiteout entry {member.name!r}")
    if member.type == tarfile.LNKTYPE:
        # moby re-roots absolute hardlink targets (kaniko writes them) and rejects escapes.
        try:
            normalize_entry_name(member.linkname)
        except InvalidArchive:
            raise InvalidArchive(
                f"invalid layer: hardlink {member.name!r} points outside the layer root"
            ) from None
        if not member.linkname.strip("/"):
            raise InvalidArchive(f"invalid layer: hardlink {member.name!r} has no target")
    return name
