"""Space kept back beside a SQLite database, so that catalog still works on a full disk.

At 0 bytes free SQLite cannot even open a database in WAL mode (its `-shm` index needs
32 KiB, a write needs room in the `-wal` file), so no command works, including the ones
that would free space (`rmi`, `image prune`, `gc`). So a catalog keeps a file of
`RESERVE_BYTES` beside its SQLite file (`<database>.reserve`), allocated while there is
room, and each command, as it opens the catalog:

* releases it when the file system holding the database has less than `RESERVE_BYTES`
  free, and says so: that command (a listing, an rmi) can then run and free space;
  commands that add data (load, append, squash, pull) never do: the space is for the
  commands that free it;
* makes it again when there is room: at least `RESERVE_BYTES * REFILL_FACTOR` free.

PostgreSQL keeps its files elsewhere: nothing is reserved for it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["RESERVE_BYTES", "RESERVE_SUFFIX", "keep_reserve"]

RESERVE_BYTES = 1 << 20
RESERVE_SUFFIX = ".reserve"
# Made again only with this many times its size free, so that it never takes the last
# space another program needs.
REFILL_FACTOR = 4


def _free_bytes(directory: Path) -> int | None:
    try:
        st = os.statvfs(directory)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _allocate(path: Path, size: int) -> None:
    """Write `path` with `size` bytes that really take space (fallocate where the file
    system has it, else zeros), atomically: a partial reserve is never left."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError:
            os.ftruncate(fd, 0)
            os.write(fd, bytes(size))
        os.fsync(fd)
    except OSError:
        os.close(fd)
        temporary.unlink(missing_ok=True)
        raise
    os.close(fd)
    temporary.replace(path)


def keep_reserve(database_file: Path, *, release: bool = True) -> str | None:
    """Release (if `release`) or make the reserve beside `database_file` (module doc); a
    sentence to tell the user when it was released, else None. Never fails: a reserve
    that cannot be made is simply not there."""
    directory = database_file.parent
    reserve = database_file.with_name(database_file.name + RESERVE_SUFFIX)
    free = _free_bytes(directory)
    if free is None:
        return None
    if reserve.exists():
        if free >= RESERVE_BYTES or not release:
            return None
        with contextlib.suppress(OSError):
            reserve.unlink()
            return (
                f"the disk holding {database_file} is full: catalog released the"
                f" {RESERVE_BYTES >> 10} KiB it keeps for this, so that this command can run;"
                " free space (catalog rmi, image prune, gc)"
            )
        return None
    if free >= RESERVE_BYTES * REFILL_FACTOR and directory.is_dir():
        with contextlib.suppress(OSError):
            _allocate(reserve, RESERVE_BYTES)
    return None
